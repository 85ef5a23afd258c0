"""Pure rules of the procedure: scope, routing of work, and every due time. Time is always passed in."""
from __future__ import annotations

from datetime import datetime, time, timedelta
from functools import cache

from models.calendar import BusinessCalendar
from models.ledger.tables import CATEGORIES, OUT_OF_SCOPE_CATEGORIES

CATEGORY_DEPARTMENT = {
    "plumbing": "engineering",
    "electrical": "engineering",
    "cleaning": "cleaning",
    "greening": "cleaning",
}


class OutOfScope(ValueError):
    """Work the procedure (section 2) does not offer as a paid service."""

    def __init__(self, category: str) -> None:
        super().__init__(category)
        self.category = category


def department_for(category: str) -> str:
    """The department that carries out a category of work; out-of-scope work raises OutOfScope."""
    if category in CATEGORY_DEPARTMENT:
        return CATEGORY_DEPARTMENT[category]
    raise OutOfScope(category)


def is_in_scope(category: str) -> bool:
    return category in CATEGORIES


def is_known_out_of_scope(category: str) -> bool:
    return category in OUT_OF_SCOPE_CATEGORIES


def reply_due(received_at: datetime, *, reply_minutes: int = 10) -> datetime:
    """A phone request must be answered within `reply_minutes` of registration (procedure 4.2)."""
    return received_at + _minutes(reply_minutes)


@cache
def _minutes(count: int) -> timedelta:
    # a check asks for every open phone request's due time: the same timedelta, made once
    return timedelta(minutes=count)


_MINUTE = timedelta(minutes=1)


def overdue_minutes(due_at: datetime, as_of: datetime) -> int:
    """Whole minutes past due, rounded down; 0 when not past due."""
    return max((as_of - due_at) // _MINUTE, 0)


def callback_due(accepted_at: datetime, calendar: BusinessCalendar, *, workdays: int = 2) -> datetime:
    """The return visit is due by the end of the `workdays`-th working day after acceptance."""
    day = calendar.add_working_days(calendar.local(accepted_at).date(), workdays)
    return calendar.at(day, calendar.work_end)


def escalation_due(due_at: datetime, calendar: BusinessCalendar, *, workdays: int = 1) -> datetime:
    """Level 2 begins `workdays` working days after the level-1 due time."""
    day = calendar.add_working_days(calendar.local(due_at).date(), workdays)
    return calendar.at(day, calendar.local(due_at).timetz().replace(tzinfo=None))


def callback_level(due_at: datetime, as_of: datetime, calendar: BusinessCalendar, *,
                   escalate_workdays: int = 1) -> int:
    """0 while not due, 1 once overdue, 2 once `escalate_workdays` working days more have passed."""
    if as_of <= due_at:
        return 0
    return 2 if as_of > escalation_due(due_at, calendar, workdays=escalate_workdays) else 1


def cash_due(collected_at: datetime, calendar: BusinessCalendar, *, cutoff: time = time(17, 30)) -> datetime:
    """Cash goes to finance by the working day's cut-off; after it, or on a day off, by the next working day's."""
    local = calendar.local(collected_at)
    day = local.date()
    if calendar.is_working_day(day) and local.time() < cutoff:
        return calendar.at(day, cutoff)
    return calendar.at(calendar.next_working_day(day), cutoff)
