"""The cash check's pure rules: due times, handover counts, receipt gaps, fees owed. Plain values in, facts out."""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from models.calendar import BusinessCalendar
from models.cash.facts import (
    CENT,
    ZERO,
    CashHeld,
    CollectorFigures,
    HandoverOvercount,
    HandoverShortfall,
    OfficeDayTotals,
    UnhandedCash,
)
from models.facts import maker
from models.rules import cash_due, overdue_minutes

_office_day_totals = maker(OfficeDayTotals)


def evaluation_time(day: date, calendar: BusinessCalendar, *, cutoff: time = time(17, 30),
                    grace_minutes: int = 30) -> datetime:
    """The moment a day's cash is judged: its cut-off plus the grace finance needs to record handovers."""
    return calendar.at(day, cutoff) + timedelta(minutes=grace_minutes)


def receipts_return_due(issued_at: datetime, calendar: BusinessCalendar, *, workdays: int = 5,
                        cutoff: time = time(17, 30)) -> datetime:
    """Blank numbers go back by the cut-off of the `workdays`-th working day after the book was issued."""
    day = calendar.add_working_days(calendar.local(issued_at).date(), workdays)
    return calendar.at(day, cutoff)


def unhanded_by_collector(held: Iterable[CashHeld], *, as_of: datetime, calendar: BusinessCalendar,
                          cutoff: time = time(17, 30)) -> list[UnhandedCash]:
    """Cash past its due time, one fact per collector and due time; cash not yet due is left out."""
    groups: dict[tuple[str, datetime], list[CashHeld]] = defaultdict(list)
    dues: dict[tuple[date, bool], datetime] = {}
    for item in held:
        # the due time depends only on the local day and the side of the cut-off: the calendar once for each
        local = calendar.local(item.collected_at)
        key = (local.date(), local.time() < cutoff)
        if key not in dues:
            dues[key] = cash_due(item.collected_at, calendar, cutoff=cutoff)
        due = dues[key]
        if due < as_of:
            groups[(item.collector, due)].append(item)
    out = []
    for (collector, due), items in sorted(groups.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        items.sort(key=lambda i: (i.collected_at, i.receipt))
        first = items[0]
        out.append(UnhandedCash(
            collector=collector, collector_name=first.collector_name, department=first.department,
            office=first.office, due_at=calendar.local(due),
            receipts=tuple(i.receipt for i in items),
            orders=tuple(dict.fromkeys(i.order for i in items if i.order)),
            total=sum((i.amount for i in items), ZERO),
            overdue_minutes=overdue_minutes(due, as_of)))
    return out


def classify_handover(*, handover: str, collector: str, collector_name: str, department: str, office: str,
                      handed_at: datetime, receipts: Sequence[str], covered: Decimal,
                      counted: Decimal) -> HandoverShortfall | HandoverOvercount | None:
    """A short count is a shortfall, a long count an over-count, an exact one nothing."""
    covered, counted = Decimal(covered).quantize(CENT), Decimal(counted).quantize(CENT)
    if covered == counted:
        return None
    cls = HandoverShortfall if counted < covered else HandoverOvercount
    return cls(handover=handover, collector=collector, collector_name=collector_name, department=department,
               office=office, handed_at=handed_at, receipts=tuple(receipts), covered=covered, counted=counted)


def receipt_gap(serial: int, used: Iterable[tuple[int, str, datetime]]) -> tuple[str, datetime] | None:
    """A blank number is a gap once a higher number of its book is used (procedure 3.2.2: every number issued is
    accounted for): the lowest such number and the first moment one was used; None while nothing skipped it."""
    higher = [(s, n, at) for s, n, at in used if s > serial]
    if not higher:
        return None
    return min(higher)[1], min(at for _s, _n, at in higher)


def is_chargeable(fee: Decimal | None, rework_of: object | None) -> bool:
    """A job owes a fee when it has one and is not a rework order (procedure 3.2.3: rework is free)."""
    return rework_of is None and fee is not None and fee > 0


def fee_due(accepted_at: datetime, calendar: BusinessCalendar, *, cutoff: time = time(17, 30)) -> datetime:
    """The fee is collected on acceptance and handed in like any cash (3.2.2): due at that day's cut-off."""
    return cash_due(accepted_at, calendar, cutoff=cutoff)


def office_totals(collectors: Iterable[CollectorFigures]) -> list[OfficeDayTotals]:
    """Per office, the sum of its collectors' day figures."""
    by_office: dict[str, list] = {}
    for c in collectors:
        t = by_office.setdefault(c.office, [0, ZERO, ZERO, ZERO, ZERO])
        t[0] += 1
        t[1] += c.cash
        t[2] += c.electronic
        t[3] += c.handed_over
        t[4] += c.outstanding
    return [_office_day_totals(office, *t) for office, t in sorted(by_office.items())]
