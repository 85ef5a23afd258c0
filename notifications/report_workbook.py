"""The monthly report's workbook (xlsxwriter): summary, departments, workers, findings, callbacks & rework.

A function of a `MonthTally` and a locale: no settings, no clock, no database. The workbook's creation date
is fixed to the end of the month it reports, so the same figures give the same bytes.
"""
from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from models import texts
from models.tally.facts import GROUP, CallbackLine, Discrepancy, Figures, MonthTally
from notifications.masking import mask_text
from notifications.report import DETAIL_LABELS, METRICS, department_label, kind_label, office_label, word
from notifications.report_content import Change
from notifications.report_signoff import SignoffSheet, write_signoff_sheet
from notifications.report_summary import title

# Everything here goes to administration: every text that came from the ledger (a collect reason, a department
# report's description, an imported note, a name) has its mobile and ID numbers masked before it is written.
# Names and codes repeat on every row of a big month: each distinct one is masked once.
_masked = functools.lru_cache(maxsize=1 << 16)(mask_text)


def _masked_cell(value: Any) -> Any:
    return _masked(value) if type(value) is str else value


def _number(value: Any) -> Any:
    # xlsx stores numbers as doubles; the exact Decimal lives in tally.json and the hash
    if isinstance(value, Decimal):
        return float(value)
    return value


def _local_naive(moment: datetime | None, tz) -> datetime | None:
    return None if moment is None else moment.astimezone(tz).replace(tzinfo=None)


_EXCEL_EPOCH = datetime(1899, 12, 31)


def excel_time(moment: datetime | None, tz) -> float | None:
    """`moment` in local time as Excel's serial day number, exactly as xlsxwriter's `write_datetime` computes it
    (so `write_number` of it with a date format writes the same cell), without its per-cell checks."""
    if moment is None:
        return None
    delta = moment.astimezone(tz).replace(tzinfo=None) - _EXCEL_EPOCH
    serial = delta.days + (float(delta.seconds) + float(delta.microseconds) / 1e6) / (60 * 60 * 24)
    return serial + 1 if serial > 59 else serial  # Excel counts 1900-02-29, which never was


def _width(value: Any) -> int:
    text = value.strftime("%Y-%m-%d %H:%M") if isinstance(value, datetime) else str(value if value is not None else "")
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in text)


# a column's width is judged from its header and its first rows: a column's later rows are the same kind of
# value as its first, and measuring every cell of a big month is a noticeable part of the report's time
WIDTH_SAMPLE = 200
DATETIME_WIDTH = len("2026-07-01 09:00")
CONSTANT_MEMORY_ROWS = 50_000
EXCEL_ROWS = 1_048_576  # rows of a worksheet


def header_footer_text(text: str) -> str:
    """`text` to print literally in a page header or footer: "&" starts a control code there (&P, &N, &A...),
    so an "&" of an office code or a title is doubled."""
    return text.replace("&", "&&")


@dataclass(frozen=True)
class PrintSetup:
    """How every sheet prints (administration prints the final report for the appraisal meeting): A4
    landscape, one page wide and as many tall as needed, the header row on each page, the report's title
    (office, month, version) and the sheet's name in the page header, "page P of N" in the footer."""

    header: str
    footer: str

    @classmethod
    def of(cls, report_title: str, locale: str) -> PrintSetup:
        # &L / &C / &R: left, centre, right part; &A: the sheet's name; &P / &N (in the catalogue's words):
        # this page, the number of pages
        return cls(f"&L{header_footer_text(report_title)}&R&A", "&C" + word("print_footer", locale))

    def apply(self, ws, *, gridlines: bool) -> None:
        ws.set_paper(9)  # A4
        ws.set_landscape()
        ws.fit_to_pages(1, 0)  # one page wide, any number tall
        ws.repeat_rows(0)  # the header row on each printed page
        ws.set_margins(left=0.5, right=0.5, top=0.75, bottom=0.75)  # inches
        ws.set_header(self.header, {"margin": 0.3})
        ws.set_footer(self.footer, {"margin": 0.3})
        if gridlines:
            ws.hide_gridlines(0)  # shown on screen and printed: a wide table's rows are followed across the page


class Sheet:
    """A table on a worksheet: frozen header row, per-column number formats, widths from the header and first rows,
    and its print setup (`PrintSetup`).

    Rows are written in order only: a large workbook is written with `constant_memory`, which flushes each
    row as the next begins.
    """

    def __init__(self, book, formats, name: str, printing: PrintSetup, *, gridlines: bool = True) -> None:
        self.ws = book.add_worksheet(name[:31])
        self.formats = formats
        self.row = 0
        self.widths: dict[int, int] = {}
        printing.apply(self.ws, gridlines=gridlines)

    def header(self, headers: list[str], *, freeze: bool = True) -> None:
        for col, header in enumerate(headers):
            self.ws.write(self.row, col, header, self.formats["header"])
            self.widths[col] = max(self.widths.get(col, 0), _width(header))
        if freeze and self.row == 0:
            self.ws.freeze_panes(1, 0)

    def table(self, headers: list[str], kinds: list[str], rows: list[list[Any]], *, freeze: bool = True) -> None:
        if freeze and self.row == 0 and rows:
            self.ws.autofilter(0, 0, len(rows), len(headers) - 1)
        self.header(headers, freeze=freeze)
        ws, formats = self.ws, self.formats
        number_formats = [formats[kind] for kind in kinds]
        text, when = formats["text"], formats["datetime"]
        widths = self.widths
        for index, values in enumerate(rows):
            self.row += 1
            row = self.row
            for col, value in enumerate(values):
                if value is None or value == "":
                    continue  # an empty cell: nothing to write (most rows have no rework, half no detail)
                cls = type(value)
                if cls is str:
                    ws.write_string(row, col, value, text)
                elif cls is Decimal or cls is int or cls is float:
                    ws.write_number(row, col, float(value) if cls is Decimal else value, number_formats[col])
                elif cls is datetime:
                    ws.write_datetime(row, col, value, when)
                else:
                    ws.write_string(row, col, str(value), text)
                if index < WIDTH_SAMPLE:
                    kind = kinds[col]
                    # a datetime column holds Excel serial numbers, shown as yyyy-mm-dd hh:mm
                    width = DATETIME_WIDTH if kind == "datetime" else _width(value) + (3 if kind == "money" else 0)
                    if width > widths.get(col, 0):
                        widths[col] = width
        self.row += 2

    def finish(self) -> None:
        for col, width in self.widths.items():
            self.ws.set_column(col, col, min(max(width + 2, 8), 60))


def _metric_values(figures: Figures) -> list[Any]:
    data = figures.as_dict()
    return [Decimal(data[key]) if fmt != "int" and data[key] is not None else data[key]
            for key, _zh, _en, fmt in METRICS]


def _metric_headers(locale: str) -> list[str]:
    return [texts.render(f"report.metric.{key}", locale) for key, *_rest in METRICS]


def _metric_kinds() -> list[str]:
    return [fmt for *_rest, fmt in METRICS]


def _detail(d, locale: str) -> str:
    # a missing callback carries a code for its two cases; every other detail is ledger text (a reason, a description)
    key = f"{d.kind}:{d.detail}"
    return DETAIL_LABELS[key](locale) if key in DETAIL_LABELS else d.detail


@dataclass(frozen=True)
class SheetRows:
    """The rows of a workbook's two long sheets (findings; callbacks & rework), as written."""

    findings: list[list[Any]]
    callbacks: list[list[Any]]

    @classmethod
    def of(cls, tally: MonthTally, *, locale: str, tz) -> SheetRows:
        return cls([_finding_row(d, locale, tz) for d in tally.discrepancies],
                   [_callback_row(c, locale, tz) for c in tally.callbacks])

    @classmethod
    def split(cls, group: MonthTally, offices: Iterable[str], *, locale: str, tz) -> dict[str, SheetRows]:
        """The group's rows and each office's, every row made once (a row is the same in both workbooks)."""
        out = {office: cls([], []) for office in offices}
        every = cls([], [])
        for source, make, part in ((group.discrepancies, _finding_row, "findings"),
                                   (group.callbacks, _callback_row, "callbacks")):
            for item in source:
                row = make(item, locale, tz)
                getattr(every, part).append(row)
                mine = out.get(item.office)
                if mine is not None:
                    getattr(mine, part).append(row)
        out[group.office] = every
        return out


def _finding_row(d: Discrepancy, locale: str, tz) -> list[Any]:
    return [kind_label(d.kind, locale), _masked_cell(d.office), _masked_cell(d.order_number), mask_text(d.reference),
            department_label(d.department, locale), _masked_cell(d.worker), _masked_cell(d.worker_name),
            excel_time(d.occurred_at, tz), d.amount, d.expected, mask_text(_detail(d, locale))]


def _callback_row(c: CallbackLine, locale: str, tz) -> list[Any]:
    return [_masked_cell(c.office), c.order_number, c.rework_of, department_label(c.department, locale),
            _masked_cell(c.worker), _masked_cell(c.worker_name),
            excel_time(c.due_at, tz), excel_time(c.done_at, tz), word(c.outcome, locale) if c.outcome else "",
            word("yes" if c.on_time else "no", locale), c.rework_order]


def write_workbook(tally: MonthTally, path: Path, *, locale: str, version: int, tz,
                   changes: list[Change] | None = None, previous_version: int | None = None,
                   rows: SheetRows | None = None, sheet_rows: int = EXCEL_ROWS,
                   constant_memory_rows: int = CONSTANT_MEMORY_ROWS, signoff: SignoffSheet | None = None) -> Path:
    """Write the month's workbook to `path` (sheets: summary, departments, workers, findings, callbacks & rework,
    "changes since v N" when given, and the departments' sign-off sheet of a final report). `rows`: the long sheets' rows if made already (`SheetRows.split`);
    a month of more than `constant_memory_rows` long-sheet rows streams them to temporary files."""
    import xlsxwriter

    long_rows = SheetRows.of(tally, locale=locale, tz=tz) if rows is None else rows
    path.parent.mkdir(parents=True, exist_ok=True)
    # A month's workbook is built in memory; a very large one streams its rows to temporary files instead
    # (constant_memory), in bounded memory. The choice depends on the data only, so the same figures still
    # give the same bytes.
    big = len(tally.callbacks) + len(tally.discrepancies) > constant_memory_rows
    book = xlsxwriter.Workbook(str(path), {"remove_timezone": True, "constant_memory": big, "in_memory": not big})
    # a fixed creation date makes the same figures give the same bytes
    report_title = title(tally, locale=locale, version=version)
    book.set_properties({"title": report_title, "author": "bianmin", "created": _local_naive(tally.end, tz)})
    printing = PrintSetup.of(report_title, locale)
    formats = {
        "header": book.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1, "text_wrap": True,
                                   "valign": "top"}),
        "int": book.add_format({"num_format": "0"}),
        "money": book.add_format({"num_format": "#,##0.00"}),
        "rate": book.add_format({"num_format": "0.0%"}),
        # text cells take the default style (no "s" attribute): an empty format of its own is one more XML attribute,
        # escaped, on each of a big month's ~2M text cells
        "text": None,
        "datetime": book.add_format({"num_format": "yyyy-mm-dd hh:mm"}),
    }
    w = lambda key, **p: word(key, locale, **p)  # noqa: E731

    # summary: headline with the previous month, then offices, then findings by kind
    sheet = Sheet(book, formats, w("summary"), printing, gridlines=False)  # small tables apart, headers bordered
    total, previous = tally.total, tally.previous
    this_values = _metric_values(total)
    prev_values = _metric_values(previous) if previous else [None] * len(METRICS)
    rows = []
    for (key, _zh, _en, fmt), now, before in zip(METRICS, this_values, prev_values):
        change = (now - before) if now is not None and before is not None else None
        rows.append([texts.render(f"report.metric.{key}", locale), now, before, change])
    sheet.header([w("metric"), w("this_month"), w("previous_month"), w("change")])
    for (key, _zh, _en, fmt), row in zip(METRICS, rows):
        sheet.row += 1
        sheet.ws.write_string(sheet.row, 0, row[0], formats["text"])
        sheet.widths[0] = max(sheet.widths.get(0, 0), _width(row[0]))
        for col in (1, 2, 3):
            if row[col] is None:
                sheet.ws.write_blank(sheet.row, col, None, formats[fmt])
            else:
                sheet.ws.write_number(sheet.row, col, _number(row[col]), formats[fmt])
                sheet.widths[col] = max(sheet.widths.get(col, 0), _width(row[col]) + 3)
    sheet.row += 2
    sheet.table([w("month"), w("office"), w("version")], ["text", "text", "int"],
                [[tally.month, office_label(tally.office, locale), version]], freeze=False)
    if tally.office == GROUP:
        sheet.table([w("office")] + _metric_headers(locale), ["text"] + _metric_kinds(),
                    [[f.office] + _metric_values(f) for f in tally.by_office()], freeze=False)
    sheet.table([w("kind"), w("count")], ["text", "int"],
                [[kind_label(k, locale), n] for k, n in tally.findings_by_kind().items()], freeze=False)
    sheet.finish()

    sheet = Sheet(book, formats, w("departments"), printing)
    sheet.table([w("department")] + _metric_headers(locale), ["text"] + _metric_kinds(),
                [[department_label(f.department, locale)] + _metric_values(f) for f in tally.by_department()]
                + [[w("total")] + this_values])
    sheet.finish()

    sheet = Sheet(book, formats, w("workers"), printing)
    sheet.table([w("office"), w("department"), w("worker_code"), w("worker")] + _metric_headers(locale),
                ["text"] * 4 + _metric_kinds(),
                [[_masked_cell(f.office), department_label(f.department, locale), _masked_cell(f.worker),
                  _masked_cell(f.worker_name)] + _metric_values(f)
                 for f in tally.by_worker()])
    sheet.finish()

    for name, headers, kinds, rows_of_sheet in (
            ("findings", [w("kind"), w("office"), w("order"), w("reference"), w("department"), w("worker_code"),
                          w("worker"), w("occurred_at"), w("amount"), w("expected"), w("detail")],
             ["text"] * 7 + ["datetime", "money", "money", "text"], long_rows.findings),
            ("callbacks", [w("office"), w("order"), w("rework_of"), w("department"), w("worker_code"), w("worker"),
                           w("due_at"), w("done_at"), w("outcome"), w("on_time"), w("rework_order")],
             ["text"] * 6 + ["datetime", "datetime", "text", "text", "text"], long_rows.callbacks)):
        # a sheet holds at most `sheet_rows` rows, header included (Excel's limit): the rest continue on
        # "<name> (2)", ..., never dropped
        per_sheet = sheet_rows - 1
        for part, start in enumerate(range(0, max(len(rows_of_sheet), 1), per_sheet)):
            sheet = Sheet(book, formats, w(name) + (f" ({part + 1})" if part else ""), printing)
            fits = len(rows_of_sheet) <= per_sheet
            sheet.table(headers, kinds, rows_of_sheet if fits else rows_of_sheet[start:start + per_sheet])
            sheet.finish()

    if changes is not None and previous_version is not None:
        sheet = Sheet(book, formats, w("changes", version=previous_version), printing)
        labels = {key: texts.render(f"report.metric.{key}", locale) for key, *_rest in METRICS}
        rows = [[c.section, mask_text(c.item) or w("total"), labels.get(c.metric, c.metric),
                 (w("removed") if c.before and c.section == "findings" else c.before),
                 (w("added") if c.after and c.section == "findings" else c.after)] for c in changes]
        sheet.table([w("section"), w("item"), w("metric"), w("before"), w("after")], ["text"] * 5,
                    rows or [[w("no_changes"), "", "", "", ""]])
        sheet.finish()
    if signoff is not None:
        write_signoff_sheet(book, formats, printing, Sheet, signoff, locale=locale, tz=tz)
    book.close()
    return path
