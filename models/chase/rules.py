"""The chases' pure rules: when deadlines are judged and when a rework is due. Time is passed in."""
from __future__ import annotations

from datetime import datetime, timedelta

from models.calendar import BusinessCalendar


def judged_at(as_of: datetime, calendar: BusinessCalendar) -> datetime:
    """The moment deadlines are judged at: `as_of` in working time, else the end of the last working period."""
    return calendar.last_working_time(as_of)


def rework_due(done_at: datetime, *, rework_due_hours: int = 24) -> datetime:
    """An unsatisfied callback's free rework (3.2.3) must be ordered within `rework_due_hours` of the callback."""
    return done_at + timedelta(hours=rework_due_hours)
