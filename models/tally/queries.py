"""The monthly tally's as-of SQL: one month grouped in the database, its findings, and the reconciled month.

A month is judged as of its last moment: see models.tally.facts. The daily checks' rules decide the facts they
share with the tally (cash.rules, chase.rules, models.rules; docs/rules.md), so an alert and the report agree.
"""
from __future__ import annotations

from dataclasses import replace
from datetime import time, timedelta

import pandas as pd
from sqlalchemy import Result, and_, case, exists, func, literal, or_, select
from sqlalchemy.orm import Session, aliased

from models.calendar import BusinessCalendar
from models.cash.facts import HandoverShortfall
from models.cash.queries import fees_not_collected, receipt_custody
from models.cash.rules import classify_handover, fee_due
from models.chase.queries import missing_reworks
from models.findings import (AMOUNT_DIFFERS, CALLBACK_MISSING, CASH_UNHANDED, HANDOVER_SHORTFALL, OUT_OF_SCOPE,
                             PAID_WITHOUT_COMPLETION, PRIVATE_JOB, RECEIPT_GAP, REWORK_MISSING, UNPAID)
from models.ledger.tables import (
    Callback,
    CashHandover,
    DepartmentReport,
    Office,
    Receipt,
    ReceiptBook,
    ReportRun,
    ServiceRequest,
    Staff,
    WorkOrder,
)
from models.rules import OUT_OF_SCOPE_WORDS, cash_due, is_out_of_scope, mentions_out_of_scope
from models.tally.facts import CELL_KEY, GROUP, KINDS, CallbackLine, Discrepancy, MonthTally, MonthWindow
from models.tally.rules import cents, merge_cells, month_window


def _within(column, window: MonthWindow):
    return and_(column >= window.start, column < window.end)


def _office(window: MonthWindow) -> list:
    """The condition narrowing a query that joins Office to the window's offices (none for the group)."""
    return [] if window.offices is None else [Office.code.in_(window.offices)]


def _one_office(window: MonthWindow) -> str | None:
    """The office the daily checks' queries can narrow to themselves (they take one office, or all)."""
    return window.offices[0] if window.offices is not None and len(window.offices) == 1 else None


def _count_if(condition):
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


# -- the queries: one month, grouped in the database -----------------------------------------------

def order_counts(session: Session, *, window: MonthWindow) -> pd.DataFrame:
    """Orders issued, completed (on time) and accepted in the month, per office, department and worker."""
    worker = aliased(Staff)
    completed = _within(WorkOrder.completed_at, window)
    accepted = _within(WorkOrder.accepted_at, window)
    query = (
        select(Office.code.label("office"), WorkOrder.department.label("department"),
               worker.code.label("worker"), worker.name.label("worker_name"),
               _count_if(_within(WorkOrder.issued_at, window)).label("orders"),
               _count_if(completed).label("completed"),
               _count_if(and_(completed, WorkOrder.completed_at <= WorkOrder.scheduled_for)).label("completed_on_time"),
               _count_if(accepted).label("accepted"),
               _count_if(and_(accepted, WorkOrder.rework_of_id.is_(None))).label("accepted_jobs"))
        .join(Office, Office.id == WorkOrder.office_id)
        .join(worker, worker.id == WorkOrder.worker_id)
        .where(or_(_within(WorkOrder.issued_at, window), completed, accepted), *_office(window))
        .group_by(Office.code, WorkOrder.department, worker.code, worker.name)
    )
    return _frame(session, query)


def revenue(session: Session, *, window: MonthWindow) -> pd.DataFrame:
    """Receipts used in the month: count and cash/electronic sums (Decimal), per the order's worker."""
    collector = aliased(Staff)
    person = aliased(Staff)
    query = (
        select(Office.code.label("office"),
               func.coalesce(WorkOrder.department, collector.department).label("department"),
               person.code.label("worker"), person.name.label("worker_name"),
               func.count().label("receipts"),
               func.coalesce(func.sum(case((Receipt.method == "cash", Receipt.amount), else_=literal(0))), 0)
               .label("revenue_cash"),
               func.coalesce(func.sum(case((Receipt.method != "cash", Receipt.amount), else_=literal(0))), 0)
               .label("revenue_electronic"))
        .select_from(Receipt)
        .join(ReceiptBook, ReceiptBook.id == Receipt.book_id)
        .join(Office, Office.id == ReceiptBook.office_id)
        .join(collector, collector.id == Receipt.collected_by_id)
        .outerjoin(WorkOrder, WorkOrder.id == Receipt.order_id)
        .join(person, person.id == func.coalesce(WorkOrder.worker_id, Receipt.collected_by_id))
        .where(Receipt.state == "used", _within(Receipt.collected_at, window), *_office(window))
        .group_by(Office.code, func.coalesce(WorkOrder.department, collector.department), person.code, person.name)
    )
    frame = _frame(session, query, money=("revenue_cash", "revenue_electronic"))
    return frame


def phone_replies(session: Session, *, window: MonthWindow, reply_minutes: int = 10) -> pd.DataFrame:
    """Phone requests received in the month and how many were answered in time, per CS clerk."""
    clerk = aliased(Staff)
    query = (
        select(Office.code.label("office"), literal("cs").label("department"),
               clerk.code.label("worker"), clerk.name.label("worker_name"),
               ServiceRequest.received_at, ServiceRequest.replied_at)
        .join(Office, Office.id == ServiceRequest.office_id)
        .join(clerk, clerk.id == ServiceRequest.received_by_id)
        .where(ServiceRequest.channel == "phone", _within(ServiceRequest.received_at, window), *_office(window))
    )
    # the +10 minutes is date arithmetic that differs per backend: counted here, per clerk, as the rows stream by
    allowed = timedelta(minutes=reply_minutes)
    counts: dict[tuple, list[int]] = {}
    for office, department, worker, worker_name, received, replied in _rows(session, query):
        count = counts.get((office, department, worker, worker_name))
        if count is None:
            count = counts[(office, department, worker, worker_name)] = [0, 0]
        count[0] += 1
        if replied is not None and replied < window.end and replied - received <= allowed:
            count[1] += 1
    return pd.DataFrame([[*key, requests, in_time] for key, (requests, in_time) in counts.items()],
                        columns=CELL_KEY + ["phone_requests", "phone_replied_in_time"])


def callback_counts(session: Session, *, window: MonthWindow) -> pd.DataFrame:
    """Callbacks due in the month (done on time by the month's end) and answered in it, per order's worker."""
    worker = aliased(Staff)
    due = _within(Callback.due_at, window)
    done = _within(Callback.done_at, window)
    query = (
        select(Office.code.label("office"), WorkOrder.department.label("department"),
               worker.code.label("worker"), worker.name.label("worker_name"),
               _count_if(due).label("callbacks_due"),
               _count_if(and_(due, Callback.done_at <= Callback.due_at, Callback.done_at < window.end))
               .label("callbacks_on_time"),
               _count_if(and_(done, Callback.outcome.in_(("satisfied", "unsatisfied")))).label("callbacks_answered"),
               _count_if(and_(done, Callback.outcome == "satisfied")).label("satisfied"))
        .select_from(Callback)
        .join(WorkOrder, WorkOrder.id == Callback.order_id)
        .join(Office, Office.id == WorkOrder.office_id)
        .join(worker, worker.id == WorkOrder.worker_id)
        .where(or_(due, done), *_office(window))
        .group_by(Office.code, WorkOrder.department, worker.code, worker.name)
    )
    return _frame(session, query)


def rework_counts(session: Session, *, window: MonthWindow) -> pd.DataFrame:
    """Rework orders issued in the month, counted against the worker of the original job."""
    original, worker = aliased(WorkOrder), aliased(Staff)
    query = (
        select(Office.code.label("office"), original.department.label("department"),
               worker.code.label("worker"), worker.name.label("worker_name"),
               func.count().label("rework"))
        .select_from(WorkOrder)
        .join(original, original.id == WorkOrder.rework_of_id)
        .join(Office, Office.id == original.office_id)
        .join(worker, worker.id == original.worker_id)
        .where(_within(WorkOrder.issued_at, window), *_office(window))
        .group_by(Office.code, original.department, worker.code, worker.name)
    )
    return _frame(session, query)


def callback_lines(session: Session, *, window: MonthWindow) -> list[CallbackLine]:
    """Callbacks due or done in the month, each as it stood at the month's end."""
    worker, original, rework = aliased(Staff), aliased(WorkOrder), aliased(WorkOrder)
    query = (
        select(Office.code, WorkOrder.number, original.number, WorkOrder.department, worker.code, worker.name,
               Callback.due_at, Callback.done_at, Callback.outcome, rework.number, rework.issued_at)
        .select_from(Callback)
        .join(WorkOrder, WorkOrder.id == Callback.order_id)
        .join(Office, Office.id == WorkOrder.office_id)
        .join(worker, worker.id == WorkOrder.worker_id)
        .outerjoin(original, original.id == WorkOrder.rework_of_id)
        .outerjoin(rework, rework.id == Callback.rework_order_id)
        .where(or_(_within(Callback.due_at, window), _within(Callback.done_at, window)), *_office(window))
    )
    lines = []
    # a month's lines repeat a few hundred offices, people and outcomes: keep one copy of each text
    same = {}.setdefault
    # streamed, not buffered: a big month's lines are 100k+ rows
    rows = _rows(session, query.execution_options(yield_per=5000))
    for office, number, rework_of, dept, code, name, due, done, outcome, rework_no, rework_at in rows:
        if done is not None and done >= window.end:
            done, outcome = None, None
        if rework_at is not None and rework_at >= window.end:
            rework_no = None
        lines.append(CallbackLine(same(office, office), number, rework_of, same(dept, dept), same(code, code),
                                  same(name, name), due, done, outcome and same(outcome, outcome), rework_no))
    return sorted(lines, key=lambda c: (c.office, c.due_at, c.order_number))


def _rows(session: Session, query) -> Result:
    """The query's result as Core rows: a month's hundred thousand rows through the ORM's result machinery cost
    more than their own values."""
    return session.connection().execute(query)


def _frame(session: Session, query, *, money: tuple[str, ...] = ()) -> pd.DataFrame:
    result = _rows(session, query)
    frame = pd.DataFrame(result.all(), columns=list(result.keys()))
    for column in money:
        frame[column] = frame[column].map(cents).astype(object)
    return frame


# -- the findings -----------------------------------------------------------------------------------

def find_unpaid(session: Session, *, window: MonthWindow, calendar: BusinessCalendar,
                cutoff: time = time(17, 30)) -> list[Discrepancy]:
    """Chargeable jobs unpaid at the month's end whose fee fell due in it (the cash check's fees_not_collected)."""
    found = fees_not_collected(session, as_of=window.last, calendar=calendar, cutoff=cutoff,
                               office=_one_office(window))
    return [Discrepancy(UNPAID.name, f.office, f.order, f.order, f.department, f.worker, f.worker_name,
                        f.accepted_at, expected=f.fee)
            for f in found if window.covers(f.office) and window.holds(fee_due(f.accepted_at, calendar, cutoff=cutoff))]


def find_paid_without_completion(session: Session, *, window: MonthWindow) -> list[Discrepancy]:
    """Receipts used in the month for an order not completed and accepted by the month's end, or for no order."""
    collector = aliased(Staff)
    done = and_(WorkOrder.completed_at < window.end, WorkOrder.accepted_at < window.end)
    query = (
        select(Office.code, Receipt.number, WorkOrder.number, WorkOrder.department, collector.department,
               collector.code, collector.name, Receipt.collected_at, Receipt.amount)
        .select_from(Receipt)
        .join(ReceiptBook, ReceiptBook.id == Receipt.book_id)
        .join(Office, Office.id == ReceiptBook.office_id)
        .join(collector, collector.id == Receipt.collected_by_id)
        .outerjoin(WorkOrder, WorkOrder.id == Receipt.order_id)
        .where(Receipt.state == "used", _within(Receipt.collected_at, window), *_office(window))
        .where(or_(WorkOrder.id.is_(None), WorkOrder.completed_at.is_(None), WorkOrder.accepted_at.is_(None),
                   ~done))
    )
    return [Discrepancy(PAID_WITHOUT_COMPLETION.name, office, order or receipt, order, dept or cdept, code, name, at,
                        amount=cents(amount), detail=receipt)
            for office, receipt, order, dept, cdept, code, name, at, amount in _rows(session, query)]


def find_amount_differs(session: Session, *, window: MonthWindow) -> list[Discrepancy]:
    """Receipts used in the month whose amount is not the order's agreed fee; the reason given, if any."""
    worker = aliased(Staff)
    query = (
        select(Office.code, WorkOrder.number, WorkOrder.department, worker.code, worker.name,
               Receipt.collected_at, Receipt.amount, WorkOrder.fee, Receipt.reason, Receipt.number)
        .select_from(Receipt)
        .join(WorkOrder, WorkOrder.id == Receipt.order_id)
        .join(Office, Office.id == WorkOrder.office_id)
        .join(worker, worker.id == WorkOrder.worker_id)
        .where(Receipt.state == "used", _within(Receipt.collected_at, window), Receipt.amount != WorkOrder.fee,
               *_office(window))
    )
    return [Discrepancy(AMOUNT_DIFFERS.name, office, number, number, dept, code, name, at, amount=cents(amount),
                        expected=cents(fee), detail=reason or "")
            for office, number, dept, code, name, at, amount, fee, reason, receipt in _rows(session, query)
            # SQLite compares NUMERIC as REAL: confirm in Decimal
            if cents(amount) != cents(fee)]


def find_cash_unhanded(session: Session, *, window: MonthWindow, calendar: BusinessCalendar,
                       cutoff: time = time(17, 30)) -> list[Discrepancy]:
    """Cash whose handover fell due in the month and that finance had not confirmed by the month's end."""
    collector = aliased(Staff)
    # cash due in the month was collected in it or at most a holiday's length before (Spring Festival: 9 days)
    earliest = window.start - timedelta(days=15)
    handed = exists().where(CashHandover.id == Receipt.handover_id, CashHandover.confirmed_at < window.end)
    query = (
        select(Office.code, Receipt.number, WorkOrder.number, WorkOrder.department, collector.department,
               collector.code, collector.name, Receipt.collected_at, Receipt.amount)
        .select_from(Receipt)
        .join(ReceiptBook, ReceiptBook.id == Receipt.book_id)
        .join(Office, Office.id == ReceiptBook.office_id)
        .join(collector, collector.id == Receipt.collected_by_id)
        .outerjoin(WorkOrder, WorkOrder.id == Receipt.order_id)
        .where(Receipt.method == "cash", Receipt.state == "used",
               Receipt.collected_at >= earliest, Receipt.collected_at < window.end, ~handed, *_office(window))
    )
    found = []
    for office, receipt, order, dept, cdept, code, name, at, amount in _rows(session, query):
        due = cash_due(at, calendar, cutoff=cutoff)
        if window.start <= due < window.end:
            found.append(Discrepancy(CASH_UNHANDED.name, office, order or receipt, order, dept or cdept, code, name,
                                     at, amount=cents(amount), detail=receipt))
    return found


def find_handover_shortfalls(session: Session, *, window: MonthWindow) -> list[Discrepancy]:
    """Handovers confirmed in the month, counted short of their receipts (the cash check's classify_handover)."""
    holder = aliased(Staff)
    covered = func.coalesce(func.sum(Receipt.amount), 0)
    query = (
        select(Office.code, CashHandover.id, CashHandover.number, holder.department, holder.code, holder.name,
               CashHandover.handed_at, CashHandover.confirmed_at, CashHandover.counted_amount,
               covered.label("covered"))
        .join(Office, Office.id == CashHandover.office_id)
        .join(holder, holder.id == CashHandover.handed_by_id)
        .outerjoin(Receipt, Receipt.handover_id == CashHandover.id)
        .where(_within(CashHandover.confirmed_at, window), *_office(window))
        .group_by(Office.code, CashHandover.id, CashHandover.number, holder.department, holder.code, holder.name,
                  CashHandover.handed_at, CashHandover.confirmed_at, CashHandover.counted_amount)
    )
    found = []
    for office, hid, number, dept, code, name, handed_at, at, counted, cov in _rows(session, query):
        finding = classify_handover(handover=number, collector=code, collector_name=name, department=dept,
                                    office=office, handed_at=handed_at, receipts=(), covered=cents(cov),
                                    counted=cents(counted))
        if not isinstance(finding, HandoverShortfall):
            continue
        orders = _rows(
            session, select(WorkOrder.number).join(Receipt, Receipt.order_id == WorkOrder.id)
            .where(Receipt.handover_id == hid).order_by(WorkOrder.number)).scalars().all()
        found.append(Discrepancy(HANDOVER_SHORTFALL.name, office, number, orders[0] if len(orders) == 1 else None,
                                 dept, code, name, at, amount=finding.counted, expected=finding.covered,
                                 detail=", ".join(orders)))
    return found


def find_receipt_gaps(session: Session, *, window: MonthWindow, calendar: BusinessCalendar) -> list[Discrepancy]:
    """Numbers blank at the month's end that a higher number skipped during it (the cash check's receipt_custody)."""
    gaps = receipt_custody(session, as_of=window.last, calendar=calendar, office=_one_office(window)).gaps
    return [Discrepancy(RECEIPT_GAP.name, g.office, g.number, None, g.department, g.holder, g.holder_name,
                        g.issued_at, detail=g.number)
            for g in gaps if window.covers(g.office) and window.holds(g.skipped_at)]


def find_department_reports(session: Session, *, window: MonthWindow) -> list[Discrepancy]:
    """Department reports of the month with no CS work order (private job, 4.4) or describing out-of-scope work."""
    worker = aliased(Staff)
    query = (
        select(Office.code, DepartmentReport.reference, WorkOrder.number, DepartmentReport.department,
               worker.code, worker.name, DepartmentReport.reported_at, DepartmentReport.fee,
               DepartmentReport.description, DepartmentReport.address)
        .select_from(DepartmentReport)
        .join(Office, Office.id == DepartmentReport.office_id)
        .join(worker, worker.id == DepartmentReport.worker_id)
        .outerjoin(WorkOrder, WorkOrder.id == DepartmentReport.order_id)
        .where(_within(DepartmentReport.reported_at, window), *_office(window))
        # only the candidates: a month's 100k ordinary records need not come back to be ruled out one by one.
        # SQL lower() may lower fewer letters than Python's, never more, and the words are ASCII or Chinese:
        # this picks a superset of what mentions_out_of_scope confirms below
        .where(or_(DepartmentReport.order_id.is_(None),
                   *[func.lower(DepartmentReport.description).contains(w) for w in OUT_OF_SCOPE_WORDS]))
    )
    found = []
    for office, ref, order, dept, code, name, at, fee, description, address in _rows(session, query):
        amount = cents(fee) if fee is not None else None
        if order is None:
            found.append(Discrepancy(PRIVATE_JOB.name, office, ref, None, dept, code, name, at, amount=amount,
                                     detail=f"{address}: {description}"))
        if mentions_out_of_scope(description):
            found.append(Discrepancy(OUT_OF_SCOPE.name, office, order or ref, order, dept, code, name, at,
                                     amount=amount, detail=description))
    return found


def find_out_of_scope_requests(session: Session, *, window: MonthWindow) -> list[Discrepancy]:
    """Orders accepted in the month whose registered description is appliance or renovation work."""
    worker = aliased(Staff)
    words = [func.lower(ServiceRequest.description).contains(w) for w in OUT_OF_SCOPE_WORDS]
    query = (
        select(Office.code, WorkOrder.number, WorkOrder.department, worker.code, worker.name,
               WorkOrder.accepted_at, WorkOrder.fee, ServiceRequest.category, ServiceRequest.description)
        .join(ServiceRequest, ServiceRequest.id == WorkOrder.request_id)
        .join(Office, Office.id == WorkOrder.office_id)
        .join(worker, worker.id == WorkOrder.worker_id)
        .where(_within(WorkOrder.accepted_at, window), or_(*words), *_office(window))
    )
    return [Discrepancy(OUT_OF_SCOPE.name, office, number, number, dept, code, name, at, amount=cents(fee),
                        detail=description)
            for office, number, dept, code, name, at, fee, category, description in _rows(session, query)
            # the SQL words pick a superset (SQL lower() lowers no more than Python's): the rule decides
            if is_out_of_scope(category, description)]


def find_callbacks_missing(session: Session, *, window: MonthWindow) -> list[Discrepancy]:
    """Callbacks due in the month not done by its end, and jobs accepted in it with no callback at all."""
    worker = aliased(Staff)
    late = (
        select(Office.code, WorkOrder.number, WorkOrder.department, worker.code, worker.name, Callback.due_at)
        .select_from(Callback)
        .join(WorkOrder, WorkOrder.id == Callback.order_id)
        .join(Office, Office.id == WorkOrder.office_id)
        .join(worker, worker.id == WorkOrder.worker_id)
        .where(_within(Callback.due_at, window), or_(Callback.done_at.is_(None), Callback.done_at >= window.end),
               *_office(window))
    )
    none_at_all = (
        select(Office.code, WorkOrder.number, WorkOrder.department, worker.code, worker.name, WorkOrder.accepted_at)
        .join(Office, Office.id == WorkOrder.office_id)
        .join(worker, worker.id == WorkOrder.worker_id)
        .where(_within(WorkOrder.accepted_at, window),
               ~exists().where(Callback.order_id == WorkOrder.id, Callback.created_at < window.end), *_office(window))
    )
    found: dict[str, Discrepancy] = {}
    for query, detail in ((late, "overdue"), (none_at_all, "none")):
        for office, number, dept, code, name, at in _rows(session, query):
            found.setdefault(number, Discrepancy(CALLBACK_MISSING.name, office, number, number, dept, code, name, at,
                                                 detail=detail))
    return list(found.values())


def find_rework_missing(session: Session, *, window: MonthWindow, calendar: BusinessCalendar,
                        rework_due_hours: int = 24) -> list[Discrepancy]:
    """Reworks due in the month and not ordered by its end (the chase's missing_reworks, same allowance)."""
    found = missing_reworks(session, as_of=window.last, calendar=calendar, rework_due_hours=rework_due_hours,
                            judge=window.last, office=_one_office(window))
    return [Discrepancy(REWORK_MISSING.name, m.office, m.order_number, m.order_number, m.department, m.worker,
                        m.worker_name, m.callback_done_at, detail=m.note)
            for m in found if window.covers(m.office) and window.holds(m.due_at)]


def find_discrepancies(session: Session, *, window: MonthWindow, calendar: BusinessCalendar,
                       cash_cutoff: time = time(17, 30), rework_due_hours: int = 24) -> list[Discrepancy]:
    """Every mismatch of the month, each (kind, reference) once, in a stable order."""
    found = [
        *find_unpaid(session, window=window, calendar=calendar, cutoff=cash_cutoff),
        *find_paid_without_completion(session, window=window),
        *find_amount_differs(session, window=window),
        *find_cash_unhanded(session, window=window, calendar=calendar, cutoff=cash_cutoff),
        *find_handover_shortfalls(session, window=window),
        *find_receipt_gaps(session, window=window, calendar=calendar),
        *find_department_reports(session, window=window),
        *find_out_of_scope_requests(session, window=window),
        *find_callbacks_missing(session, window=window),
        *find_rework_missing(session, window=window, calendar=calendar, rework_due_hours=rework_due_hours),
    ]
    unique = {d.key: d for d in found}
    order = {kind: i for i, kind in enumerate(KINDS)}
    return sorted(unique.values(), key=lambda d: (order[d.kind], d.office, d.reference))


def reconcile_month(session: Session, *, month: str, calendar: BusinessCalendar, cash_cutoff: time = time(17, 30),
                    reply_minutes: int = 10, rework_due_hours: int = 24, with_previous: bool = True,
                    with_lines: bool = True, offices: tuple[str, ...] | None = None) -> MonthTally:
    """The reconciled month of the group, with the previous month's totals; of `offices` only when given (a part
    of the group whose `.split()` holds for each of them exactly what the group's does)."""
    # with_lines=False leaves out the callback lines: the previous month needs only its figures
    window = month_window(month, calendar, offices)
    discrepancies = find_discrepancies(session, window=window, calendar=calendar, cash_cutoff=cash_cutoff,
                                       rework_due_hours=rework_due_hours)
    frames = [
        order_counts(session, window=window),
        revenue(session, window=window),
        phone_replies(session, window=window, reply_minutes=reply_minutes),
        callback_counts(session, window=window),
        rework_counts(session, window=window),
    ]
    tally = MonthTally(window.month, GROUP, window.start, window.end,
                       tuple(merge_cells(frames, discrepancies)), tuple(discrepancies),
                       tuple(callback_lines(session, window=window)) if with_lines else ())
    if with_previous:
        before = reconcile_month(session, month=window.previous, calendar=calendar, cash_cutoff=cash_cutoff,
                                 reply_minutes=reply_minutes, rework_due_hours=rework_due_hours,
                                 with_previous=False, with_lines=False, offices=offices)
        tally = replace(tally, previous_cells=before.cells, has_previous=True)
    return tally


def months_to_catch_up(session: Session, *, months: list[str], redo: set[str],
                       calendar: BusinessCalendar) -> list[str]:
    """Those of `months` with ledger data and no group report yet (or in `redo`), in their order."""
    reported = set(session.scalars(select(ReportRun.month).where(ReportRun.office == GROUP,
                                                                 ReportRun.month.in_(months)))) - redo
    return [m for m in months if m not in reported and has_data(session, window=month_window(m, calendar))]


def has_data(session: Session, *, window: MonthWindow) -> bool:
    """Whether the ledger recorded anything (an order, receipt, request, report or handover) in the month."""
    probes = [
        exists().where(WorkOrder.issued_at >= window.start, WorkOrder.issued_at < window.end),
        exists().where(WorkOrder.accepted_at >= window.start, WorkOrder.accepted_at < window.end),
        exists().where(Receipt.collected_at >= window.start, Receipt.collected_at < window.end),
        exists().where(ServiceRequest.received_at >= window.start, ServiceRequest.received_at < window.end),
        exists().where(DepartmentReport.reported_at >= window.start, DepartmentReport.reported_at < window.end),
        exists().where(CashHandover.confirmed_at >= window.start, CashHandover.confirmed_at < window.end),
    ]
    return any(session.scalar(select(probe)) for probe in probes)
