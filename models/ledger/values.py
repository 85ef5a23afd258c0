"""What a typed or imported value must look like before the ledger takes it: money, text, moments.

One rule each, used by the desk (models/desk/), the CLI (commands/) and the import (models/imports/), so a
value refused at one door is refused at every door. Pure: no session, no clock (`now` is an argument). A refusal
is a DomainError naming the field, rendered in the clerk's language from the catalogue models/texts.py.
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from decimal import ROUND_DOWN, Decimal
from typing import Any

from models.errors import DomainError
from models.ledger.tables import Money

# -- money ---------------------------------------------------------------------------------------------------
# the column is Numeric(precision, scale): at most precision - scale digits before the point, scale after
_WHOLE_DIGITS = Money.precision - Money.scale
_PLACES = Money.scale
_CENT = Decimal(1).scaleb(-_PLACES)
MONEY_LIMIT = Decimal(10) ** _WHOLE_DIGITS  # an amount is below this
# a plain amount as clerks and spreadsheets write it: the import's fast path takes exactly these
PLAIN_MONEY = re.compile(rf"[0-9]{{1,{_WHOLE_DIGITS}}}(?:\.[0-9]{{1,{_PLACES}}})?")
_GROUPED = re.compile(r"-?[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]+)?")
_DECIMAL = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
_CURRENCY = ("¥", "￥", "元", "RMB", "CNY")
# full-width digits, point and comma, as a Chinese input method types them
_FULL_WIDTH = str.maketrans("０１２３４５６７８９．，－", "0123456789.,-")


def money(value: Any, *, field: str, signed: bool = False) -> Decimal:
    """An amount of money, to the cent: digits with at most two decimal places, optional ¥/元 marks and thousands
    commas; no exponent, NaN or infinity; no sign (unless `signed`); below the column's limit (10^10).

    A number (int, Decimal, or a float from a spreadsheet cell) must be a whole number of cents too.
    """
    if isinstance(value, bool) or value is None:
        raise DomainError("money_malformed", field=field, value=str(value))
    if isinstance(value, float):
        # a spreadsheet's number: 80.1 is stored as 80.09999... (repr gives back what was typed) and a formula's
        # 0.1 + 0.2 as 0.30000000000000004: within a billionth of a whole cent, it is that cent
        cents = round(value, _PLACES) if abs(value) < float(MONEY_LIMIT) else value
        value = repr(cents if abs(value - cents) < 1e-9 else value)
    if isinstance(value, (int, Decimal)):
        amount = Decimal(value)
        if not amount.is_finite():
            raise DomainError("money_malformed", field=field, value=str(value))
        text = None
    else:
        text = str(value).strip().translate(_FULL_WIDTH)
        for mark in _CURRENCY:
            text = text.replace(mark, "")
        text = text.replace(" ", "")
        if _GROUPED.fullmatch(text):
            text = text.replace(",", "")
        if not _DECIMAL.fullmatch(text):
            raise DomainError("money_malformed", field=field, value=shown(value))
        amount = Decimal(text)
    if amount.is_signed() and not signed:
        raise DomainError("negative_amount", field=field, value=shown(value))
    if abs(amount) >= MONEY_LIMIT:  # first: a huge amount cannot even be rounded to the cent
        raise DomainError("money_too_large", field=field, value=shown(value), limit=f"{MONEY_LIMIT:,}")
    if amount != amount.quantize(_CENT, rounding=ROUND_DOWN):
        raise DomainError("money_places", field=field, value=shown(value), places=_PLACES)
    return amount.quantize(_CENT)


# -- text ----------------------------------------------------------------------------------------------------
# free text (descriptions, notes, reasons) is stored in unbounded Text columns; this is its length at every door
FREE_TEXT_MAX = 2000
# C0 and C1 controls, DEL, the Unicode line and paragraph separators, and the bidirectional embeddings, overrides
# and isolates (they reorder what a reader sees: "Trojan source")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
# free text may hold lines and tabs (a note typed into a spreadsheet cell with Alt+Enter); nothing else
_FREE_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


_SHAPES: dict[int, tuple[Any, int, bool]] = {}  # id(column) -> (column, its limit, whether it holds lines)


def _shape(column: Any) -> tuple[Any, int, bool]:
    # read once per column: an ORM attribute's .type goes through SQLAlchemy's proxies, 8 us a call; the stored
    # entry itself is returned, so a call makes no new object (every text field of every imported row comes here)
    entry = _SHAPES.get(id(column))
    if entry is None or entry[0] is not column:
        length = getattr(column.type, "length", None)
        entry = _SHAPES[id(column)] = (column, length or FREE_TEXT_MAX, length is None)
    return entry


def limit_of(column: Any) -> int:
    """The length a String column holds (read from the table definition), or FREE_TEXT_MAX for Text."""
    return _shape(column)[1]


def text(value: str | None, *, field: str, column: Any = None, limit: int | None = None,
         lines: bool | None = None) -> str | None:
    """`value` stripped, if it fits: refused when longer than the column (or `limit`) or when it holds a control
    character or an ANSI escape. A single-line field refuses line breaks and tabs too; free text (a column without
    a length, or `lines=True`) keeps them, with line endings made "\\n"."""
    if value is None:
        return None
    value = (value if type(value) is str else str(value)).strip()
    _column, column_limit, column_lines = _shape(column) if column is not None else (None, FREE_TEXT_MAX, False)
    most = limit if limit is not None else column_limit
    if lines is None:
        lines = column_lines
    if lines:
        value = value.replace("\r\n", "\n").replace("\r", "\n")
    bad = (_FREE_CONTROL if lines else _CONTROL).search(value)
    if bad is not None:
        raise DomainError("text_control", field=field, char=f"U+{ord(bad.group()):04X}", position=bad.start() + 1)
    if len(value) > most:
        raise DomainError("text_too_long", field=field, length=len(value), limit=most)
    return value


def control_in(value: str, *, lines: bool = True) -> str | None:
    """The first control character in `value` as U+XXXX (line breaks and tabs allowed when `lines`), or None."""
    bad = (_FREE_CONTROL if lines else _CONTROL).search(value)
    return None if bad is None else f"U+{ord(bad.group()):04X}"


def shown(value: Any, most: int = 60) -> str:
    """A value as it may be echoed in a one-line message: control characters escaped, cut to `most` characters."""
    out = _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), str(value))
    return out if len(out) <= most else out[:most - 1] + "…"


# -- moments -------------------------------------------------------------------------------------------------
EARLIEST_YEAR = 2000  # nothing in a property company's ledger is older; holidays.China knows 1950..2100
LATEST_YEAR = 2100
FUTURE_HORIZON = timedelta(days=366)  # a booking, an event typed ahead or a silence: within a year from now


def moment(value: datetime, *, field: str, now: datetime | None = None) -> datetime:
    """`value` if it lies in EARLIEST_YEAR..LATEST_YEAR and, given `now`, no more than FUTURE_HORIZON after it;
    also refused: a moment whose UTC form would leave the calendar (year 1 with a positive offset)."""
    # as a clerk wrote it (isoformat would add year 1's local mean time offset, +08:05:43)
    shown_as = f"{value.year:04d}-{value.month:02d}-{value.day:02d} {value.hour:02d}:{value.minute:02d}"
    if not EARLIEST_YEAR <= value.year <= LATEST_YEAR:
        raise DomainError("time_out_of_range", field=field, value=shown_as, earliest=EARLIEST_YEAR,
                          latest=LATEST_YEAR)
    try:
        value.astimezone(timezone.utc)
    except (OverflowError, ValueError):
        raise DomainError("time_out_of_range", field=field, value=shown_as, earliest=EARLIEST_YEAR,
                          latest=LATEST_YEAR) from None
    if now is not None and value - now > FUTURE_HORIZON:
        raise DomainError("time_too_far", field=field, value=shown_as, days=FUTURE_HORIZON.days)
    return value
