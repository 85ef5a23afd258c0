"""The monthly workbook as administration prints it (issue 21): every sheet A4 landscape, one page wide, the
header row on each page, the report's title in the page header and "page P of N" in the footer.

Written by `write_workbook` and read back with openpyxl: what a spreadsheet program reads is what is checked.
"""
from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
import zipfile
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import openpyxl
import pytest

from models.tally.facts import MonthTally
from notifications.report import word
from notifications.report_content import diff_content
from notifications.report_summary import title_for
from notifications.report_workbook import header_footer_text, write_workbook
from tests.unit.test_reconcile import callback_line, cell, finding

TZ = ZoneInfo("Asia/Shanghai")
UTC = timezone.utc


def group_tally() -> MonthTally:
    """October of two offices with findings and callbacks: every sheet has rows."""
    cells = (cell(office="A1", accepted=2, orders=3), cell(office="A1", department="cleaning", worker="CL1", orders=1),
             cell(office="B2", accepted=5, orders=5))
    return MonthTally("2026-10", "*", datetime(2026, 9, 30, 16, tzinfo=UTC), datetime(2026, 10, 31, 16, tzinfo=UTC),
                      cells, (finding(office="A1"), finding("receipt-gap", "000103", office="B2")),
                      tuple(callback_line(office, n) for office in ("A1", "B2") for n in range(3)))


def workbooks(tmp_path: Path, locale: str) -> list[tuple[MonthTally, int, Path]]:
    """The group's workbook (version 2, with its "changes since v1" sheet) and office A1's (version 1)."""
    group = group_tally()
    before = dataclasses.replace(group, discrepancies=group.discrepancies[:1])
    office = group.for_office("A1")
    return [(group, 2, write_workbook(group, tmp_path / f"group-{locale}.xlsx", locale=locale, version=2, tz=TZ,
                                      changes=diff_content(before.content(), group.content()), previous_version=1)),
            (office, 1, write_workbook(office, tmp_path / f"A1-{locale}.xlsx", locale=locale, version=1, tz=TZ))]


def literal(header_part: str) -> str:
    """What a header or footer part prints, for one holding no control code but doubled "&"s."""
    assert "&" not in header_part.replace("&&", ""), header_part  # no control code left in the literal text
    return header_part.replace("&&", "&")


@pytest.mark.parametrize("locale", ["zh_CN", "en"])
def test_every_sheet_prints_landscape_one_page_wide_with_title_header_row_and_page_numbers(tmp_path, locale):
    for tally, version, path in workbooks(tmp_path, locale):
        book = openpyxl.load_workbook(path)
        expected_sheets = 6 if version == 2 else 5
        assert len(book.worksheets) == expected_sheets
        for ws in book.worksheets:
            setup = ws.page_setup
            assert (setup.orientation, int(setup.paperSize)) == ("landscape", 9), ws.title  # A4 landscape
            assert ws.sheet_properties.pageSetUpPr.fitToPage, ws.title
            # fitToWidth left out is the OOXML default, 1; fitToHeight 0: as many pages tall as needed
            assert setup.fitToWidth in (None, 1) and int(setup.fitToHeight) == 0, ws.title
            assert ws.print_title_rows == "$1:$1", ws.title  # the header row on each page
            assert ws.freeze_panes == "A2", ws.title
            header = literal(ws.oddHeader.left.text)
            assert header == title_for(tally.month, tally.office, version, locale=locale)
            office = word("group", locale) if tally.office == "*" else tally.office
            assert office in header and "2026-10" in header and str(version) in header
            assert ws.oddHeader.right.text == "&A"  # the sheet's name
            footer = ws.oddFooter.center.text
            assert "&P" in footer and "&N" in footer
            assert footer == {"zh_CN": "第 &P 页 / 共 &N 页", "en": "Page &P of &N"}[locale]
            margins = ws.page_margins
            assert 0.3 <= margins.left <= 0.75 and 0.3 <= margins.right <= 0.75
            assert margins.top > margins.header and margins.bottom > margins.footer  # room for header and footer
            # the wide tables print their gridlines; the summary's small tables have bordered headers
            assert bool(ws.print_options.gridLines) == (ws.title != word("summary", locale)), ws.title


def test_an_ampersand_in_the_office_or_title_prints_literally(tmp_path):
    office = dataclasses.replace(group_tally().for_office("A1"), office="R&D&P")
    path = write_workbook(office, tmp_path / "r-and-d.xlsx", locale="en", version=3, tz=TZ)
    book = openpyxl.load_workbook(path)
    for ws in book.worksheets:
        left = ws.oddHeader.left.text
        assert "R&&D&&P" in left  # doubled: not &D (the date) nor &P (the page number)
        assert literal(left) == "bianmin monthly tally 2026-10: R&D&P (v3)"
    # as stored in the sheet's XML, before any reader
    with zipfile.ZipFile(path) as z:
        xml = z.read("xl/worksheets/sheet1.xml").decode("utf-8")
    [stored] = re.findall(r"<oddHeader>(.*?)</oddHeader>", xml)
    assert stored == "&amp;Lbianmin monthly tally 2026-10: R&amp;&amp;D&amp;&amp;P (v3)&amp;R&amp;A"
    assert header_footer_text("A & B && C") == "A && B &&&& C"


def test_the_print_setup_keeps_the_same_figures_byte_identical(tmp_path):
    tally = group_tally()
    first = write_workbook(tally, tmp_path / "first.xlsx", locale="zh_CN", version=1, tz=TZ)
    again = write_workbook(tally, tmp_path / "again.xlsx", locale="zh_CN", version=1, tz=TZ)
    assert first.read_bytes() == again.read_bytes()


def _pdf_pages(pdf: Path) -> int:
    return len(re.findall(rb"/Type\s*/Page[^s]", pdf.read_bytes()))


@pytest.mark.skipif(shutil.which("soffice") is None, reason="LibreOffice (soffice) is not installed")
def test_libreoffice_prints_each_sheet_one_page_wide(tmp_path):
    """A printed check: the group's workbook as PDF is no more pages than its sheets need tall
    (one page wide each: a handful of rows per sheet gives one page per sheet)."""
    [(_group, _version, path), _office] = workbooks(tmp_path, "zh_CN")
    subprocess.run(["soffice", "--headless", "--convert-to", "pdf", "--outdir", str(tmp_path), str(path)],
                   check=True, capture_output=True, timeout=180)
    pages = _pdf_pages(path.with_suffix(".pdf"))
    assert pages == len(openpyxl.load_workbook(path, read_only=True).sheetnames)
