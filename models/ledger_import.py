"""Bringing existing ledgers in: the clerks' Excel workbooks and CSV files, row by row, through the desk operations.

One table (KINDS) says, per kind of sheet, which columns exist, how clerks head them (Chinese or English),
which are required and how each value is read. Every row is read, checked and then written by the same
`models.desk` operation a clerk at the desk would use (registrations and replies: the desk's decision for the row,
`desk.decide_*`, with the batch's decisions written together, a few statements per table); a refused row changes
nothing (the desk refuses before it writes; a decided row refused half-way drops all its decisions; for the other
kinds a row refused half-way sends its batch back to be written row by row, each row in a savepoint) and is reported with sheet, line, column and a reason; valid rows are committed in batches (one transaction each),
so a crash leaves whole batches and a rerun finishes the job: natural keys (request, order, handover and
department-report numbers, receipt numbers, staff codes, and an order's callback time) make a row that is
already in the ledger count as "already present", never twice.

On SQLite, a registrations sheet is decided one batch ahead of its writing (`_Pipeline`: a thread writes batch N
while batch N+1 is read and decided, against the ledger plus batch N); a change is written only to a row that
still holds what its batch saw, so what another writer did meanwhile is decided on again, never written over.

Nothing here reads the clock: the caller passes `now` (used only where a sheet carries no time, e.g. staff).
"""
from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from functools import lru_cache, partial
from itertools import chain
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Table, bindparam, func, insert, select, update
from sqlalchemy.exc import DataError, IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from models import desk
from models.ledger.values import PLAIN_MONEY, money as money_rule
from models.calendar import BusinessCalendar
from models.ledger.codes import OFFICE_CODE_PATTERN, is_office_code
from models.errors import DomainError
from models.ledger.tables import (
    AuditEvent,
    Callback,
    CashHandover,
    Community,
    DepartmentReport,
    Office,
    PriceItem,
    Receipt,
    ServiceRequest,
    Staff,
    UTCDateTime,
    WorkOrder,
)

# -- the column table ----------------------------------------------------------------------------------------
# value readers: text, time (a moment; a date alone is refused), when (a date alone means that day, 00:00),
# money, and choice tables below
CHOICES: dict[str, dict[str, str]] = {
    "channel": {"walk_in": "walk_in", "walk-in": "walk_in", "walkin": "walk_in", "来访": "walk_in",
                "上门": "walk_in", "现场": "walk_in", "phone": "phone", "来电": "phone", "电话": "phone"},
    "category": {"plumbing": "plumbing", "水": "plumbing", "水暖": "plumbing", "给排水": "plumbing",
                 "管道": "plumbing", "水维修": "plumbing", "electrical": "electrical", "电": "electrical",
                 "电工": "electrical", "电维修": "electrical", "cleaning": "cleaning", "保洁": "cleaning",
                 "清洁": "cleaning", "greening": "greening", "绿化": "greening",
                 "appliance": "appliance", "家电": "appliance", "家电维修": "appliance",
                 "renovation": "renovation", "房屋修缮": "renovation", "修缮": "renovation", "装修": "renovation"},
    "department": {"cs": "cs", "客服部": "cs", "客服": "cs", "客服中心": "cs", "engineering": "engineering",
                   "工程部": "engineering", "工程": "engineering", "cleaning": "cleaning", "保洁部": "cleaning",
                   "保洁": "cleaning", "环境部": "cleaning", "environment": "cleaning", "finance": "finance",
                   "财务部": "finance", "财务": "finance", "administration": "administration",
                   "行政部": "administration", "行政": "administration"},
    "role": {"clerk": "clerk", "客服": "clerk", "文员": "clerk", "职员": "clerk", "supervisor": "supervisor",
             "主管": "supervisor", "manager": "manager", "经理": "manager", "worker": "worker", "师傅": "worker",
             "维修工": "worker", "保洁员": "worker", "员工": "worker", "cashier": "cashier", "出纳": "cashier"},
    "method": {"cash": "cash", "现金": "cash", "wechat": "wechat", "微信": "wechat", "alipay": "alipay",
               "支付宝": "alipay", "card": "card", "刷卡": "card", "银行卡": "card"},
    "outcome": {"satisfied": "satisfied", "满意": "satisfied", "unsatisfied": "unsatisfied", "不满意": "unsatisfied",
                "unreachable": "unreachable", "联系不上": "unreachable", "未接通": "unreachable",
                "无人接听": "unreachable"},
}


@dataclass(frozen=True)
class Column:
    """One column of a kind: its field, the headers clerks use for it (Chinese first, English second)."""

    field: str
    headers: tuple[str, ...]
    required: bool = False
    read: str = "text"

    @property
    def label(self) -> str:
        return f"{self.headers[0]} {self.headers[1]}"


@dataclass(frozen=True)
class Kind:
    """One kind of ledger sheet: what it is called (sheet or file names) and its columns."""

    name: str
    zh: str
    names: tuple[str, ...]
    columns: tuple[Column, ...]

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.field == name)


C = Column
KINDS: dict[str, Kind] = {k.name: k for k in (
    Kind("staff", "员工", ("staff", "员工", "员工名单", "人员"), (
        C("code", ("工号", "code", "员工编号", "staff_code"), True),
        C("name", ("姓名", "name"), True),
        C("office", ("服务处", "office")),
        C("department", ("部门", "department"), True, "department"),
        C("role", ("岗位", "role", "职务"), True, "role"),
    )),
    Kind("requests", "登记表", ("requests", "登记表", "有偿服务登记表", "登记"), (
        C("number", ("登记号", "number", "登记编号", "request"), True),
        C("office", ("服务处", "office")),
        C("community", ("小区", "community")),
        C("received_at", ("登记时间", "received_at", "受理时间", "time"), True, "time"),
        C("by", ("登记人", "clerk", "接待人", "received_by", "by"), True),
        C("channel", ("接待方式", "channel", "方式"), True, "channel"),
        C("resident", ("业主姓名", "resident", "业主", "姓名"), True),
        C("address", ("住址", "address", "地址"), True),
        C("phone", ("联系方式", "phone", "电话", "联系电话"), True),
        C("category", ("类别", "category", "服务类别"), True, "category"),
        C("description", ("报修内容", "description", "服务内容", "内容"), True),
        C("preferred", ("方便维修的时间", "preferred", "方便时间", "预约时间"), False, "when"),
        C("fee", ("费用", "fee", "约定费用"), False, "money"),
        C("price", ("价目", "price", "价目编码")),
        C("expected_result", ("效果", "expected_result", "预期效果")),
        C("replied_at", ("回复时间", "replied_at"), False, "time"),
        C("replied_by", ("回复人", "replied_by")),
    )),
    Kind("orders", "通知单", ("orders", "通知单", "有偿服务通知单", "work_orders"), (
        C("number", ("通知单号", "number", "单号", "order"), True),
        C("request", ("登记号", "request"), True),
        C("by", ("开单人", "issued_by", "by")),
        C("worker", ("施工人员", "worker", "维修人员", "师傅"), True),
        C("issued_at", ("开单时间", "issued_at"), True, "time"),
        C("scheduled", ("约定时间", "scheduled", "上门时间"), True, "time"),
        C("completed_at", ("完工时间", "completed_at"), False, "time"),
        C("accepted_at", ("验收时间", "accepted_at"), False, "time"),
        C("signed_by", ("验收签字", "signed_by", "业主签字")),
    )),
    Kind("receipts", "收费", ("receipts", "收费", "收据", "票据", "收费记录"), (
        C("number", ("收据号", "receipt", "票据号", "number"), True),
        C("order", ("通知单号", "order"), True),
        C("amount", ("金额", "amount", "实收金额", "费用", "fee"), True, "money"),
        C("method", ("收款方式", "method", "付款方式"), False, "method"),
        C("collected_at", ("收款时间", "collected_at"), True, "time"),
        C("collected_by", ("收款人", "collected_by", "by"), True),
        C("reason", ("差额说明", "reason", "说明")),
    )),
    Kind("handovers", "交款", ("handovers", "交款", "交款单", "现金上交"), (
        C("number", ("交款单号", "handover", "number"), True),
        C("by", ("交款人", "handed_by", "by"), True),
        C("cashier", ("出纳", "cashier", "接收人"), True),
        C("receipts", ("收据号", "receipts", "票据号"), True),
        C("counted", ("点收金额", "counted", "实收金额"), True, "money"),
        C("handed_at", ("交款时间", "handed_at"), True, "time"),
    )),
    Kind("callbacks", "回访", ("callbacks", "回访", "回访记录"), (
        C("order", ("通知单号", "order"), True),
        C("by", ("回访人", "by"), True),
        C("outcome", ("回访结果", "outcome", "结果"), True, "outcome"),
        C("at", ("回访时间", "done_at", "at"), True, "time"),
        C("note", ("备注", "note", "回访意见")),
    )),
    Kind("department_reports", "部门记录", ("department_reports", "部门记录", "工作记录", "部门台账"), (
        C("reference", ("记录编号", "reference", "编号"), True),
        C("department", ("部门", "department"), True, "department"),
        C("by", ("记录人", "reported_by", "by"), True),
        C("worker", ("施工人员", "worker", "师傅"), True),
        C("reported_at", ("记录时间", "reported_at", "日期时间"), True, "time"),
        C("address", ("住址", "address", "地址"), True),
        C("description", ("工作内容", "description", "内容"), True),
        C("order", ("通知单号", "order")),
        C("fee", ("费用", "fee"), False, "money"),
    )),
)}
# dependencies first: a row may refer to anything in an earlier kind, in the file or in the ledger
ORDER = ("staff", "requests", "orders", "receipts", "handovers", "callbacks", "department_reports")
REJECTS_HEADER = "退回原因 rejected_because"
_SPLIT = re.compile(r"[\s/|()()\[\]【】*:：]+")


def _norm(text: str) -> str:
    return text.strip().lower().replace(" ", "").replace("*", "")


def map_headers(kind: Kind, headers: list[Any]) -> dict[str, int]:
    """field -> column index for the headers a row of a sheet carries; unknown headers are ignored."""
    alias = {_norm(h): c.field for c in kind.columns for h in c.headers}
    found: dict[str, int] = {}
    for index, header in enumerate(headers):
        if header is None:
            continue
        text = str(header)
        candidates = [_norm(text)] + [_norm(t) for t in _SPLIT.split(text) if t.strip()]
        for token in candidates:
            fld = alias.get(token)
            if fld is not None and fld not in found:
                found[fld] = index
                break
    return found


def kind_named(name: str) -> Kind | None:
    """The kind a sheet or file name refers to ('登记表', 'orders', '2026-10 回访记录.csv'), if any."""
    text = _norm(name)
    pairs = sorted(((_norm(n), k) for k in KINDS.values() for n in k.names), key=lambda p: -len(p[0]))
    for alias, kind in pairs:
        if text == alias:
            return kind
    for alias, kind in pairs:
        if alias in text:
            return kind
    return None


# -- reading values -------------------------------------------------------------------------------------------
class RowProblem(Exception):
    """One field of one row cannot be taken: the column it concerns and the clerk's reason."""

    def __init__(self, fld: str | None, code: str, **params: Any) -> None:
        super().__init__(code)
        self.field = fld
        self.error = DomainError(code, **params)


_TIME_FORMATS = ("%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y/%m/%d %H:%M:%S",
                 "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y.%m.%d %H:%M", "%Y年%m月%d日 %H:%M",
                 "%Y年%m月%d日%H:%M", "%Y年%m月%d日 %H时%M分")
_DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d", "%Y年%m月%d日")
_EXCEL_EPOCH = datetime(1899, 12, 30)
_DATE_ONLY = "a date without a time"


def read_time(value: Any, tz, *, date_alone: bool = False) -> datetime:
    """A moment from a cell: a datetime, an Excel serial, or the common local forms; local time unless it has an offset."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        if not date_alone:
            raise ValueError(_DATE_ONLY)
        moment = datetime.combine(value, time())
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        moment = _serial(float(value), date_alone)
    else:
        text = str(value).strip()
        moment = _common_moment(text)  # nearly every cell: no clean-up needed
        if moment is None:
            text = re.sub(r"\s+", " ", text.replace("：", ":"))
            moment = _common_moment(text)
        if moment is None:
            try:
                moment = _serial(float(text), date_alone)
            except ValueError:
                pass
        if moment is None:
            for fmt in _TIME_FORMATS:
                try:
                    moment = datetime.strptime(text, fmt)
                    break
                except ValueError:
                    continue
        if moment is None:
            try:
                moment = datetime.fromisoformat(text)
            except ValueError:
                moment = None
            if moment is not None and len(text) <= 10 and not date_alone:
                raise ValueError(_DATE_ONLY)
        if moment is None and not date_alone and any(_parses(text, fmt) for fmt in _DATE_FORMATS):
            raise ValueError(_DATE_ONLY)
        if moment is None and date_alone:
            for fmt in _DATE_FORMATS:
                try:
                    moment = datetime.strptime(text, fmt)
                    break
                except ValueError:
                    continue
        if moment is None:
            raise ValueError(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return moment


# the forms nearly every cell takes (2026-10-03 14:05, 2026/10/3 14:05[:30]), read without strptime's cost;
# anything else, or an impossible date, goes the long way and fails or succeeds exactly as it did
_COMMON = re.compile(r"(\d{4})([-/])(\d{1,2})\2(\d{1,2})[ T](\d{1,2}):(\d{1,2})(?::(\d{1,2}))?")


def _common_moment(text: str) -> datetime | None:
    match = _COMMON.fullmatch(text)
    if match is None or (match[2] == "/" and "T" in text):
        return None
    if len(text) == 16 and match[2] == "-":
        # the pattern saw yyyy-mm-dd hh:mm, all two-digit: fromisoformat reads exactly that, in C; an impossible
        # date, or digits other than ASCII ones, go on below
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            pass
    year, _, month, day, hour, minute, second = match.groups()
    try:
        return datetime(int(year), int(month), int(day), int(hour), int(minute), int(second or 0))
    except ValueError:
        return None


def _parses(text: str, fmt: str) -> bool:
    try:
        datetime.strptime(text, fmt)
        return True
    except ValueError:
        return False


def _serial(number: float, date_alone: bool) -> datetime:
    # Excel serials of 1982..2118 only: a bare number outside is a typo, not a date
    if not 30000 <= number <= 80000:
        raise ValueError(str(number))
    if number == int(number) and not date_alone:
        raise ValueError(_DATE_ONLY)
    return _EXCEL_EPOCH + timedelta(days=number)


def read_money(value: Any, fld: str = "amount") -> Decimal:
    """An amount from a cell: 80, 80.5, '¥80.00', '80元', '1,200'; never through float arithmetic. The desk's rule
    (models.ledger.values.money), the sign kept for the caller to refuse in the clerk's words; DomainError otherwise."""
    return money_rule(value, field=fld, signed=True)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value == int(value):
        return str(int(value))  # a phone number or code typed into a numeric cell
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    return str(value).strip()


def read_row(kind: Kind, header_map: dict[str, int], cells: tuple, tz) -> dict[str, Any]:
    """The row's values by field, read and type-checked; the first unreadable or missing one raises RowProblem."""
    return row_reader(kind, header_map, tz)(cells)


def row_reader(kind: Kind, header_map: dict[str, int], tz) -> Callable[[tuple], dict[str, Any]]:
    """`read_row` for one sheet: each column's converter chosen once, not by its kind on every cell."""
    plan = [(col, col.field, header_map.get(col.field), _converter(col, tz)) for col in kind.columns]

    def read(cells: tuple) -> dict[str, Any]:
        out: dict[str, Any] = {}
        width = len(cells)
        for col, fld, index, convert in plan:
            raw = cells[index] if index is not None and index < width else None
            if type(raw) is str:
                text = raw = raw.strip()  # read_time and read_money strip it again: the same text
            else:
                text = "" if raw is None else _text(raw)  # an empty cell: no call
            if text == "":
                if col.required:
                    raise RowProblem(fld, "import_required", column=col.headers[0], column_en=col.headers[1])
                out[fld] = None
            elif convert is None:
                out[fld] = text
            else:
                out[fld] = convert(raw, text)
        return out

    return read


_CENT = Decimal("0.01")


_SEEN_MOMENTS = 10_000  # distinct times a column's reader keeps (a sheet with more starts again: bounded memory)


def _converter(col: Column, tz) -> Callable[[Any, str], Any] | None:
    """What reads a non-empty cell of this column (given the cell and its text), or None when the text is the value."""
    fld, how, table = col.field, col.read, CHOICES.get(col.read)
    if how in ("time", "when"):
        date_alone = how == "when"
        # a desk logs by the minute, so a sheet's times repeat (4,000 distinct among 100k rows of a month): the
        # same text gives the same moment object (the sheet keeps its reader from batch to batch, `_Sheet.reader`),
        # which the write path then turns into its stored text once for the sheet (`_Sheet.moment_texts`, by the
        # object)
        seen: dict[str, datetime] = {}

        def convert(raw: Any, text: str) -> Any:
            if type(raw) is str:
                moment = seen.get(raw)
                if moment is not None:
                    return moment
                # a stripped text cell in a common form: read_time's own first step, without its type checks
                moment = _common_moment(raw)
                if moment is not None:
                    if len(seen) >= _SEEN_MOMENTS:
                        seen.clear()
                    moment = seen[raw] = moment.replace(tzinfo=tz)
                    return moment
            try:
                return read_time(raw, tz, date_alone=date_alone)
            except (ValueError, OverflowError) as exc:
                code = "import_date_only" if str(exc) == _DATE_ONLY else "import_bad_time"
                raise RowProblem(fld, code, value=text) from None
        return convert
    if how == "money":
        plain = PLAIN_MONEY.fullmatch

        def convert(raw: Any, text: str) -> Any:
            if type(raw) is str and plain(raw) is not None:
                return Decimal(raw).quantize(_CENT)  # the rule's plainest form: digits, 2 places, in range
            try:
                amount = read_money(raw, col.headers[1])
            except DomainError as error:
                if error.code == "money_malformed":
                    raise RowProblem(fld, "import_bad_amount", value=text) from None
                raise RowProblem(fld, error.code, **error.params) from None
            if amount.is_signed():
                raise RowProblem(fld, "import_negative", value=text)
            return amount
        return convert
    if how == "text" or table is None:
        return None

    def convert(raw: Any, text: str) -> Any:
        # a cell already in the table's form reads the same normalised (the keys are normal forms)
        value = table.get(text)
        if value is None:
            value = table.get(_norm(text))
        if value is None:
            raise RowProblem(fld, "import_bad_choice", column=col.headers[0], column_en=col.headers[1],
                             value=text, choices="、".join(dict.fromkeys(table.values())))
        return value
    return convert


# -- results --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RejectedRow:
    """A row not taken: where it is, which column, and why (render with .reason(locale))."""

    sheet: str
    line: int
    column: str | None
    code: str
    params: dict[str, Any]
    cells: tuple

    def reason(self, locale: str) -> str:
        return DomainError(self.code, **self.params).message(locale)

    def where(self, locale: str) -> str:
        column = f" [{self.column}]" if self.column else ""
        return (f"{self.sheet} line {self.line}{column}" if locale == "en"
                else f"{self.sheet} 第 {self.line} 行{column}")


@dataclass(frozen=True)
class SheetResult:
    """One sheet's (or CSV file's) counts: rows read, added to the ledger, already there, rejected."""

    sheet: str
    kind: str
    rows: int
    added: int
    present: int
    rejected: int


@dataclass(frozen=True)
class ImportResult:
    """What an import did: per sheet counts, every rejected row, and where the rejects file went."""

    file: Path
    dry_run: bool
    sheets: tuple[SheetResult, ...]
    rejects: tuple[RejectedRow, ...]
    rejects_file: Path | None
    ignored_sheets: tuple[str, ...] = ()

    @property
    def rows(self) -> int:
        return sum(s.rows for s in self.sheets)

    @property
    def kept(self) -> int:
        return sum(s.added for s in self.sheets)

    @property
    def present(self) -> int:
        return sum(s.present for s in self.sheets)

    @property
    def rejected(self) -> int:
        return len(self.rejects)


class ImportRefused(DomainError):
    """The file as a whole cannot be imported (unreadable, unknown kind, a required column missing): 0 rows kept."""


# -- sources --------------------------------------------------------------------------------------------------
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


# -- limits: what a file may hold, checked before any row is read -----------------------------------------------
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
            extent.columns = max(extent.columns, *(_column_number(c.decode()) for c in set(_CELL_COLUMN.findall(chunk))))
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
                                columns="、".join(c.headers[0] for c in missing),
                                columns_en=", ".join(c.headers[1] for c in missing))
    sheets.sort(key=lambda s: ORDER.index(s.kind.name))
    return sheets, ignored


# -- writing rows through the desk ----------------------------------------------------------------------------
@dataclass
class _Context:
    calendar: BusinessCalendar
    now: datetime
    office: str | None
    callback_workdays: int
    rework_within: timedelta = desk.DEFAULT_REWORK_WITHIN
    staff_by_code: dict[str, tuple[str, str]] = field(default_factory=dict)  # code -> (name, office code)
    staff_by_name: dict[str, list[str]] = field(default_factory=dict)
    offices: dict[str, str] = field(default_factory=dict)  # code or name -> code
    # the reference rows themselves, loaded once: desk operations take them instead of a code to look up per row
    # (sessionmaker(expire_on_commit=False) keeps them readable after each batch commits)
    office_rows: dict[str, Office] = field(default_factory=dict)
    office_code_by_id: dict[int, str] = field(default_factory=dict)
    staff_rows: dict[str, Staff] = field(default_factory=dict)
    staff_code_by_id: dict[int, str] = field(default_factory=dict)
    refs: dict[tuple[type, str], Any] = field(default_factory=dict)  # communities and price items by code
    # this batch's rows by natural key (None: not in the ledger), looked up in bulk before the batch is written
    found: dict[tuple[type, str], Any] = field(default_factory=dict)
    # offices and staff as the desk's plain-value facts, by code: made again for each batch (a staff sheet's batch
    # may change a member), read by every row of it
    facts: dict[tuple[type, str], Any] = field(default_factory=dict)

    def load(self, s: Session) -> None:
        self.offices, self.office_rows, self.office_code_by_id = {}, {}, {}
        for office in s.scalars(select(Office)):
            self.offices[office.code] = office.code
            self.offices[office.name] = office.code
            self.office_rows[office.code] = office
            self.office_code_by_id[office.id] = office.code
        self.staff_by_code, self.staff_by_name, self.staff_rows, self.staff_code_by_id = {}, {}, {}, {}
        for staff in s.scalars(select(Staff)):
            self.remember(staff, self.office_code_by_id[staff.office_id])
        self.refs = {}

    def remember(self, staff: Staff, office: str) -> None:
        self.staff_by_code[staff.code] = (staff.name, office)
        self.staff_by_name.setdefault(staff.name, []).append(staff.code)
        self.staff_rows[staff.code] = staff
        self.staff_code_by_id[staff.id] = staff.code

    def restore(self, known: dict[str, tuple[str, str]]) -> None:
        """Forget staff a rolled-back batch had added, so later rows do not refer to them."""
        for code in set(self.staff_by_code) - set(known):
            row = self.staff_rows.pop(code)
            self.staff_code_by_id.pop(row.id, None)
        self.staff_by_code = dict(known)
        self.staff_by_name = {}
        for code, (name, _office) in known.items():
            self.staff_by_name.setdefault(name, []).append(code)

    def office_for(self, value: str | None) -> str:
        ref = value or self.office
        if ref is None:
            codes = set(self.offices.values())
            if len(codes) == 1:
                return next(iter(codes))
            raise RowProblem("office", "import_office_needed")
        code = self.offices.get(ref)
        fld = "office" if value else None
        if code is None:
            if not is_office_code(ref):
                raise RowProblem(fld, "import_bad_office", value=ref, pattern=OFFICE_CODE_PATTERN)
            raise RowProblem(fld, "import_unknown_office", value=ref)
        if not is_office_code(code):  # a ledger from before the pattern: its reports would leave their folder
            raise RowProblem(fld, "bad_office_code", value=code, pattern=OFFICE_CODE_PATTERN)
        return code

    def staff(self, fld: str, value: str, office: str | None = None) -> str:
        """A staff code from a code or a name (names are what clerks write; unique within the office)."""
        if value in self.staff_by_code:
            return value
        codes = self.staff_by_name.get(value, [])
        if office is not None and len(codes) > 1:
            codes = [c for c in codes if self.staff_by_code[c][1] == office] or codes
        if len(codes) == 1:
            return codes[0]
        if codes:
            raise RowProblem(fld, "import_ambiguous_staff", value=value, codes=", ".join(codes))
        raise RowProblem(fld, "import_unknown_staff", value=value)

    def office_code(self, s: Session, office_id: int) -> str:
        """The code of the office with this id (one added since the import began is read from the ledger)."""
        code = self.office_code_by_id.get(office_id)
        return code if code is not None else s.get(Office, office_id).code

    def staff_by_id(self, s: Session, staff_id: int) -> Staff:
        """The staff row with this id (one added since the import began is read from the ledger)."""
        code = self.staff_code_by_id.get(staff_id)
        return self.staff_rows[code] if code is not None else s.get(Staff, staff_id)

    def member(self, fld: str, value: str, office: str | None = None) -> Staff:
        """The staff row a code or name refers to (see `staff`)."""
        return self.staff_rows[self.staff(fld, value, office)]

    def staff_facts(self, code: str) -> desk.StaffFacts:
        """The staff member with this code as `desk.StaffFacts` (made once per batch)."""
        key = (Staff, code)
        facts = self.facts.get(key)
        if facts is None:
            row = self.staff_rows[code]
            facts = self.facts[key] = desk.StaffFacts(id=row.id, code=row.code, department=row.department,
                                                      office_id=row.office_id, active=row.active)
        return facts

    def office_facts(self, code: str) -> desk.OfficeFacts:
        """The office with this code as `desk.OfficeFacts` (made once per batch)."""
        key = (Office, code)
        facts = self.facts.get(key)
        if facts is None:
            row = self.office_rows[code]
            facts = self.facts[key] = desk.OfficeFacts(id=row.id, code=row.code)
        return facts

    def ref(self, s: Session, model: type, code: str | None) -> Any:
        """A community or price item by code, loaded once; an unknown code is left for the desk to refuse."""
        if code is None:
            return None
        key = (model, code)
        if key not in self.refs:
            self.refs[key] = s.scalar(select(model).where(model.code == code))
        return self.refs[key] if self.refs[key] is not None else code

    def row(self, s: Session, model: type, column: str, value: str) -> Any:
        """The ledger row with this natural key (None if there is none), from the batch's bulk lookup if it has it."""
        key = (model, value)
        if key in self.found:
            return self.found[key]
        return s.scalar(select(model).where(getattr(model, column) == value))

    def lookup(self, s: Session, model: type, column: str, values: set[str]) -> None:
        """One query for the batch's natural keys of `model`: later `row` calls answer from memory."""
        values = {v for v in values if v and (model, v) not in self.found}
        if not values:
            return
        col = getattr(model, column)
        rows = {getattr(r, column): r for r in s.scalars(select(model).where(col.in_(values)))}
        for value in values:
            self.found[(model, value)] = rows.get(value)
        desk.note_keys(s, model, column, checked=values, present=rows)

    def added(self, model: type, value: str, row: Any) -> None:
        if (model, value) in self.found:
            self.found[(model, value)] = row


# the column a desk refusal concerns, per kind (the rest are reported against the row)
_ERROR_FIELDS: dict[str, dict[str, str]] = {
    "staff": {"unknown_department": "department", "unknown_role": "role"},
    "requests": {"cs_only": "by", "wrong_office": "by", "out_of_scope": "category", "unknown_category": "category",
                 "price_category": "price", "fee_needed": "fee", "community_office": "community",
                 "not_found": "price", "before_event": "replied_at", "negative_amount": "fee",
                 "time_out_of_range": "received_at"},
    "orders": {"cs_only": "by", "worker_department": "worker", "wrong_office": "worker",
               "already_issued": "request", "before_event": "issued_at", "already_completed": "completed_at",
               "already_accepted": "accepted_at", "accept_before_completion": "accepted_at",
               "time_out_of_range": "issued_at"},
    "receipts": {"receipt_number": "number", "receipt_not_unused": "number", "receipt_holder": "collected_by",
                 "collect_before_acceptance": "collected_at", "rework_free": "amount",
                 "amount_differs": "amount", "already_collected": "order", "unknown_method": "method",
                 "negative_amount": "amount", "receipts_issuer": "collected_by", "receipt_too_large": "number",
                 "time_out_of_range": "collected_at"},
    "handovers": {"not_cashier": "cashier", "handover_duplicate": "receipts", "not_found": "receipts",
                  "handover_not_cash": "receipts", "handover_not_collector": "receipts",
                  "handover_already": "receipts", "before_event": "handed_at", "negative_amount": "counted",
                  "time_out_of_range": "handed_at"},
    "callbacks": {"cs_only": "by", "callback_before_acceptance": "at", "no_callback_owed": "order",
                  "before_event": "at", "time_out_of_range": "at"},
    "department_reports": {"report_by": "by", "worker_department": "worker", "report_department": "department",
                           "negative_amount": "fee", "time_out_of_range": "reported_at"},
}


def _field_of(kind: Kind, error: DomainError) -> str | None:
    """The column a desk refusal concerns: the field it names (models.ledger.values' rules), else by its code."""
    named = error.params.get("field")
    if any(c.field == named for c in kind.columns):
        return named
    return _ERROR_FIELDS[kind.name].get(error.code)


def _request_row(s: Session, ctx: _Context, batch: _Decided, v: dict[str, Any]) -> tuple[str, list[desk.Decision]]:
    req = batch.known(ServiceRequest, v["number"])
    if req is not None:
        if v["replied_at"] is not None and req["channel"] == "phone" and req["replied_at"] is None:
            by = (ctx.member("replied_by", v["replied_by"]) if v["replied_by"]
                  else ctx.staff_by_id(s, req["received_by_id"]))
            return "added", [_reply(req, by, v["replied_at"])]
        return "present", []
    office = ctx.office_for(v["office"])
    clerk = ctx.staff_facts(ctx.staff("by", v["by"], office))
    registered = desk.decide_register(
        s, office=ctx.office_facts(office), by=clerk, channel=v["channel"], resident=v["resident"],
        address=v["address"], phone=v["phone"], category=v["category"], description=v["description"],
        at=v["received_at"], price=ctx.ref(s, PriceItem, v["price"]), fee=v["fee"], preferred=v["preferred"],
        expected_result=v["expected_result"], community=ctx.ref(s, Community, v["community"]), number=v["number"])
    if v["replied_at"] is None or v["channel"] != "phone":
        return "added", [registered]
    by = ctx.staff_facts(ctx.staff("replied_by", v["replied_by"], office)) if v["replied_by"] else clerk
    return "added", [registered, _reply(registered.values, by, v["replied_at"])]


def _reply(req: dict[str, Any], by: Staff | desk.StaffFacts, at: datetime) -> desk.Decision:
    return desk.decide_reply(number=req["number"], channel=req["channel"], received_at=req["received_at"],
                             replied_at=req["replied_at"], by=by, at=at)


def _one_of(conn: Connection, column: Any, values: set[str]) -> Any:
    """`column IN values`; on SQLite the values go as one JSON parameter (json_each) instead of one each: binding
    and compiling a thousand parameters cost more than the look-up itself."""
    if conn.dialect.name != "sqlite":
        return column.in_(values)
    listed = func.json_each(json.dumps(sorted(values), ensure_ascii=False)).table_valued("value")
    return column.in_(select(listed.c.value))


_REQUEST_FACTS = ("number", "channel", "received_at", "replied_at", "received_by_id")


def _look_up_requests(s: Session, batch: _Decided, rows: list[dict[str, Any]], over: _Decided | None) -> None:
    numbers = {v["number"] for v in rows}
    sr = ServiceRequest
    conn = s.connection()
    found = conn.execute(select(*(sr.__table__.c[name] for name in _REQUEST_FACTS))
                         .where(_one_of(conn, sr.number, numbers))).mappings()
    for row in found:
        batch.ledger[(ServiceRequest, row["number"])] = dict(row)
    if over is not None:
        for number in numbers:
            seen = over.known(ServiceRequest, number)  # as the batch being written leaves it
            if seen is not None:
                batch.ledger[(ServiceRequest, number)] = {name: seen[name] for name in _REQUEST_FACTS}
    desk.note_keys(s, ServiceRequest, "number", checked=numbers,
                   present=[n for (_, n) in batch.ledger])


def _order_progress(s: Session, ctx: _Context, wo: WorkOrder, v: dict[str, Any], resident: str) -> bool:
    changed = False
    if v["completed_at"] is not None and wo.completed_at is None:
        desk.complete(s, order=wo, by=ctx.staff_by_id(s, wo.worker_id), at=v["completed_at"])
        changed = True
    if v["accepted_at"] is not None and wo.accepted_at is None:
        desk.accept(s, order=wo, signed_by=v["signed_by"] or resident, at=v["accepted_at"],
                    calendar=ctx.calendar, callback_workdays=ctx.callback_workdays)
        changed = True
    return changed


def _order_row(s: Session, ctx: _Context, v: dict[str, Any]) -> str:
    wo = ctx.row(s, WorkOrder, "number", v["number"])
    if wo is not None:
        resident = s.get(ServiceRequest, wo.request_id).resident_name
        return "added" if _order_progress(s, ctx, wo, v, resident) else "present"
    req = ctx.row(s, ServiceRequest, "number", v["request"])
    if req is None:
        raise RowProblem("request", "import_unknown_ref", what="登记", what_en="request", ref=v["request"])
    office = ctx.office_code(s, req.office_id)
    clerk = (ctx.member("by", v["by"], office) if v["by"]
             else ctx.staff_by_id(s, req.received_by_id))
    worker = ctx.member("worker", v["worker"], office)
    if v["accepted_at"] is not None and v["completed_at"] is None:
        raise RowProblem("completed_at", "import_required", column="完工时间", column_en="completed_at")
    wo = desk.issue_order(s, request=req, by=clerk, worker=worker, scheduled=v["scheduled"], at=v["issued_at"],
                          number=v["number"])
    ctx.added(WorkOrder, v["number"], wo)
    _order_progress(s, ctx, wo, v, req.resident_name)
    return "added"


def _receipt_row(s: Session, ctx: _Context, v: dict[str, Any]) -> str:
    wo = ctx.row(s, WorkOrder, "number", v["order"])
    if wo is None:
        raise RowProblem("order", "import_unknown_ref", what="通知单", what_en="work order", ref=v["order"])
    office = ctx.office_code(s, wo.office_id)
    collector = ctx.member("collected_by", v["collected_by"], office)
    rec = ctx.row(s, Receipt, "number", v["number"])
    if rec is not None and rec.state == "used":
        if rec.order_id == wo.id:
            return "present"
        other = s.get(WorkOrder, rec.order_id).number if rec.order_id else "?"
        raise RowProblem("number", "import_receipt_used", number=v["number"], order=other)
    if rec is None:
        # a receipt the ledger has never seen: record it as issued by the order's clerk to the collector
        desk.issue_receipts(s, by=ctx.staff_by_id(s, wo.issued_by_id), to=collector,
                            first=v["number"], count=1, at=v["collected_at"])
        ctx.found.pop((Receipt, v["number"]), None)  # the desk's own lookup finds the new blank
    desk.collect(s, order=wo, by=collector, receipt=v["number"] if rec is None else rec, amount=v["amount"],
                 method=v["method"] or "cash", at=v["collected_at"], reason=v["reason"])
    return "added"


def _handover_row(s: Session, ctx: _Context, v: dict[str, Any]) -> str:
    if ctx.row(s, CashHandover, "number", v["number"]) is not None:
        return "present"
    by = ctx.staff("by", v["by"])
    cashier = ctx.member("cashier", v["cashier"], ctx.staff_by_code[by][1])
    numbers = [n for n in re.split(r"[\s,，、;；]+", v["receipts"]) if n]
    ho = desk.handover(s, by=ctx.staff_rows[by], cashier=cashier, receipts=numbers, counted=v["counted"],
                       at=v["handed_at"], number=v["number"])
    ctx.added(CashHandover, v["number"], ho)
    return "added"


def _callback_row(s: Session, ctx: _Context, v: dict[str, Any]) -> str:
    wo = ctx.row(s, WorkOrder, "number", v["order"])
    if wo is None:
        raise RowProblem("order", "import_unknown_ref", what="通知单", what_en="work order", ref=v["order"])
    done = s.scalar(select(Callback.id).where(Callback.order_id == wo.id, Callback.done_at == v["at"]))
    if done is not None:
        return "present"
    clerk = ctx.member("by", v["by"], ctx.office_code(s, wo.office_id))
    desk.callback(s, order=wo, by=clerk, outcome=v["outcome"], at=v["at"], calendar=ctx.calendar, note=v["note"],
                  callback_workdays=ctx.callback_workdays, rework_within=ctx.rework_within)
    return "added"


def _department_report_row(s: Session, ctx: _Context, v: dict[str, Any]) -> str:
    if ctx.row(s, DepartmentReport, "reference", v["reference"]) is not None:
        return "present"
    by = ctx.staff("by", v["by"])
    worker = ctx.member("worker", v["worker"], ctx.staff_by_code[by][1])
    order = ctx.row(s, WorkOrder, "number", v["order"]) if v["order"] is not None else None
    if v["order"] is not None and order is None:
        raise RowProblem("order", "import_unknown_ref", what="通知单", what_en="work order", ref=v["order"])
    report = desk.department_report(s, by=ctx.staff_rows[by], department=v["department"], worker=worker,
                                    address=v["address"], description=v["description"], at=v["reported_at"],
                                    order=order, fee=v["fee"], reference=v["reference"])
    ctx.added(DepartmentReport, v["reference"], report)
    return "added"


def _staff_row(s: Session, ctx: _Context, v: dict[str, Any]) -> str:
    if v["code"] in ctx.staff_by_code:
        return "present"
    office = ctx.office_for(v["office"])
    staff = desk.add_staff(s, code=v["code"], name=v["name"], office=ctx.office_rows[office],
                           department=v["department"], role=v["role"], at=ctx.now, actor="import")
    ctx.remember(staff, office)
    return "added"


# the natural keys a batch of each kind looks up in one query each: (model, column, the fields holding them)
_KEYS: dict[str, tuple[tuple[type, str, tuple[str, ...]], ...]] = {
    "staff": (),
    "orders": ((WorkOrder, "number", ("number",)), (ServiceRequest, "number", ("request",))),
    "receipts": ((WorkOrder, "number", ("order",)), (Receipt, "number", ("number",))),
    "handovers": ((CashHandover, "number", ("number",)),),
    "callbacks": ((WorkOrder, "number", ("order",)),),
    "department_reports": ((DepartmentReport, "reference", ("reference",)), (WorkOrder, "number", ("order",))),
}


_WRITERS = {"staff": _staff_row, "orders": _order_row, "receipts": _receipt_row,
            "handovers": _handover_row, "callbacks": _callback_row, "department_reports": _department_report_row}

# kinds whose rows are decided (desk.decide_*) against facts looked up for the whole batch, then written per table
# with one executemany each: (look up the batch's natural keys, decide one row)
_DECIDERS = {"requests": (_look_up_requests, _request_row)}
# the natural key of each table a decision adds rows to
_NATURAL = {ServiceRequest: "number"}


class _Decided:
    """One batch's decisions: its new rows by natural key (later rows of the batch see them), the changes it makes
    to ledger rows, and the audit events, in the order the rows were decided."""

    def __init__(self) -> None:
        self.new: dict[tuple[type, str], dict[str, Any]] = {}
        self.ledger: dict[tuple[type, str], dict[str, Any]] = {}  # ledger rows the batch refers to, as it sees them
        # (model, (key column, key), the values it sets, what the batch saw in those columns before)
        self.changes: list[tuple[type, tuple[str, str], dict[str, Any], dict[str, Any]]] = []
        self.audits: list[dict[str, Any]] = []

    def known(self, model: type, key: str) -> dict[str, Any] | None:
        """The row with this natural key as the batch sees it (decided in this batch or in the ledger), or None."""
        row = self.new.get((model, key))
        return row if row is not None else self.ledger.get((model, key))

    def take(self, decisions: list[desk.Decision]) -> None:
        """Keep one row's decisions (all of them: a row is taken whole or refused whole)."""
        for d in decisions:
            if d.where is None:
                self.new[(d.model, d.values[_NATURAL[d.model]])] = d.values  # the batch owns it from here
            else:
                key = (d.model, d.where[1])
                if key in self.new:
                    self.new[key].update(d.values)  # a row added by this batch goes in already changed
                else:
                    seen = self.ledger[key]
                    was = {name: seen.get(name) for name in d.values}
                    seen.update(d.values)
                    self.changes.append((d.model, d.where, d.values, was))
            self.audits.extend(d.audits)

    def inserts(self, dialect: Any, *,
                moments: dict[int, tuple[datetime, str]] | None = None) -> tuple[list[_Insert], list[_Insert]]:
        """The statements that add the batch's new rows, and those that add its audit events
        (see `_insert_statements`).

        `moments`: the stored texts of the times already converted (`_Sheet.moment_texts`), kept from batch to batch.
        """
        # a row's moment is one datetime object in its row and in its audit event (register's received_at and
        # at, reply's replied_at and at): converted for SQLite once, not once per column it is written to
        moments = {} if moments is None else moments
        added: dict[type, list[dict[str, Any]]] = {}
        for (model, _), values in self.new.items():
            added.setdefault(model, []).append(values)
        rows = [st for model, new in added.items()
                for st in _insert_statements(dialect, model.__table__, new, moments)]
        audits = _insert_statements(dialect, AuditEvent.__table__, self.audits, moments) if self.audits else []
        return rows, audits

    def write(self, s: Session, inserts: tuple[list[_Insert], list[_Insert]] | None = None) -> None:
        """Each table's new rows, then the changes of each shape, then the audit events: a few statements each.

        A change is written only where the row still holds what the batch saw (the decision was made on that): if
        another writer changed it since, the batch is refused (_Redo) and written again row by row, deciding anew.
        `inserts`: what `inserts()` gave, prepared beforehand (by the thread that decided the batch).
        """
        conn = s.connection()
        rows, audits = inserts if inserts is not None else self.inserts(conn.dialect)
        for statement in rows:
            statement.run(conn)
        shapes: dict[tuple[type, str, tuple[str, ...]], list[dict[str, Any]]] = {}
        for model, (column, key), values, was in self.changes:
            shapes.setdefault((model, column, tuple(values)), []).append(
                {"_key": key, **values, **{f"_was_{name}": value for name, value in was.items()}})
        for (model, column, names), changed in shapes.items():
            table = model.__table__
            unchanged = [table.c[name].is_not_distinct_from(bindparam(f"_was_{name}", type_=table.c[name].type))
                         for name in names]
            result = conn.execute(update(table).where(table.c[column] == bindparam("_key"), *unchanged), changed)
            if result.rowcount != len(changed):
                raise _Redo()
            # the session may hold some of these rows (a dry run's earlier batches): let it read them again
            for obj in list(s.identity_map.values()):
                if isinstance(obj, model):
                    s.expire(obj)
        for statement in audits:
            statement.run(conn)


@dataclass(frozen=True)
class _Insert:
    """One INSERT ready to run: driver-level SQL with its parameters, or (sql None) rows for SQLAlchemy's insert."""
    table: Table
    sql: str | None
    params: Any

    def run(self, conn: Connection) -> None:
        if self.sql is None:
            conn.execute(insert(self.table), self.params)
        else:
            conn.exec_driver_sql(self.sql, self.params)


def _insert_statements(dialect: Any, table: Table, rows: list[dict[str, Any]],
                       moments: dict[int, tuple[datetime, str]] | None = None) -> list[_Insert]:
    """The rows as INSERTs; on SQLite, multi-row ones with each value put through its column type's bind processor
    here.

    SQLAlchemy's executemany builds each row's parameters through the compiled statement, 5 us a row besides the
    types' own work, a tenth of an imported row's cost. The values stored are the same: the same statement, the
    same processors (the dialect's, for each column's type). PostgreSQL keeps SQLAlchemy's way (its driver batches).
    `moments` keeps the stored text of each UTCDateTime value by the object's identity (datetimes are immutable;
    the object is kept with its text, so an id is never taken for another object's).

    On SQLite the rows go `_ROWS_PER_INSERT` at a time as one `INSERT ... VALUES (...), (...)` with every value
    bound, as executemany binds them (the same types, the same refusals: tests/unit/test_import_writing.py). One
    call inserts them all without Python's GIL, where executemany takes the GIL back between rows (and a thread
    writing beside busy Python code would wait for it at every row), and SQLite spends about half of what it
    spent on the same rows sent as one JSON array through `json_each` (20 batches of the bench's rows replayed).
    """
    if dialect.name != "sqlite":
        return [_Insert(table, None, rows)]
    statements = []
    shapes: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        shapes.setdefault(tuple(row), []).append(row)
    for keys, same in shapes.items():
        shape = _insert_shape(dialect, table, keys)
        if shape is None:
            statements.append(_Insert(table, None, same))  # its parameters are not the row's keys in order
            continue
        if not any(shape.processors):
            params = [tuple(row.values()) for row in same]
        else:
            params = _processed(table, keys, shape.processors, same, {} if moments is None else moments)
        start = 0
        for count in _statement_sizes(len(params), shape.rows_per_statement):
            statements.append(_Insert(table, shape.sql(count),
                                      tuple(chain.from_iterable(params[start:start + count]))))
            start += count
    return statements


# rows per multi-row INSERT: a batch's rows in one or two statements, because the writer thread needs the GIL
# again for each (100k rows imported one batch ahead: 200 a statement, the writer waited 1.6 s for the GIL; 1,024,
# 0.6 s). A full statement's SQL is the same text every batch, so the driver keeps it compiled per connection.
_ROWS_PER_INSERT = 1024


def _statement_sizes(rows: int, most: int) -> list[int]:
    """`rows` cut into statements of `most` rows, then the rest as a multiple of 64 rows and what is left.

    Each size is a statement of its own to compile, and the driver keeps a connection's last 128 compiled: cut so,
    the sizes a table's batches leave are a few dozen texts (the large ones 15), each compiled once, where the rest
    as it comes would be a new text, compiled and cached again, nearly every batch (29 MB more memory at 100k rows).
    """
    sizes = [most] * (rows // most)
    rest = rows % most
    sizes += [size for size in (rest - rest % 64, rest % 64) if size]
    return sizes


@lru_cache(maxsize=1)
def _sqlite_parameter_limit() -> int:
    """The most parameters one SQLite statement takes in this build (999 before SQLite 3.32, 32,766 since)."""
    import sqlite3

    conn = sqlite3.connect(":memory:")
    try:
        return conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    finally:
        conn.close()


@dataclass(frozen=True)
class _InsertShape:
    """What an INSERT of rows with these keys needs, worked out once per table and keys (a batch's rows share a
    few shapes, and compiling the statement again for each batch cost more than some of its rows)."""
    head: str  # INSERT INTO table (columns) VALUES
    row: str  # (?, ?, ...)
    processors: tuple[Any, ...]
    rows_per_statement: int

    def sql(self, rows: int) -> str:
        return _values_sql(self.head, self.row, rows)


@lru_cache(maxsize=1024)
def _values_sql(head: str, row: str, rows: int) -> str:
    return f"{head} {', '.join([row] * rows)}"


@lru_cache(maxsize=256)
def _insert_shape(dialect: Any, table: Table, keys: tuple[str, ...]) -> _InsertShape | None:
    """None when the compiled statement's parameters are not the keys in order."""
    compiled = insert(table).compile(dialect=dialect, column_keys=list(keys))
    if compiled.positiontup != list(keys):
        return None
    head, _, row = compiled.string.partition(" VALUES ")
    return _InsertShape(
        head=f"{head} VALUES", row=row,
        processors=tuple(table.c[k].type.dialect_impl(dialect).bind_processor(dialect) for k in keys),
        rows_per_statement=max(1, min(_ROWS_PER_INSERT, _sqlite_parameter_limit() // max(1, len(keys)))))


def _processed(table: Table, keys: tuple[str, ...], processors: Sequence[Any], rows: list[dict[str, Any]],
               memo: dict[int, tuple[datetime, str]]) -> list[tuple]:
    """Each row's values in the order of `keys`, through their columns' bind processors."""
    # column by column: a comprehension per processed column costs less than a loop over every value of the rows
    # with a branch per column (the rows share their keys, in order: `_insert_statements` groups them so)
    columns: list[Any] = list(zip(*(row.values() for row in rows)))
    for i, (key, process) in enumerate(zip(keys, processors)):
        if process is None:
            continue
        if not isinstance(table.c[key].type, UTCDateTime):
            columns[i] = [process(value) for value in columns[i]]
            continue

        def stored(value: datetime, process: Any = process) -> str:
            memo[id(value)] = (value, text := process(value))
            return text

        columns[i] = [None if value is None
                      else known[1] if (known := memo.get(id(value))) is not None and known[0] is value
                      else stored(value)
                      for value in columns[i]]
    return list(zip(*columns))


# -- the import -----------------------------------------------------------------------------------------------
def import_ledger(sessions: sessionmaker[Session], path: Path | str, *, calendar: BusinessCalendar, now: datetime,
                  office: str | None = None, kind: str | None = None, dry_run: bool = False,
                  batch_size: int = 1000, callback_workdays: int = 2,
                  rework_within: timedelta = desk.DEFAULT_REWORK_WITHIN,
                  on_start: Callable[[str, int | None], None] | None = None,
                  on_row: Callable[[], None] | None = None, overlap: bool = True) -> ImportResult:
    """Import one workbook or CSV file into the ledger through the desk operations; see the module docstring.

    Each batch of `batch_size` rows is one transaction; a dry run does everything in one transaction and rolls
    it back. Raises ImportRefused (nothing written) when the file as a whole cannot be taken. `overlap`: on SQLite,
    registrations are decided while the batch before them is written (`_Pipeline`); False writes each batch
    before deciding the next (the same rows, counts and rejects).
    """
    path = Path(path)
    sheets, ignored = open_sheets(path, kind)
    ctx = _Context(calendar=calendar, now=now, office=office, callback_workdays=callback_workdays,
                   rework_within=rework_within)
    results: list[SheetResult] = []
    rejects: list[RejectedRow] = []
    headers_of: dict[str, list[Any]] = {}
    with _unit_of_work(sessions, dry_run) as batch:
        with batch() as s:
            ctx.load(s)
            if office is not None and office not in ctx.offices:
                if not is_office_code(office):
                    raise ImportRefused("import_bad_office", value=office, pattern=OFFICE_CODE_PATTERN)
                raise ImportRefused("import_unknown_office", value=office)
            if office is not None and not is_office_code(ctx.offices[office]):
                raise ImportRefused("bad_office_code", value=ctx.offices[office], pattern=OFFICE_CODE_PATTERN)
        for sheet in sheets:
            headers_of[sheet.name] = sheet.headers
            if on_start:
                on_start(sheet.name, sheet.total)
            counts = _no_counts()
            pipeline = (_Pipeline(sessions, batch, ctx, sheet, counts, rejects)
                        if overlap and not dry_run and _can_overlap(sessions, sheet) else None)
            send = pipeline.put if pipeline else partial(_write_batch, batch, ctx, sheet, counts=counts,
                                                         rejects=rejects)
            try:
                pending: list[tuple[int, tuple]] = []
                for line, cells in sheet.rows():
                    if on_row:
                        on_row()
                    if all(_text(c) == "" for c in cells):
                        continue
                    pending.append((line, cells))
                    if len(pending) >= batch_size:
                        send(pending)
                        pending = []
                if pending:
                    send(pending)
                if pipeline:
                    pipeline.finish()
            finally:
                if pipeline:
                    pipeline.close()
            results.append(SheetResult(sheet.name, sheet.kind.name, **counts))
    rejects_file = None
    if rejects and not dry_run:
        rejects_file = write_rejects(path, rejects, headers_of)
    return ImportResult(path, dry_run, tuple(results), tuple(rejects), rejects_file, tuple(ignored))


def _no_counts() -> dict[str, int]:
    """A sheet's or a batch's counts before its first row (the fields of SheetResult after its kind)."""
    return {"rows": 0, "added": 0, "present": 0, "rejected": 0}


@contextmanager
def _unit_of_work(sessions: sessionmaker[Session], dry_run: bool):
    """Hands out a `batch()` context: its own committed transaction per batch, or one rolled-back one (dry run)."""
    if not dry_run:
        @contextmanager
        def batch():
            with sessions() as s, s.begin():
                yield s
        yield batch
        return
    with sessions() as s:
        s.begin()
        try:
            @contextmanager
            def batch():
                yield s
            yield batch
        finally:
            s.rollback()


class _Redo(Exception):
    """The batch cannot be written in one go (a row failed half-way, or the database refused the batch)."""


def _write_batch(batch, ctx: _Context, sheet: _Sheet, pending: list[tuple[int, tuple]], counts: dict[str, int],
                 rejects: list[RejectedRow]) -> None:
    """One batch, one transaction: every row through its desk operations, flushed once at the end.

    A desk operation refuses before it writes anything, so a refused row needs no savepoint of its own. Only
    when a row fails after an operation of it has written (or the database refuses the batch's flush) is the
    batch rolled back to its savepoint and written again row by row, each row in its own savepoint.
    """
    known = dict(ctx.staff_by_code)
    try:
        with batch() as s:
            mine = _no_counts()
            refused: list[RejectedRow] = []
            try:
                with s.begin_nested():
                    _fast(s, ctx, sheet, pending, mine, refused)
            except _Redo:
                ctx.restore(known)
                ctx.found.clear()
                desk.forget_keys(s)
                # rows flushed and rolled back may linger in the identity map (the refusal's traceback holds
                # them) and their ids be handed out again: the row-by-row pass starts from what the database says
                s.expunge_all()
                mine = _no_counts()
                refused = []
                _row_by_row(s, ctx, sheet, pending, mine, refused)
            for key, value in mine.items():
                counts[key] += value
            rejects.extend(refused)
    except BaseException:
        ctx.restore(known)
        raise
    finally:
        ctx.found.clear()


def _fast(s: Session, ctx: _Context, sheet: _Sheet, pending: list[tuple[int, tuple]], counts: dict[str, int],
          rejects: list[RejectedRow]) -> None:
    kind = sheet.kind
    if kind.name in _DECIDERS:
        try:
            _decide_batch(s, ctx, sheet, pending, counts, rejects)
        except SQLAlchemyError as error:
            raise _Redo() from error
        return
    writer = _WRITERS[kind.name]
    rows = _read_batch(sheet.reader(ctx.calendar.tz), pending)
    ctx.found.clear()
    desk.forget_keys(s)
    try:
        # the session's identity map holds rows weakly: keep the offices and staff the desk reads by id
        # (s.get) alive for the batch, or each row would SELECT them again
        pinned = [*s.scalars(select(Office)), *s.scalars(select(Staff))]  # noqa: F841
        with _through_indexes(s):
            for model, column, fields in _KEYS[kind.name]:
                ctx.lookup(s, model, column, {v[f] for _, _, v in rows if isinstance(v, dict) for f in fields})
            _note_facts(s, ctx, kind.name)
        with desk.deferred(s):
            for line, cells, values in rows:
                counts["rows"] += 1
                if isinstance(values, RowProblem):
                    rejects.append(_reject(sheet, line, cells, values.field, values.error))
                    counts["rejected"] += 1
                    continue
                written = desk.audits_written(s)
                try:
                    outcome = writer(s, ctx, values)
                except (RowProblem, DomainError) as error:
                    if desk.audits_written(s) != written:
                        raise _Redo() from error  # half a row is in the session: only a savepoint can undo it
                    if isinstance(error, RowProblem):
                        rejects.append(_reject(sheet, line, cells, error.field, error.error))
                    else:
                        rejects.append(_reject(sheet, line, cells, _field_of(kind, error), error))
                    counts["rejected"] += 1
                    continue
                counts[outcome] += 1
        s.flush()
    except SQLAlchemyError as error:
        raise _Redo() from error


@contextmanager
def _through_indexes(s: Session) -> Iterator[None]:
    """PostgreSQL, for the look-ups inside: find a batch's keys through their indexes, whatever the statistics say.

    An import grows its tables faster than autovacuum analyses them again (and a server may run without it): a
    table still believed empty turns the batch's `IN` list of keys into a sequential scan comparing every row with
    every key, 80 ms per batch at 20k rows and growing with the table, against 15 ms through the unique index.
    """
    conn = s.connection()
    if conn.dialect.name != "postgresql":
        yield
        return
    conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
    yield
    conn.exec_driver_sql("SET LOCAL enable_seqscan = on")  # not reached on an error: the rollback undoes the SET


def _note_facts(s: Session, ctx: _Context, kind: str) -> None:
    """What the desk would ask once per row, asked once for the batch: is this request's order issued yet,
    is this order paid yet."""
    if kind == "orders":
        ids = {r.id for (model, _), r in ctx.found.items() if model is ServiceRequest and r is not None}
        if ids:
            issued = dict(s.execute(select(WorkOrder.request_id, WorkOrder.number)
                                    .where(WorkOrder.request_id.in_(ids), WorkOrder.rework_of_id.is_(None))).all())
            desk.note_facts(s, desk.ORDER_OF_REQUEST, {i: issued.get(i) for i in ids})
    elif kind == "receipts":
        ids = {r.id for (model, _), r in ctx.found.items() if model is WorkOrder and r is not None}
        if ids:
            paid = dict(s.execute(select(Receipt.order_id, Receipt.number)
                                  .where(Receipt.order_id.in_(ids), Receipt.state == "used")).all())
            desk.note_facts(s, desk.RECEIPT_OF_ORDER, {i: paid.get(i) for i in ids})


def _read_batch(read: Callable[[tuple], dict[str, Any]], pending: list[tuple[int, tuple]]
                ) -> list[tuple[int, tuple, dict[str, Any] | RowProblem]]:
    """Each pending row's values, or the problem that stops it, in file order."""
    rows: list[tuple[int, tuple, dict[str, Any] | RowProblem]] = []
    for line, cells in pending:
        try:
            rows.append((line, cells, read(cells)))
        except RowProblem as problem:
            rows.append((line, cells, problem))
    return rows


@dataclass
class _Verdict:
    """One batch as the desk decided it: what to write, and what the batch counts and refuses once written."""
    decided: _Decided
    counts: dict[str, int]
    refused: list[RejectedRow]

    def count_into(self, counts: dict[str, int], rejects: list[RejectedRow]) -> None:
        for key, value in self.counts.items():
            counts[key] += value
        rejects.extend(self.refused)


def _decide(s: Session, ctx: _Context, sheet: _Sheet, pending: list[tuple[int, tuple]],
            over: _Decided | None = None) -> _Verdict:
    """Every row decided by the desk against the batch's facts (a refused row leaves nothing); nothing written.

    `over` is a batch decided before this one whose write may not have committed yet: this one sees its rows.
    """
    kind = sheet.kind
    look_up, decide = _DECIDERS[kind.name]
    ctx.facts = {}
    rows = _read_batch(sheet.reader(ctx.calendar.tz), pending)
    desk.forget_keys(s)
    batch = _Decided()
    verdict = _Verdict(batch, _no_counts(), [])
    counts, refused = verdict.counts, verdict.refused
    with _through_indexes(s):
        look_up(s, batch, [v for _, _, v in rows if isinstance(v, dict)], over)
    for line, cells, values in rows:
        counts["rows"] += 1
        try:
            if isinstance(values, RowProblem):
                raise values
            outcome, decisions = decide(s, ctx, batch, values)
        except RowProblem as problem:
            refused.append(_reject(sheet, line, cells, problem.field, problem.error))
            counts["rejected"] += 1
            continue
        except DomainError as error:
            refused.append(_reject(sheet, line, cells, _field_of(kind, error), error))
            counts["rejected"] += 1
            continue
        batch.take(decisions)
        counts[outcome] += 1
    return verdict


def _decide_batch(s: Session, ctx: _Context, sheet: _Sheet, pending: list[tuple[int, tuple]],
                  counts: dict[str, int], rejects: list[RejectedRow]) -> None:
    """Every row decided by the desk against the batch's facts (a refused row leaves nothing), then written."""
    verdict = _decide(s, ctx, sheet, pending)
    decided = verdict.decided
    decided.write(s, decided.inserts(s.connection().dialect, moments=sheet.moment_texts()))
    verdict.count_into(counts, rejects)


def _can_overlap(sessions: sessionmaker[Session], sheet: _Sheet) -> bool:
    """Whether `_Pipeline` writes this sheet: a desk-decided kind, on an SQLite file (its write is a few GIL-free
    calls)."""
    engine = sessions.kw.get("bind")
    if sheet.kind.name not in _DECIDERS or engine is None or engine.dialect.name != "sqlite":
        return False
    # an in-memory database is one per connection: the writer thread's would not be the reader's
    database = engine.url.database or ""
    return database not in ("", ":memory:") and "mode=memory" not in str(engine.url)


class _Pipeline:
    """A desk-decided sheet's batches written by a thread of their own, while the next batch is read and decided.

    Deciding is Python's work and writing mostly the database's (on SQLite a few multi-row statements per table,
    each run without the GIL: `_insert_statements`), so on two cores they overlap. A batch is decided against the
    ledger as committed plus the batch still being written (`_decide`'s `over`), through a read-only session that
    never waits for the writer. It is sent to be written only once the batch before it has committed as decided; if that
    one had to be written again (the database refused it, or a row it changes had changed), this one is decided
    again. Each batch is still one transaction, written in file order, with the same rows, counts and rejects as
    `_write_batch` gives.
    """

    def __init__(self, sessions: sessionmaker[Session], batch, ctx: _Context, sheet: _Sheet,
                 counts: dict[str, int], rejects: list[RejectedRow]) -> None:
        from concurrent.futures import ThreadPoolExecutor

        from models.ledger.db import read_only

        engine = sessions.kw["bind"]
        self.reads = sessionmaker(read_only(engine), expire_on_commit=False)
        self.dialect = engine.dialect
        self.batch, self.ctx, self.sheet, self.counts, self.rejects = batch, ctx, sheet, counts, rejects
        self.writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bianmin-import-writer")
        self.flight: tuple[list[tuple[int, tuple]], _Verdict, Any] | None = None

    def put(self, pending: list[tuple[int, tuple]]) -> None:
        verdict, inserts = self._prepare(pending, over=self.flight[1].decided if self.flight else None)
        if self.flight is not None and not self._land():
            verdict, inserts = self._prepare(pending)  # the batch it was decided beside was not written as decided
        self.flight = (pending, verdict, self.writer.submit(self._write, verdict, inserts))

    def finish(self) -> None:
        if self.flight is not None:
            self._land()

    def close(self) -> None:
        """Let a batch still being written end (it commits or rolls back as a whole) before the import returns."""
        if self.flight is not None:
            self.flight[2].exception()
            self.flight = None
        self.writer.shutdown(wait=True)

    def _prepare(self, pending: list[tuple[int, tuple]], over: _Decided | None = None
                 ) -> tuple[_Verdict, tuple[list[_Insert], list[_Insert]]]:
        """The batch decided, and its INSERTs made: here, so that the writer thread only waits for the database
        and needs the GIL only a few times a batch."""
        with self.reads() as s, s.begin():
            verdict = _decide(s, self.ctx, self.sheet, pending, over)
        return verdict, verdict.decided.inserts(self.dialect, moments=self.sheet.moment_texts())

    def _write(self, verdict: _Verdict, inserts: tuple[list[_Insert], list[_Insert]]) -> None:
        with self.batch() as s:
            verdict.decided.write(s, inserts)

    def _land(self) -> bool:
        """Wait for the batch being written: True if it committed as decided, else it is written the usual way."""
        pending, verdict, future = self.flight
        self.flight = None
        try:
            future.result()
        except (_Redo, SQLAlchemyError):
            _write_batch(self.batch, self.ctx, self.sheet, pending, self.counts, self.rejects)
            return False
        verdict.count_into(self.counts, self.rejects)
        return True


def _row_by_row(s: Session, ctx: _Context, sheet: _Sheet, pending: list[tuple[int, tuple]], counts: dict[str, int],
                rejects: list[RejectedRow]) -> None:
    kind = sheet.kind
    if kind.name in _DECIDERS:
        # the database refused the batch as a whole: each row alone, so only the row it refuses is lost
        for one in pending:
            for attempt in range(3):
                try:
                    with s.begin_nested():
                        _decide_batch(s, ctx, sheet, [one], counts, rejects)
                    break
                except (_Redo, IntegrityError) as error:
                    # a row it changes changed between the look-up and the write, or another writer took its
                    # number (a database whose reads do not lock): decide it again on what is there now
                    if attempt == 2:
                        if isinstance(error, _Redo):
                            raise
                        _refused_by_database(sheet, one, error, counts, rejects)
                except DataError as error:
                    _refused_by_database(sheet, one, error, counts, rejects)
                    break
        return
    writer = _WRITERS[kind.name]
    for line, cells in pending:
        try:
            values = read_row(kind, sheet.header_map, cells, ctx.calendar.tz)
            with s.begin_nested():
                outcome = writer(s, ctx, values)
            counts["rows"] += 1
            counts[outcome] += 1
        except RowProblem as problem:
            counts["rows"] += 1
            rejects.append(_reject(sheet, line, cells, problem.field, problem.error))
            counts["rejected"] += 1
        except DomainError as error:
            counts["rows"] += 1
            rejects.append(_reject(sheet, line, cells, _field_of(kind, error), error))
            counts["rejected"] += 1
        except (DataError, IntegrityError) as error:
            _refused_by_database(sheet, (line, cells), error, counts, rejects)


def _refused_by_database(sheet: _Sheet, one: tuple[int, tuple], error: SQLAlchemyError, counts: dict[str, int],
                         rejects: list[RejectedRow]) -> None:
    """A row the database itself will not store (a value longer than its column, a character it cannot hold):
    that row is reported, named by the database's error class only (its message quotes the row's values)."""
    line, cells = one
    counts["rows"] += 1
    counts["rejected"] += 1
    name = type(getattr(error, "orig", None) or error).__name__
    rejects.append(_reject(sheet, line, cells, None, DomainError("import_database_refused", error=name)))


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


def write_template(path: Path | str) -> Path:
    """The import template: one sheet per kind with bilingual headers (required ones marked *), and a README sheet."""
    from openpyxl import Workbook
    from openpyxl.comments import Comment
    from openpyxl.styles import Font

    path = Path(path)
    book = Workbook()
    readme = book.active
    readme.title = "说明 README"
    lines = [
        "bianmin 台账导入模板 / ledger import template",
        "每个工作表一类台账;表头可用中文或英文;带 * 的列必填。/ One sheet per kind; headers in Chinese or English; "
        "columns marked * are required.",
        "时间:2026-10-03 14:05 或 2026/10/3 14:05 或 Excel 日期。/ Times: 2026-10-03 14:05, 2026/10/3 14:05 or Excel dates.",
        "金额:80、80.00、¥80、80元。/ Amounts: 80, 80.00, ¥80, 80元.",
        "员工可填工号或姓名。/ Staff: code or name.",
        "本页不会被导入。/ This sheet is not imported.",
        "",
    ]
    for kind_name in ORDER:
        kind = KINDS[kind_name]
        lines.append(f"[{kind.zh} {kind.name}]")
        for c in kind.columns:
            choices = ""
            if c.read in CHOICES:
                choices = " = " + "、".join(k for k in CHOICES[c.read] if not k.isascii())
                choices += " / " + ", ".join(dict.fromkeys(CHOICES[c.read].values()))
            lines.append(f"  {'*' if c.required else ' '} {c.label}  ({c.read}){choices}")
    for text in lines:
        readme.append([text])
    bold = Font(bold=True)
    for kind_name in ORDER:
        kind = KINDS[kind_name]
        ws = book.create_sheet(f"{kind.zh} {kind.name}")
        ws.append([f"{c.label}{' *' if c.required else ''}" for c in kind.columns])
        for cell, c in zip(ws[1], kind.columns):
            cell.font = bold
            cell.comment = Comment(f"{'必填 required' if c.required else '选填 optional'}; {c.read}", "bianmin")
            ws.column_dimensions[cell.column_letter].width = max(12, len(c.label) + 4)
    path.parent.mkdir(parents=True, exist_ok=True)
    book.save(path)
    return path
