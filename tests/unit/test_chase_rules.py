"""The pure part of chasing: when deadlines are judged, and how levels are reached."""
import dataclasses
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from models.calendar import BusinessCalendar
from models.chase.facts import OverdueCallback, ReworkWithoutCallback
from models.chase.rules import judged_at
from models.facts import maker
from models.rules import callback_due, callback_level, overdue_minutes, reply_due
from models.ledger.tables import Alert
from notifications.digest import item_from

SH = ZoneInfo("Asia/Shanghai")
CAL = BusinessCalendar()


def local(*args) -> datetime:
    return datetime(*args, tzinfo=SH)


def test_a_moment_in_working_hours_is_judged_as_itself():
    assert judged_at(local(2026, 11, 26, 10, 15), CAL) == local(2026, 11, 26, 10, 15)


def test_a_run_at_three_in_the_morning_is_judged_at_the_previous_evenings_close():
    assert judged_at(local(2026, 11, 26, 3, 0), CAL) == local(2026, 11, 25, 17, 30)


def test_a_run_in_the_evening_is_judged_at_that_days_close():
    assert judged_at(local(2026, 11, 26, 21, 0), CAL) == local(2026, 11, 26, 17, 30)


def test_a_run_on_sunday_is_judged_at_fridays_close():
    assert judged_at(local(2026, 11, 29, 11, 0), CAL) == local(2026, 11, 27, 17, 30)


def test_a_run_during_the_national_day_holiday_is_judged_at_the_close_before_it():
    assert judged_at(local(2026, 10, 5, 10, 0), CAL) == local(2026, 9, 30, 17, 30)


def test_a_run_on_a_make_up_saturday_is_working_time():
    # 2026-10-10 is a Saturday worked in exchange for the holiday
    assert judged_at(local(2026, 10, 10, 9, 0), CAL) == local(2026, 10, 10, 9, 0)


def test_a_callback_due_before_the_holiday_stays_at_level_one_through_it():
    due = callback_due(local(2026, 9, 25, 15, 0), CAL, workdays=2)
    assert due == local(2026, 9, 29, 17, 30)
    levels = {day: callback_level(due, judged_at(local(2026, 10, day, 10, 0), CAL), CAL) for day in range(1, 8)}
    assert set(levels.values()) == {1}
    assert callback_level(due, judged_at(local(2026, 10, 8, 9, 0), CAL), CAL) == 2


def test_a_callback_falling_due_at_close_is_not_chased_until_the_next_working_morning():
    due = local(2026, 11, 27, 17, 30)  # a Friday
    assert callback_level(due, judged_at(local(2026, 11, 28, 10, 0), CAL), CAL) == 0
    assert callback_level(due, judged_at(local(2026, 11, 30, 8, 31), CAL), CAL) == 1


def test_a_level_two_callback_keeps_its_level_one_finding():
    found = OverdueCallback(order_number="WO-1", request_number="R-1", office="O1", community=None, address="1-101",
                            resident="Wang", phone="13812345678", holder="Li", department="engineering",
                            worker="Zhao", callback_id=1, due_at=local(2026, 11, 2, 17, 30),
                            escalates_at=local(2026, 11, 3, 17, 30), overdue_minutes=3000, level=2)
    assert found.levels == (1, 2)


def test_overdue_minutes_count_whole_minutes_and_never_go_negative():
    assert overdue_minutes(local(2026, 11, 2, 10, 0), local(2026, 11, 2, 10, 59, 59)) == 59
    assert overdue_minutes(local(2026, 11, 2, 10, 0), local(2026, 11, 2, 9, 0)) == 0


def test_a_finding_built_without_its_init_is_the_same_frozen_fact():
    values = ("WO-1-R1", "R-1", "O1", None, "1-101", "Wang", "13812345678", "Li", "engineering", "Zhao", 1,
              local(2026, 11, 2, 17, 30), local(2026, 11, 3, 17, 30), 3000, 2, "WO-1")
    fast = maker(ReworkWithoutCallback)(*values)
    assert fast == ReworkWithoutCallback(*values)
    assert hash(fast) == hash(ReworkWithoutCallback(*values))
    assert isinstance(fast, OverdueCallback) and fast.levels == (1, 2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.level = 1  # type: ignore[misc]


def test_a_finding_missing_a_value_is_refused():
    with pytest.raises(ValueError):
        maker(OverdueCallback)("WO-1", "R-1")


LATENESS = [
    (timedelta(0), 0), (timedelta(microseconds=1), 0), (timedelta(seconds=59, microseconds=999999), 0),
    (timedelta(minutes=1), 1), (timedelta(minutes=1, microseconds=1), 1), (timedelta(hours=17, minutes=30), 1050),
    (timedelta(days=400, seconds=7), 576000), (-timedelta(minutes=5), 0), (-timedelta(microseconds=1), 0)]


@pytest.mark.parametrize(("late", "minutes"), LATENESS)
def test_overdue_minutes_are_whole_minutes_past_due_and_never_negative(late, minutes):
    due = datetime(2026, 11, 26, 9, 0, tzinfo=SH)
    assert overdue_minutes(due, due + late) == minutes


@pytest.mark.parametrize(("late", "minutes"), LATENESS)
def test_a_digest_line_without_stored_overdue_minutes_counts_them_from_its_due_time_by_the_same_rule(late, minutes):
    due = datetime(2026, 11, 26, 9, 0, tzinfo=SH)
    alert = Alert(id=1, dedupe_key="order-overdue:WO-1@ops", kind="order-overdue", level=1, severity=2, office="A1",
                  tag="ops", payload={"key": "order-overdue:WO-1", "due_at": due.isoformat(), "facts": {}})
    assert item_from(alert, as_of=due + late, tz=SH).overdue_minutes == minutes


def test_a_reply_is_due_the_configured_minutes_after_the_call():
    received = datetime(2026, 11, 26, 9, 55, tzinfo=SH)
    assert reply_due(received) == datetime(2026, 11, 26, 10, 5, tzinfo=SH)
    assert reply_due(received, reply_minutes=30) == datetime(2026, 11, 26, 10, 25, tzinfo=SH)
