"""Due times and scope: the procedure's rules as pure functions of plain values."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.calendar import BusinessCalendar
from models.rules import OutOfScope, callback_due, callback_level, cash_due, department_for, reply_due

CAL = BusinessCalendar()
TZ = ZoneInfo("Asia/Shanghai")
CUTOFF = time(17, 30)


def local(day: str, clock: str) -> datetime:
    return datetime.fromisoformat(f"{day}T{clock}").replace(tzinfo=TZ)


def test_cash_collected_after_cutoff_on_national_day_eve_is_due_october_8th_at_cutoff():
    assert cash_due(local("2026-09-30", "18:00"), CAL) == local("2026-10-08", "17:30")


def test_cash_collected_before_cutoff_on_a_working_day_is_due_that_day():
    assert cash_due(local("2026-09-30", "10:00"), CAL) == local("2026-09-30", "17:30")


def test_cash_collected_at_exactly_the_cutoff_is_due_the_next_working_day():
    assert cash_due(local("2026-09-29", "17:30"), CAL) == local("2026-09-30", "17:30")


def test_cash_collected_on_a_make_up_saturday_is_due_that_saturday():
    assert cash_due(local("2026-10-10", "09:00"), CAL) == local("2026-10-10", "17:30")


def test_cash_due_respects_a_configured_cutoff():
    assert cash_due(local("2026-09-29", "17:45"), CAL, cutoff=time(18, 0)) == local("2026-09-29", "18:00")


def test_cash_collected_at_a_utc_time_is_judged_on_the_local_day():
    # 2026-09-30 02:00 UTC is 10:00 in Shanghai: before the cut-off of a working day
    assert cash_due(datetime(2026, 9, 30, 2, 0, tzinfo=timezone.utc), CAL) == local("2026-09-30", "17:30")


def test_callback_after_acceptance_on_friday_13_february_2026_is_due_the_24th():
    assert callback_due(local("2026-02-13", "15:00"), CAL, workdays=2) == local("2026-02-24", "17:30")


def test_callback_due_counts_the_configured_working_days():
    assert callback_due(local("2026-09-29", "10:00"), CAL, workdays=1) == local("2026-09-30", "17:30")
    assert callback_due(local("2026-09-29", "10:00"), CAL, workdays=3) == local("2026-10-09", "17:30")


def test_a_phone_request_must_be_answered_within_ten_minutes():
    assert reply_due(local("2026-09-30", "10:00")) == local("2026-09-30", "10:10")
    assert reply_due(local("2026-09-30", "10:00"), reply_minutes=15) == local("2026-09-30", "10:15")


@pytest.mark.parametrize(("category", "department"), [
    ("plumbing", "engineering"), ("electrical", "engineering"), ("cleaning", "cleaning"), ("greening", "cleaning")])
def test_each_category_goes_to_its_department(category, department):
    assert department_for(category) == department


@pytest.mark.parametrize("category", ["appliance", "renovation", "moving"])
def test_work_outside_the_scope_has_no_department(category):
    with pytest.raises(OutOfScope):
        department_for(category)


def test_callback_level_rises_from_due_to_escalation():
    due = local("2026-09-29", "17:30")
    assert callback_level(due, due, CAL) == 0
    assert callback_level(due, due + timedelta(minutes=1), CAL) == 1
    assert callback_level(due, local("2026-09-30", "17:31"), CAL) == 2


moments = st.datetimes(min_value=datetime(2010, 1, 1), max_value=datetime(2026, 11, 30),
                       timezones=st.just(TZ))


@given(moments)
def test_cash_due_is_always_a_working_days_cutoff_after_the_collection_with_none_missed(collected):
    due = cash_due(collected, CAL)
    assert CAL.is_working_day(due.date()) and due.timetz().replace(tzinfo=None) == CUTOFF
    assert due > collected
    # no earlier working-day cut-off lies between the collection and the due time
    day = collected.date()
    while day < due.date():
        assert not (CAL.is_working_day(day) and CAL.at(day, CUTOFF) > collected)
        day += timedelta(days=1)


@given(moments, st.integers(min_value=1, max_value=10))
def test_callback_due_is_a_working_day_strictly_after_the_acceptance_date(accepted, workdays):
    due = CAL.local(callback_due(accepted, CAL, workdays=workdays))
    assert CAL.is_working_day(due.date())
    assert due.date() > accepted.date()
    assert CAL.working_days_between(accepted.date(), due.date()) == workdays


def test_the_schema_allows_exactly_the_categories_procedure_2_offers():
    from models import rules
    from models.ledger.tables import CATEGORIES, OUT_OF_SCOPE_CATEGORIES

    assert [c for c in CATEGORIES if rules.scope_of(c) == "in"] == list(CATEGORIES) == list(rules.CATEGORY_DEPARTMENT)
    assert [rules.scope_of(c) for c in OUT_OF_SCOPE_CATEGORIES] == ["out", "out"]
    assert rules.scope_of("gardening") == "unknown"
    assert rules.is_out_of_scope("plumbing", "顺便修了空调") and not rules.is_out_of_scope("plumbing", "水龙头漏水")
