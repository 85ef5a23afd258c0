"""The rows not taken: where each is and why, written back next to the file for the clerk to fix."""
from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any

from models.errors import DomainError
from models.imports.readers import _Sheet
from models.imports.results import RejectedRow
from models.imports.spec import REJECTS_HEADER

def _reject(sheet: _Sheet, line: int, cells: tuple, fld: str | None, error: DomainError) -> RejectedRow:
    column = None
    if fld is not None:
        index = sheet.header_map.get(fld)
        header = sheet.headers[index] if index is not None and index < len(sheet.headers) else None
        column = str(header) if header is not None else sheet.kind.column(fld).label
    return RejectedRow(sheet.name, line, column, error.code, dict(error.params), cells)


def rejects_path(path: Path) -> Path:
    """Where the rejects of `path` go: next to it, <name>.rejects.xlsx or .csv."""
    suffix = ".csv" if path.suffix.lower() == ".csv" else ".xlsx"
    return path.with_name(f"{path.stem}.rejects{suffix}")


def write_rejects(path: Path, rejects: list[RejectedRow], headers_of: dict[str, list[Any]],
                  locale: str = "zh_CN") -> Path:
    """The rejected rows as they were, with their headers and one more column saying why: fix and import again."""
    target = rejects_path(path)

    def reason(r: RejectedRow) -> str:
        return f"{r.where(locale)}: {r.reason(locale)} / {r.reason('en')}"

    if target.suffix == ".csv":
        headers = next(iter(headers_of.values()))
        with target.open("w", encoding="utf-8-sig", newline="") as fh:  # the BOM makes Excel read it as UTF-8
            out = csv.writer(fh)
            out.writerow([*headers, REJECTS_HEADER])
            for r in rejects:
                out.writerow([*_pad(r.cells, len(headers)), reason(r)])
        return target
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    def as_text(ws, value: Any) -> Any:
        # a rejected cell may hold what a worksheet cannot (an escape character) or what it would run (=cmd|...):
        # it goes back to the clerk escaped, and always as text
        if not isinstance(value, str):
            return value
        cell = WriteOnlyCell(ws, value=_WORKSHEET_ILLEGAL.sub(
            lambda m: m.group().encode("unicode_escape").decode("ascii"), value))
        cell.data_type = "s"
        return cell

    book = Workbook(write_only=True)
    by_sheet: dict[str, list[RejectedRow]] = {}
    for r in rejects:
        by_sheet.setdefault(r.sheet, []).append(r)
    for name, rows in by_sheet.items():
        ws = book.create_sheet(name)
        headers = headers_of[name]
        ws.append([*headers, REJECTS_HEADER])
        for r in rows:
            ws.append([as_text(ws, v) for v in (*_pad(r.cells, len(headers)), reason(r))])
    book.save(target)
    return target


_WORKSHEET_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")  # what an xlsx cannot hold (XML 1.0)


def _pad(cells: tuple, width: int) -> list[Any]:
    return list(cells[:width]) + [None] * max(width - len(cells), 0)
