"""The desk's decisions, pure: plain values and the current state in, a decision or a DomainError refusal out.

No session here: what a decision needs from the ledger is looked up first (models.desk.queries, None where there
is no such row) and passed in; a missing row is refused here, in the order the procedure checks things, so a row
with two faults is refused for the same one whoever asks. The decision is written by its apply (models.desk.apply).
"""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from models import rules as procedure
from models.calendar import BusinessCalendar
from models.desk.facts import SERIAL_LIMIT, ZERO, Decision, Linked, OfficeFacts, StaffFacts
from models.errors import DomainError, NotFound
from models.ledger import values as value_rules
from models.ledger.codes import check_office_code
from models.ledger.tables import (
    CALLBACK_OUTCOMES,
    CHANNELS,
    DEPARTMENTS,
    PAYMENT_METHODS,
    ROLES,
    Callback,
    CashHandover,
    Community,
    DepartmentReport,
    Office,
    PriceItem,
    Receipt,
    ReceiptBook,
    ServiceRequest,
    Staff,
    WorkOrder,
)

_CENT = Decimal("0.01")
# a refusal names a table by its code; the catalogue (models/texts.py "thing.*") has the words
WHAT = {
    Office: "office",
    Community: "community",
    Staff: "staff",
    PriceItem: "price_item",
    ServiceRequest: "request",
    WorkOrder: "work_order",
    Receipt: "receipt",
    CashHandover: "handover",
    DepartmentReport: "department_report",
}


# -- the checks every decision is made of ----------------------------------------------------------------------
def found(row: Any, model: type, ref: Any) -> Any:
    """The row looked up for `ref`, or the clerk's 'not found'."""
    if row is None:
        raise NotFound("not_found", what=WHAT[model], ref=ref)
    return row


def active(staff: Any) -> Any:
    if not staff.active:
        raise DomainError("staff_inactive", staff=staff.code)
    return staff


def active_found(row: Staff | None, ref: Any) -> Staff:
    return active(found(row, Staff, ref))


def require_cs(staff: Any, action: str) -> None:
    if staff.department != "cs":
        raise DomainError("cs_only", staff=staff.code, department=staff.department, action=action)


def require_office(staff: Any, office: Any) -> None:
    if staff.office_id != office.id:
        raise DomainError("wrong_office", staff=staff.code, office=office.code)


def require_aware(at: datetime, field: str = "at") -> None:
    if at.tzinfo is None:
        raise ValueError(f"naive datetime {at!r}: desk operations take aware times")
    if not value_rules.EARLIEST_YEAR <= at.year <= value_rules.LATEST_YEAR:  # cheap: every row of an import
        value_rules.moment(at, field=field)


def not_before(at: datetime, earlier: datetime | None, event: str) -> None:
    """An event recorded before the one it depends on would rewrite history: refuse it."""
    if earlier is not None and at < earlier:
        raise DomainError("before_event", at=at.isoformat(), event=event, event_at=earlier.isoformat())


def money(value: Decimal | str | int | None, field: str) -> Decimal | None:
    """An amount the ledger can hold (models.ledger.values.money: to the cent, not negative, within Numeric(12, 2))."""
    if value is None:
        return None
    if type(value) is Decimal and value.is_finite() and not value.is_signed() \
            and value < value_rules.MONEY_LIMIT and value == value.quantize(_CENT):
        return value.quantize(_CENT)  # what the CLI and the import hand over, already read by the same rule
    return value_rules.money(value, field=field)


def text(value: str | None, field: str, column: Any, *, required: bool = False) -> str | None:
    """`value` stripped, if its column holds it and it has no control character (models.ledger.values.text)."""
    if required and not (value or "").strip():
        raise DomainError("missing", field=field)
    return value_rules.text(value, field=field, column=column)


def check_category(category: str) -> None:
    scope = procedure.scope_of(category)  # procedure 2, defined once in models.rules
    if scope == "out":
        raise DomainError("out_of_scope", category=category)
    if scope == "unknown":
        raise DomainError("unknown_category", category=category)


def refuse_taken(taken: bool, model: type, ref: str) -> None:
    """A natural key given by the caller that the ledger already holds."""
    if taken:
        raise DomainError("exists", what=WHAT[model], ref=ref)


def numbered(draft: Decision, field: str, number: str) -> Decision:
    """The decision with its new row's number (given and checked, or the next free one), in the row and its audit.

    A draft is its caller's own, made by its rule for this one decision: filled in where it is, not copied (an
    import decides 100k of them, and each copy was four more objects for the cyclic GC to track)."""
    draft.values[field] = number
    for audit in draft.audits:
        audit["entity_ref"] = number
    return draft


def day(at: datetime) -> str:
    return at.strftime("%Y%m%d")


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def event(*, at: datetime, actor: str, action: str, entity: str, ref: str | None, before: dict | None = None,
          after: dict | None = None) -> dict[str, Any]:
    return {"at": at, "actor": actor, "action": action, "entity": entity, "entity_ref": ref, "before": before,
            "after": after}


def order_facts(o: Any) -> dict[str, Any]:
    """A work order (a row, or its values as a dict) as its audit events record it."""
    get = o.get if isinstance(o, dict) else o.__getattribute__
    return {"number": get("number"), "department": get("department"), "worker_id": get("worker_id"),
            "fee": str(get("fee")), "scheduled_for": iso(get("scheduled_for")),
            "completed_at": iso(get("completed_at")), "accepted_at": iso(get("accepted_at")),
            "accepted_by": get("accepted_by"), "rework_of_id": get("rework_of_id")}


def receipt_facts(r: Any) -> dict[str, Any]:
    """A receipt (a row, or its values as a dict) as its audit events record it."""
    get = r.get if isinstance(r, dict) else r.__getattribute__
    amount = get("amount")
    return {"number": get("number"), "state": get("state"), "order_id": get("order_id"),
            "amount": None if amount is None else str(amount), "method": get("method"),
            "collected_at": iso(get("collected_at")), "collected_by_id": get("collected_by_id"),
            "reason": get("reason"), "handover_id": get("handover_id")}


# -- reference data ------------------------------------------------------------------------------------------
def add_office(*, code: str, name: str, at: datetime, actor: str) -> Decision:
    require_aware(at)
    check_office_code(code)
    return Decision(Office, {"code": code, "name": name}, None,
                    (event(at=at, actor=actor, action="add", entity="office", ref=code,
                           after={"code": code, "name": name}),))


def add_community(*, office: Office | None, office_ref: Any, code: str, name: str, at: datetime,
                  actor: str) -> Decision:
    require_aware(at)
    code = text(code, "code", Community.code, required=True)
    name = text(name, "name", Community.name, required=True)
    off = found(office, Office, office_ref)
    return Decision(Community, {"office_id": off.id, "code": code, "name": name}, None,
                    (event(at=at, actor=actor, action="add", entity="community", ref=code,
                           after={"code": code, "name": name, "office": off.code}),))


def price_code(code: str) -> str:
    return text(code, "code", PriceItem.code, required=True)


def add_staff(*, code: str, name: str, office: Office | None, office_ref: Any, department: str, role: str,
              at: datetime, actor: str) -> Decision:
    require_aware(at)
    code, name = text(code, "code", Staff.code, required=True), text(name, "name", Staff.name, required=True)
    off = found(office, Office, office_ref)
    if department not in DEPARTMENTS:
        raise DomainError("unknown_department", department=department)
    if role not in ROLES:
        raise DomainError("unknown_role", role=role)
    return Decision(Staff, {"code": code, "name": name, "office_id": off.id, "department": department,
                            "role": role, "active": True}, None,
                    (event(at=at, actor=actor, action="add", entity="staff", ref=code,
                           after={"code": code, "name": name, "office": off.code, "department": department,
                                  "role": role}),))


def set_price(*, code: str, category: str, name: str, fee: Any, at: datetime, actor: str,
              item: PriceItem | None) -> Decision:
    """`item`: the price item with this code today, if any (it is changed, else one is added)."""
    require_aware(at)
    code = text(code, "code", PriceItem.code, required=True)
    name = text(name, "name", PriceItem.name, required=True)
    check_category(category)
    amount = money(fee, "fee")
    before = None if item is None else {"category": item.category, "name": item.name, "fee": str(item.fee)}
    values = {"category": category, "name": name, "fee": amount}
    return Decision(PriceItem, values if item else {"code": code, **values}, ("code", code) if item else None,
                    (event(at=at, actor=actor, action="set", entity="price_item", ref=code, before=before,
                           after={"category": category, "name": name, "fee": str(amount)}),))


# -- registration and reply (procedure 3.1, 4.2) -------------------------------------------------------------
def register(*, office: Office | OfficeFacts | None, office_ref: Any, by: Staff | StaffFacts | None, by_ref: Any,
             channel: str, resident: str, address: str, phone: str, category: str, description: str,
             at: datetime, item: PriceItem | None, price: Any, fee: Decimal | None, preferred: datetime | None,
             expected_result: str | None, community: Community | None, community_ref: Any) -> Decision:
    """A registration without its number (`numbered` adds it): only CS, only in-scope work, a fee agreed."""
    require_aware(at)
    off = found(office, Office, office_ref)
    clerk = active_found(by, by_ref)
    require_cs(clerk, "register")
    require_office(clerk, off)
    if channel not in CHANNELS:
        raise DomainError("unknown_channel", channel=channel)
    check_category(category)
    resident = text(resident, "resident", ServiceRequest.resident_name, required=True)
    address = text(address, "address", ServiceRequest.address, required=True)
    phone = text(phone, "phone", ServiceRequest.phone, required=True)
    description = text(description, "description", ServiceRequest.description, required=True)
    expected_result = text(expected_result, "expected_result", ServiceRequest.expected_result)
    if preferred is not None:
        require_aware(preferred, "preferred")
    if price is not None:
        item = found(item, PriceItem, price)
    if item is not None and item.category != category:
        raise DomainError("price_category", price=item.code, price_category=item.category, category=category)
    agreed = money(fee, "fee")
    if agreed is None:
        if item is None:
            raise DomainError("fee_needed")
        agreed = item.fee
    comm = None
    if community_ref is not None:
        comm = found(community, Community, community_ref)
        if comm.office_id != off.id:
            raise DomainError("community_office", community=comm.code, office=off.code)
    values = {"number": None, "office_id": off.id, "community_id": comm.id if comm else None,
              "channel": channel, "received_at": at, "received_by_id": clerk.id, "resident_name": resident.strip(),
              "address": address.strip(), "phone": phone.strip(), "category": category,
              "description": description, "preferred_at": preferred, "price_item_id": item.id if item else None,
              "agreed_fee": agreed, "expected_result": expected_result, "replied_at": None, "replied_by_id": None}
    audit = event(at=at, actor=clerk.code, action="register", entity="service_request", ref=None,
                  after={"channel": channel, "category": category, "agreed_fee": str(agreed), "office": off.code,
                         "price": item.code if item else None, "preferred_at": iso(preferred)})
    return Decision(ServiceRequest, values, None, (audit,))


def reply(*, number: str, channel: str, received_at: datetime, replied_at: datetime | None,
          by: Staff | StaffFacts, at: datetime) -> Decision:
    """What a reply changes on the request with these facts, or its refusal."""
    require_aware(at)
    clerk = active(by)
    require_cs(clerk, "reply")
    if channel != "phone":
        raise DomainError("reply_walk_in", request=number)
    if replied_at is not None:
        raise DomainError("already_replied", request=number, replied_at=replied_at.isoformat())
    not_before(at, received_at, "register")
    audit = event(at=at, actor=clerk.code, action="reply", entity="service_request", ref=number,
                  before={"replied_at": None}, after={"replied_at": at.isoformat()})
    return Decision(ServiceRequest, {"replied_at": at, "replied_by_id": clerk.id}, ("number", number), (audit,))


# -- the work order (procedure 3.2.1, 3.2.2) -----------------------------------------------------------------
def issue_order(*, request: ServiceRequest | None, request_ref: Any, by: Staff | None, by_ref: Any,
                worker: Staff | None, worker_ref: Any, request_office: Office | None, existing: str | None,
                scheduled: datetime, at: datetime) -> Decision:
    """A notice to the department that does the request's category of work, without its number (`numbered`).

    `request_office`: the request's office (named when the worker is not of it); `existing`: the number of the
    request's order, if it has one."""
    require_aware(at)
    require_aware(scheduled, "scheduled")
    req = found(request, ServiceRequest, request_ref)
    clerk = active_found(by, by_ref)
    require_cs(clerk, "issue")
    hand = active_found(worker, worker_ref)
    department = procedure.department_for(req.category)
    if hand.department != department:
        raise DomainError("worker_department", worker=hand.code, worker_department=hand.department,
                          department=department, category=req.category)
    if hand.office_id != req.office_id:
        raise DomainError("wrong_office", staff=hand.code, office=request_office.code)
    if existing is not None:
        raise DomainError("already_issued", request=req.number, order=existing)
    not_before(at, req.received_at, "register")
    values = {"number": None, "request_id": req.id, "office_id": req.office_id, "department": department,
              "worker_id": hand.id, "issued_at": at, "issued_by_id": clerk.id, "scheduled_for": scheduled,
              "fee": req.agreed_fee}
    audit = event(at=at, actor=clerk.code, action="issue", entity="work_order", ref=None,
                  after={"request": req.number, "worker": hand.code})  # issued() puts the order's facts first
    return Decision(WorkOrder, values, None, (audit,))


def issued(draft: Decision, number: str) -> Decision:
    """An issue decision with its number, its audit event recording the order as issued."""
    values = draft.values | {"number": number}
    audit = draft.audits[0]
    after = order_facts(values | {"completed_at": None, "accepted_at": None, "accepted_by": None,
                                  "rework_of_id": None}) | audit["after"]
    return Decision(WorkOrder, values, None, (audit | {"entity_ref": number, "after": after},))


def complete(*, order: WorkOrder | None, order_ref: Any, by: Staff | None, by_ref: Any, at: datetime) -> Decision:
    """The worker finished the job (before the resident inspects it)."""
    require_aware(at)
    wo = found(order, WorkOrder, order_ref)
    who = active_found(by, by_ref)
    if wo.completed_at is not None:
        raise DomainError("already_completed", order=wo.number, completed_at=wo.completed_at.isoformat())
    not_before(at, wo.issued_at, "issue")
    before = order_facts(wo)
    change = {"completed_at": at, "completed_by_id": who.id}
    audit = event(at=at, actor=who.code, action="complete", entity="work_order", ref=wo.number, before=before,
                  after=before | {"completed_at": iso(at)})
    return Decision(WorkOrder, change, ("number", wo.number), (audit,))


def accept(*, order: WorkOrder | None, order_ref: Any, signed_by: str, at: datetime, calendar: BusinessCalendar,
           callback_workdays: int) -> Linked:
    """The resident inspected the work and signed the notice; the callback becomes owed (rows: 'callback')."""
    require_aware(at)
    wo = found(order, WorkOrder, order_ref)
    signed_by = text(signed_by, "signed_by", WorkOrder.accepted_by, required=True)
    if wo.completed_at is None:
        raise DomainError("accept_before_completion", order=wo.number)
    if wo.accepted_at is not None:
        raise DomainError("already_accepted", order=wo.number, accepted_at=wo.accepted_at.isoformat())
    not_before(at, wo.completed_at, "complete")
    before = order_facts(wo)
    due = procedure.callback_due(at, calendar, workdays=callback_workdays)
    change = {"accepted_at": at, "accepted_by": signed_by.strip()}
    audit = event(at=at, actor=f"resident:{signed_by.strip()}", action="accept", entity="work_order", ref=wo.number,
                  before=before, after=before | {"accepted_at": iso(at), "accepted_by": signed_by.strip()}
                  | {"callback_due": due.isoformat()})
    return Linked(Decision(WorkOrder, change, ("number", wo.number), (audit,)),
                  {"callback": {"created_at": at, "due_at": due}})


# -- receipts and money (procedure 3.2.2) --------------------------------------------------------------------
def receipt_numbers(*, by: Staff | None, by_ref: Any, to: Staff | None, to_ref: Any, first: str, count: int,
                    at: datetime) -> list[str]:
    """The numbers of a run of receipts to hand out, or the refusal (checked before the ledger is asked)."""
    require_aware(at)
    issuer = active_found(by, by_ref)
    if issuer.department not in ("cs", "finance"):
        raise DomainError("receipts_issuer", staff=issuer.code, department=issuer.department)
    active_found(to, to_ref)
    first = str(first).strip()
    if not (first.isascii() and first.isdigit()):  # str.isdigit alone takes "²" and "١٢", which int() refuses
        raise DomainError("receipt_number", number=first)
    if count < 1 or count > 10000:
        raise DomainError("receipt_count", count=count)
    if len(first) > value_rules.limit_of(Receipt.number) or int(first) + count > SERIAL_LIMIT:
        raise DomainError("receipt_too_large", number=first, limit=SERIAL_LIMIT - 1)
    width, start = len(first), int(first)
    return [f"{start + i:0{width}d}" for i in range(count)]


def issue_receipts(*, by: Staff, to: Staff, numbers: list[str], clash: str | None, at: datetime) -> Linked:
    """A book of receipts (rows: 'receipts', each to link to the book), unless one of its numbers exists."""
    if clash is not None:
        raise DomainError("receipt_exists", number=clash)
    start, count = int(numbers[0]), len(numbers)
    book = {"office_id": to.office_id, "holder_id": to.id, "issued_by_id": by.id, "issued_at": at,
            "first_serial": start, "count": count}
    # origin 'desk': the database then refuses a second use of a leaf or a second payment of an order
    leaves = [{"number": n, "serial": start + i, "state": "issued", "origin": "desk"} for i, n in enumerate(numbers)]
    audit = event(at=at, actor=by.code, action="issue_receipts", entity="receipt_book", ref=f"{numbers[0]}+{count}",
                  after={"holder": to.code, "first": numbers[0], "last": numbers[-1], "count": count})
    return Linked(Decision(ReceiptBook, book, None, (audit,)), {"receipts": leaves})


def retire_receipt(*, receipt: Receipt | None, number: str, by: Staff | None, by_ref: Any, book: ReceiptBook | None,
                   at: datetime, reason: str | None, state: str) -> Decision:
    """An unused receipt voided or returned (`book`: the book it came in)."""
    require_aware(at)
    reason = text(reason, "reason", Receipt.reason)
    rec = found(receipt, Receipt, number)
    who = active_found(by, by_ref)
    if rec.state != "issued":
        raise DomainError("receipt_not_retirable", number=rec.number, state=rec.state)
    not_before(at, book.issued_at, "issue_receipts")
    before = receipt_facts(rec)
    change = {"state": state, "state_changed_at": at, "reason": reason}
    audit = event(at=at, actor=who.code, action="void" if state == "voided" else "return", entity="receipt",
                  ref=rec.number, before=before, after=before | {"state": state, "reason": reason})
    return Decision(Receipt, change, ("number", rec.number), (audit,))


def collect(*, order: WorkOrder | None, order_ref: Any, by: Staff | None, by_ref: Any, method: str, amount: Any,
            reason: str | None, at: datetime) -> tuple[WorkOrder, Staff, Decimal, str | None]:
    """The first half of a collection, checked before the receipt is looked at: the order, the collector, the
    amount and the reason."""
    require_aware(at)
    wo = found(order, WorkOrder, order_ref)
    collector = active_found(by, by_ref)
    if method not in PAYMENT_METHODS:
        raise DomainError("unknown_method", method=method)
    paid = money(amount, "amount")
    reason = text(reason, "reason", Receipt.reason)
    if wo.accepted_at is None or at < wo.accepted_at:
        raise DomainError("collect_before_acceptance", order=wo.number)
    return wo, collector, paid, reason


def collect_on(*, order: WorkOrder, collector: Staff, paid: Decimal, reason: str | None, method: str, at: datetime,
               receipt: Receipt | None, receipt_ref: Any, holder: Staff | None, already: str | None) -> Linked:
    """The fee collected on this receipt (`holder`: who holds its book; `already`: the receipt that paid the
    order, if one did); rows: 'order', the change to the order."""
    rec = found(receipt, Receipt, receipt_ref)
    if rec.state != "issued":
        raise DomainError("receipt_not_unused", number=rec.number, state=rec.state)
    if holder.id != collector.id and holder.department != "cs":
        raise DomainError("receipt_holder", number=rec.number, holder=holder.code, staff=collector.code)
    if order.rework_of_id is not None:
        if paid != ZERO:
            raise DomainError("rework_free", order=order.number, amount=str(paid))
    elif paid != order.fee and not (reason or "").strip():
        raise DomainError("amount_differs", order=order.number, amount=str(paid), fee=str(order.fee))
    if already is not None:
        raise DomainError("already_collected", order=order.number, receipt=already)
    before = receipt_facts(rec)
    change = {"state": "used", "order_id": order.id, "amount": paid, "method": method, "collected_at": at,
              "collected_by_id": collector.id, "reason": reason, "state_changed_at": at}
    audit = event(at=at, actor=collector.code, action="collect", entity="receipt", ref=rec.number, before=before,
                  after=before | receipt_facts(change | {"number": rec.number, "handover_id": rec.handover_id})
                  | {"order": order.number})
    # the cash check's unpaid jobs are those without paid_at (a used receipt is never undone)
    return Linked(Decision(Receipt, change, ("number", rec.number), (audit,)), {"order": {"paid_at": at}})


def handover(*, by: Staff | None, by_ref: Any, cashier: Staff | None, cashier_ref: Any, receipts: list[str],
             counted: Any, at: datetime) -> tuple[list[str], Decimal]:
    """The receipts a handover covers and the amount counted, checked before the receipts are looked up."""
    require_aware(at)
    hander = active_found(by, by_ref)
    teller = active_found(cashier, cashier_ref)
    if teller.department != "finance" or teller.role != "cashier":
        raise DomainError("not_cashier", staff=teller.code)
    numbers = [str(n).strip() for n in receipts if str(n).strip()]
    if not numbers:
        raise DomainError("handover_empty")
    if len(set(numbers)) != len(numbers):
        raise DomainError("handover_duplicate", numbers=",".join(sorted({n for n in numbers if numbers.count(n) > 1})))
    return numbers, money(counted, "counted")


def handover_of(*, by: Staff, cashier: Staff, numbers: list[str], counted: Decimal, rows: dict[str, Receipt],
                office: Office, at: datetime) -> Linked:
    """The handover of these receipts (rows: 'receipts', the numbers to link to it), without its number."""
    declared = ZERO
    for n in numbers:
        r = rows.get(n)
        if r is None:
            raise NotFound("not_found", what=WHAT[Receipt], ref=n)
        if r.state != "used" or r.method != "cash":
            raise DomainError("handover_not_cash", number=n)
        if r.collected_by_id != by.id:
            raise DomainError("handover_not_collector", number=n, staff=by.code)
        if r.handover_id is not None:
            raise DomainError("handover_already", number=n)
        not_before(at, r.collected_at, "collect")
        declared += r.amount
    values = {"number": None, "office_id": office.id, "handed_by_id": by.id, "received_by_id": cashier.id,
              "handed_at": at, "confirmed_at": at, "declared_amount": declared, "counted_amount": counted,
              "origin": "desk"}
    audit = event(at=at, actor=by.code, action="handover", entity="cash_handover", ref=None,
                  after={"cashier": cashier.code, "receipts": numbers, "declared": str(declared),
                         "counted": str(counted), "shortfall": str(declared - counted)})
    return Linked(Decision(CashHandover, values, None, (audit,)), {"receipts": numbers})


# -- callbacks and rework (procedure 3.2.3) ------------------------------------------------------------------
def callback(*, order: WorkOrder | None, order_ref: Any, by: Staff | None, by_ref: Any, outcome: str,
             note: str | None, at: datetime) -> tuple[WorkOrder, Staff, str | None]:
    """The first half of a callback, checked before the owed callback is looked up."""
    require_aware(at)
    wo = found(order, WorkOrder, order_ref)
    clerk = active_found(by, by_ref)
    require_cs(clerk, "callback")
    if outcome not in CALLBACK_OUTCOMES:
        raise DomainError("unknown_outcome", outcome=outcome)
    note = text(note, "note", Callback.note)
    if wo.accepted_at is None or at < wo.accepted_at:
        raise DomainError("callback_before_acceptance", order=wo.number)
    return wo, clerk, note


def callback_on(*, order: WorkOrder, clerk: Staff, outcome: str, note: str | None, at: datetime,
                owed: Callback | None, root_number: str | None, reworks: int, calendar: BusinessCalendar,
                rework_within: Any) -> Linked:
    """The owed callback (`owed`) done: rows 'rework' (a free order, unsatisfied) and 'next' (unreachable: try
    again the next working day), each None when not made. `root_number`, `reworks`: the chain's first order and
    how many reworks it has."""
    if owed is None:
        raise DomainError("no_callback_owed", order=order.number)
    not_before(at, owed.created_at, "callback")
    rework = None
    if outcome == "unsatisfied":
        rework = {"number": f"{root_number}-R{reworks + 1}", "request_id": order.request_id,
                  "office_id": order.office_id, "department": order.department, "worker_id": order.worker_id,
                  "issued_at": at, "issued_by_id": clerk.id, "scheduled_for": at + rework_within, "fee": ZERO,
                  "rework_of_id": order.id}
    next_due = None
    if outcome == "unreachable":
        next_day = calendar.next_working_day(calendar.local(at).date())
        next_due = {"order_id": order.id, "created_at": at, "due_at": calendar.at(next_day, calendar.work_end)}
    change = {"done_at": at, "done_by_id": clerk.id, "outcome": outcome, "note": note}
    audits = [event(at=at, actor=clerk.code, action="callback", entity="work_order", ref=order.number,
                    after={"outcome": outcome, "note": note, "rework_order": rework["number"] if rework else None})]
    if rework is not None:
        audits.append(event(at=at, actor=clerk.code, action="issue_rework", entity="work_order",
                            ref=rework["number"], after=order_facts(rework | {
                                "completed_at": None, "accepted_at": None, "accepted_by": None})
                            | {"rework_of": order.number}))
    return Linked(Decision(Callback, change, ("id", str(owed.id)), tuple(audits)), {"rework": rework, "next": next_due})


# -- a department's own record (procedure 3.2.4) -------------------------------------------------------------
def department_report(*, by: Staff | None, by_ref: Any, department: str, worker: Staff | None, worker_ref: Any,
                      address: str, description: str, order: WorkOrder | None, order_ref: Any, fee: Any,
                      office: Office | None, at: datetime) -> Decision:
    """Engineering's or cleaning's own record of a job, without its reference (`numbered`); `office`: the
    worker's."""
    require_aware(at)
    if department not in ("engineering", "cleaning"):
        raise DomainError("report_department", department=department)
    reporter = active_found(by, by_ref)
    if reporter.department != department:
        raise DomainError("report_by", staff=reporter.code, department=department)
    hand = active_found(worker, worker_ref)
    if hand.department != department:
        raise DomainError("report_worker_department", worker=hand.code, worker_department=hand.department,
                          department=department)
    address = text(address, "address", DepartmentReport.address, required=True)
    description = text(description, "description", DepartmentReport.description, required=True)
    wo = found(order, WorkOrder, order_ref) if order_ref is not None else None
    amount = money(fee, "fee")
    values = {"reference": None, "office_id": office.id, "department": department, "reported_by_id": reporter.id,
              "worker_id": hand.id, "reported_at": at, "address": address, "description": description,
              "order_id": wo.id if wo else None, "fee": amount}
    audit = event(at=at, actor=reporter.code, action="report", entity="department_report", ref=None,
                  after={"department": department, "worker": hand.code, "order": wo.number if wo else None,
                         "fee": None if amount is None else str(amount)})
    return Decision(DepartmentReport, values, None, (audit,))
