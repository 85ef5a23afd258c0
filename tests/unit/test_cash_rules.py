"""The cash check's pure rules: due times across holidays, one fact per collector, exact money."""
from __future__ import annotations

from datetime import date, datetime, time
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.calendar import BusinessCalendar
from models.rules import cash_due
from models.cash.facts import CashHeld, CollectorFigures, HandoverOvercount, HandoverShortfall
from models.cash.rules import (classify_handover, evaluation_time, office_totals, receipts_return_due,
                               unhanded_by_collector)

SH = ZoneInfo("Asia/Shanghai")


def local(*args) -> datetime:
    return datetime(*args, tzinfo=SH)


def held(receipt: str, at: datetime, amount: str = "50.00", collector: str = "W1", order: str | None = None):
    return CashHeld(receipt=receipt, order=order or f"WO-{receipt}", amount=Decimal(amount), collected_at=at,
                    collector=collector, collector_name=f"name {collector}", department="engineering",
                    office="SO1")


def evening(cal: BusinessCalendar, day: date) -> datetime:
    return evaluation_time(day, cal, cutoff=time(17, 30), grace_minutes=30)


@pytest.fixture
def cal() -> BusinessCalendar:
    return BusinessCalendar()


def test_a_days_evaluation_is_its_cutoff_plus_grace(cal):
    assert evaluation_time(date(2026, 10, 8), cal, cutoff=time(17, 30), grace_minutes=30) == local(2026, 10, 8, 18)
    assert evaluation_time(date(2026, 10, 8), cal, cutoff=time(16, 0), grace_minutes=45) == local(2026, 10, 8, 16, 45)


@pytest.mark.parametrize("day", [1, 2, 3, 4, 5, 6, 7])
def test_cash_taken_the_evening_before_national_day_is_not_overdue_during_the_holiday(cal, day):
    cash = [held("000101", local(2026, 9, 30, 18, 0))]
    assert unhanded_by_collector(cash, as_of=evening(cal, date(2026, 10, day)), calendar=cal) == []


def test_cash_taken_the_evening_before_national_day_is_overdue_after_october_8s_cutoff(cal):
    cash = [held("000101", local(2026, 9, 30, 18, 0))]
    found = unhanded_by_collector(cash, as_of=evening(cal, date(2026, 10, 8)), calendar=cal)
    assert [(f.collector, f.due_at, f.receipts, f.overdue_minutes) for f in found] == [
        ("W1", local(2026, 10, 8, 17, 30), ("000101",), 30)]
    assert found[0].key == "cash-unhanded:W1:2026-10-08"


def test_cash_is_not_overdue_at_the_cutoff_itself(cal):
    cash = [held("000101", local(2026, 10, 8, 9, 0))]
    assert unhanded_by_collector(cash, as_of=local(2026, 10, 8, 17, 30), calendar=cal) == []


def test_cash_collected_after_cutoff_is_due_next_working_day(cal):
    cash = [held("000101", local(2026, 10, 9, 17, 31))]
    assert unhanded_by_collector(cash, as_of=evening(cal, date(2026, 10, 9)), calendar=cal) == []
    # 2026-10-10 is the make-up Saturday after National Day: a working day
    found = unhanded_by_collector(cash, as_of=evening(cal, date(2026, 10, 10)), calendar=cal)
    assert [f.due_at for f in found] == [local(2026, 10, 10, 17, 30)]


def test_cash_collected_on_the_make_up_saturday_is_due_that_saturday(cal):
    cash = [held("000101", local(2026, 10, 10, 11, 0))]
    found = unhanded_by_collector(cash, as_of=evening(cal, date(2026, 10, 10)), calendar=cal)
    assert [f.due_at for f in found] == [local(2026, 10, 10, 17, 30)]


def test_cash_collected_on_a_sunday_is_due_monday(cal):
    cash = [held("000101", local(2026, 10, 11, 11, 0))]
    assert unhanded_by_collector(cash, as_of=local(2026, 10, 12, 17, 0), calendar=cal) == []
    assert [f.due_at for f in unhanded_by_collector(cash, as_of=local(2026, 10, 12, 18, 0), calendar=cal)] == [
        local(2026, 10, 12, 17, 30)]


def test_one_fact_per_collector_and_due_time_with_an_exact_total(cal):
    cash = [held("000101", local(2026, 10, 12, 9, 0), "0.10"),
            held("000102", local(2026, 10, 12, 10, 0), "0.20", order="WO-A"),
            held("000103", local(2026, 10, 12, 11, 0), "0.01", order="WO-A"),
            held("000201", local(2026, 10, 12, 9, 30), "80.00", collector="W2"),
            held("000104", local(2026, 10, 12, 18, 0), "99.00")]  # after cut-off: due tomorrow
    found = unhanded_by_collector(cash, as_of=evening(cal, date(2026, 10, 12)), calendar=cal)
    assert [(f.collector, f.receipts, f.orders, f.total) for f in found] == [
        ("W1", ("000101", "000102", "000103"), ("WO-000101", "WO-A"), Decimal("0.31")),
        ("W2", ("000201",), ("WO-000201",), Decimal("80.00"))]


def test_a_collector_with_cash_from_two_days_gets_one_fact_per_due_day(cal):
    cash = [held("000101", local(2026, 10, 12, 9, 0)), held("000102", local(2026, 10, 13, 9, 0))]
    found = unhanded_by_collector(cash, as_of=evening(cal, date(2026, 10, 13)), calendar=cal)
    assert [f.key for f in found] == ["cash-unhanded:W1:2026-10-12", "cash-unhanded:W1:2026-10-13"]
    assert found[0].overdue_minutes == 24 * 60 + 30


def test_a_one_cent_short_count_is_a_shortfall_of_one_cent():
    found = classify_handover(handover="H1", collector="W1", collector_name="n", department="engineering",
                              office="SO1", handed_at=local(2026, 10, 12, 17), receipts=["000101"],
                              covered=Decimal("120.00"), counted=Decimal("119.99"))
    assert isinstance(found, HandoverShortfall)
    assert found.difference == Decimal("0.01")
    assert found.key == "cash-shortfall:H1"


def test_a_long_count_is_an_overcount_not_a_shortfall():
    found = classify_handover(handover="H1", collector="W1", collector_name="n", department="engineering",
                              office="SO1", handed_at=local(2026, 10, 12, 17), receipts=["000101"],
                              covered=Decimal("120.00"), counted=Decimal("125.50"))
    assert isinstance(found, HandoverOvercount)
    assert found.difference == Decimal("5.50")
    assert found.key == "cash-overcount:H1"


def test_an_exact_count_is_no_finding():
    assert classify_handover(handover="H1", collector="W1", collector_name="n", department="engineering",
                             office="SO1", handed_at=local(2026, 10, 12, 17), receipts=[],
                             covered=Decimal("120.00"), counted=Decimal("120")) is None


def test_blank_receipts_issued_before_the_holiday_are_due_back_five_working_days_later(cal):
    # issued Tue 2026-09-29: working days after it are 09-30, 10-08, 10-09, 10-10 (make-up Sat), 10-12
    assert receipts_return_due(local(2026, 9, 29, 10), cal, workdays=5) == local(2026, 10, 12, 17, 30)


def test_office_totals_add_up_their_collectors():
    rows = [CollectorFigures("W1", "a", "engineering", "SO1", Decimal("0.10"), Decimal("5"), Decimal("0.10"),
                             Decimal("0")),
            CollectorFigures("W2", "b", "cs", "SO1", Decimal("0.20"), Decimal("0"), Decimal("0"), Decimal("0.20")),
            CollectorFigures("W3", "c", "cs", "SO2", Decimal("1"), Decimal("0"), Decimal("0"), Decimal("1"))]
    totals = office_totals(rows)
    assert [(t.office, t.collectors, t.cash, t.electronic, t.handed_over, t.outstanding) for t in totals] == [
        ("SO1", 2, Decimal("0.30"), Decimal("5"), Decimal("0.10"), Decimal("0.20")),
        ("SO2", 1, Decimal("1"), Decimal("0"), Decimal("0"), Decimal("1"))]


moments = st.datetimes(min_value=datetime(2026, 9, 20), max_value=datetime(2026, 10, 20)).map(
    lambda d: d.replace(tzinfo=SH))
cents = st.integers(min_value=1, max_value=500_000).map(lambda c: Decimal(c) / 100)
CAL = BusinessCalendar()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(moments, cents, st.sampled_from(["W1", "W2", "W3"])), min_size=1, max_size=12),
       moments)
def test_every_overdue_receipt_is_in_exactly_one_fact_and_the_totals_add_up(items, as_of):
    cash = [held(f"{i:06d}", at, str(amount), collector=who) for i, (at, amount, who) in enumerate(items)]
    found = unhanded_by_collector(cash, as_of=as_of, calendar=CAL)

    overdue = [c for c in cash if cash_due(c.collected_at, CAL) < as_of]
    listed = [r for f in found for r in f.receipts]
    assert sorted(listed) == sorted(c.receipt for c in overdue)
    assert sum((f.total for f in found), Decimal(0)) == sum((c.amount for c in overdue), Decimal(0))
    assert len({f.key for f in found}) == len(found)
    assert all(f.overdue_minutes >= 0 and CAL.is_working_day(f.due_at.date()) for f in found)


@given(cents, cents)
def test_a_handover_is_short_long_or_exact_never_two(covered, counted):
    found = classify_handover(handover="H1", collector="W1", collector_name="n", department="engineering",
                              office="SO1", handed_at=local(2026, 10, 12, 17), receipts=[], covered=covered,
                              counted=counted)
    if covered == counted:
        assert found is None
    else:
        assert isinstance(found, HandoverShortfall if counted < covered else HandoverOvercount)
        assert found.difference == abs(covered - counted) > 0
