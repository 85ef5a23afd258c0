"""The benchmark's generator and harness, at N=200 on every backend: the data is desk-shaped, the planted open
items are exactly what bianmin finds, and the hand-written SQL the bench compares against gives the same answers.
Nothing here measures time."""
from __future__ import annotations

import json
import re
from datetime import datetime
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from bench import run as bench
from bench.generate import CURRENT_DAYS, END_DAY, BenchParams, Planted, daily_counts, generate_into
from models.calendar import BusinessCalendar
from models.ledger.db import session_factory
from models.rules import callback_due
from models.ledger.tables import Callback, CashHandover, Receipt, ServiceRequest, WorkOrder


@pytest.fixture
def planted(db_url) -> Planted:
    return generate_into(db_url, BenchParams(orders=200, open_items=10))


@pytest.fixture
def ctx(db_url, planted, tmp_path) -> bench.Ctx:
    return bench.Ctx(db_url, planted, tmp_path)


def test_generator_plants_the_same_open_items_whatever_the_history(planted):
    assert len(planted.replies_overdue) == 10 + 1
    assert len(planted.callbacks_overdue) == 10 + 1
    assert len(planted.orders_overdue) == 10
    assert len(planted.cash_unhanded) == 10 + 1 + 1
    assert planted.counts["service_requests"] > 200


def test_generated_numbers_follow_the_desk_numbering(engine, planted):
    with session_factory(engine)() as s:
        requests = s.scalars(select(ServiceRequest.number)).all()
        orders = s.scalars(select(WorkOrder.number)).all()
        receipts = s.scalars(select(Receipt.number)).all()
    assert all(re.fullmatch(r"R-O\d{3}-\d{8}-\d{3,}", n) for n in requests)
    assert all(re.fullmatch(r"WO-O\d{3}-\d{8}-\d{3,}(-R\d+)?", n) for n in orders)
    assert all(n.isdigit() for n in receipts)


def test_every_accepted_paid_job_has_one_used_receipt_for_its_agreed_fee(engine, planted):
    with session_factory(engine)() as s:
        rows = s.execute(
            select(WorkOrder.number, WorkOrder.fee, func.count(Receipt.id), func.sum(Receipt.amount))
            .outerjoin(Receipt, (Receipt.order_id == WorkOrder.id) & (Receipt.state == "used"))
            .where(WorkOrder.accepted_at.is_not(None), WorkOrder.rework_of_id.is_(None))
            .group_by(WorkOrder.id, WorkOrder.number, WorkOrder.fee)).all()
    assert rows
    assert all(count == 1 and Decimal(str(paid)).quantize(Decimal("0.01")) == fee
               for _number, fee, count, paid in rows)


def test_handovers_cover_exactly_the_cash_they_declare_and_come_after_collection(engine, planted):
    with session_factory(engine)() as s:
        rows = s.execute(
            select(CashHandover.number, CashHandover.declared_amount, CashHandover.handed_at,
                   func.sum(Receipt.amount), func.max(Receipt.collected_at), func.min(Receipt.method))
            .join(Receipt, Receipt.handover_id == CashHandover.id)
            .group_by(CashHandover.id, CashHandover.number, CashHandover.declared_amount,
                      CashHandover.handed_at)).all()
    assert rows
    for _number, declared, handed_at, covered, last_collected, method in rows:
        assert Decimal(str(covered)).quantize(Decimal("0.01")) == declared
        assert method == "cash"
        assert last_collected <= handed_at


def test_each_accepted_job_owes_its_first_callback_by_the_procedures_due_time(engine, planted):
    calendar = BusinessCalendar()
    with session_factory(engine)() as s:
        firsts = s.execute(
            select(WorkOrder.accepted_at, Callback.created_at, Callback.due_at)
            .join(Callback, Callback.order_id == WorkOrder.id)
            .where(Callback.created_at == WorkOrder.accepted_at)).all()
        accepted = s.scalar(select(func.count()).where(WorkOrder.accepted_at.is_not(None)))
    assert len(firsts) == accepted
    assert all(due == callback_due(at, calendar) for at, _created, due in firsts)


def test_nothing_happens_after_the_cash_check_except_the_planted_late_closures(engine, planted):
    late = datetime.fromisoformat(planted.cash_as_of)
    with session_factory(engine)() as s:
        replied_later = s.scalar(select(func.count()).where(ServiceRequest.replied_at > late))
        done_later = s.scalar(select(func.count()).where(Callback.done_at > late))
        handed_later = s.scalar(select(func.count()).where(CashHandover.handed_at > late))
        received_later = s.scalar(select(func.count()).where(ServiceRequest.received_at > late))
    assert (replied_later, done_later, handed_later, received_later) == (0, 1, 1, 0)


def test_bianmin_finds_exactly_the_planted_overdue_replies_and_so_does_the_baseline_sql(ctx, planted):
    assert bench.replies_bianmin(ctx) == planted.replies_overdue
    assert bench.replies_baseline(ctx) == planted.replies_overdue


def test_chase_callbacks_and_its_baseline_sql_agree_on_the_planted_callbacks_and_late_orders(ctx, planted):
    answer = bench.callbacks_bianmin(ctx)
    assert answer == bench.callbacks_baseline(ctx)
    assert sorted(number for kind, number, _level in answer if kind == "callback") == planted.callbacks_overdue
    assert sorted(number for kind, number, _level in answer if kind == "order-overdue") == planted.orders_overdue
    assert {level for kind, _n, level in answer if kind == "callback"} == {1, 2}


def test_cash_check_and_its_baseline_sql_agree_on_the_planted_unhanded_cash(ctx, planted):
    answer = bench.cash_bianmin(ctx)
    assert answer == bench.cash_baseline(ctx)
    assert answer["unhanded"] == planted.cash_unhanded


def test_monthly_tally_totals_from_raw_sql_equal_the_reconciliation(ctx, planted):
    baseline = bench.tally_baseline(ctx)
    assert baseline["totals"] == bench.tally_answer(ctx)["totals"]
    assert baseline["callback_lines"] == bench.tally_answer(ctx)["callback_lines"]
    assert int(baseline["totals"]["accepted"]) > 0


def test_the_harness_measures_an_item_in_child_processes_and_compares_answers(db_url, planted, tmp_path):
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"planted": planted.__dict__}))
    [row] = bench.measure(["chase-replies"], url=db_url, manifest=manifest, reps=1, log=lambda _m: None).values()
    assert row["answers_agree"] is True
    assert len(row["baseline"]["times"]) == len(row["bianmin"]["times"]) == 1
    assert row["bianmin"]["answer"] == planted.replies_overdue
    assert row["bianmin"]["peak_rss_mb"] > 0


def _year_days() -> list:
    from datetime import timedelta

    return [END_DAY - timedelta(days=364 - i) for i in range(365)]


def test_the_current_fortnight_holds_the_same_volume_whatever_the_history():
    calendar, days = BusinessCalendar(), _year_days()
    small = daily_counts(days, 10_000, layout="year", calendar=calendar)
    large = daily_counts(days, 1_000_000, layout="year", calendar=calendar)
    assert small[-CURRENT_DAYS:] == large[-CURRENT_DAYS:]
    assert sum(small[-CURRENT_DAYS:]) > 0
    assert sum(small) == 10_000 and sum(large) == 1_000_000


def test_the_month_layout_puts_every_order_outside_the_current_fortnight_in_july():
    calendar, days = BusinessCalendar(), _year_days()
    counts = daily_counts(days, 100_000, layout="month", calendar=calendar)
    july = sum(n for d, n in zip(days, counts) if (d.year, d.month) == (2026, 7))
    assert july + sum(counts[-CURRENT_DAYS:]) == 100_000
    assert july > 99_000


def test_an_unknown_layout_is_refused_by_name():
    with pytest.raises(ValueError, match="unknown layout 'decade'"):
        daily_counts(_year_days(), 10, layout="decade", calendar=BusinessCalendar())


def test_the_current_fortnights_jobs_and_open_items_are_in_the_first_two_offices_only(db_url, engine):
    from datetime import timedelta

    from models.ledger.tables import Office

    generate_into(db_url, BenchParams(orders=15_000, open_items=10))  # three offices
    since = BusinessCalendar().at(END_DAY - timedelta(days=CURRENT_DAYS - 1), datetime.min.time())
    with session_factory(engine)() as s:
        offices = s.scalars(select(Office.code)).all()
        busy_now = set(s.scalars(select(Office.code).join(ServiceRequest, ServiceRequest.office_id == Office.id)
                                 .where(ServiceRequest.received_at >= since)))
    assert len(offices) == 3
    assert busy_now == {"O001", "O002"}


def test_the_markdown_table_keeps_each_note_of_a_row_apart():
    results = {"db": "sqlite", "orders": 10_000, "reps": 5, "build": {"rows": 61_904, "seconds": 1.9},
               "planted": {"busiest_month": "2026-07", "busiest_month_orders": 1_112},
               "items": {"dispatch-smtp": {
                   "baseline": {"times": [1.5, 1.6], "peak_rss_mb": 64.2, "messages_per_s": 322.3, "alerts_per_s": 6446.1},
                   "bianmin": {"times": [1.7, 1.8], "peak_rss_mb": 135.4, "messages_per_s": 299.0, "alerts_per_s": 5979.7},
                   "ratio": 1.08, "ratio_min": 1.13, "answers_agree": True, "python_loop_s": 0.3}}}
    row = next(line for line in bench.markdown(results).splitlines() if line.startswith("| dispatch-smtp"))
    assert row.split(" | ")[5] == ("agree; baseline: 322 msg/s, 6446 alerts/s; bianmin: 299 msg/s, 5980 alerts/s; "
                                   "python loop 0.3 s")
