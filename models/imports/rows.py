"""Each kind's rows written through the desk operations, with the reference data an import reads once."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, select
from sqlalchemy.orm import Session

from models import desk
from models.calendar import BusinessCalendar
from models.errors import DomainError
from models.imports.cells import RowProblem
from models.imports.spec import KINDS, Kind
from models.imports.writers import _Decided
from models.ledger.codes import OFFICE_CODE_PATTERN, is_office_code
from models.ledger.tables import (
    Callback,
    CashHandover,
    Community,
    DepartmentReport,
    Office,
    PriceItem,
    Receipt,
    ServiceRequest,
    Staff,
    WorkOrder,
)

@dataclass
class _Context:
    calendar: BusinessCalendar
    now: datetime
    office: str | None
    callback_workdays: int
    rework_within: timedelta = desk.DEFAULT_REWORK_WITHIN
    # what the desk operations of one transaction share (bulk look-ups, deferred writes): passed to each of them
    desk_batch: desk.Batch = field(default_factory=desk.Batch)
    staff_by_code: dict[str, tuple[str, str]] = field(default_factory=dict)  # code -> (name, office code)
    staff_by_name: dict[str, list[str]] = field(default_factory=dict)
    offices: dict[str, str] = field(default_factory=dict)  # code or name -> code
    # the reference rows themselves, loaded once: desk operations take them instead of a code to look up per row
    # (sessionmaker(expire_on_commit=False) keeps them readable after each batch commits)
    office_rows: dict[str, Office] = field(default_factory=dict)
    office_code_by_id: dict[int, str] = field(default_factory=dict)
    staff_rows: dict[str, Staff] = field(default_factory=dict)
    staff_code_by_id: dict[int, str] = field(default_factory=dict)
    refs: dict[tuple[type, str], Any] = field(default_factory=dict)  # communities and price items by code
    # this batch's rows by natural key (None: not in the ledger), looked up in bulk before the batch is written
    found: dict[tuple[type, str], Any] = field(default_factory=dict)
    # offices and staff as the desk's plain-value facts, by code: made again for each batch (a staff sheet's batch
    # may change a member), read by every row of it
    facts: dict[tuple[type, str], Any] = field(default_factory=dict)

    def load(self, s: Session) -> None:
        self.offices, self.office_rows, self.office_code_by_id = {}, {}, {}
        for office in s.scalars(select(Office)):
            self.offices[office.code] = office.code
            self.offices[office.name] = office.code
            self.office_rows[office.code] = office
            self.office_code_by_id[office.id] = office.code
        self.staff_by_code, self.staff_by_name, self.staff_rows, self.staff_code_by_id = {}, {}, {}, {}
        for staff in s.scalars(select(Staff)):
            self.remember(staff, self.office_code_by_id[staff.office_id])
        self.refs = {}

    def remember(self, staff: Staff, office: str) -> None:
        self.staff_by_code[staff.code] = (staff.name, office)
        self.staff_by_name.setdefault(staff.name, []).append(staff.code)
        self.staff_rows[staff.code] = staff
        self.staff_code_by_id[staff.id] = staff.code

    def restore(self, known: dict[str, tuple[str, str]]) -> None:
        """Forget staff a rolled-back batch had added, so later rows do not refer to them."""
        for code in set(self.staff_by_code) - set(known):
            row = self.staff_rows.pop(code)
            self.staff_code_by_id.pop(row.id, None)
        self.staff_by_code = dict(known)
        self.staff_by_name = {}
        for code, (name, _office) in known.items():
            self.staff_by_name.setdefault(name, []).append(code)

    def office_for(self, value: str | None) -> str:
        ref = value or self.office
        if ref is None:
            codes = set(self.offices.values())
            if len(codes) == 1:
                return next(iter(codes))
            raise RowProblem("office", "import_office_needed")
        code = self.offices.get(ref)
        fld = "office" if value else None
        if code is None:
            if not is_office_code(ref):
                raise RowProblem(fld, "import_bad_office", value=ref, pattern=OFFICE_CODE_PATTERN)
            raise RowProblem(fld, "import_unknown_office", value=ref)
        if not is_office_code(code):  # a ledger from before the pattern: its reports would leave their folder
            raise RowProblem(fld, "bad_office_code", value=code, pattern=OFFICE_CODE_PATTERN)
        return code

    def staff(self, fld: str, value: str, office: str | None = None) -> str:
        """A staff code from a code or a name (names are what clerks write; unique within the office)."""
        if value in self.staff_by_code:
            return value
        codes = self.staff_by_name.get(value, [])
        if office is not None and len(codes) > 1:
            codes = [c for c in codes if self.staff_by_code[c][1] == office] or codes
        if len(codes) == 1:
            return codes[0]
        if codes:
            raise RowProblem(fld, "import_ambiguous_staff", value=value, codes=", ".join(codes))
        raise RowProblem(fld, "import_unknown_staff", value=value)

    def office_code(self, s: Session, office_id: int) -> str:
        """The code of the office with this id (one added since the import began is read from the ledger)."""
        code = self.office_code_by_id.get(office_id)
        return code if code is not None else s.get(Office, office_id).code

    def staff_by_id(self, s: Session, staff_id: int) -> Staff:
        """The staff row with this id (one added since the import began is read from the ledger)."""
        code = self.staff_code_by_id.get(staff_id)
        return self.staff_rows[code] if code is not None else s.get(Staff, staff_id)

    def member(self, fld: str, value: str, office: str | None = None) -> Staff:
        """The staff row a code or name refers to (see `staff`)."""
        return self.staff_rows[self.staff(fld, value, office)]

    def staff_facts(self, code: str) -> desk.StaffFacts:
        """The staff member with this code as `desk.StaffFacts` (made once per batch)."""
        key = (Staff, code)
        facts = self.facts.get(key)
        if facts is None:
            row = self.staff_rows[code]
            facts = self.facts[key] = desk.StaffFacts(id=row.id, code=row.code, department=row.department,
                                                      office_id=row.office_id, active=row.active)
        return facts

    def office_facts(self, code: str) -> desk.OfficeFacts:
        """The office with this code as `desk.OfficeFacts` (made once per batch)."""
        key = (Office, code)
        facts = self.facts.get(key)
        if facts is None:
            row = self.office_rows[code]
            facts = self.facts[key] = desk.OfficeFacts(id=row.id, code=row.code)
        return facts

    def ref(self, s: Session, model: type, code: str | None) -> Any:
        """A community or price item by code, loaded once; an unknown code is left for the desk to refuse."""
        if code is None:
            return None
        key = (model, code)
        if key not in self.refs:
            self.refs[key] = s.scalar(select(model).where(model.code == code))
        return self.refs[key] if self.refs[key] is not None else code

    def row(self, s: Session, model: type, column: str, value: str) -> Any:
        """The ledger row with this natural key (None if there is none), from the batch's bulk lookup if it has it."""
        key = (model, value)
        if key in self.found:
            return self.found[key]
        return s.scalar(select(model).where(getattr(model, column) == value))

    def lookup(self, s: Session, model: type, column: str, values: set[str]) -> None:
        """One query for the batch's natural keys of `model`: later `row` calls answer from memory."""
        values = {v for v in values if v and (model, v) not in self.found}
        if not values:
            return
        col = getattr(model, column)
        rows = {getattr(r, column): r for r in s.scalars(select(model).where(col.in_(values)))}
        for value in values:
            self.found[(model, value)] = rows.get(value)
        self.desk_batch.note_keys(model, column, checked=values, present=rows)

    def added(self, model: type, value: str, row: Any) -> None:
        if (model, value) in self.found:
            self.found[(model, value)] = row


# the column a desk refusal concerns, per kind (the rest are reported against the row)
_ERROR_FIELDS: dict[str, dict[str, str]] = {
    "staff": {"unknown_department": "department", "unknown_role": "role"},
    "requests": {"cs_only": "by", "wrong_office": "by", "out_of_scope": "category", "unknown_category": "category",
                 "price_category": "price", "fee_needed": "fee", "community_office": "community",
                 "not_found": "price", "before_event": "replied_at", "negative_amount": "fee",
                 "time_out_of_range": "received_at"},
    "orders": {"cs_only": "by", "worker_department": "worker", "wrong_office": "worker",
               "already_issued": "request", "before_event": "issued_at", "already_completed": "completed_at",
               "already_accepted": "accepted_at", "accept_before_completion": "accepted_at",
               "time_out_of_range": "issued_at"},
    "receipts": {"receipt_number": "number", "receipt_not_unused": "number", "receipt_holder": "collected_by",
                 "collect_before_acceptance": "collected_at", "rework_free": "amount",
                 "amount_differs": "amount", "already_collected": "order", "unknown_method": "method",
                 "negative_amount": "amount", "receipts_issuer": "collected_by", "receipt_too_large": "number",
                 "time_out_of_range": "collected_at"},
    "handovers": {"not_cashier": "cashier", "handover_duplicate": "receipts", "not_found": "receipts",
                  "handover_not_cash": "receipts", "handover_not_collector": "receipts",
                  "handover_already": "receipts", "before_event": "handed_at", "negative_amount": "counted",
                  "time_out_of_range": "handed_at"},
    "callbacks": {"cs_only": "by", "callback_before_acceptance": "at", "no_callback_owed": "order",
                  "before_event": "at", "time_out_of_range": "at"},
    "department_reports": {"report_by": "by", "report_worker_department": "worker", "report_department": "department",
                           "negative_amount": "fee", "time_out_of_range": "reported_at"},
}


def _field_of(kind: Kind, error: DomainError) -> str | None:
    """The column a desk refusal concerns: the field it names (models.ledger.values' rules), else by its code."""
    named = error.params.get("field")
    if any(c.field == named for c in kind.columns):
        return named
    return _ERROR_FIELDS[kind.name].get(error.code)


def _request_row(s: Session, ctx: _Context, batch: _Decided, v: dict[str, Any]) -> tuple[str, list[desk.Decision]]:
    req = batch.known(ServiceRequest, v["number"])
    if req is not None:
        if v["replied_at"] is not None and req["channel"] == "phone" and req["replied_at"] is None:
            by = (ctx.member("replied_by", v["replied_by"]) if v["replied_by"]
                  else ctx.staff_by_id(s, req["received_by_id"]))
            return "added", [_reply(req, by, v["replied_at"])]
        return "present", []
    office = ctx.office_for(v["office"])
    clerk = ctx.staff_facts(ctx.staff("by", v["by"], office))
    registered = desk.decide_register(
        s, batch=ctx.desk_batch, office=ctx.office_facts(office), by=clerk, channel=v["channel"],
        resident=v["resident"], address=v["address"], phone=v["phone"], category=v["category"],
        description=v["description"], at=v["received_at"], price=ctx.ref(s, PriceItem, v["price"]), fee=v["fee"],
        preferred=v["preferred"], expected_result=v["expected_result"], community=ctx.ref(s, Community, v["community"]),
        number=v["number"])
    if v["replied_at"] is None or v["channel"] != "phone":
        return "added", [registered]
    by = ctx.staff_facts(ctx.staff("replied_by", v["replied_by"], office)) if v["replied_by"] else clerk
    return "added", [registered, _reply(registered.values, by, v["replied_at"])]


def _reply(req: dict[str, Any], by: Staff | desk.StaffFacts, at: datetime) -> desk.Decision:
    return desk.decide_reply(number=req["number"], channel=req["channel"], received_at=req["received_at"],
                             replied_at=req["replied_at"], by=by, at=at)


def _one_of(conn: Connection, column: Any, values: set[str]) -> Any:
    """`column IN values`; on SQLite the values go as one JSON parameter (json_each) instead of one each: binding
    and compiling a thousand parameters cost more than the look-up itself."""
    if conn.dialect.name != "sqlite":
        return column.in_(values)
    listed = func.json_each(json.dumps(sorted(values), ensure_ascii=False)).table_valued("value")
    return column.in_(select(listed.c.value))


_REQUEST_FACTS = ("number", "channel", "received_at", "replied_at", "received_by_id")


def _look_up_requests(s: Session, ctx: _Context, batch: _Decided, rows: list[dict[str, Any]],
                      over: _Decided | None) -> None:
    numbers = {v["number"] for v in rows}
    sr = ServiceRequest
    conn = s.connection()
    found = conn.execute(select(*(sr.__table__.c[name] for name in _REQUEST_FACTS))
                         .where(_one_of(conn, sr.number, numbers))).mappings()
    for row in found:
        batch.seen(ServiceRequest, row["number"], dict(row))
    if over is not None:
        for number in numbers:
            seen = over.known(ServiceRequest, number)  # as the batch being written leaves it
            if seen is not None:
                batch.seen(ServiceRequest, number, {name: seen[name] for name in _REQUEST_FACTS})
    ctx.desk_batch.note_keys(ServiceRequest, "number", checked=numbers,
                   present=list(batch.ledger.get(ServiceRequest, ())))


def _order_progress(s: Session, ctx: _Context, wo: WorkOrder, v: dict[str, Any], resident: str) -> bool:
    changed = False
    if v["completed_at"] is not None and wo.completed_at is None:
        desk.complete(s, batch=ctx.desk_batch, order=wo, by=ctx.staff_by_id(s, wo.worker_id), at=v["completed_at"])
        changed = True
    if v["accepted_at"] is not None and wo.accepted_at is None:
        desk.accept(s, batch=ctx.desk_batch, order=wo, signed_by=v["signed_by"] or resident, at=v["accepted_at"],
                    calendar=ctx.calendar, callback_workdays=ctx.callback_workdays)
        changed = True
    return changed


def _order_row(s: Session, ctx: _Context, v: dict[str, Any]) -> str:
    wo = ctx.row(s, WorkOrder, "number", v["number"])
    if wo is not None:
        resident = s.get(ServiceRequest, wo.request_id).resident_name
        return "added" if _order_progress(s, ctx, wo, v, resident) else "present"
    req = ctx.row(s, ServiceRequest, "number", v["request"])
    if req is None:
        raise RowProblem("request", "import_unknown_ref", what="request", ref=v["request"])
    office = ctx.office_code(s, req.office_id)
    clerk = (ctx.member("by", v["by"], office) if v["by"]
             else ctx.staff_by_id(s, req.received_by_id))
    worker = ctx.member("worker", v["worker"], office)
    if v["accepted_at"] is not None and v["completed_at"] is None:
        raise RowProblem("completed_at", "import_required", column=KINDS["orders"].column("completed_at").title)
    wo = desk.issue_order(s, batch=ctx.desk_batch, request=req, by=clerk, worker=worker, scheduled=v["scheduled"],
                          at=v["issued_at"], number=v["number"])
    ctx.added(WorkOrder, v["number"], wo)
    _order_progress(s, ctx, wo, v, req.resident_name)
    return "added"


def _receipt_row(s: Session, ctx: _Context, v: dict[str, Any]) -> str:
    wo = ctx.row(s, WorkOrder, "number", v["order"])
    if wo is None:
        raise RowProblem("order", "import_unknown_ref", what="work_order", ref=v["order"])
    office = ctx.office_code(s, wo.office_id)
    collector = ctx.member("collected_by", v["collected_by"], office)
    rec = ctx.row(s, Receipt, "number", v["number"])
    if rec is not None and rec.state == "used":
        if rec.order_id == wo.id:
            return "present"
        other = s.get(WorkOrder, rec.order_id).number if rec.order_id else "?"
        raise RowProblem("number", "import_receipt_used", number=v["number"], order=other)
    if rec is None:
        # a receipt the ledger has never seen: record it as issued by the order's clerk to the collector
        desk.issue_receipts(s, batch=ctx.desk_batch, by=ctx.staff_by_id(s, wo.issued_by_id), to=collector,
                            first=v["number"], count=1, at=v["collected_at"])
        ctx.found.pop((Receipt, v["number"]), None)  # the desk's own lookup finds the new blank
    desk.collect(s, batch=ctx.desk_batch, order=wo, by=collector, receipt=v["number"] if rec is None else rec,
                 amount=v["amount"], method=v["method"] or "cash", at=v["collected_at"], reason=v["reason"])
    return "added"


def _handover_row(s: Session, ctx: _Context, v: dict[str, Any]) -> str:
    if ctx.row(s, CashHandover, "number", v["number"]) is not None:
        return "present"
    by = ctx.staff("by", v["by"])
    cashier = ctx.member("cashier", v["cashier"], ctx.staff_by_code[by][1])
    numbers = [n for n in re.split(r"[\s,，、;；]+", v["receipts"]) if n]
    ho = desk.handover(s, batch=ctx.desk_batch, by=ctx.staff_rows[by], cashier=cashier, receipts=numbers,
                       counted=v["counted"], at=v["handed_at"], number=v["number"])
    ctx.added(CashHandover, v["number"], ho)
    return "added"


def _callback_row(s: Session, ctx: _Context, v: dict[str, Any]) -> str:
    wo = ctx.row(s, WorkOrder, "number", v["order"])
    if wo is None:
        raise RowProblem("order", "import_unknown_ref", what="work_order", ref=v["order"])
    done = s.scalar(select(Callback.id).where(Callback.order_id == wo.id, Callback.done_at == v["at"]))
    if done is not None:
        return "present"
    clerk = ctx.member("by", v["by"], ctx.office_code(s, wo.office_id))
    desk.callback(s, batch=ctx.desk_batch, order=wo, by=clerk, outcome=v["outcome"], at=v["at"],
                  calendar=ctx.calendar, note=v["note"], callback_workdays=ctx.callback_workdays,
                  rework_within=ctx.rework_within)
    return "added"


def _department_report_row(s: Session, ctx: _Context, v: dict[str, Any]) -> str:
    if ctx.row(s, DepartmentReport, "reference", v["reference"]) is not None:
        return "present"
    by = ctx.staff("by", v["by"])
    worker = ctx.member("worker", v["worker"], ctx.staff_by_code[by][1])
    order = ctx.row(s, WorkOrder, "number", v["order"]) if v["order"] is not None else None
    if v["order"] is not None and order is None:
        raise RowProblem("order", "import_unknown_ref", what="work_order", ref=v["order"])
    report = desk.department_report(s, batch=ctx.desk_batch, by=ctx.staff_rows[by], department=v["department"],
                                    worker=worker, address=v["address"], description=v["description"],
                                    at=v["reported_at"], order=order, fee=v["fee"], reference=v["reference"])
    ctx.added(DepartmentReport, v["reference"], report)
    return "added"


def _staff_row(s: Session, ctx: _Context, v: dict[str, Any]) -> str:
    if v["code"] in ctx.staff_by_code:
        return "present"
    office = ctx.office_for(v["office"])
    staff = desk.add_staff(s, batch=ctx.desk_batch, code=v["code"], name=v["name"], office=ctx.office_rows[office],
                           department=v["department"], role=v["role"], at=ctx.now, actor="import")
    ctx.remember(staff, office)
    return "added"


# the natural keys a batch of each kind looks up in one query each: (model, column, the fields holding them)
_KEYS: dict[str, tuple[tuple[type, str, tuple[str, ...]], ...]] = {
    "staff": (),
    "orders": ((WorkOrder, "number", ("number",)), (ServiceRequest, "number", ("request",))),
    "receipts": ((WorkOrder, "number", ("order",)), (Receipt, "number", ("number",))),
    "handovers": ((CashHandover, "number", ("number",)),),
    "callbacks": ((WorkOrder, "number", ("order",)),),
    "department_reports": ((DepartmentReport, "reference", ("reference",)), (WorkOrder, "number", ("order",))),
}


_WRITERS = {"staff": _staff_row, "orders": _order_row, "receipts": _receipt_row,
            "handovers": _handover_row, "callbacks": _callback_row, "department_reports": _department_report_row}

# kinds whose rows are decided (desk.decide_*) against facts looked up for the whole batch, then written per table
# with one executemany each: (look up the batch's natural keys, decide one row)
_DECIDERS = {"requests": (_look_up_requests, _request_row)}
