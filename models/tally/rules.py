"""The monthly tally's pure rules: which month, and the month's frames merged into cells. Plain values in."""
from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, time
from decimal import Decimal

import pandas as pd

from models.calendar import BusinessCalendar
from models.tally.facts import CELL_KEY, CENT, Discrepancy, Figures, MonthWindow, shift_month


def cents(value) -> Decimal:
    """Cents, exactly: SQLite sums NUMERIC as REAL, and quantising restores the amount of a few thousand receipts."""
    return Decimal(str(value or 0)).quantize(CENT)


def parse_month(month: str) -> str:
    """'2026-10' (or '2026-1') normalised; ValueError for anything else."""
    try:
        year, mon = (int(x) for x in month.strip().split("-"))
        date(year, mon, 1)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"not a month (YYYY-MM): {month!r}") from exc
    return f"{year:04d}-{mon:02d}"


def reportable_month(month: str, *, calendar: BusinessCalendar, as_of: datetime) -> str:
    """`month` normalised, if it is over at `as_of`; DomainError for a malformed or unfinished month."""
    from models.errors import DomainError

    try:
        month = parse_month(month)
    except ValueError:
        raise DomainError("tally_bad_month", value=month) from None
    if month_window(month, calendar).end > as_of:
        raise DomainError("tally_month_not_over", month=month)
    return month


def month_window(month: str, calendar: BusinessCalendar, offices: tuple[str, ...] | None = None) -> MonthWindow:
    """The local month `YYYY-MM` as aware moments [first day 00:00, next month's first day 00:00), of `offices`
    only when given."""
    month = parse_month(month)
    year, mon = (int(x) for x in month.split("-"))
    start = calendar.at(date(year, mon, 1), time(0))
    nxt = shift_month(month, 1)
    end = calendar.at(date(int(nxt[:4]), int(nxt[5:]), 1), time(0))
    return MonthWindow(month, start, end, offices)


def month_of(moment: datetime, calendar: BusinessCalendar) -> str:
    local = calendar.local(moment)
    return f"{local.year:04d}-{local.month:02d}"


def merge_cells(frames: Iterable[pd.DataFrame], discrepancies: Iterable[Discrepancy]) -> list[Figures]:
    """Pure: the per-group frames of one month and its findings merged into one Figures per cell."""
    counted = pd.DataFrame(
        [dict(office=d.office, department=d.department, worker=d.worker, worker_name=d.worker_name, findings=1)
         for d in discrepancies], columns=CELL_KEY + ["findings"])
    merged: dict[tuple, dict] = {}
    for frame in [*frames, counted]:
        for record in frame.to_dict("records"):
            key = tuple(None if pd.isna(record[k]) else record[k] for k in CELL_KEY)
            cell = merged.setdefault(key, {})
            for name, value in record.items():
                if name in CELL_KEY or pd.isna(value):
                    continue
                cell[name] = cell.get(name, 0) + (value if isinstance(value, Decimal) else int(value))
    cells = []
    for (office, department, worker, worker_name), values in merged.items():
        for name in ("revenue_cash", "revenue_electronic"):
            values[name] = cents(values.get(name, 0))
        cells.append(Figures(office=office, department=department, worker=worker, worker_name=worker_name,
                             **values))
    return sorted(cells, key=lambda c: (c.office, c.department or "", c.worker or ""))
