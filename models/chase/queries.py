"""As-of queries of what is overdue: phone replies, callbacks (original and rework), missing rework, late work.

Every check sees the ledger as it stood at `as_of`: an event recorded with a later time (a reply, a
completion, a callback) counts as not having happened yet, so replaying a past moment finds exactly
what was overdue then. Each query reads the open items through their partial index, plus the few
items closed after `as_of` (empty for a run "now") through an index on the closing time, so its cost
follows the open items, not the history.

Level changes wait for working time: outside working hours, or on a day off, deadlines are judged
as of the last working moment, so nobody is paged at 3 a.m. or in the middle of the National Day
holiday for something that fell due while the office was closed.
"""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import cache

from sqlalchemy import (
    CompoundSelect,
    Executable,
    Row,
    Select,
    bindparam,
    exists,
    func,
    literal_column,
    select,
    union_all,
)
from sqlalchemy.orm import Session, aliased

from models.calendar import BusinessCalendar
from models.chase.facts import (
    CallbackChase,
    MissingRework,
    OverdueCallback,
    OverdueReply,
    OverdueWorkOrder,
    ReworkWithoutCallback,
)
from models.chase.rules import judged_at, rework_due
from models.facts import maker
from models.ledger.tables import Callback, Community, Office, ServiceRequest, Staff, UTCDateTime, WorkOrder
from models.planning import short_queries
from models.rules import callback_level, escalation_due, overdue_minutes, reply_due

_overdue_reply = maker(OverdueReply)
_overdue_callback = maker(OverdueCallback)
_rework_without_callback = maker(ReworkWithoutCallback)
_missing_rework = maker(MissingRework)
_overdue_work_order = maker(OverdueWorkOrder)


# -- queries --------------------------------------------------------------------------------------
# Each statement is built once, with the moments as bound parameters: building select()s and aliases on
# every run cost more than running them. They select columns, not entities, and run on the session's
# connection: the ORM's execution and row loading (identity map, entity adaptation) were half of a check's
# time with nothing to load.

_AS_OF = bindparam("as_of", type_=UTCDateTime())
_JUDGE = bindparam("judge", type_=UTCDateTime())
_DUE_BEFORE = bindparam("due_before", type_=UTCDateTime())
# literals, not bound values, so that both planners can match the partial indexes written with them
_PHONE = literal_column("'phone'")
_UNSATISFIED = literal_column("'unsatisfied'")


def _owed(base: Select, *, closed_at, due_filter) -> CompoundSelect:
    """`base` still open as of `as_of`: the open rows past due (read through their partial index), and those
    closed after `as_of` (none for a run "now"), read through the closing time's index alone so the planner
    cannot wander into a scan of the whole history by due time; the caller re-checks the due. One statement:
    each branch of a UNION ALL is planned on its own."""
    return union_all(base.where(closed_at.is_(None), due_filter), base.where(closed_at > _AS_OF))


_OFFICE = bindparam("office")


def _in_office(base: Select, by_office: bool) -> Select:
    """`base` narrowed to one office's rows (`:office`, its code) for a fanned-out run's part; unchanged for the
    group, whose statement stays the one the partial indexes were planned for."""
    return base.where(Office.code == _OFFICE) if by_office else base


def _params(params: dict, office: str | None) -> dict:
    return params if office is None else {**params, "office": office}


def _rows(session: Session, stmt: Executable, params: dict) -> Sequence[Row]:
    """The rows of a column statement, on the session's connection (after flushing what the session holds)."""
    session.flush()
    return session.connection().execute(stmt, params).all()


@cache
def _replies_statement(by_office: bool = False) -> CompoundSelect:
    clerk = aliased(Staff)
    base = (
        select(ServiceRequest.number, Office.code, Community.name, ServiceRequest.address,
               ServiceRequest.resident_name, ServiceRequest.phone, clerk.name, ServiceRequest.received_at)
        .join(Office, Office.id == ServiceRequest.office_id)
        .outerjoin(Community, Community.id == ServiceRequest.community_id)
        .join(clerk, clerk.id == ServiceRequest.received_by_id)
        .where(ServiceRequest.channel == _PHONE, ServiceRequest.received_at <= _AS_OF)
    )
    return _owed(_in_office(base, by_office), closed_at=ServiceRequest.replied_at, due_filter=ServiceRequest.received_at < _DUE_BEFORE)


def overdue_replies(session: Session, *, as_of: datetime, calendar: BusinessCalendar,
                    reply_minutes: int = 10, office: str | None = None) -> list[OverdueReply]:
    """Phone requests received by `as_of` with no reply by then, past their reply time when judged (of `office`,
    else of every office)."""
    short_queries(session)
    judge = judged_at(as_of, calendar)
    rows = _rows(session, _replies_statement(office is not None),
                 _params({"as_of": as_of, "due_before": judge - timedelta(minutes=reply_minutes)}, office))
    found = []
    for row in rows:
        due = reply_due(row[7], reply_minutes=reply_minutes)
        if due < judge:
            found.append(_overdue_reply(*row, due, overdue_minutes(due, as_of)))
    return sorted(found, key=lambda f: (f.due_at, f.request_number))


@cache
def _callbacks_statement(by_office: bool = False) -> CompoundSelect:
    clerk, worker, original = aliased(Staff), aliased(Staff), aliased(WorkOrder)
    base = (
        select(WorkOrder.number, ServiceRequest.number, Office.code, Community.name, ServiceRequest.address,
               ServiceRequest.resident_name, ServiceRequest.phone, clerk.name, WorkOrder.department,
               worker.name, Callback.id, Callback.due_at, original.number)
        .select_from(Callback)
        .join(WorkOrder, WorkOrder.id == Callback.order_id)
        .join(ServiceRequest, ServiceRequest.id == WorkOrder.request_id)
        .join(Office, Office.id == WorkOrder.office_id)
        .outerjoin(Community, Community.id == ServiceRequest.community_id)
        .join(clerk, clerk.id == ServiceRequest.received_by_id)
        .join(worker, worker.id == WorkOrder.worker_id)
        .outerjoin(original, original.id == WorkOrder.rework_of_id)
        .where(Callback.created_at <= _AS_OF)
    )
    return _owed(_in_office(base, by_office), closed_at=Callback.done_at, due_filter=Callback.due_at < _JUDGE)


def overdue_callbacks(session: Session, *, as_of: datetime, calendar: BusinessCalendar,
                      escalate_workdays: int = 1, office: str | None = None) -> list[OverdueCallback]:
    """Callbacks owed as of `as_of` and past due when judged (of `office`, else of every office); rework orders
    come as ReworkWithoutCallback."""
    judge = judged_at(as_of, calendar)
    rows = _rows(session, _callbacks_statement(office is not None), _params({"as_of": as_of, "judge": judge}, office))
    found: list[OverdueCallback] = []
    # callbacks fall due at a handful of moments (the end of a working day): walk the calendar once for each
    levels: dict[datetime, tuple[int, datetime]] = {}
    for row in rows:
        due, rework_of = row[11], row[12]
        if due >= judge:
            continue
        if due not in levels:
            levels[due] = (callback_level(due, judge, calendar, escalate_workdays=escalate_workdays),
                           escalation_due(due, calendar, workdays=escalate_workdays))
        level, escalates_at = levels[due]
        # order, request, office, community, address, resident, phone, holder, department, worker, callback id, due
        facts = (*row[:12], escalates_at, overdue_minutes(due, as_of), level)
        found.append(_rework_without_callback(*facts, rework_of) if rework_of else _overdue_callback(*facts))
    return sorted(found, key=lambda f: (f.due_at, f.order_number))


@cache
def _missing_rework_statements(by_office: bool = False) -> tuple[Select, Select]:
    # desk.callback links the rework it opens in the same operation (issued at the callback's own time), so only
    # unsatisfied callbacks without that link can lack one: first their ids (ix_callbacks_unsatisfied_open, whose
    # predicate this repeats word for word), then, by id, those whose order still had no rework issued by
    # `as_of` (rows loaded otherwise, a rework issued by hand later)
    candidates = select(Callback.id).where(
        func.coalesce(Callback.outcome, literal_column("''")) == _UNSATISFIED, Callback.rework_order_id.is_(None),
        Callback.done_at <= _AS_OF, Callback.done_at < _DUE_BEFORE)
    clerk, rework, worker = aliased(Staff), aliased(WorkOrder), aliased(Staff)
    detail = (
        select(WorkOrder.number, ServiceRequest.number, Office.code, Community.name, ServiceRequest.address,
               ServiceRequest.resident_name, ServiceRequest.phone, clerk.name, WorkOrder.department,
               Callback.done_at, worker.code, worker.name, Callback.note)
        .select_from(Callback)
        .join(WorkOrder, WorkOrder.id == Callback.order_id)
        .join(ServiceRequest, ServiceRequest.id == WorkOrder.request_id)
        .join(Office, Office.id == WorkOrder.office_id)
        .outerjoin(Community, Community.id == ServiceRequest.community_id)
        .outerjoin(clerk, clerk.id == Callback.done_by_id)
        .join(worker, worker.id == WorkOrder.worker_id)
        .where(Callback.id.in_(bindparam("ids", expanding=True)))
        .where(~exists().where(rework.rework_of_id == WorkOrder.id, rework.issued_at <= _AS_OF))
    )
    # the candidates are few (unsatisfied, no rework linked): narrowed with their details
    return candidates, _in_office(detail, by_office)


def missing_reworks(session: Session, *, as_of: datetime, calendar: BusinessCalendar, rework_due_hours: int = 24,
                    judge: datetime | None = None, office: str | None = None) -> list[MissingRework]:
    """Unsatisfied callbacks by `as_of` with no rework issued by then, past the allowed hours at `judge` (of
    `office`, else of every office)."""
    # `judge` defaults to the last working moment (nobody is paged for what fell due while the office was closed);
    # the monthly tally judges at the month's last moment
    allowed = timedelta(hours=rework_due_hours)
    candidates, detail = _missing_rework_statements(office is not None)
    judge = judged_at(as_of, calendar) if judge is None else judge
    ids = [r[0] for r in _rows(session, candidates, {"as_of": as_of, "due_before": judge - allowed})]
    rows: list = []
    for start in range(0, len(ids), 500):
        rows.extend(_rows(session, detail, _params({"as_of": as_of, "ids": ids[start:start + 500]}, office)))
    found = []
    for (order, request, office, community, address, resident, phone, holder, department, done_at, worker,
         worker_name, note) in rows:
        due = rework_due(done_at, rework_due_hours=rework_due_hours)
        found.append(_missing_rework(order, request, office, community, address, resident, phone, holder or "",
                                     department, done_at, due, overdue_minutes(due, as_of), worker, worker_name,
                                     note or ""))
    return sorted(found, key=lambda f: (f.due_at, f.order_number))


@cache
def _orders_statement(by_office: bool = False) -> CompoundSelect:
    worker, original = aliased(Staff), aliased(WorkOrder)
    base = (
        select(WorkOrder.number, ServiceRequest.number, Office.code, Community.name, ServiceRequest.address,
               ServiceRequest.resident_name, ServiceRequest.phone, worker.name, WorkOrder.department,
               original.number, WorkOrder.scheduled_for)
        .select_from(WorkOrder)
        .join(ServiceRequest, ServiceRequest.id == WorkOrder.request_id)
        .join(Office, Office.id == WorkOrder.office_id)
        .outerjoin(Community, Community.id == ServiceRequest.community_id)
        .join(worker, worker.id == WorkOrder.worker_id)
        .outerjoin(original, original.id == WorkOrder.rework_of_id)
        .where(WorkOrder.issued_at <= _AS_OF)
    )
    return _owed(_in_office(base, by_office), closed_at=WorkOrder.completed_at,
                 due_filter=WorkOrder.scheduled_for < _JUDGE)


def overdue_work_orders(session: Session, *, as_of: datetime, calendar: BusinessCalendar,
                        office: str | None = None) -> list[OverdueWorkOrder]:
    """Work orders issued by `as_of`, not completed by then, past their scheduled time when judged (of `office`,
    else of every office)."""
    judge = judged_at(as_of, calendar)
    rows = _rows(session, _orders_statement(office is not None), _params({"as_of": as_of, "judge": judge}, office))
    found = []
    for row in rows:
        scheduled = row[10]
        if scheduled < judge:
            # order, request, office, community, address, resident, phone, worker, department, rework of, due
            found.append(_overdue_work_order(*row, overdue_minutes(scheduled, as_of)))
    return sorted(found, key=lambda f: (f.due_at, f.order_number))


def chase_callbacks(session: Session, *, as_of: datetime, calendar: BusinessCalendar, escalate_workdays: int = 1,
                    rework_due_hours: int = 24, office: str | None = None) -> CallbackChase:
    """All of chase-callbacks' checks as of one moment (of `office`, else of every office)."""
    short_queries(session)
    callbacks = overdue_callbacks(session, as_of=as_of, calendar=calendar, escalate_workdays=escalate_workdays,
                                  office=office)
    return CallbackChase(
        as_of=as_of,
        judged_at=judged_at(as_of, calendar),
        callbacks=tuple(c for c in callbacks if not isinstance(c, ReworkWithoutCallback)),
        rework_callbacks=tuple(c for c in callbacks if isinstance(c, ReworkWithoutCallback)),
        missing_reworks=tuple(missing_reworks(session, as_of=as_of, calendar=calendar,
                                              rework_due_hours=rework_due_hours, office=office)),
        overdue_orders=tuple(overdue_work_orders(session, as_of=as_of, calendar=calendar, office=office)),
    )
