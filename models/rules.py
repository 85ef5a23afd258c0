"""Pure rules of the procedure: scope, routing of work, and every due time. Time is always passed in."""
from __future__ import annotations

from datetime import datetime, time, timedelta
from functools import cache

from typing import Literal

from models.calendar import BusinessCalendar
from models.ledger.tables import OUT_OF_SCOPE_CATEGORIES

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


# -- scope (procedure 2): the one definition the desk, the import and the monthly tally use -------------------

#: words in a description that mean household-appliance repair or renovation (procedure 2: not offered).
#: Water heaters are left out on purpose: their plumbing is in scope.
OUT_OF_SCOPE_WORDS = (
    "家电", "空调", "冰箱", "洗衣机", "电视", "微波炉", "油烟机", "装修", "翻新", "刷墙", "吊顶", "铺地砖",
    "appliance", "air conditioner", "air-conditioner", "fridge", "refrigerator", "washing machine",
    "television", "microwave", "renovation", "renovate", "remodel",
)


def scope_of(category: str) -> Literal["in", "out", "unknown"]:
    """A category of work: offered ("in"), named by procedure 2 as not offered ("out"), or not a category."""
    if category in CATEGORY_DEPARTMENT:
        return "in"
    return "out" if category in OUT_OF_SCOPE_CATEGORIES else "unknown"


def mentions_out_of_scope(text: str | None) -> bool:
    """True when free text describes appliance repair or renovation, whatever category it was filed under."""
    low = (text or "").lower()
    return any(word in low for word in OUT_OF_SCOPE_WORDS)


def is_out_of_scope(category: str, description: str | None) -> bool:
    """Work procedure 2 does not offer: an out-of-scope category, or in-scope paperwork describing such work."""
    return scope_of(category) != "in" or mentions_out_of_scope(description)


def is_in_scope(category: str) -> bool:
    return scope_of(category) == "in"


def is_known_out_of_scope(category: str) -> bool:
    return scope_of(category) == "out"


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
