"""The three readers (CSV, calamine, openpyxl): a file's importable sheets, each with its kind, header and rows."""
from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from models.imports.cells import _SEEN_MOMENTS, row_reader
from models.imports.limits import _check_sheet, _csv_census, _csv_refusal, _refuse_file_size, _workbook_census
from models.imports.results import ImportRefused
from models.imports.spec import KINDS, ORDER, Kind, kind_named, map_headers
from models.texts import Text

@dataclass
class _Sheet:
    name: str
    kind: Kind
    headers: list[Any]
    header_line: int
    header_map: dict[str, int]
    total: int | None
    rows: Callable[[], Iterator[tuple[int, tuple]]]
    _readers: dict[Any, Callable[[tuple], dict[str, Any]]] = field(default_factory=dict, repr=False, compare=False)
    _moment_texts: dict[int, tuple[datetime, str]] = field(default_factory=dict, repr=False, compare=False)

    def reader(self, tz) -> Callable[[tuple], dict[str, Any]]:
        """The sheet's `row_reader`, made once: its converters, and the times they have read, last from batch to
        batch (the import reads a sheet in one thread)."""
        found = self._readers.get(tz)
        if found is None:
            found = self._readers[tz] = row_reader(self.kind, self.header_map, tz)
        return found

    def moment_texts(self) -> dict[int, tuple[datetime, str]]:
        """The stored text of each time its batches have written, by the time object: a reader gives the same
        object for a time it has read before (`_converter`), so a repeated time is converted once for the sheet,
        not once per batch. Started again past a bound, as the readers' own memory is."""
        if len(self._moment_texts) >= 4 * _SEEN_MOMENTS:
            self._moment_texts.clear()
        return self._moment_texts


def detect_encoding(path: Path, data: bytes | None = None) -> str:
    """UTF-8 (with or without BOM) if it decodes as such, else GB18030 (a superset of GBK, as Excel saves it)."""
    data = path.read_bytes() if data is None else data
    try:
        data.decode("utf-8")
        return "utf-8-sig"
    except UnicodeDecodeError:
        pass
    try:
        data.decode("gb18030")
        return "gb18030"
    except UnicodeDecodeError as exc:
        raise ImportRefused("import_encoding", file=path.name) from exc


def _csv_row_count(path: Path, encoding: str, data: bytes | None = None) -> int:
    """How many rows csv.reader will give, the file refused past a limit: `_csv_census`."""
    return _csv_census(path, encoding, path.read_bytes() if data is None else data)


def _find_header(kind: Kind, first_rows: list[tuple]) -> tuple[int, dict[str, int]]:
    """The header is the row among the first few that names the most columns (a title row may sit above it)."""
    best, best_map = 0, {}
    for index, cells in enumerate(first_rows):
        found = map_headers(kind, list(cells))
        if len(found) > len(best_map):
            best, best_map = index, found
    return best, best_map


def _csv_sheet(path: Path, kind_name: str | None) -> list[_Sheet]:
    kind = KINDS.get(kind_name) if kind_name else kind_named(path.stem)
    if kind is None:
        raise ImportRefused("import_unknown_kind", file=path.name, kinds=", ".join(ORDER))
    _refuse_file_size(path, path.stat().st_size)
    data = path.read_bytes()
    encoding = detect_encoding(path, data)
    total = _csv_census(path, encoding, data)  # before the first row is read: a cell too long refuses the file
    del data
    with path.open(encoding=encoding, newline="") as fh:
        head = [tuple(r) for _, r in zip(range(5), csv.reader(fh))]
    index, header_map = _find_header(kind, head)

    def rows() -> Iterator[tuple[int, tuple]]:
        with path.open(encoding=encoding, newline="") as fh:
            reader = enumerate(csv.reader(fh), start=1)
            line = 0
            try:
                for line, cells in reader:
                    if line > index + 1:
                        yield line, tuple(cells)
            except csv.Error as exc:  # the file changed since its census: refused where it went wrong
                raise _csv_refusal(path, line + 1, exc) from None

    headers = list(head[index]) if head else []
    return [_Sheet(path.stem, kind, headers, index + 1, header_map, max(total - index - 1, 0), rows)]


def _xlsx_sheets(path: Path, kind_name: str | None, ignored: list[str]) -> list[_Sheet]:
    # calamine reads a workbook about ten times faster than openpyxl (the import of a large xlsx spent most of
    # its time in openpyxl's XML parsing); both give the same cells (tests/unit/test_import_reading.py)
    parts = _workbook_census(path)
    try:
        import python_calamine  # noqa: F401
    except ImportError:
        return _openpyxl_sheets(path, kind_name, ignored, parts)
    return _calamine_sheets(path, kind_name, ignored, parts)


def _calamine_cell(value: Any) -> Any:
    """A calamine cell as openpyxl gives it: None when empty, whole numbers as int, a date as midnight."""
    if value == "" and isinstance(value, str):
        return None
    if type(value) is float and value.is_integer() and abs(value) < 2 ** 53:
        return int(value)
    if type(value) is date:
        return datetime.combine(value, time())
    return value


def _calamine_sheets(path: Path, kind_name: str | None, ignored: list[str],
                     parts: dict[str, str] | None = None) -> list[_Sheet]:
    from python_calamine import CalamineWorkbook, SheetTypeEnum

    try:
        book = CalamineWorkbook.from_path(str(path))
        names = [m.name for m in book.sheets_metadata if m.typ == SheetTypeEnum.WorkSheet]
    except Exception as exc:  # calamine raises several types for a file that is not a workbook
        raise ImportRefused("import_unreadable", file=path.name, error=type(exc).__name__) from exc
    sheets = []
    for name in names:
        kind = kind_named(name) or (KINDS.get(kind_name) if kind_name and len(names) == 1 else None)
        if kind is None:
            ignored.append(name)
            continue
        _check_sheet(path, _workbook_census(path) if parts is None else parts, name)  # before calamine lays it out
        try:
            ws = book.get_sheet_by_name(name)  # the whole sheet is read here, before any row is written
        except Exception as exc:  # calamine's XmlError, ZipError ... for a sheet it cannot read
            raise ImportRefused("import_unreadable", file=path.name, error=type(exc).__name__) from exc

        def cells_by_row(ws=ws) -> Iterator[tuple]:
            # rows start at row 1; columns at the first one used, so put back the empty ones before it
            pad = (None,) * (ws.start[1] if ws.start else 0)
            for cells in ws.iter_rows():
                yield pad + tuple(_calamine_cell(c) for c in cells)

        head = [cells for _, cells in zip(range(5), cells_by_row())]
        index, header_map = _find_header(kind, head)

        def rows(start=index + 2, cells_by_row=cells_by_row) -> Iterator[tuple[int, tuple]]:
            for line, cells in enumerate(cells_by_row(), start=1):
                if line >= start:
                    yield line, cells

        total = ws.end[0] + 1 - index - 1 if ws.end else None
        sheets.append(_Sheet(name, kind, list(head[index]) if head else [], index + 1, header_map, total, rows))
    return sheets


def _openpyxl_sheets(path: Path, kind_name: str | None, ignored: list[str],
                     parts: dict[str, str] | None = None) -> list[_Sheet]:
    from openpyxl import load_workbook

    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises several types for a file that is not a workbook
        raise ImportRefused("import_unreadable", file=path.name, error=type(exc).__name__) from exc
    sheets = []
    for ws in book.worksheets:
        kind = kind_named(ws.title) or (KINDS.get(kind_name) if kind_name and len(book.worksheets) == 1 else None)
        if kind is None:
            ignored.append(ws.title)
            continue
        # openpyxl pads every row to the sheet's width and yields the empty rows too: the same limits
        _check_sheet(path, _workbook_census(path) if parts is None else parts, ws.title)
        head = [tuple(r) for r in ws.iter_rows(min_row=1, max_row=5, values_only=True)]
        index, header_map = _find_header(kind, head)

        def rows(ws=ws, start=index + 2) -> Iterator[tuple[int, tuple]]:
            for line, cells in enumerate(ws.iter_rows(min_row=start, values_only=True), start=start):
                yield line, tuple(cells)

        total = ws.max_row - index - 1 if ws.max_row else None
        sheets.append(_Sheet(ws.title, kind, list(head[index]) if head else [], index + 1, header_map, total, rows))
    return sheets


def open_sheets(path: Path, kind: str | None = None) -> tuple[list[_Sheet], list[str]]:
    """The importable sheets of a file in dependency order, refusing the file if a required column is missing."""
    path = Path(path)
    if kind is not None and kind not in KINDS:
        raise ImportRefused("import_unknown_kind", file=path.name, kinds=", ".join(ORDER))
    if not path.exists():
        raise ImportRefused("import_unreadable", file=path.name, error="not found")
    ignored: list[str] = []
    suffix = path.suffix.lower()
    if suffix == ".csv":
        sheets = _csv_sheet(path, kind)
    elif suffix in (".xlsx", ".xlsm"):
        sheets = _xlsx_sheets(path, kind, ignored)
    else:
        raise ImportRefused("import_unsupported", file=path.name)
    if not sheets:
        raise ImportRefused("import_no_sheets", file=path.name, kinds=", ".join(ORDER))
    for sheet in sheets:
        missing = [c for c in sheet.kind.columns if c.required and c.field not in sheet.header_map]
        if missing:
            raise ImportRefused("import_missing_columns", sheet=sheet.name,
                                columns=Text("、".join(c.headers[0] for c in missing),
                                             ", ".join(c.headers[1] for c in missing)))
    sheets.sort(key=lambda s: ORDER.index(s.kind.name))
    return sheets, ignored
