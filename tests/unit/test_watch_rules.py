"""The watch's pure rules: when a flow is stale by its schedule and the business calendar, and what to tell."""
from __future__ import annotations

from datetime import timedelta

import chinese_calendar
import pytest

from models.calendar import BusinessCalendar
from models.watch.rules import FlowSchedule, ScheduleError, notices, stale_flow
from tests.builders import TZ, at

CAL = BusinessCalendar()
GRACE = timedelta(minutes=15)
HOURLY = FlowSchedule("chase-callbacks", ("0 * * * *",))
CASH = FlowSchedule("cash-check", ("0 18 * * *", "0 9 * * *"), working_days_only=True)
TALLY = FlowSchedule("monthly-tally", ("0 8 1 * *",), missed_allowed=0)


def stale(schedule, last, as_of, since=None):
    return stale_flow(schedule, last_success=last, since=since or at("2026-01-01", "00:00"), as_of=as_of, tz=TZ,
                      is_working_day=chinese_calendar.is_workday, grace=GRACE)


def test_an_hourly_flow_is_stale_once_two_runs_in_a_row_are_missed():
    last = at("2026-11-23", "09:00")
    assert stale(HOURLY, last, at("2026-11-23", "10:59")) is None
    assert stale(HOURLY, last, at("2026-11-23", "11:14")) is None  # the 11:00 run may still be going
    found = stale(HOURLY, last, at("2026-11-23", "11:15"))
    assert found.missed == (at("2026-11-23", "10:00"), at("2026-11-23", "11:00"))
    assert found.key == "stale:chase-callbacks"


def test_a_flow_that_never_ran_owes_its_runs_from_since():
    assert stale(HOURLY, None, at("2026-11-23", "11:00"), since=at("2026-11-23", "10:30")) is None
    assert stale(HOURLY, None, at("2026-11-23", "12:15"), since=at("2026-11-23", "10:30")).last_success is None


@pytest.mark.parametrize("day", range(1, 8))
def test_the_cash_check_owes_nothing_on_the_national_day_holiday(day):
    evening = at(f"2026-10-0{day}", "23:00")
    assert not chinese_calendar.is_workday(evening.date())
    assert stale(CASH, at("2026-09-30", "18:00"), evening) is None


def test_the_cash_check_is_stale_on_the_first_working_day_after_the_holiday():
    found = stale(CASH, at("2026-09-30", "18:00"), at("2026-10-08", "18:15"))
    assert found.missed == (at("2026-10-08", "09:00"), at("2026-10-08", "18:00"))


def test_the_rules_take_the_projects_calendar_as_well_as_the_oracle():
    last, sunday = at("2026-10-09", "18:00"), at("2026-10-11", "12:00")  # Saturday the 10th is a make-up day
    assert stale_flow(CASH, last_success=last, since=last, as_of=sunday, tz=TZ, is_working_day=CAL.is_working_day,
                      grace=GRACE) == stale(CASH, last, sunday)
    assert stale(CASH, last, sunday) is not None


def test_the_monthly_tally_owes_its_run_on_the_first():
    assert stale(TALLY, at("2026-10-01", "08:00"), at("2026-11-01", "08:14")) is None
    assert stale(TALLY, at("2026-10-01", "08:00"), at("2026-11-01", "08:15")).missed == (at("2026-11-01", "08:00"),)


def test_an_unreadable_cron_is_a_schedule_error():
    with pytest.raises(ScheduleError):
        stale(FlowSchedule("x", ("not a cron",)), None, at("2026-11-01"))


def test_a_problem_is_told_once_and_its_end_once_and_one_never_told_is_forgotten():
    first = notices(told={}, current=["a", "b"])
    assert (first.tell, first.resolve, first.forget) == (("a", "b"), (), ())
    assert notices(told={"a": True, "b": True}, current=["a", "b"]).tell == ()
    later = notices(told={"a": True, "b": False}, current=[])
    assert (later.tell, later.resolve, later.forget) == ((), ("a",), ("b",))


def test_a_schedule_that_fires_once_a_month_owes_every_run_and_a_daily_one_may_miss_one():
    from flows.watch import missed_allowed

    assert missed_allowed(["0 8 1 * *"]) == 0
    assert missed_allowed(["0 8 * * *"]) == missed_allowed(["*/5 * * * *"]) == 1
