"""Desk operations one by one: what they record, their numbers, and refusals that leave the session untouched."""
from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from models import desk
from models.ledger.db import transaction
from models.errors import DomainError
from models.ledger.tables import AuditEvent, Callback, Office, Receipt, ServiceRequest, Staff, WorkOrder
from tests.builders import accepted_job, at, collect_fee, give_receipts, order_for, request_for, setup_office


def refused(s, expected: str, operation, /, **kwargs) -> DomainError:
    """The operation raises `expected` and has written nothing, not even into the session."""
    audits = s.scalar(select(func.count()).select_from(AuditEvent))
    with pytest.raises(DomainError) as caught:
        operation(s, **kwargs)
    assert caught.value.code == expected
    assert not s.new and not s.dirty and not s.deleted
    assert s.scalar(select(func.count()).select_from(AuditEvent)) == audits
    return caught.value


@pytest.fixture
def office(engine):
    with transaction(engine) as s:
        return setup_office(s)


def test_requests_and_orders_are_numbered_per_office_and_day(engine, office):
    with transaction(engine) as s:
        first = request_for(s, office, at=at("2026-09-30", "09:00"))
        second = request_for(s, office, at=at("2026-09-30", "09:30"))
        next_day = request_for(s, office, at=at("2026-10-08", "09:00"))
        imported = request_for(s, office, at=at("2026-09-30", "10:00"), number="PAPER-0042")
        order = order_for(s, office, second, at=at("2026-09-30", "09:40"))
    assert [first.number, second.number, next_day.number, imported.number] == [
        "R-A1-20260930-001", "R-A1-20260930-002", "R-A1-20261008-001", "PAPER-0042"]
    assert order.number == "WO-A1-20260930-001" and order.department == "engineering"


def test_an_imported_number_in_the_desks_own_format_is_skipped_not_reused(engine, office):
    with transaction(engine) as s:
        request_for(s, office, at=at("2026-10-08", "09:00"), number="R-A1-20260930-001")
        typed = request_for(s, office, at=at("2026-09-30", "09:00"))
    assert typed.number == "R-A1-20260930-002"


def test_the_agreed_fee_comes_from_the_price_list_unless_given(engine, office):
    with transaction(engine) as s:
        listed = request_for(s, office, at=at("2026-09-30", "09:00"), category="greening")
        agreed = request_for(s, office, at=at("2026-09-30", "09:05"), fee=Decimal("95"))
        refused(s, "fee_needed", desk.register, office="A1", by=office.clerk, channel="phone", resident="刘",
                address="1-101", phone="13800000000", category="plumbing", description="漏水",
                at=at("2026-09-30", "09:10"))
        refused(s, "price_category", desk.register, office="A1", by=office.clerk, channel="phone", resident="刘",
                address="1-101", phone="13800000000", category="plumbing", description="漏水",
                price="CLEAN-DEEP", at=at("2026-09-30", "09:10"))
    assert (listed.agreed_fee, agreed.agreed_fee) == (Decimal("120.00"), Decimal("95.00"))


def test_out_of_scope_work_cannot_even_be_priced(engine, office):
    with transaction(engine) as s:
        error = refused(s, "out_of_scope", desk.set_price, code="TV", category="appliance", name="电视维修",
                        fee=Decimal("100"), at=at("2026-09-30"))
    assert "appliance" in error.message("en") and "第二条" in error.message("zh_CN")


def test_setting_an_existing_price_changes_it_and_audits_the_old_fee(engine, office):
    with transaction(engine) as s:
        item = desk.set_price(s, code="PLUMB-TAP", category="plumbing", name="换龙头", fee=Decimal("90"),
                              at=at("2026-09-30"))
        event = s.scalars(select(AuditEvent).where(AuditEvent.entity_ref == "PLUMB-TAP")
                          .order_by(AuditEvent.id.desc())).first()
    assert item.fee == Decimal("90.00")
    assert event.before["fee"] == "80.00" and event.after["fee"] == "90.00"


def test_a_request_gets_one_work_order_and_walk_ins_no_phone_reply(engine, office):
    with transaction(engine) as s:
        walk_in = request_for(s, office, at=at("2026-09-30", "09:00"), channel="walk_in")
        order_for(s, office, walk_in, at=at("2026-09-30", "09:05"))
        refused(s, "already_issued", desk.issue_order, request=walk_in, by=office.clerk, worker=office.plumber,
                scheduled=at("2026-09-30", "15:00"), at=at("2026-09-30", "09:06"))
        refused(s, "reply_walk_in", desk.reply, request=walk_in, by=office.clerk, at=at("2026-09-30", "09:06"))


def test_a_phone_request_is_replied_to_once(engine, office):
    with transaction(engine) as s:
        phoned = request_for(s, office, at=at("2026-09-30", "09:00"))
        desk.reply(s, request=phoned, by=office.clerk, at=at("2026-09-30", "09:04"))
        refused(s, "already_replied", desk.reply, request=phoned, by=office.clerk, at=at("2026-09-30", "09:08"))
        refused(s, "cs_only", desk.reply, request=request_for(s, office, at=at("2026-09-30", "09:10")),
                by=office.plumber, at=at("2026-09-30", "09:12"))


def test_receipt_books_keep_the_width_of_the_first_number(engine, office):
    with transaction(engine) as s:
        numbers = give_receipts(s, office, first="0998", count=4)
        serials = s.scalars(select(Receipt.serial).where(Receipt.number.in_(numbers)).order_by(Receipt.serial)).all()
        refused(s, "receipt_exists", desk.issue_receipts, by=office.clerk, to=office.cleaner, first="1000", count=3,
                at=at("2026-09-30"))
        refused(s, "receipts_issuer", desk.issue_receipts, by=office.plumber, to=office.cleaner, first="5000",
                count=3, at=at("2026-09-30"))
        refused(s, "receipt_number", desk.issue_receipts, by=office.clerk, to=office.cleaner, first="A-1",
                count=3, at=at("2026-09-30"))
    assert numbers == ["0998", "0999", "1000", "1001"] and serials == [998, 999, 1000, 1001]


def test_a_receipt_held_by_cs_can_be_used_by_any_collector(engine, office, calendar):
    with transaction(engine) as s:
        give_receipts(s, office, to=office.clerk, first="7001", count=2)
        order = accepted_job(s, calendar, office, at=at("2026-09-30", "09:00"), category="cleaning")
        paid = collect_fee(s, office, order, receipt="7001", at=at("2026-09-30", "12:00"), method="alipay")
        refused(s, "already_collected", desk.collect, order=order, by=office.cleaner, receipt="7002",
                amount=Decimal("200"), method="cash", at=at("2026-09-30", "12:05"))
    assert paid.collected_by_id is not None and paid.method == "alipay" and paid.amount == Decimal("200.00")


def test_a_rework_order_can_be_closed_with_a_zero_receipt(engine, office, calendar):
    with transaction(engine) as s:
        give_receipts(s, office, first="000101", count=3)
        order = accepted_job(s, calendar, office, at=at("2026-09-30", "09:00"))
        rework = desk.callback(s, order=order, by=office.clerk, outcome="unsatisfied", at=at("2026-10-08", "09:00"),
                               calendar=calendar).rework_order
        desk.complete(s, order=rework, by=office.plumber, at=at("2026-10-08", "11:00"))
        desk.accept(s, order=rework, signed_by="刘女士", at=at("2026-10-08", "11:05"), calendar=calendar)
        zero = collect_fee(s, office, rework, receipt="000101", at=at("2026-10-08", "11:10"), amount=Decimal("0"))
    assert zero.amount == Decimal("0.00") and rework.fee == Decimal("0.00")


def test_every_further_unsatisfied_callback_opens_the_next_rework_of_the_same_job(engine, office, calendar):
    with transaction(engine) as s:
        order = accepted_job(s, calendar, office, at=at("2026-09-30", "09:00"))
        first = desk.callback(s, order=order, by=office.clerk, outcome="unsatisfied", at=at("2026-10-08", "09:00"),
                              calendar=calendar).rework_order
        refused(s, "no_callback_owed", desk.callback, order=order, by=office.clerk, outcome="satisfied",
                at=at("2026-10-08", "09:30"), calendar=calendar)
        desk.complete(s, order=first, by=office.plumber, at=at("2026-10-08", "11:00"))
        desk.accept(s, order=first, signed_by="刘女士", at=at("2026-10-08", "11:05"), calendar=calendar)
        second = desk.callback(s, order=first, by=office.clerk, outcome="unsatisfied", at=at("2026-10-09", "09:00"),
                               calendar=calendar).rework_order
        chain = s.scalars(select(WorkOrder.number).where(WorkOrder.request_id == order.request_id)
                          .order_by(WorkOrder.id)).all()
        owed = s.scalar(select(func.count()).select_from(Callback).where(Callback.done_at.is_(None)))
        second_of = s.get(WorkOrder, second.id).rework_of_id
    assert chain == [order.number, f"{order.number}-R1", f"{order.number}-R2"]
    assert second_of == first.id
    assert owed == 0  # the second rework's callback opens when the resident accepts it


def test_events_out_of_order_are_refused(engine, office, calendar):
    with transaction(engine) as s:
        req = request_for(s, office, at=at("2026-09-30", "10:00"))
        refused(s, "before_event", desk.reply, request=req, by=office.clerk, at=at("2026-09-30", "09:59"))
        order = order_for(s, office, req, at=at("2026-09-30", "10:05"))
        desk.complete(s, order=order, by=office.plumber, at=at("2026-09-30", "12:00"))
        refused(s, "before_event", desk.accept, order=order, signed_by="刘", at=at("2026-09-30", "11:00"),
                calendar=calendar)
        desk.accept(s, order=order, signed_by="刘", at=at("2026-09-30", "12:10"), calendar=calendar)
        give_receipts(s, office, first="000101", count=1)
        refused(s, "collect_before_acceptance", desk.collect, order=order, by=office.plumber, receipt="000101",
                amount=Decimal("80"), method="cash", at=at("2026-09-30", "12:05"))
        refused(s, "callback_before_acceptance", desk.callback, order=order, by=office.clerk, outcome="satisfied",
                at=at("2026-09-30", "12:05"), calendar=calendar)


def test_staff_of_another_office_cannot_register_or_work_here(engine, office):
    with transaction(engine) as s:
        b2 = setup_office(s, "B2")
        refused(s, "wrong_office", desk.register, office="A1", by=b2.clerk, channel="phone", resident="刘",
                address="1-101", phone="13800000000", category="plumbing", description="漏水", fee=Decimal("80"),
                at=at("2026-09-30"))
        req = request_for(s, office, at=at("2026-09-30", "09:00"))
        refused(s, "wrong_office", desk.issue_order, request=req, by=office.clerk, worker=b2.plumber,
                scheduled=at("2026-09-30", "15:00"), at=at("2026-09-30", "09:10"))


def test_reference_data_is_not_created_twice(engine, office):
    with transaction(engine) as s:
        refused(s, "exists", desk.add_office, code="A1", name="again", at=at("2026-09-30"))
        refused(s, "exists", desk.add_staff, code=office.clerk, name="again", office="A1", department="cs",
                role="clerk", at=at("2026-09-30"))
        refused(s, "unknown_role", desk.add_staff, code="X1", name="x", office="A1", department="cs",
                role="boss", at=at("2026-09-30"))
        refused(s, "not_found", desk.add_staff, code="X1", name="x", office="Z9", department="cs",
                role="clerk", at=at("2026-09-30"))


def test_every_operation_leaves_an_audit_event_naming_its_actor(engine, office, calendar):
    with transaction(engine) as s:
        order = accepted_job(s, calendar, office, at=at("2026-09-30", "09:00"))
        request_number = s.get(ServiceRequest, order.request_id).number
        trail = s.execute(select(AuditEvent.actor, AuditEvent.action)
                          .where(AuditEvent.entity_ref.in_((order.number, request_number)))
                          .order_by(AuditEvent.id)).all()
    assert trail == [("A1-CS1", "register"), ("A1-CS1", "reply"), ("A1-CS1", "issue"), ("A1-PL1", "complete"),
                     ("resident:刘女士", "accept")]


def test_a_registration_decided_on_plain_facts_is_the_one_decided_on_the_rows(engine, office):
    # the import hands decide_register its office and clerk as desk.OfficeFacts / desk.StaffFacts
    with transaction(engine) as s:
        b2 = setup_office(s, "B2")
        row = s.scalar(select(Office).where(Office.code == "A1"))
        here = desk.OfficeFacts(id=row.id, code=row.code)

        def facts(code: str) -> desk.StaffFacts:
            m = s.scalar(select(Staff).where(Staff.code == code))
            return desk.StaffFacts(id=m.id, code=m.code, department=m.department, office_id=m.office_id,
                                   active=m.active)

        form = dict(channel="phone", resident="刘", address="1-101", phone="13800000000", category="plumbing",
                    description="漏水", fee=Decimal("80"), at=at("2026-09-30", "09:00"), number="R-1")
        on_facts = desk.decide_register(s, office=here, by=facts(office.clerk), **form)
        assert on_facts == desk.decide_register(s, office="A1", by=office.clerk, **form)
        assert on_facts.values["office_id"] == row.id and on_facts.audits[0]["after"]["office"] == "A1"
        for clerk, expected in ((facts(b2.clerk), "wrong_office"), (facts(office.plumber), "cs_only"),
                                (replace(facts(office.clerk), active=False), "staff_inactive")):
            with pytest.raises(DomainError) as caught:
                desk.decide_register(s, office=here, by=clerk, **form)
            assert caught.value.code == expected
        with pytest.raises(DomainError) as on_rows:
            desk.decide_register(s, office="A1", by=b2.clerk, **form)
        assert on_rows.value.code == "wrong_office"
