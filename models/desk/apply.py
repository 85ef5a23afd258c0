"""The desk's operations: each looks up what its decision needs (queries), decides (rules, pure), and applies the
decision: its rows and one audit event, flushed. The CLI and the ledger import call these same operations.

Every operation takes the session first and keyword-only arguments (codes and numbers as strings, or the ORM
object itself); the caller owns the transaction (models.ledger.db.transaction), so a refusal (DomainError),
raised before anything is written, leaves the ledger untouched. `batch`: an importer's models.desk.batch.Batch,
for many operations in one transaction; nothing is kept in the session itself.

Numbers (an explicit `number=` from an import is used as given):
  request   R-<office>-<YYYYMMDD>-<nnn>        date of `at` as given (the CLI passes local time)
  order     WO-<office>-<YYYYMMDD>-<nnn>       rework orders: <root order>-R<n>
  handover  H-<office>-<YYYYMMDD>-<nnn>
  dept rep. DR-<office>-<YYYYMMDD>-<nnn>
  receipt   digits; a book of `count` from `first` keeps first's width (000101, 000102, ...), serial = int value
"""
from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from models.calendar import BusinessCalendar
from models.desk import queries, rules
from models.desk.batch import Batch
from models.desk.facts import (
    DEFAULT_REWORK_WITHIN,
    ORDER_OF_REQUEST,
    RECEIPT_OF_ORDER,
    CallbackOutcome,
    Decision,
    OfficeFacts,
    StaffFacts,
)
from models.ledger.tables import (
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


# -- writing ---------------------------------------------------------------------------------------------------
def _flush(s: Session, batch: Batch | None) -> None:
    if batch is None or not batch.deferring:
        s.flush()


def _new_id(s: Session, model: type, batch: Batch | None) -> int | None:
    return batch.new_id(s, model) if batch is not None else None


def _record(s: Session, decision: Decision, batch: Batch | None) -> None:
    """The decision's audit events: added to the session, or kept by a deferring batch to insert together."""
    for event in decision.audits:
        if batch is not None:
            batch.audits += 1
            if batch.audit_rows is not None:
                batch.audit_rows.append(event)
                continue
        s.add(AuditEvent(**event))


def _apply(s: Session, decision: Decision, row: Any = None, *, batch: Batch | None = None,
           flush: bool = False) -> Any:
    """A one-row decision written: its new row added (with an id from the batch, if it hands them out), or `row`
    (the one `decision.where` names) changed; then flushed and its audit events recorded. `flush`: flush even in a
    deferring batch, the database choosing the new row's id (the caller reads it at once)."""
    if decision.where is None:
        row = decision.model(**decision.values)
        new_id = None if flush else _new_id(s, decision.model, batch)
        if new_id is not None:
            row.id = new_id
        s.add(row)
    else:
        for name, value in decision.values.items():
            setattr(row, name, value)
    if flush:
        s.flush()
    else:
        _flush(s, batch)
    _record(s, decision, batch)
    return row


def _number(s: Session, model: type, column: str, number: str | None, *, series: str,
            office: Office | OfficeFacts, when: str, at: datetime, batch: Batch | None) -> str:
    """The new row's number: the next free one (`<series>-<office>-<YYYYMMDD>-<nnn>`), or the one given, refused
    if the ledger holds it."""
    if number is None:
        prefix = f"{series}-{office.code}-{rules.day(at)}"  # only here: an import gives every row's number
        return queries.next_number(s, model=model, column=column, prefix=prefix, office_id=office.id, when=when,
                                   at=at)
    key = rules.text(number, column, getattr(model, column), required=True)
    rules.refuse_taken(queries.taken(s, model=model, column=column, value=key, batch=batch), model, number)
    return number


# -- reference data ------------------------------------------------------------------------------------------
def add_office(s: Session, *, code: str, name: str, at: datetime, actor: str = "setup") -> Office:
    """A service office (服务处); its code becomes a folder name of the reports, so it must match the pattern."""
    decision = rules.add_office(code=code, name=name, at=at, actor=actor)
    rules.refuse_taken(queries.taken(s, model=Office, column="code", value=code), Office, code)
    return _apply(s, decision, flush=True)


def add_community(s: Session, *, office: str | Office, code: str, name: str, at: datetime,
                  actor: str = "setup") -> Community:
    """A community (小区) managed by an office."""
    decision = rules.add_community(office=queries.row(s, model=Office, ref=office), office_ref=office, code=code,
                                   name=name, at=at, actor=actor)
    code = decision.values["code"]
    rules.refuse_taken(queries.taken(s, model=Community, column="code", value=code), Community, code)
    return _apply(s, decision, flush=True)


def add_staff(s: Session, *, code: str, name: str, office: str | Office, department: str, role: str,
              at: datetime, actor: str = "setup", batch: Batch | None = None) -> Staff:
    """A staff member; what they may do follows from department and role."""
    decision = rules.add_staff(code=code, name=name, office=queries.row(s, model=Office, ref=office),
                               office_ref=office, department=department, role=role, at=at, actor=actor)
    code = decision.values["code"]
    rules.refuse_taken(queries.taken(s, model=Staff, column="code", value=code), Staff, code)
    return _apply(s, decision, batch=batch, flush=True)


def set_price(s: Session, *, code: str, category: str, name: str, fee: Decimal, at: datetime,
              actor: str = "setup") -> PriceItem:
    """Create a price-list item or change it; out-of-scope categories cannot be priced."""
    rules.require_aware(at)
    item = queries.row(s, model=PriceItem, ref=rules.price_code(code))
    decision = rules.set_price(code=code, category=category, name=name, fee=fee, at=at, actor=actor, item=item)
    return _apply(s, decision, item, flush=True)


# -- registration and reply (procedure 3.1, 4.2) -------------------------------------------------------------
def register(s: Session, *, office: str | Office, by: str | Staff, channel: str, resident: str, address: str,
             phone: str, category: str, description: str, at: datetime, price: str | PriceItem | None = None,
             fee: Decimal | None = None, preferred: datetime | None = None, expected_result: str | None = None,
             community: str | Community | None = None, number: str | None = None,
             batch: Batch | None = None) -> ServiceRequest:
    """The registration form (登记表): only CS registers, only in-scope work, fee from the price list or agreed."""
    decision = decide_register(s, office=office, by=by, channel=channel, resident=resident, address=address,
                               phone=phone, category=category, description=description, at=at, price=price,
                               fee=fee, preferred=preferred, expected_result=expected_result, community=community,
                               number=number, batch=batch)
    request = _apply(s, decision, batch=batch)
    if batch is not None:
        batch.taking(ServiceRequest, "number", request.number)
    return request


def decide_register(s: Session, *, office: str | Office | OfficeFacts, by: str | Staff | StaffFacts, channel: str,
                    resident: str, address: str, phone: str, category: str, description: str, at: datetime,
                    price: str | PriceItem | None = None, fee: Decimal | None = None,
                    preferred: datetime | None = None, expected_result: str | None = None,
                    community: str | Community | None = None, number: str | None = None,
                    batch: Batch | None = None) -> Decision:
    """What `register` writes, or its refusal: what is passed as a code looked up, then `rules.register`."""
    off = office if type(office) is OfficeFacts else queries.row(s, model=Office, ref=office)
    clerk = by if type(by) is StaffFacts else queries.row(s, model=Staff, ref=by)
    item = queries.row(s, model=PriceItem, ref=price) if price is not None else None
    comm = queries.row(s, model=Community, ref=community) if community is not None else None
    draft = rules.register(office=off, office_ref=office, by=clerk, by_ref=by, channel=channel, resident=resident,
                           address=address, phone=phone, category=category, description=description, at=at,
                           item=item, price=price, fee=fee, preferred=preferred, expected_result=expected_result,
                           community=comm, community_ref=community)
    number = _number(s, ServiceRequest, "number", number, series="R", office=off, when="received_at", at=at,
                     batch=batch)
    return rules.numbered(draft, "number", number)


def reply(s: Session, *, request: str | ServiceRequest, by: str | Staff, at: datetime,
          batch: Batch | None = None) -> ServiceRequest:
    """CS called the resident back with a visiting time (phone requests, within 10 minutes)."""
    rules.require_aware(at)
    req = rules.found(queries.row(s, model=ServiceRequest, ref=request, column="number"), ServiceRequest, request)
    clerk = rules.found(queries.row(s, model=Staff, ref=by), Staff, by)
    decision = rules.reply(number=req.number, channel=req.channel, received_at=req.received_at,
                           replied_at=req.replied_at, by=clerk, at=at)
    return _apply(s, decision, req, batch=batch)


# -- the work order (procedure 3.2.1, 3.2.2) -----------------------------------------------------------------
def issue_order(s: Session, *, request: str | ServiceRequest, by: str | Staff, worker: str | Staff,
                scheduled: datetime, at: datetime, number: str | None = None,
                batch: Batch | None = None) -> WorkOrder:
    """The notice (通知单) to the department that does this category of work, for one of its workers."""
    req = queries.row(s, model=ServiceRequest, ref=request, column="number")
    office = queries.office(s, office_id=req.office_id) if req is not None else None
    draft = rules.issue_order(
        request=req, request_ref=request, by=queries.row(s, model=Staff, ref=by), by_ref=by,
        worker=queries.row(s, model=Staff, ref=worker), worker_ref=worker, request_office=office,
        existing=queries.order_of_request(s, request=req, batch=batch) if req is not None else None,
        scheduled=scheduled, at=at)
    number = _number(s, WorkOrder, "number", number, series="WO", office=office, when="issued_at", at=at,
                     batch=batch)
    order = _apply(s, rules.issued(draft, number), batch=batch)
    if batch is not None:
        batch.taking(WorkOrder, "number", number)
        batch.fact_now(ORDER_OF_REQUEST, req.id, number)
    return order


def complete(s: Session, *, order: str | WorkOrder, by: str | Staff, at: datetime,
             batch: Batch | None = None) -> WorkOrder:
    """The worker finished the job (before the resident inspects it)."""
    wo = queries.row(s, model=WorkOrder, ref=order, column="number")
    decision = rules.complete(order=wo, order_ref=order, by=queries.row(s, model=Staff, ref=by), by_ref=by, at=at)
    return _apply(s, decision, wo, batch=batch)


def accept(s: Session, *, order: str | WorkOrder, signed_by: str, at: datetime, calendar: BusinessCalendar,
           callback_workdays: int = 2, batch: Batch | None = None) -> WorkOrder:
    """The resident inspected the work and signed the notice; the callback becomes owed."""
    wo = queries.row(s, model=WorkOrder, ref=order, column="number")
    linked = rules.accept(order=wo, order_ref=order, signed_by=signed_by, at=at, calendar=calendar,
                          callback_workdays=callback_workdays)
    for name, value in linked.main.values.items():
        setattr(wo, name, value)
    owed = Callback(order_id=queries.ensure_id(s, row=wo), **linked.rows["callback"])
    new_id = _new_id(s, Callback, batch)
    if new_id is not None:
        owed.id = new_id
    s.add(owed)
    _flush(s, batch)
    _record(s, linked.main, batch)
    return wo


# -- receipts and money (procedure 3.2.2) --------------------------------------------------------------------
def issue_receipts(s: Session, *, by: str | Staff, to: str | Staff, first: str, count: int,
                   at: datetime, batch: Batch | None = None) -> ReceiptBook:
    """Hand a run of pre-numbered receipts to someone who will collect with them (CS or finance hands them out)."""
    issuer, holder = queries.row(s, model=Staff, ref=by), queries.row(s, model=Staff, ref=to)
    numbers = rules.receipt_numbers(by=issuer, by_ref=by, to=holder, to_ref=to, first=first, count=count, at=at)
    linked = rules.issue_receipts(by=issuer, to=holder, numbers=numbers,
                                  clash=queries.receipt_clash(s, numbers=numbers, batch=batch), at=at)
    book = ReceiptBook(**linked.main.values)
    book_id = _new_id(s, ReceiptBook, batch)
    if book_id is not None:
        book.id = book_id
    s.add(book)
    book_id = queries.ensure_id(s, row=book)
    receipts = [Receipt(id=_new_id(s, Receipt, batch), book_id=book_id, **leaf) for leaf in linked.rows["receipts"]]
    s.add_all(receipts)
    _flush(s, batch)
    if batch is not None and batch.new is not None:
        batch.new[(ReceiptBook, book_id)] = book
        for r in receipts:
            batch.new[(Receipt, r.number)] = r
            batch.taking(Receipt, "number", r.number)
    _record(s, linked.main, batch)
    return book


def _retire_receipt(s: Session, *, number: str, by: str | Staff, at: datetime, reason: str | None,
                    state: str) -> Receipt:
    rec = queries.receipt(s, ref=number)
    decision = rules.retire_receipt(receipt=rec, number=number, by=queries.row(s, model=Staff, ref=by), by_ref=by,
                                    book=queries.book(s, book_id=rec.book_id) if rec is not None else None, at=at,
                                    reason=reason, state=state)
    return _apply(s, decision, rec, flush=True)


def void_receipt(s: Session, *, number: str, by: str | Staff, at: datetime, reason: str | None = None) -> Receipt:
    """An unused receipt spoiled or cancelled: it stays accounted for as voided."""
    return _retire_receipt(s, number=number, by=by, at=at, reason=reason, state="voided")


def return_receipt(s: Session, *, number: str, by: str | Staff, at: datetime,
                   reason: str | None = None) -> Receipt:
    """An unused receipt given back to the desk."""
    return _retire_receipt(s, number=number, by=by, at=at, reason=reason, state="returned")


def collect(s: Session, *, order: str | WorkOrder, by: str | Staff, receipt: str | Receipt, amount: Decimal,
            method: str, at: datetime, reason: str | None = None, batch: Batch | None = None) -> Receipt:
    """The agreed fee collected after acceptance, on an unused receipt held by the collector or by CS."""
    wo, collector, paid, reason = rules.collect(
        order=queries.row(s, model=WorkOrder, ref=order, column="number"), order_ref=order,
        by=queries.row(s, model=Staff, ref=by), by_ref=by, method=method, amount=amount, reason=reason, at=at)
    rec = queries.receipt(s, ref=receipt, batch=batch)
    holder = (queries.staff(s, staff_id=queries.book(s, book_id=rec.book_id, batch=batch).holder_id)
              if rec is not None else None)
    already = queries.receipt_of_order(s, order=wo, batch=batch)
    queries.ensure_id(s, row=wo)
    linked = rules.collect_on(order=wo, collector=collector, paid=paid, reason=reason, method=method, at=at,
                              receipt=rec, receipt_ref=receipt, holder=holder, already=already)
    for name, value in linked.main.values.items():
        setattr(rec, name, value)
    for name, value in linked.rows["order"].items():
        setattr(wo, name, value)
    if batch is not None:
        batch.fact_now(RECEIPT_OF_ORDER, wo.id, rec.number)
    _flush(s, batch)
    _record(s, linked.main, batch)
    return rec


def handover(s: Session, *, by: str | Staff, cashier: str | Staff, receipts: list[str], counted: Decimal,
             at: datetime, number: str | None = None, batch: Batch | None = None) -> CashHandover:
    """Cash handed to a finance cashier, receipt by receipt; a shortfall is recorded as counted, not refused."""
    hander, teller = queries.row(s, model=Staff, ref=by), queries.row(s, model=Staff, ref=cashier)
    numbers, amount = rules.handover(by=hander, by_ref=by, cashier=teller, cashier_ref=cashier, receipts=receipts,
                                     counted=counted, at=at)
    rows = queries.receipts(s, numbers=numbers)
    office = queries.office(s, office_id=hander.office_id)
    linked = rules.handover_of(by=hander, cashier=teller, numbers=numbers, counted=amount, rows=rows, office=office,
                               at=at)
    # a handover's number is checked against the ledger itself, whatever a batch has looked up
    number = _number(s, CashHandover, "number", number, series="H", office=office, when="handed_at", at=at,
                     batch=None)
    decision = rules.numbered(linked.main, "number", number)
    ho = CashHandover(**decision.values)
    s.add(ho)
    s.flush()
    for n in linked.rows["receipts"]:
        rows[n].handover_id = ho.id
    s.flush()
    _record(s, decision, batch)
    return ho


# -- callbacks and rework (procedure 3.2.3) ------------------------------------------------------------------
def callback(s: Session, *, order: str | WorkOrder, by: str | Staff, outcome: str, at: datetime,
             calendar: BusinessCalendar, note: str | None = None, callback_workdays: int = 2,
             rework_within: timedelta = DEFAULT_REWORK_WITHIN, batch: Batch | None = None) -> CallbackOutcome:
    """The return visit: satisfied closes it; unsatisfied opens a free rework order; unreachable tries again the
    next working day."""
    wo, clerk, note = rules.callback(order=queries.row(s, model=WorkOrder, ref=order, column="number"),
                                     order_ref=order, by=queries.row(s, model=Staff, ref=by), by_ref=by,
                                     outcome=outcome, note=note, at=at)
    unsatisfied = outcome == "unsatisfied"
    owed = queries.owed_callback(s, order=wo)
    linked = rules.callback_on(
        order=wo, clerk=clerk, outcome=outcome, note=note, at=at, owed=owed,
        root_number=queries.chain_root(s, order=wo).number if unsatisfied else None,
        reworks=queries.rework_count(s, request_id=wo.request_id) if unsatisfied else 0,
        calendar=calendar, rework_within=rework_within)
    rework = None
    if linked.rows["rework"] is not None:
        rework = WorkOrder(id=_new_id(s, WorkOrder, batch), **linked.rows["rework"])
        s.add(rework)
        s.flush()
    for name, value in linked.main.values.items():
        setattr(owed, name, value)
    owed.rework_order_id = rework.id if rework else None
    if linked.rows["next"] is not None:
        s.add(Callback(id=_new_id(s, Callback, batch), **linked.rows["next"]))
    _flush(s, batch)
    _record(s, linked.main, batch)
    return CallbackOutcome(owed, rework)


# -- a department's own record (procedure 3.2.4) -------------------------------------------------------------
def department_report(s: Session, *, by: str | Staff, department: str, worker: str | Staff, address: str,
                      description: str, at: datetime, order: str | WorkOrder | None = None,
                      fee: Decimal | None = None, reference: str | None = None,
                      batch: Batch | None = None) -> DepartmentReport:
    """Engineering's or cleaning's own record of a job, to be reconciled against CS's register."""
    hand = queries.row(s, model=Staff, ref=worker)
    wo = queries.row(s, model=WorkOrder, ref=order, column="number") if order is not None else None
    if wo is not None:
        queries.ensure_id(s, row=wo)
    office = queries.office(s, office_id=hand.office_id) if hand is not None else None
    draft = rules.department_report(by=queries.row(s, model=Staff, ref=by), by_ref=by, department=department,
                                    worker=hand, worker_ref=worker, address=address, description=description,
                                    order=wo, order_ref=order, fee=fee, office=office, at=at)
    reference = _number(s, DepartmentReport, "reference", reference, series="DR", office=office,
                        when="reported_at", at=at, batch=batch)
    report = _apply(s, rules.numbered(draft, "reference", reference), batch=batch)
    if batch is not None:
        batch.taking(DepartmentReport, "reference", reference)
    return report
