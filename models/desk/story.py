"""An order's whole story for `orders show`: the request, every order of its rework chain, the money, the callbacks.

Plain frozen values out, so the CLI (or anything else) can print them without touching the ORM.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, aliased

from models.errors import NotFound
from models.ledger.tables import (
    AuditEvent,
    Callback,
    CashHandover,
    Office,
    Receipt,
    ServiceRequest,
    Staff,
    WorkOrder,
)


@dataclass(frozen=True)
class RequestFacts:
    number: str
    office: str
    channel: str
    received_at: datetime
    received_by: str
    resident: str
    address: str
    phone: str
    category: str
    description: str
    agreed_fee: Decimal
    preferred_at: datetime | None
    replied_at: datetime | None
    replied_by: str | None


@dataclass(frozen=True)
class OrderFacts:
    number: str
    department: str
    worker: str
    issued_at: datetime
    scheduled_for: datetime
    completed_at: datetime | None
    accepted_at: datetime | None
    accepted_by: str | None
    fee: Decimal
    rework_of: str | None


@dataclass(frozen=True)
class ReceiptFacts:
    number: str
    order: str
    amount: Decimal | None
    method: str | None
    collected_at: datetime | None
    collected_by: str | None
    state: str
    reason: str | None
    handover: str | None


@dataclass(frozen=True)
class HandoverFacts:
    number: str
    handed_by: str
    cashier: str
    handed_at: datetime
    confirmed_at: datetime | None
    declared: Decimal
    counted: Decimal


@dataclass(frozen=True)
class CallbackFacts:
    order: str
    created_at: datetime
    due_at: datetime
    done_at: datetime | None
    done_by: str | None
    outcome: str | None
    note: str | None
    rework_order: str | None


@dataclass(frozen=True)
class EventFacts:
    at: datetime
    actor: str
    action: str
    entity: str
    ref: str


@dataclass(frozen=True)
class OrderStory:
    """Everything the ledger knows about one job, from registration to the last callback."""

    asked: str
    request: RequestFacts
    orders: tuple[OrderFacts, ...]
    receipts: tuple[ReceiptFacts, ...]
    handovers: tuple[HandoverFacts, ...]
    callbacks: tuple[CallbackFacts, ...]
    events: tuple[EventFacts, ...]


def order_story(s: Session, *, number: str) -> OrderStory:
    """The story of the job that order (or request) `number` belongs to, rework chain included."""
    request_id = s.scalar(select(WorkOrder.request_id).where(WorkOrder.number == number))
    if request_id is None:
        request_id = s.scalar(select(ServiceRequest.id).where(ServiceRequest.number == number))
    if request_id is None:
        raise NotFound("not_found", what="work_order", ref=number)

    received_by, replied_by = aliased(Staff), aliased(Staff)
    r = s.execute(
        select(ServiceRequest, Office.code, received_by.code, replied_by.code)
        .join(Office, Office.id == ServiceRequest.office_id)
        .join(received_by, received_by.id == ServiceRequest.received_by_id)
        .outerjoin(replied_by, replied_by.id == ServiceRequest.replied_by_id)
        .where(ServiceRequest.id == request_id)).one()
    req, office, by, replier = r
    request = RequestFacts(req.number, office, req.channel, req.received_at, by, req.resident_name, req.address,
                           req.phone, req.category, req.description, req.agreed_fee, req.preferred_at,
                           req.replied_at, replier)

    worker, parent = aliased(Staff), aliased(WorkOrder)
    orders = tuple(
        OrderFacts(o.number, o.department, w, o.issued_at, o.scheduled_for, o.completed_at, o.accepted_at,
                   o.accepted_by, o.fee, p)
        for o, w, p in s.execute(
            select(WorkOrder, worker.code, parent.number)
            .join(worker, worker.id == WorkOrder.worker_id)
            .outerjoin(parent, parent.id == WorkOrder.rework_of_id)
            .where(WorkOrder.request_id == request_id)
            .order_by(WorkOrder.issued_at, WorkOrder.id)))
    order_ids = select(WorkOrder.id).where(WorkOrder.request_id == request_id).scalar_subquery()

    collector = aliased(Staff)
    receipts = tuple(
        ReceiptFacts(rc.number, on, rc.amount, rc.method, rc.collected_at, c, rc.state, rc.reason, h)
        for rc, on, c, h in s.execute(
            select(Receipt, WorkOrder.number, collector.code, CashHandover.number)
            .join(WorkOrder, WorkOrder.id == Receipt.order_id)
            .outerjoin(collector, collector.id == Receipt.collected_by_id)
            .outerjoin(CashHandover, CashHandover.id == Receipt.handover_id)
            .where(WorkOrder.request_id == request_id)
            .order_by(Receipt.collected_at, Receipt.id)))

    hander, cashier = aliased(Staff), aliased(Staff)
    handover_ids = select(Receipt.handover_id).where(Receipt.order_id.in_(order_ids)).scalar_subquery()
    handovers = tuple(
        HandoverFacts(h.number, hb, cb, h.handed_at, h.confirmed_at, h.declared_amount, h.counted_amount)
        for h, hb, cb in s.execute(
            select(CashHandover, hander.code, cashier.code)
            .join(hander, hander.id == CashHandover.handed_by_id)
            .join(cashier, cashier.id == CashHandover.received_by_id)
            .where(CashHandover.id.in_(handover_ids))
            .order_by(CashHandover.handed_at)))

    done_by, rework = aliased(Staff), aliased(WorkOrder)
    callbacks = tuple(
        CallbackFacts(on, cb.created_at, cb.due_at, cb.done_at, d, cb.outcome, cb.note, rw)
        for cb, on, d, rw in s.execute(
            select(Callback, WorkOrder.number, done_by.code, rework.number)
            .join(WorkOrder, WorkOrder.id == Callback.order_id)
            .outerjoin(done_by, done_by.id == Callback.done_by_id)
            .outerjoin(rework, rework.id == Callback.rework_order_id)
            .where(WorkOrder.request_id == request_id)
            .order_by(Callback.created_at, Callback.id)))

    refs = {request.number, *(o.number for o in orders)}
    receipt_refs = {rc.number for rc in receipts}
    handover_refs = {h.number for h in handovers}
    events = tuple(
        EventFacts(e.at, e.actor, e.action, e.entity, e.entity_ref)
        for e in s.scalars(
            select(AuditEvent)
            .where(or_(
                AuditEvent.entity.in_(("service_request", "work_order")) & AuditEvent.entity_ref.in_(refs),
                (AuditEvent.entity == "receipt") & AuditEvent.entity_ref.in_(receipt_refs or {""}),
                (AuditEvent.entity == "cash_handover") & AuditEvent.entity_ref.in_(handover_refs or {""})))
            .order_by(AuditEvent.at, AuditEvent.id)))
    return OrderStory(number, request, orders, receipts, handovers, callbacks, events)
