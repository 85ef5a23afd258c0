"""Reading one cell, and one row of a sheet, into typed values; the first unreadable or missing one is a
RowProblem naming its column."""
from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from models.errors import DomainError
from models.imports.spec import CHOICES, Column, Kind, _norm
from models.ledger.values import PLAIN_MONEY, money as money_rule

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
    """A moment from a cell: a datetime, an Excel serial, or the common local forms; local time unless it has an
    offset."""
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
                    raise RowProblem(fld, "import_required", column=col.title)
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
            raise RowProblem(fld, "import_bad_choice", column=col.title,
                             value=text, choices="、".join(dict.fromkeys(table.values())))
        return value
    return convert
