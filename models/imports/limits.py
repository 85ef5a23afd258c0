"""What a file may hold, checked before any row is read: size, rows, columns, sparse grids, cell length."""
from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from models.imports.results import ImportRefused

# A sheet is read whole by its reader (calamine lays every sheet out as a grid of rows x columns), so a 5 KB
# workbook with one cell at XFD1048576 asks for 17 billion cells; and the csv module refuses a field longer than
# its own limit mid-file. Every source is measured first (`_csv_census`, `_check_sheet`), and refused as a whole
# (ImportRefused: one line, nothing written) when it goes past one of these (docs/import.md, "Limits").
MAX_FILE_BYTES = 1 << 30           # a CSV file, or a workbook's parts once unzipped (a zip bomb is refused unread)
MAX_ROWS = 1_000_000               # the last row a sheet or CSV file uses (Excel's own limit is 1,048,576)
MAX_COLUMNS = 200                  # the last column (GR); the widest kind has 17, the rest a clerk's own
MAX_GRID = 30_000_000              # rows x columns a reader lays out (1M rows of 30 columns)
SPARSE_FACTOR = 10                 # beyond SPARSE_FLOOR, the grid may be at most 10x the cells the sheet holds
SPARSE_FLOOR = 1_000_000
MAX_CELL_CHARS = 32_767            # characters in one cell: Excel's own limit
_TEXT_RUN = MAX_CELL_CHARS // 2   # any run of MAX_CELL_CHARS bytes holds an aligned window of this size


def column_letters(number: int) -> str:
    """The spreadsheet letters of a 1-based column number: 1 -> A, 27 -> AA, 200 -> GR."""
    letters = ""
    while number > 0:
        number, rest = divmod(number - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _column_number(letters: str) -> int:
    number = 0
    for char in letters:
        number = number * 26 + ord(char) - 64
    return number


def _may_hold_run(data: bytes, stop: bytes) -> bool:
    """Whether data may hold a run of MAX_CELL_CHARS bytes without `stop`: every such run contains an aligned
    window of _TEXT_RUN bytes without it, so looking at those windows never misses one (and may see a run a little
    shorter, which the exact check then clears)."""
    return any(data.find(stop, at, at + _TEXT_RUN) < 0 for at in range(0, len(data) - _TEXT_RUN + 1, _TEXT_RUN))


def _refuse_file_size(path: Path, size: int) -> None:
    if size > MAX_FILE_BYTES:
        raise ImportRefused("import_too_big", file=path.name, size=_mib(size), limit=_mib(MAX_FILE_BYTES))


def _mib(size: int) -> str:
    return f"{size / (1 << 20):,.0f} MB"


def _csv_census(path: Path, encoding: str, data: bytes) -> int:
    """How many rows csv.reader will give (for the progress bar), refusing the file when a cell is longer than
    MAX_CELL_CHARS, csv cannot read it, or it has more than MAX_ROWS rows.

    Only a file with a line of MAX_CELL_CHARS bytes or more can hold such a cell (a character is at least one
    byte), and only such a file, or one whose quotes or lone CRs may make rows differ from lines,
    is parsed here; any other is counted on its bytes (in UTF-8 and in GB18030 the bytes of '"', CR and LF never
    occur inside a character).
    """
    if (b'"' in data or _may_hold_run(data, b"\n")
            or (b"\r" in data and b"\r" in data.replace(b"\r\n", b""))):
        rows = _csv_parsed_census(path, encoding)
    else:
        rows = data.count(b"\n") + (0 if data.endswith(b"\n") or not data.removeprefix(b"\xef\xbb\xbf") else 1)
    if rows > MAX_ROWS:
        raise ImportRefused("import_too_many_rows", sheet=path.stem, rows=f"{rows:,}", limit=f"{MAX_ROWS:,}")
    return rows


def _csv_parsed_census(path: Path, encoding: str) -> int:
    rows = 0
    with path.open(encoding=encoding, newline="") as fh:
        reader = csv.reader(fh)
        try:
            for rows, cells in enumerate(reader, start=1):
                if rows > MAX_ROWS:
                    return rows
                if cells and max(map(len, cells)) > MAX_CELL_CHARS:
                    index, cell = next((i, c) for i, c in enumerate(cells) if len(c) > MAX_CELL_CHARS)
                    raise ImportRefused("import_cell_too_long", sheet=path.stem, line=rows,
                                        column=column_letters(index + 1), length=f"{len(cell):,}",
                                        limit=f"{MAX_CELL_CHARS:,}")
        except csv.Error as exc:
            raise _csv_refusal(path, rows + 1, exc) from None
    return rows


def _csv_refusal(path: Path, line: int, exc: csv.Error) -> ImportRefused:
    """csv's own error (a field past its field_size_limit, ...) as the clerk's one line, with the row."""
    text = str(exc)
    if "field larger than field limit" in text:
        return ImportRefused("import_cell_too_long_csv", sheet=path.stem, line=line,
                             limit=f"{min(MAX_CELL_CHARS, csv.field_size_limit()):,}")
    return ImportRefused("import_bad_csv", file=path.name, line=line, error=text)


_PART_BYTES = 16 << 20  # the workbook's own description (workbook.xml, its relationships) is small
_CHUNK = 1 << 20
_DIMENSION = re.compile(rb'<(?:[A-Za-z_][\w.-]*:)?dimension\s+ref="([^"]*)"')
_REF = re.compile(r"\$?([A-Z]{1,3})\$?([0-9]{1,7})")
# the form every writer we know gives a cell (Excel, WPS, LibreOffice, openpyxl, xlsxwriter): r="..." first
_CELL_COLUMN = re.compile(rb'<c r="([A-Z]{1,3})[0-9]')
_CELL_ROW = re.compile(rb'<c r="[A-Z]{1,3}([0-9]{1,7})"')
_LEADING_ZERO = re.compile(rb'<c r="[A-Z]{1,3}0')


@dataclass
class _Extent:
    """What a sheet's XML says it holds: its last row and column, and how many cells it really has."""
    rows: int = 0
    columns: int = 0
    cells: int = 0
    long_cell: tuple[int, int, int] | None = None  # (row, column, length) of the first cell past MAX_CELL_CHARS

    def take(self, row: int, column: int) -> None:
        self.cells += 1
        self.rows = max(self.rows, row)
        self.columns = max(self.columns, column)


def _workbook_census(path: Path) -> dict[str, str]:
    """Sheet name -> its part in the workbook's zip, read with zipfile before any reader opens the file; a
    workbook whose parts unzip to more than MAX_FILE_BYTES (a zip bomb) is refused unread."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as zf:
            infos = {i.filename: i for i in zf.infolist()}
            total = sum(i.file_size for i in infos.values())
            if total > MAX_FILE_BYTES:
                raise ImportRefused("import_too_big_unzipped", file=path.name, size=_mib(total),
                                    limit=_mib(MAX_FILE_BYTES))
            book = _target("", _relations(zf, infos, "_rels/.rels").get("officeDocument", "xl/workbook.xml"))
            folder, _, base = book.rpartition("/")
            book_rels = f"{folder}/_rels/{base}.rels" if folder else f"_rels/{base}.rels"
            rels = _relations(zf, infos, book_rels, by_id=True)
            parts: dict[str, str] = {}
            for element in _part(zf, infos, book).iter():
                if element.tag.rpartition("}")[2] == "sheet":
                    rid = next((v for k, v in element.attrib.items() if k.rpartition("}")[2] == "id"), None)
                    if rid in rels:
                        parts[element.get("name", "")] = _target(folder, rels[rid])
            shared = _relations(zf, infos, book_rels).get("sharedStrings")
            if shared is not None:
                parts[_SHARED] = _target(folder, shared)
            return parts
    except ImportRefused:
        raise
    except Exception as exc:  # zipfile and the XML parser raise several types for a file that is not a workbook
        raise ImportRefused("import_unreadable", file=path.name, error=type(exc).__name__) from exc


_SHARED = "\0shared strings"


def _part(zf, infos: dict, name: str):
    from xml.etree import ElementTree

    info = infos.get(name)
    if info is None:
        raise KeyError(name)
    if info.file_size > _PART_BYTES:
        raise ValueError(name)
    return ElementTree.fromstring(zf.read(info))


def _relations(zf, infos: dict, name: str, *, by_id: bool = False) -> dict[str, str]:
    """A relationships part: id -> target (by_id), or the last word of each relationship's type -> target."""
    if name not in infos:
        return {}
    out = {}
    for element in _part(zf, infos, name).iter():
        if element.tag.rpartition("}")[2] == "Relationship":
            key = element.get("Id", "") if by_id else element.get("Type", "").rpartition("/")[2]
            out[key] = element.get("Target", "")
    return out


def _target(folder: str, target: str) -> str:
    """A relationship's target as a name in the zip (relative to the part's folder unless it starts with /)."""
    if target.startswith("/"):
        return target[1:]
    parts = [p for p in f"{folder}/{target}".split("/") if p and p != "."]
    out: list[str] = []
    for part in parts:
        if part == "..":
            if out:
                out.pop()
        else:
            out.append(part)
    return "/".join(out)


def _check_sheet(path: Path, parts: dict[str, str], name: str) -> None:
    """Refuse the workbook if the sheet `name` goes past a limit: its declared size (<dimension ref>), then its
    real last row and column against MAX_ROWS, MAX_COLUMNS, MAX_GRID and its cell count, and its cells' length.
    Read as a stream from the zip before the sheet's reader lays anything out."""
    import zipfile

    member = parts.get(name)
    try:
        with zipfile.ZipFile(path) as zf:
            members = [member] if member in zf.NameToInfo else [
                n for n in zf.namelist() if n.startswith("xl/worksheets/") and n.endswith(".xml")]
            for one in members:
                _check_extent(name, _sheet_extent(zf, one, parts.get(_SHARED), name))
    except ImportRefused:
        raise
    except Exception as exc:
        raise ImportRefused("import_unreadable", file=path.name, error=type(exc).__name__) from exc


def _check_extent(name: str, extent: _Extent) -> None:
    last = f"{column_letters(extent.columns)}{extent.rows}"
    if extent.rows > MAX_ROWS or extent.columns > MAX_COLUMNS:
        raise ImportRefused("import_sheet_too_big", sheet=name, last=last, rows=f"{MAX_ROWS:,}",
                            columns=MAX_COLUMNS, last_column=column_letters(MAX_COLUMNS))
    grid = extent.rows * extent.columns
    if grid > MAX_GRID or grid > max(SPARSE_FLOOR, SPARSE_FACTOR * extent.cells):
        raise ImportRefused("import_sheet_sparse", sheet=name, last=last, grid=f"{grid:,}",
                            cells=f"{extent.cells:,}")
    if extent.long_cell is not None:
        row, column, length = extent.long_cell
        raise ImportRefused("import_cell_too_long", sheet=name, line=row, column=column_letters(column),
                            length=f"{length:,}", limit=f"{MAX_CELL_CHARS:,}")


def _declared(name: str, head: bytes) -> None:
    """The sheet's own <dimension ref="A1:N100001">, refused past the limits before a cell is looked at."""
    found = _DIMENSION.search(head)
    if found is None:
        return
    refs = [_REF.fullmatch(r) for r in found[1].decode("ascii", "replace").split(":")]
    if all(refs):
        rows = max(int(r[2]) for r in refs)
        columns = max(_column_number(r[1]) for r in refs)
        if rows > MAX_ROWS or columns > MAX_COLUMNS:
            raise ImportRefused("import_sheet_too_big", sheet=name, last=f"{column_letters(columns)}{rows}",
                                rows=f"{MAX_ROWS:,}", columns=MAX_COLUMNS, last_column=column_letters(MAX_COLUMNS))


def _chunks(zf, member: str) -> Iterator[bytes]:
    """The part's bytes, each piece ending just before a '<' (so no tag is cut), the last one the rest."""
    with zf.open(member) as fh:
        tail = b""
        while True:
            data = fh.read(_CHUNK)
            if not data:
                if tail:
                    yield tail
                return
            data = tail + data
            cut = data.rfind(b"<")
            if cut <= 0:  # a MB without a tag: a text that long is over any cell's limit anyway
                yield data
                tail = b""
                continue
            yield data[:cut]
            tail = data[cut:]


def _sheet_extent(zf, member: str, shared: str | None, name: str) -> _Extent:
    """The fast count of a sheet written the usual way (every cell `<c r="A1" ...>`, no namespace prefix, no text
    that may be too long), its declared size checked first; anything else, or a workbook with a shared string that
    may be too long, is parsed exactly (`_exact_extent`)."""
    long_shared = _long_shared_strings(zf, shared) if shared else {}
    extent = _Extent()
    first = True
    for chunk in _chunks(zf, member):
        if first:
            _declared(name, chunk)
            first = False
            if long_shared or b"<sheetData" not in chunk:
                return _exact_extent(zf, member, long_shared)
        if (_may_hold_run(chunk, b"<") or b":c " in chunk or b":c>" in chunk or b":c/" in chunk
                or b"<c\t" in chunk or b"<c\n" in chunk or b"<c\r" in chunk):
            return _exact_extent(zf, member, long_shared)
        rows = _CELL_ROW.findall(chunk)
        if (chunk.count(b"<c ") + chunk.count(b"<c>") + chunk.count(b"<c/>") != len(rows)
                or _LEADING_ZERO.search(chunk) is not None):
            return _exact_extent(zf, member, long_shared)  # a cell without r="A1" first: placed by its neighbours
        if rows:
            # without leading zeros, the largest of the longest numbers is the largest: compared as bytes
            longest = max(map(len, rows))
            extent.rows = max(extent.rows, int(max(r for r in rows if len(r) == longest)))
            extent.columns = max(extent.columns,
                                 *(_column_number(c.decode()) for c in set(_CELL_COLUMN.findall(chunk))))
            extent.cells += len(rows)
    return extent


def _long_shared_strings(zf, member: str) -> dict[int, int]:
    """The index and length of each shared string longer than MAX_CELL_CHARS (none, found without parsing, in
    nearly every workbook)."""
    if member not in zf.NameToInfo:
        return {}
    if not any(_may_hold_run(chunk, b"<") for chunk in _chunks(zf, member)):
        return {}
    import xml.parsers.expat

    found: dict[int, int] = {}
    state = {"index": -1, "length": 0, "text": False}

    def start(tag: str, attrs: dict) -> None:
        local = tag.rpartition(":")[2]
        if local == "si":
            state["index"] += 1
            state["length"] = 0
        elif local == "t":
            state["text"] = True

    def end(tag: str) -> None:
        local = tag.rpartition(":")[2]
        if local == "t":
            state["text"] = False
        elif local == "si" and state["length"] > MAX_CELL_CHARS:
            found[state["index"]] = state["length"]

    def text(data: str) -> None:
        if state["text"]:
            state["length"] += len(data)

    parser = xml.parsers.expat.ParserCreate()
    parser.StartElementHandler, parser.EndElementHandler, parser.CharacterDataHandler = start, end, text
    with zf.open(member) as fh:
        parser.ParseFile(fh)
    return found


def _exact_extent(zf, member: str, long_shared: dict[int, int]) -> _Extent:
    """Every cell of the sheet, as a reader places it: its r="..." or, without one, the column after the cell
    before it in its row (whose own r, or the row after the one before it)."""
    import xml.parsers.expat

    extent = _Extent()
    state = {"row": 0, "column": 0, "cell": None, "type": None, "value": [], "length": 0, "in": None}

    def start(tag: str, attrs: dict) -> None:
        local = tag.rpartition(":")[2]
        if local == "row":
            ref = attrs.get("r")
            state["row"] = int(ref) if ref and ref.isdigit() else state["row"] + 1
            state["column"] = 0
        elif local == "c":
            match = _REF.fullmatch(attrs.get("r") or "")
            if match is not None:
                row, column = int(match[2]), _column_number(match[1])
            elif attrs.get("r"):
                raise ValueError(attrs["r"])
            else:
                row, column = max(state["row"], 1), state["column"] + 1
            state["column"] = column
            extent.take(row, column)
            state.update(cell=(row, column), type=attrs.get("t"), value=[], length=0)
        elif local in ("v", "t") and state["cell"] is not None:
            state["in"] = local

    def end(tag: str) -> None:
        local = tag.rpartition(":")[2]
        if local in ("v", "t"):
            state["in"] = None
        elif local == "c" and state["cell"] is not None:
            length = state["length"]
            if state["type"] == "s":  # the cell holds the index of a shared string
                value = "".join(state["value"]).strip()
                length = long_shared.get(int(value), 0) if value.isdigit() else 0
            if length > MAX_CELL_CHARS and extent.long_cell is None:
                extent.long_cell = (*state["cell"], length)
            state["cell"] = None

    def text(data: str) -> None:
        if state["in"] is not None:
            state["length"] += len(data)
            if state["type"] == "s" and state["in"] == "v":
                state["value"].append(data)

    parser = xml.parsers.expat.ParserCreate()
    parser.StartElementHandler, parser.EndElementHandler, parser.CharacterDataHandler = start, end, text
    with zf.open(member) as fh:
        parser.ParseFile(fh)
    return extent
