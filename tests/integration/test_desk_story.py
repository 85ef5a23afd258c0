"""The whole procedure through the desk operations, on both backends."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from sqlalchemy import func, select

from models import desk
from models.ledger.db import transaction
from models.ledger.tables import AuditEvent, Callback, CashHandover, Receipt, WorkOrder
from tests.builders import accepted_job, at, collect_fee, give_receipts, hand_over, setup_office


def test_a_job_runs_from_registration_to_a_satisfied_callback_after_free_rework(engine, calendar):
    with transaction(engine) as s:
        a1 = setup_office(s)
        receipts = give_receipts(s, a1, count=3)
        order = accepted_job(s, calendar, a1, at=at("2026-09-30", "10:00"))
        paid = collect_fee(s, a1, order, receipt=receipts[0], at=at("2026-09-30", "12:30"))
        handed = hand_over(s, a1, receipts=[receipts[0]], at=at("2026-09-30", "16:00"))
        outcome = desk.callback(s, order=order, by=a1.clerk, outcome="unsatisfied", at=at("2026-10-08", "10:00"),
                                calendar=calendar, note="还在滴水")
        rework = outcome.rework_order
        desk.complete(s, order=rework, by=a1.plumber, at=at("2026-10-08", "15:00"))
        desk.accept(s, order=rework, signed_by="刘女士", at=at("2026-10-08", "15:10"), calendar=calendar)
        final = desk.callback(s, order=rework, by=a1.clerk, outcome="satisfied", at=at("2026-10-09", "10:00"),
                              calendar=calendar)
    with transaction(engine) as s:
        assert order.number.startswith("WO-A1-20260930-")
        assert paid.amount == Decimal("80.00") and paid.state == "used"
        assert s.get(CashHandover, handed.id).declared_amount == Decimal("80.00")
        assert rework.number == f"{order.number}-R1" and rework.fee == Decimal("0.00")
        assert s.get(WorkOrder, rework.id).rework_of_id == order.id
        assert final.callback.outcome == "satisfied" and final.rework_order is None
        assert s.scalar(select(func.count()).select_from(Callback).where(Callback.done_at.is_(None))) == 0
        assert s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.entity_ref == order.number)) >= 4


def test_acceptance_opens_a_callback_due_two_working_days_later(engine, calendar):
    with transaction(engine) as s:
        a1 = setup_office(s)
        order = accepted_job(s, calendar, a1, at=at("2026-02-13", "09:00"))
        due = s.scalar(select(Callback.due_at).where(Callback.order_id == order.id))
    assert calendar.local(due) == at("2026-02-24", "17:30")
