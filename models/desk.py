"""Desk operations: the procedure's workflow, one operation per step, each refusing what the procedure forbids.

Every operation takes the session first and keyword-only arguments (codes and numbers as strings, or the ORM
object itself), validates everything BEFORE writing, then writes its rows and one AuditEvent and flushes. The
caller owns the transaction (models.ledger.db.transaction), so a refusal (DomainError) leaves the ledger untouched.

Numbers (an explicit `number=` from an import is used as given):
  request   R-<office>-<YYYYMMDD>-<nnn>        date of `at` as given (the CLI passes local time)
  order     WO-<office>-<YYYYMMDD>-<nnn>       rework orders: <root order>-R<n>
  handover  H-<office>-<YYYYMMDD>-<nnn>
  dept rep. DR-<office>-<YYYYMMDD>-<nnn>
  receipt   digits; a book of `count` from `first` keeps first's width (000101, 000102, ...), serial = int value
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from models import rules
from models.ledger import values as value_rules
from models.calendar import BusinessCalendar
from models.ledger.codes import check_office_code
from models.errors import DomainError, NotFound
from models.ledger.tables import (
    CALLBACK_OUTCOMES,
    CHANNELS,
    DEPARTMENT_NAMES,
    DEPARTMENTS,
    PAYMENT_METHODS,
    ROLES,
    AuditEvent,
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

ZERO = Decimal("0.00")
_CENT = Decimal("0.01")
# the clerk reads Chinese names in refusals; codes stay in the English text
_DEPT_ZH = {code: names[0] for code, names in DEPARTMENT_NAMES.items()}
_CATEGORY_ZH = {"plumbing": "水管维修安装", "electrical": "电路维修安装", "cleaning": "保洁", "greening": "绿化",
                "appliance": "家电维修", "renovation": "房屋修缮"}
_ACTION_ZH = {"register": "登记", "reply": "回复", "issue": "开通知单", "callback": "回访"}
# a receipt's serial is an Integer column: 32 bits on PostgreSQL
_SERIAL_LIMIT = 2**31
# a rework order is scheduled this long after the unsatisfied callback unless the caller says otherwise
DEFAULT_REWORK_WITHIN = timedelta(hours=24)


@dataclass(frozen=True)
class CallbackOutcome:
    """What a callback recorded, and the free rework order it opened (unsatisfied only)."""

    callback: Callback
    rework_order: WorkOrder | None


@dataclass(frozen=True)
class Decision:
    """What one operation decided before anything is written: a new row of `model` (`where` None) or the changes to
    the row whose natural key is `where`, and the audit events that record it.

    The desk applies a decision at once through its session; the ledger import decides a batch of rows against
    facts it looked up in bulk and writes each table with one executemany. One decision, two ways of writing it:
    the same refusals, rows and audit events either way.
    """

    model: type
    values: dict[str, Any]
    where: tuple[str, str] | None
    audits: tuple[dict[str, Any], ...]


@dataclass(frozen=True, slots=True)
class OfficeFacts:
    """An office as `decide_register` reads it, in plain values: an import decides thousands of rows per office,
    and each read of an ORM attribute goes through SQLAlchemy's instrumentation."""

    id: int
    code: str


@dataclass(frozen=True, slots=True)
class StaffFacts:
    """A staff member as `decide_register` and `decide_reply` read them, in plain values (see `OfficeFacts`)."""

    id: int
    code: str
    department: str
    office_id: int
    active: bool


# -- lookups -------------------------------------------------------------------------------------------------
_WHAT = {
    Office: ("服务处", "office"),
    Community: ("小区", "community"),
    Staff: ("员工", "staff member"),
    PriceItem: ("价目", "price item"),
    ServiceRequest: ("登记", "request"),
    WorkOrder: ("通知单", "work order"),
    Receipt: ("票据", "receipt"),
}


def _get(s: Session, model: type, ref: Any, column: str = "code"):
    if isinstance(ref, model):
        return ref
    row = s.scalar(select(model).where(getattr(model, column) == str(ref)))
    if row is None:
        zh, en = _WHAT[model]
        raise NotFound("not_found", what=zh, what_en=en, ref=ref)
    return row


def _office(s: Session, ref: Any) -> Office:
    return _get(s, Office, ref)


def _staff(s: Session, ref: Any) -> Staff:
    return _active(_get(s, Staff, ref))


def _active(staff: Staff) -> Staff:
    if not staff.active:
        raise DomainError("staff_inactive", staff=staff.code)
    return staff


def _request(s: Session, ref: Any) -> ServiceRequest:
    return _get(s, ServiceRequest, ref, "number")


def _order(s: Session, ref: Any) -> WorkOrder:
    return _get(s, WorkOrder, ref, "number")


def _receipt(s: Session, ref: Any) -> Receipt:
    new = s.info.get(_NEW)
    if new and isinstance(ref, str) and (Receipt, ref) in new:
        return new[(Receipt, ref)]
    return _get(s, Receipt, ref, "number")


def _book(s: Session, book_id: int) -> ReceiptBook:
    new = s.info.get(_NEW)
    if new and (ReceiptBook, book_id) in new:
        return new[(ReceiptBook, book_id)]
    return s.get(ReceiptBook, book_id)


def _require_cs(staff: Staff, action: str) -> None:
    if staff.department != "cs":
        raise DomainError("cs_only", staff=staff.code, department=staff.department, action=action,
                          department_zh=_DEPT_ZH.get(staff.department, staff.department),
                          action_zh=_ACTION_ZH.get(action, action))


def _require_office(staff: Staff, office: Office) -> None:
    if staff.office_id != office.id:
        raise DomainError("wrong_office", staff=staff.code, office=office.code)


def _require_aware(at: datetime, field: str = "at") -> None:
    if at.tzinfo is None:
        raise ValueError(f"naive datetime {at!r}: desk operations take aware times")
    if not value_rules.EARLIEST_YEAR <= at.year <= value_rules.LATEST_YEAR:  # cheap: every row of an import
        value_rules.moment(at, field=field)


def _not_before(at: datetime, earlier: datetime | None, event: str) -> None:
    """An event recorded before the one it depends on would rewrite history: refuse it."""
    if earlier is not None and at < earlier:
        raise DomainError("before_event", at=at.isoformat(), event=event, event_at=earlier.isoformat())


def _money(value: Decimal | str | int | None, field: str) -> Decimal | None:
    """An amount the ledger can hold (models.ledger.values.money: to the cent, not negative, within Numeric(12, 2))."""
    if value is None:
        return None
    if type(value) is Decimal and value.is_finite() and not value.is_signed() \
            and value < value_rules.MONEY_LIMIT and value == value.quantize(_CENT):
        return value.quantize(_CENT)  # what the CLI and the import hand over, already read by the same rule
    return value_rules.money(value, field=field)


def _text(value: str | None, field: str, column: Any, *, required: bool = False) -> str | None:
    """`value` stripped, if its column holds it and it has no control character (models.ledger.values.text)."""
    if required and not (value or "").strip():
        raise DomainError("missing", field=field)
    return value_rules.text(value, field=field, column=column)


def _check_category(category: str) -> None:
    scope = rules.scope_of(category)  # procedure 2, defined once in models.rules
    if scope == "out":
        raise DomainError("out_of_scope", category=category, category_zh=_CATEGORY_ZH.get(category, category))
    if scope == "unknown":
        raise DomainError("unknown_category", category=category)


def _next_number(s: Session, model: type, column: str, prefix: str, *, office_id: int, when: str,
                 at: datetime) -> str:
    """The next `<prefix>-<nnn>` for one office and day; the unique constraint settles any race.

    Only that office's rows of that day are read (a LIKE on the number would scan the whole table on
    PostgreSQL's non-C collations); an imported number in the same format is skipped by probing.
    """
    col, moment = getattr(model, column), getattr(model, when)
    start = at.replace(hour=0, minute=0, second=0, microsecond=0)
    taken = s.scalars(select(col).where(model.office_id == office_id, moment >= start,
                                        moment < start + timedelta(days=1))).all()
    highest = 0
    for number in taken:
        tail = number[len(prefix) + 1:] if number.startswith(f"{prefix}-") else ""
        if tail.isdigit():
            highest = max(highest, int(tail))
    candidate = f"{prefix}-{highest + 1:03d}"
    while s.scalar(select(model.id).where(col == candidate)) is not None:
        highest += 1
        candidate = f"{prefix}-{highest + 1:03d}"
    return candidate


def _day(at: datetime) -> str:
    return at.strftime("%Y%m%d")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _event(*, at: datetime, actor: str, action: str, entity: str, ref: str, before: dict | None = None,
           after: dict | None = None) -> dict[str, Any]:
    return {"at": at, "actor": actor, "action": action, "entity": entity, "entity_ref": ref, "before": before,
            "after": after}


def _audit(s: Session, **event: Any) -> None:
    _record(s, _event(**event))


def _record(s: Session, event: dict[str, Any]) -> None:
    s.info[_AUDITS] = s.info.get(_AUDITS, 0) + 1
    pending = s.info.get(_AUDIT_ROWS)
    if pending is not None:
        pending.append(event)
        return
    s.add(AuditEvent(**event))


def _apply(s: Session, decision: Decision, row: Any = None) -> Any:
    """Write a decision through the session: add its new row, or change `row` (the one `decision.where` names)."""
    if decision.where is None:
        row = decision.model(id=_new_id(s, decision.model), **decision.values)
        s.add(row)
    else:
        for name, value in decision.values.items():
            setattr(row, name, value)
    _flush(s)
    for event in decision.audits:
        _record(s, event)
    return row


def _order_facts(o: WorkOrder) -> dict[str, Any]:
    return {"number": o.number, "department": o.department, "worker_id": o.worker_id, "fee": str(o.fee),
            "scheduled_for": _iso(o.scheduled_for), "completed_at": _iso(o.completed_at),
            "accepted_at": _iso(o.accepted_at), "accepted_by": o.accepted_by, "rework_of_id": o.rework_of_id}


def _receipt_facts(r: Receipt) -> dict[str, Any]:
    return {"number": r.number, "state": r.state, "order_id": r.order_id,
            "amount": None if r.amount is None else str(r.amount), "method": r.method,
            "collected_at": _iso(r.collected_at), "collected_by_id": r.collected_by_id, "reason": r.reason,
            "handover_id": r.handover_id}


# -- many operations in one session (the ledger import) -------------------------------------------------------
# An importer runs thousands of operations per transaction. Inside `deferred(s)` the operations below skip their
# own flush (the session flushes before any query, and the caller flushes once per batch), and natural keys the
# caller has looked up in bulk with `note_keys` are answered from memory instead of one SELECT per row. The rules
# checked are the same; only where their answers come from changes.
_DEFER = "desk.defer_flush"
_KEYS = "desk.keys"
_AUDITS = "desk.audits"
_AUDIT_ROWS = "desk.audit_rows"
_IDS = "desk.ids"
_FACTS = "desk.facts"
_NEW = "desk.new"  # rows added inside `deferred` and not flushed yet, that a later operation looks up


@contextmanager
def deferred(s: Session) -> Iterator[Session]:
    """Operations in this block flush only when a query or the caller needs it, and their audit events are
    inserted together when the block ends (one statement; nothing refers to an audit event's id).

    If the block raises, the audit events it collected are dropped with it: the caller rolls back.
    """
    if s.info.get(_DEFER):
        yield s
        return
    s.info[_DEFER] = True
    s.info[_AUDIT_ROWS] = []
    # SQLite cannot return the ids of a multi-row INSERT in order, so the ORM would insert row by row; the
    # session holds SQLite's write lock for its whole transaction (BEGIN IMMEDIATE), so ids handed out from the
    # table's highest are ours alone, and rows carrying their id go in with one executemany
    s.info[_IDS] = {} if s.get_bind().dialect.name == "sqlite" else None
    s.info[_NEW] = {}
    try:
        yield s
        rows = s.info[_AUDIT_ROWS]
        s.info[_AUDIT_ROWS] = []
        if rows:
            s.execute(insert(AuditEvent), rows)
    finally:
        s.info[_DEFER] = False
        s.info.pop(_AUDIT_ROWS, None)
        s.info.pop(_IDS, None)
        s.info.pop(_NEW, None)


def _new_id(s: Session, model: type) -> int | None:
    """An id for a new row inside `deferred` on SQLite (see there); None lets the database choose."""
    ids = s.info.get(_IDS)
    if ids is None:
        return None
    if model not in ids:
        ids[model] = s.scalar(select(func.coalesce(func.max(model.id), 0)))
    ids[model] += 1
    return ids[model]


def note_keys(s: Session, model: type, column: str, *, checked: Iterable[str], present: Iterable[str]) -> None:
    """Tell the desk which of `checked` natural keys exist already (one bulk query by the caller), for this session."""
    known = s.info.setdefault(_KEYS, {}).setdefault((model, column), {})
    present = set(present)
    for value in checked:
        known[value] = value in present


# facts `note_facts` can carry: what the desk would otherwise SELECT once per operation
ORDER_OF_REQUEST = "order_of_request"  # request id -> number of its (non-rework) order, None if not issued
RECEIPT_OF_ORDER = "receipt_of_order"  # order id -> number of the used receipt that paid it, None if unpaid


def note_facts(s: Session, fact: str, known: dict[Any, Any]) -> None:
    """Tell the desk what the caller's bulk query found for `fact` (ORDER_OF_REQUEST, RECEIPT_OF_ORDER)."""
    s.info.setdefault(_FACTS, {}).setdefault(fact, {}).update(known)


def forget_keys(s: Session) -> None:
    """Drop what `note_keys` and `note_facts` said (after a rollback the ledger may no longer hold it)."""
    s.info.pop(_KEYS, None)
    s.info.pop(_FACTS, None)


def _fact(s: Session, fact: str, key: Any, query) -> Any:
    known = s.info.get(_FACTS, {}).get(fact)
    if known is not None and key in known:
        return known[key]
    return s.scalar(query)


def _fact_now(s: Session, fact: str, key: Any, value: Any) -> None:
    known = s.info.get(_FACTS, {}).get(fact)
    if known is not None:
        known[key] = value


def audits_written(s: Session) -> int:
    """How many audit events this session's operations have written: a row that moved it has written something."""
    return s.info.get(_AUDITS, 0)


def _taken(s: Session, model: type, column: str, value: str) -> bool:
    known = s.info.get(_KEYS, {}).get((model, column))
    if known is not None and value in known:
        return known[value]
    return s.scalar(select(model.id).where(getattr(model, column) == value)) is not None


def _taking(s: Session, model: type, column: str, value: str) -> None:
    known = s.info.get(_KEYS, {}).get((model, column))
    if known is not None:
        known[value] = True


def _flush(s: Session) -> None:
    if not s.info.get(_DEFER):
        s.flush()


def _id(s: Session, row: Any) -> int:
    """The row's id, flushing first if it was added in this (deferred) session and has none yet."""
    if row.id is None:
        s.flush()
    return row.id


# -- reference data ------------------------------------------------------------------------------------------
def add_office(s: Session, *, code: str, name: str, at: datetime, actor: str = "setup") -> Office:
    """A service office (服务处); its code becomes a folder name of the reports, so it must match the pattern."""
    _require_aware(at)
    check_office_code(code)
    if s.scalar(select(Office.id).where(Office.code == code)) is not None:
        raise DomainError("exists", what="服务处", what_en="office", ref=code)
    office = Office(code=code, name=name)
    s.add(office)
    s.flush()
    _audit(s, at=at, actor=actor, action="add", entity="office", ref=code, after={"code": code, "name": name})
    return office


def add_community(s: Session, *, office: str | Office, code: str, name: str, at: datetime,
                  actor: str = "setup") -> Community:
    """A community (小区) managed by an office."""
    _require_aware(at)
    code = _text(code, "code", Community.code, required=True)
    name = _text(name, "name", Community.name, required=True)
    off = _office(s, office)
    if s.scalar(select(Community.id).where(Community.code == code)) is not None:
        raise DomainError("exists", what="小区", what_en="community", ref=code)
    community = Community(office_id=off.id, code=code, name=name)
    s.add(community)
    s.flush()
    _audit(s, at=at, actor=actor, action="add", entity="community", ref=code,
           after={"code": code, "name": name, "office": off.code})
    return community


def add_staff(s: Session, *, code: str, name: str, office: str | Office, department: str, role: str,
              at: datetime, actor: str = "setup") -> Staff:
    """A staff member; what they may do follows from department and role."""
    _require_aware(at)
    code, name = _text(code, "code", Staff.code, required=True), _text(name, "name", Staff.name, required=True)
    off = _office(s, office)
    if department not in DEPARTMENTS:
        raise DomainError("unknown_department", department=department)
    if role not in ROLES:
        raise DomainError("unknown_role", role=role)
    if s.scalar(select(Staff.id).where(Staff.code == code)) is not None:
        raise DomainError("exists", what="员工", what_en="staff member", ref=code)
    staff = Staff(code=code, name=name, office_id=off.id, department=department, role=role, active=True)
    s.add(staff)
    s.flush()
    _audit(s, at=at, actor=actor, action="add", entity="staff", ref=code,
           after={"code": code, "name": name, "office": off.code, "department": department, "role": role})
    return staff


def set_price(s: Session, *, code: str, category: str, name: str, fee: Decimal, at: datetime,
              actor: str = "setup") -> PriceItem:
    """Create a price-list item or change it; out-of-scope categories cannot be priced."""
    _require_aware(at)
    code = _text(code, "code", PriceItem.code, required=True)
    name = _text(name, "name", PriceItem.name, required=True)
    _check_category(category)
    amount = _money(fee, "fee")
    item = s.scalar(select(PriceItem).where(PriceItem.code == code))
    before = None
    if item is None:
        item = PriceItem(code=code, category=category, name=name, fee=amount)
        s.add(item)
    else:
        before = {"category": item.category, "name": item.name, "fee": str(item.fee)}
        item.category, item.name, item.fee = category, name, amount
    s.flush()
    _audit(s, at=at, actor=actor, action="set", entity="price_item", ref=code, before=before,
           after={"category": category, "name": name, "fee": str(amount)})
    return item


# -- registration and reply (procedure 3.1, 4.2) -------------------------------------------------------------
def register(s: Session, *, office: str | Office, by: str | Staff, channel: str, resident: str, address: str,
             phone: str, category: str, description: str, at: datetime, price: str | PriceItem | None = None,
             fee: Decimal | None = None, preferred: datetime | None = None, expected_result: str | None = None,
             community: str | Community | None = None, number: str | None = None) -> ServiceRequest:
    """The registration form (登记表): only CS registers, only in-scope work, fee from the price list or agreed."""
    decision = decide_register(s, office=office, by=by, channel=channel, resident=resident, address=address,
                               phone=phone, category=category, description=description, at=at, price=price,
                               fee=fee, preferred=preferred, expected_result=expected_result, community=community,
                               number=number)
    request = _apply(s, decision)
    _taking(s, ServiceRequest, "number", request.number)
    return request


def decide_register(s: Session, *, office: str | Office | OfficeFacts, by: str | Staff | StaffFacts, channel: str,
                    resident: str, address: str, phone: str, category: str, description: str, at: datetime,
                    price: str | PriceItem | None = None, fee: Decimal | None = None,
                    preferred: datetime | None = None, expected_result: str | None = None,
                    community: str | Community | None = None, number: str | None = None) -> Decision:
    """What `register` writes, or its refusal; the session only looks up what is passed as a code."""
    _require_aware(at)
    off = office if type(office) is OfficeFacts else _office(s, office)
    clerk = _active(by) if type(by) is StaffFacts else _staff(s, by)
    _require_cs(clerk, "register")
    _require_office(clerk, off)
    if channel not in CHANNELS:
        raise DomainError("unknown_channel", channel=channel)
    _check_category(category)
    resident = _text(resident, "resident", ServiceRequest.resident_name, required=True)
    address = _text(address, "address", ServiceRequest.address, required=True)
    phone = _text(phone, "phone", ServiceRequest.phone, required=True)
    description = _text(description, "description", ServiceRequest.description, required=True)
    expected_result = _text(expected_result, "expected_result", ServiceRequest.expected_result)
    if preferred is not None:
        _require_aware(preferred, "preferred")
    item = _get(s, PriceItem, price) if price is not None else None
    if item is not None and item.category != category:
        raise DomainError("price_category", price=item.code, price_category=item.category, category=category)
    agreed = _money(fee, "fee")
    if agreed is None:
        if item is None:
            raise DomainError("fee_needed")
        agreed = item.fee
    comm = None
    if community is not None:
        comm = _get(s, Community, community)
        if comm.office_id != off.id:
            raise DomainError("community_office", community=comm.code, office=off.code)
    if number is None:
        number = _next_number(s, ServiceRequest, "number", f"R-{off.code}-{_day(at)}", office_id=off.id,
                              when="received_at", at=at)
    elif _taken(s, ServiceRequest, "number", _text(number, "number", ServiceRequest.number, required=True)):
        raise DomainError("exists", what="登记", what_en="request", ref=number)
    values = {"number": number, "office_id": off.id, "community_id": comm.id if comm else None,
              "channel": channel, "received_at": at, "received_by_id": clerk.id, "resident_name": resident.strip(),
              "address": address.strip(), "phone": phone.strip(), "category": category,
              "description": description, "preferred_at": preferred, "price_item_id": item.id if item else None,
              "agreed_fee": agreed, "expected_result": expected_result, "replied_at": None, "replied_by_id": None}
    event = _event(at=at, actor=clerk.code, action="register", entity="service_request", ref=number,
                   after={"channel": channel, "category": category, "agreed_fee": str(agreed), "office": off.code,
                          "price": item.code if item else None, "preferred_at": _iso(preferred)})
    return Decision(ServiceRequest, values, None, (event,))


def reply(s: Session, *, request: str | ServiceRequest, by: str | Staff, at: datetime) -> ServiceRequest:
    """CS called the resident back with a visiting time (phone requests, within 10 minutes)."""
    _require_aware(at)
    req = _request(s, request)
    clerk = _get(s, Staff, by)
    decision = decide_reply(number=req.number, channel=req.channel, received_at=req.received_at,
                            replied_at=req.replied_at, by=clerk, at=at)
    return _apply(s, decision, req)


def decide_reply(*, number: str, channel: str, received_at: datetime, replied_at: datetime | None,
                 by: Staff | StaffFacts, at: datetime) -> Decision:
    """What `reply` changes on the request with these facts, or its refusal."""
    _require_aware(at)
    clerk = _active(by)
    _require_cs(clerk, "reply")
    if channel != "phone":
        raise DomainError("reply_walk_in", request=number)
    if replied_at is not None:
        raise DomainError("already_replied", request=number, replied_at=replied_at.isoformat())
    _not_before(at, received_at, "register")
    event = _event(at=at, actor=clerk.code, action="reply", entity="service_request", ref=number,
                   before={"replied_at": None}, after={"replied_at": at.isoformat()})
    return Decision(ServiceRequest, {"replied_at": at, "replied_by_id": clerk.id}, ("number", number), (event,))


# -- the work order (procedure 3.2.1, 3.2.2) -----------------------------------------------------------------
def issue_order(s: Session, *, request: str | ServiceRequest, by: str | Staff, worker: str | Staff,
                scheduled: datetime, at: datetime, number: str | None = None) -> WorkOrder:
    """The notice (通知单) to the department that does this category of work, for one of its workers."""
    _require_aware(at)
    _require_aware(scheduled, "scheduled")
    req = _request(s, request)
    clerk = _staff(s, by)
    _require_cs(clerk, "issue")
    hand = _staff(s, worker)
    department = rules.department_for(req.category)
    if hand.department != department:
        raise DomainError("worker_department", worker=hand.code, worker_department=hand.department,
                          department=department, category=req.category,
                          worker_department_zh=_DEPT_ZH.get(hand.department, hand.department),
                          department_zh=_DEPT_ZH[department], category_zh=_CATEGORY_ZH[req.category])
    if hand.office_id != req.office_id:
        raise DomainError("wrong_office", staff=hand.code, office=s.get(Office, req.office_id).code)
    existing = _fact(s, ORDER_OF_REQUEST, req.id,
                     select(WorkOrder.number).where(WorkOrder.request_id == _id(s, req),
                                                    WorkOrder.rework_of_id.is_(None)))
    if existing is not None:
        raise DomainError("already_issued", request=req.number, order=existing)
    _not_before(at, req.received_at, "register")
    office = s.get(Office, req.office_id)
    if number is None:
        number = _next_number(s, WorkOrder, "number", f"WO-{office.code}-{_day(at)}", office_id=office.id,
                              when="issued_at", at=at)
    elif _taken(s, WorkOrder, "number", _text(number, "number", WorkOrder.number, required=True)):
        raise DomainError("exists", what="通知单", what_en="work order", ref=number)
    order = WorkOrder(id=_new_id(s, WorkOrder), number=number, request_id=req.id, office_id=req.office_id,
                      department=department, worker_id=hand.id, issued_at=at, issued_by_id=clerk.id,
                      scheduled_for=scheduled, fee=req.agreed_fee)
    s.add(order)
    _taking(s, WorkOrder, "number", number)
    _fact_now(s, ORDER_OF_REQUEST, req.id, number)
    _flush(s)
    _audit(s, at=at, actor=clerk.code, action="issue", entity="work_order", ref=number,
           after=_order_facts(order) | {"request": req.number, "worker": hand.code})
    return order


def complete(s: Session, *, order: str | WorkOrder, by: str | Staff, at: datetime) -> WorkOrder:
    """The worker finished the job (before the resident inspects it)."""
    _require_aware(at)
    wo = _order(s, order)
    who = _staff(s, by)
    if wo.completed_at is not None:
        raise DomainError("already_completed", order=wo.number, completed_at=wo.completed_at.isoformat())
    _not_before(at, wo.issued_at, "issue")
    before = _order_facts(wo)
    wo.completed_at, wo.completed_by_id = at, who.id
    _flush(s)
    _audit(s, at=at, actor=who.code, action="complete", entity="work_order", ref=wo.number,
           before=before, after=_order_facts(wo))
    return wo


def accept(s: Session, *, order: str | WorkOrder, signed_by: str, at: datetime, calendar: BusinessCalendar,
           callback_workdays: int = 2) -> WorkOrder:
    """The resident inspected the work and signed the notice; the callback becomes owed."""
    _require_aware(at)
    wo = _order(s, order)
    signed_by = _text(signed_by, "signed_by", WorkOrder.accepted_by, required=True)
    if wo.completed_at is None:
        raise DomainError("accept_before_completion", order=wo.number)
    if wo.accepted_at is not None:
        raise DomainError("already_accepted", order=wo.number, accepted_at=wo.accepted_at.isoformat())
    _not_before(at, wo.completed_at, "complete")
    before = _order_facts(wo)
    due = rules.callback_due(at, calendar, workdays=callback_workdays)
    wo.accepted_at, wo.accepted_by = at, signed_by.strip()
    s.add(Callback(id=_new_id(s, Callback), order_id=_id(s, wo), created_at=at, due_at=due))
    _flush(s)
    _audit(s, at=at, actor=f"resident:{signed_by.strip()}", action="accept", entity="work_order", ref=wo.number,
           before=before, after=_order_facts(wo) | {"callback_due": due.isoformat()})
    return wo


# -- receipts and money (procedure 3.2.2) --------------------------------------------------------------------
def issue_receipts(s: Session, *, by: str | Staff, to: str | Staff, first: str, count: int,
                   at: datetime) -> ReceiptBook:
    """Hand a run of pre-numbered receipts to someone who will collect with them (CS or finance hands them out)."""
    _require_aware(at)
    issuer = _staff(s, by)
    if issuer.department not in ("cs", "finance"):
        raise DomainError("receipts_issuer", staff=issuer.code, department=issuer.department,
                          department_zh=_DEPT_ZH.get(issuer.department, issuer.department))
    holder = _staff(s, to)
    first = str(first).strip()
    if not (first.isascii() and first.isdigit()):  # str.isdigit alone takes "²" and "١٢", which int() refuses
        raise DomainError("receipt_number", number=first)
    if count < 1 or count > 10000:
        raise DomainError("receipt_count", count=count)
    if len(first) > value_rules.limit_of(Receipt.number) or int(first) + count > _SERIAL_LIMIT:
        raise DomainError("receipt_too_large", number=first, limit=_SERIAL_LIMIT - 1)
    width, start = len(first), int(first)
    numbers = [f"{start + i:0{width}d}" for i in range(count)]
    known = s.info.get(_KEYS, {}).get((Receipt, "number"), {})
    if all(n in known for n in numbers):
        clash = next((n for n in numbers if known[n]), None)
    else:
        clash = s.scalar(select(Receipt.number).where(Receipt.number.in_(numbers)).limit(1))
    if clash is not None:
        raise DomainError("receipt_exists", number=clash)
    book = ReceiptBook(id=_new_id(s, ReceiptBook), office_id=holder.office_id, holder_id=holder.id,
                       issued_by_id=issuer.id, issued_at=at, first_serial=start, count=count)
    s.add(book)
    book_id = _id(s, book)
    # origin 'desk': the database then refuses a second use of a leaf or a second payment of an order
    receipts = [Receipt(id=_new_id(s, Receipt), number=n, serial=start + i, book_id=book_id, state="issued",
                        origin="desk") for i, n in enumerate(numbers)]
    s.add_all(receipts)
    _flush(s)
    new = s.info.get(_NEW)
    if new is not None:
        new[(ReceiptBook, book_id)] = book
        for r in receipts:
            new[(Receipt, r.number)] = r
            _taking(s, Receipt, "number", r.number)
    _audit(s, at=at, actor=issuer.code, action="issue_receipts", entity="receipt_book", ref=f"{numbers[0]}+{count}",
           after={"holder": holder.code, "first": numbers[0], "last": numbers[-1], "count": count})
    return book


def _retire_receipt(s: Session, *, number: str, by: str | Staff, at: datetime, reason: str | None,
                    state: str) -> Receipt:
    _require_aware(at)
    reason = _text(reason, "reason", Receipt.reason)
    receipt = _receipt(s, number)
    who = _staff(s, by)
    if receipt.state != "issued":
        raise DomainError("receipt_not_retirable", number=receipt.number, state=receipt.state)
    book = s.get(ReceiptBook, receipt.book_id)
    _not_before(at, book.issued_at, "issue_receipts")
    before = _receipt_facts(receipt)
    receipt.state, receipt.state_changed_at, receipt.reason = state, at, reason
    s.flush()
    _audit(s, at=at, actor=who.code, action="void" if state == "voided" else "return", entity="receipt",
           ref=receipt.number, before=before, after=_receipt_facts(receipt))
    return receipt


def void_receipt(s: Session, *, number: str, by: str | Staff, at: datetime, reason: str | None = None) -> Receipt:
    """An unused receipt spoiled or cancelled: it stays accounted for as voided."""
    return _retire_receipt(s, number=number, by=by, at=at, reason=reason, state="voided")


def return_receipt(s: Session, *, number: str, by: str | Staff, at: datetime,
                   reason: str | None = None) -> Receipt:
    """An unused receipt given back to the desk."""
    return _retire_receipt(s, number=number, by=by, at=at, reason=reason, state="returned")


def collect(s: Session, *, order: str | WorkOrder, by: str | Staff, receipt: str, amount: Decimal, method: str,
            at: datetime, reason: str | None = None) -> Receipt:
    """The agreed fee collected after acceptance, on an unused receipt held by the collector or by CS."""
    _require_aware(at)
    wo = _order(s, order)
    collector = _staff(s, by)
    if method not in PAYMENT_METHODS:
        raise DomainError("unknown_method", method=method)
    paid = _money(amount, "amount")
    reason = _text(reason, "reason", Receipt.reason)
    if wo.accepted_at is None or at < wo.accepted_at:
        raise DomainError("collect_before_acceptance", order=wo.number)
    rec = _receipt(s, receipt)
    if rec.state != "issued":
        raise DomainError("receipt_not_unused", number=rec.number, state=rec.state)
    holder = s.get(Staff, _book(s, rec.book_id).holder_id)
    if holder.id != collector.id and holder.department != "cs":
        raise DomainError("receipt_holder", number=rec.number, holder=holder.code, staff=collector.code)
    if wo.rework_of_id is not None:
        if paid != ZERO:
            raise DomainError("rework_free", order=wo.number, amount=str(paid))
    elif paid != wo.fee and not (reason or "").strip():
        raise DomainError("amount_differs", order=wo.number, amount=str(paid), fee=str(wo.fee))
    already = _fact(s, RECEIPT_OF_ORDER, wo.id,
                    select(Receipt.number).where(Receipt.order_id == _id(s, wo), Receipt.state == "used").limit(1))
    if already is not None:
        raise DomainError("already_collected", order=wo.number, receipt=already)
    before = _receipt_facts(rec)
    rec.state, rec.order_id, rec.amount, rec.method = "used", wo.id, paid, method
    rec.collected_at, rec.collected_by_id, rec.reason, rec.state_changed_at = at, collector.id, reason, at
    wo.paid_at = at  # the cash check's unpaid jobs are those without it (a used receipt is never undone)
    _fact_now(s, RECEIPT_OF_ORDER, wo.id, rec.number)
    _flush(s)
    _audit(s, at=at, actor=collector.code, action="collect", entity="receipt", ref=rec.number, before=before,
           after=_receipt_facts(rec) | {"order": wo.number})
    return rec


def handover(s: Session, *, by: str | Staff, cashier: str | Staff, receipts: list[str], counted: Decimal,
             at: datetime, number: str | None = None) -> CashHandover:
    """Cash handed to a finance cashier, receipt by receipt; a shortfall is recorded as counted, not refused."""
    _require_aware(at)
    hander = _staff(s, by)
    teller = _staff(s, cashier)
    if teller.department != "finance" or teller.role != "cashier":
        raise DomainError("not_cashier", staff=teller.code)
    numbers = [str(n).strip() for n in receipts if str(n).strip()]
    if not numbers:
        raise DomainError("handover_empty")
    if len(set(numbers)) != len(numbers):
        raise DomainError("handover_duplicate", numbers=",".join(sorted({n for n in numbers if numbers.count(n) > 1})))
    counted_amount = _money(counted, "counted")
    rows = {r.number: r for r in s.scalars(select(Receipt).where(Receipt.number.in_(numbers)))}
    declared = ZERO
    for n in numbers:
        r = rows.get(n)
        if r is None:
            raise NotFound("not_found", what="票据", what_en="receipt", ref=n)
        if r.state != "used" or r.method != "cash":
            raise DomainError("handover_not_cash", number=n)
        if r.collected_by_id != hander.id:
            raise DomainError("handover_not_collector", number=n, staff=hander.code)
        if r.handover_id is not None:
            raise DomainError("handover_already", number=n)
        _not_before(at, r.collected_at, "collect")
        declared += r.amount
    office = s.get(Office, hander.office_id)
    if number is None:
        number = _next_number(s, CashHandover, "number", f"H-{office.code}-{_day(at)}", office_id=office.id,
                              when="handed_at", at=at)
    elif s.scalar(select(CashHandover.id).where(
            CashHandover.number == _text(number, "number", CashHandover.number, required=True))) is not None:
        raise DomainError("exists", what="交款", what_en="handover", ref=number)
    ho = CashHandover(number=number, office_id=office.id, handed_by_id=hander.id, received_by_id=teller.id,
                      handed_at=at, confirmed_at=at, declared_amount=declared, counted_amount=counted_amount,
                      origin="desk")
    s.add(ho)
    s.flush()
    for n in numbers:
        rows[n].handover_id = ho.id
    s.flush()
    _audit(s, at=at, actor=hander.code, action="handover", entity="cash_handover", ref=number,
           after={"cashier": teller.code, "receipts": numbers, "declared": str(declared),
                  "counted": str(counted_amount), "shortfall": str(declared - counted_amount)})
    return ho


# -- callbacks and rework (procedure 3.2.3) ------------------------------------------------------------------
def _chain_root(s: Session, order: WorkOrder) -> WorkOrder:
    root = order
    while root.rework_of_id is not None:
        root = s.get(WorkOrder, root.rework_of_id)
    return root


def callback(s: Session, *, order: str | WorkOrder, by: str | Staff, outcome: str, at: datetime,
             calendar: BusinessCalendar, note: str | None = None, callback_workdays: int = 2,
             rework_within: timedelta = DEFAULT_REWORK_WITHIN) -> CallbackOutcome:
    """The return visit: satisfied closes it; unsatisfied opens a free rework order; unreachable tries again tomorrow."""
    _require_aware(at)
    wo = _order(s, order)
    clerk = _staff(s, by)
    _require_cs(clerk, "callback")
    if outcome not in CALLBACK_OUTCOMES:
        raise DomainError("unknown_outcome", outcome=outcome)
    note = _text(note, "note", Callback.note)
    if wo.accepted_at is None or at < wo.accepted_at:
        raise DomainError("callback_before_acceptance", order=wo.number)
    row = s.scalar(select(Callback).where(Callback.order_id == _id(s, wo), Callback.done_at.is_(None))
                   .order_by(Callback.due_at, Callback.id).limit(1))
    if row is None:
        raise DomainError("no_callback_owed", order=wo.number)
    _not_before(at, row.created_at, "callback")
    rework = None
    if outcome == "unsatisfied":
        root = _chain_root(s, wo)
        # every rework of a job shares its request, so the chain's length is one indexed count
        done = s.scalar(select(func.count()).select_from(WorkOrder).where(WorkOrder.request_id == wo.request_id,
                                                                          WorkOrder.rework_of_id.is_not(None)))
        rework = WorkOrder(id=_new_id(s, WorkOrder), number=f"{root.number}-R{done + 1}", request_id=wo.request_id,
                           office_id=wo.office_id, department=wo.department, worker_id=wo.worker_id, issued_at=at,
                           issued_by_id=clerk.id, scheduled_for=at + rework_within, fee=ZERO,
                           rework_of_id=wo.id)
        s.add(rework)
        s.flush()
    row.done_at, row.done_by_id, row.outcome, row.note = at, clerk.id, outcome, note
    row.rework_order_id = rework.id if rework else None
    if outcome == "unreachable":
        next_day = calendar.next_working_day(calendar.local(at).date())
        s.add(Callback(id=_new_id(s, Callback), order_id=wo.id, created_at=at,
                       due_at=calendar.at(next_day, calendar.work_end)))
    _flush(s)
    _audit(s, at=at, actor=clerk.code, action="callback", entity="work_order", ref=wo.number,
           after={"outcome": outcome, "note": note, "rework_order": rework.number if rework else None})
    if rework is not None:
        _audit(s, at=at, actor=clerk.code, action="issue_rework", entity="work_order", ref=rework.number,
               after=_order_facts(rework) | {"rework_of": wo.number})
    return CallbackOutcome(row, rework)


# -- a department's own record (procedure 3.2.4) -------------------------------------------------------------
def department_report(s: Session, *, by: str | Staff, department: str, worker: str | Staff, address: str,
                      description: str, at: datetime, order: str | None = None, fee: Decimal | None = None,
                      reference: str | None = None) -> DepartmentReport:
    """Engineering's or cleaning's own record of a job, to be reconciled against CS's register."""
    _require_aware(at)
    if department not in ("engineering", "cleaning"):
        raise DomainError("report_department", department=department)
    reporter = _staff(s, by)
    if reporter.department != department:
        raise DomainError("report_by", staff=reporter.code, department=department, department_zh=_DEPT_ZH[department])
    hand = _staff(s, worker)
    if hand.department != department:
        raise DomainError("worker_department", worker=hand.code, worker_department=hand.department,
                          department=department, category=department,
                          worker_department_zh=_DEPT_ZH.get(hand.department, hand.department),
                          department_zh=_DEPT_ZH[department], category_zh=_DEPT_ZH[department])
    address = _text(address, "address", DepartmentReport.address, required=True)
    description = _text(description, "description", DepartmentReport.description, required=True)
    wo = _order(s, order) if order is not None else None
    amount = _money(fee, "fee")
    office = s.get(Office, hand.office_id)
    if reference is None:
        reference = _next_number(s, DepartmentReport, "reference", f"DR-{office.code}-{_day(at)}",
                                 office_id=office.id, when="reported_at", at=at)
    elif _taken(s, DepartmentReport, "reference",
                _text(reference, "reference", DepartmentReport.reference, required=True)):
        raise DomainError("exists", what="部门记录", what_en="department report", ref=reference)
    report = DepartmentReport(id=_new_id(s, DepartmentReport), reference=reference, office_id=office.id,
                              department=department, reported_by_id=reporter.id, worker_id=hand.id,
                              reported_at=at, address=address, description=description,
                              order_id=_id(s, wo) if wo else None, fee=amount)
    s.add(report)
    _taking(s, DepartmentReport, "reference", reference)
    _flush(s)
    _audit(s, at=at, actor=reporter.code, action="report", entity="department_report", ref=reference,
           after={"department": department, "worker": hand.code, "order": wo.number if wo else None,
                  "fee": None if amount is None else str(amount)})
    return report
