"""The monthly reconciliation (procedure 3.2.4): four views of every order, the mismatches, and the figures.

A month is judged as of its last moment (local midnight that ends it): an event recorded later (a late
callback, a handover on the 1st, a backdated import of the next month) does not change its figures. A job
belongs to the month of its acceptance, revenue to the month of its receipt, a callback to the month it
fell due, cash to the month its handover fell due (cash collected on the evening of the 31st is due on
the next working day, so it is judged in the month that day falls in, never twice, never lost).

The heavy work is GROUP BY in the database; pandas only merges the per-group results of one month.
Money stays Decimal end to end (pandas would turn NUMERIC into float64).
"""
from __future__ import annotations

import operator
from collections.abc import Iterable
from dataclasses import dataclass, fields, replace
from datetime import date, datetime, time, timedelta
from decimal import Decimal

import pandas as pd
from sqlalchemy import Result, and_, case, exists, func, literal, or_, select
from sqlalchemy.orm import Session, aliased

from models.calendar import BusinessCalendar
from models import chase
from models.cash import HandoverShortfall, classify_handover, fee_due, fees_not_collected, receipt_custody
from models.findings import (AMOUNT_DIFFERS, CALLBACK_MISSING, CASH_UNHANDED, HANDOVER_SHORTFALL, OUT_OF_SCOPE,
                             PAID_WITHOUT_COMPLETION, PRIVATE_JOB, RECEIPT_GAP, REWORK_MISSING, TALLY_KINDS, UNPAID)
from models.rules import OUT_OF_SCOPE_WORDS, cash_due, is_out_of_scope, mentions_out_of_scope
from models.ledger.tables import (
    Callback,
    CashHandover,
    DepartmentReport,
    Office,
    Receipt,
    ReceiptBook,
    ServiceRequest,
    Staff,
    WorkOrder,
)

GROUP = "*"
CENT = Decimal("0.01")
ZERO = Decimal("0.00")

#: finding kinds in the order the report lists them
KINDS = tuple(k.name for k in TALLY_KINDS)


# -- the business facts ------------------------------------------------------------------------

@dataclass(frozen=True)
class MonthWindow:
    """A calendar month in local time, as the aware moments that bound it: [start, end)."""

    month: str
    start: datetime
    end: datetime

    @property
    def previous(self) -> str:
        return shift_month(self.month, -1)

    @property
    def last(self) -> datetime:
        """The month's last moment: the daily checks' `as_of` (events "by then") that sees the month as it ended."""
        return self.end - timedelta(microseconds=1)

    def holds(self, moment: datetime) -> bool:
        return self.start <= moment < self.end


@dataclass(frozen=True, slots=True)
class Discrepancy:
    """One mismatch between the views of the ledger, with what it is about.

    `reference` names the row the finding is about: the order number when there is one, else the
    receipt, handover or department-report reference. `detail` is ledger data (a reason, a
    description), never translated text.
    """

    kind: str
    office: str
    reference: str
    order_number: str | None
    department: str | None
    worker: str | None  # staff code
    worker_name: str | None
    occurred_at: datetime
    amount: Decimal | None = None
    expected: Decimal | None = None
    detail: str = ""

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.reference}"


@dataclass(frozen=True)
class Figures:
    """Counts and money of one (office, department, worker) cell; rates are derived, so cells add up."""

    office: str
    department: str | None
    worker: str | None
    worker_name: str | None
    orders: int = 0
    completed: int = 0
    completed_on_time: int = 0
    accepted: int = 0
    accepted_jobs: int = 0  # accepted original (non-rework) orders: the base of the rework rate
    receipts: int = 0
    revenue_cash: Decimal = ZERO
    revenue_electronic: Decimal = ZERO
    phone_requests: int = 0
    phone_replied_in_time: int = 0
    callbacks_due: int = 0
    callbacks_on_time: int = 0
    callbacks_answered: int = 0  # satisfied + unsatisfied (unreachable attempts say nothing of quality)
    satisfied: int = 0
    rework: int = 0
    findings: int = 0

    COUNTS = ("orders", "completed", "completed_on_time", "accepted", "accepted_jobs", "receipts",
              "revenue_cash", "revenue_electronic", "phone_requests", "phone_replied_in_time",
              "callbacks_due", "callbacks_on_time", "callbacks_answered", "satisfied", "rework", "findings")

    def plus(self, other: Figures, **labels) -> Figures:
        values = {name: getattr(self, name) + getattr(other, name) for name in self.COUNTS}
        return replace(self, **values, **labels)

    @property
    def revenue(self) -> Decimal:
        return self.revenue_cash + self.revenue_electronic

    @property
    def average_fee(self) -> Decimal | None:
        """Revenue per receipt used: what one paid job brought in on average."""
        return (self.revenue / self.receipts).quantize(CENT) if self.receipts else None

    @property
    def on_time_rate(self) -> Decimal | None:
        return ratio(self.completed_on_time, self.completed)

    @property
    def reply_rate(self) -> Decimal | None:
        return ratio(self.phone_replied_in_time, self.phone_requests)

    @property
    def callback_on_time_rate(self) -> Decimal | None:
        return ratio(self.callbacks_on_time, self.callbacks_due)

    @property
    def satisfaction_rate(self) -> Decimal | None:
        return ratio(self.satisfied, self.callbacks_answered)

    @property
    def rework_rate(self) -> Decimal | None:
        return ratio(self.rework, self.accepted_jobs)

    def as_dict(self) -> dict:
        """Counts and derived figures as JSON-able strings/ints, the form the report and its hash use."""
        out: dict = {f.name: getattr(self, f.name) for f in fields(self)}
        for name in ("revenue", "average_fee", "on_time_rate", "reply_rate", "callback_on_time_rate",
                     "satisfaction_rate", "rework_rate"):
            out[name] = getattr(self, name)
        return {k: (str(v) if isinstance(v, Decimal) else v) for k, v in out.items()}


@dataclass(frozen=True, slots=True)
class CallbackLine:
    """A callback that fell due or was done in the month, as it stood at the month's end."""

    office: str
    order_number: str
    rework_of: str | None
    department: str
    worker: str
    worker_name: str
    due_at: datetime
    done_at: datetime | None
    outcome: str | None
    rework_order: str | None

    @property
    def on_time(self) -> bool:
        return self.done_at is not None and self.done_at <= self.due_at


# a month has a row object per callback (100k+ in a big month): slotted, and read field by field
_ROW_FIELDS = {cls: tuple(f.name for f in fields(cls)) for cls in (Discrepancy, CallbackLine)}
_ROW_VALUES = {cls: operator.attrgetter(*names) for cls, names in _ROW_FIELDS.items()}


def _astuple(row) -> tuple:
    return _ROW_VALUES[type(row)](row)


@dataclass(frozen=True)
class MonthTally:
    """The reconciled month for one office, or the group (`office == "*"`)."""

    month: str
    office: str
    start: datetime
    end: datetime
    cells: tuple[Figures, ...]  # one per (office, department, worker)
    discrepancies: tuple[Discrepancy, ...]
    callbacks: tuple[CallbackLine, ...]
    previous_cells: tuple[Figures, ...] = ()  # the previous month's cells, for comparison
    has_previous: bool = False

    @property
    def previous(self) -> Figures | None:
        """The previous month's totals for the same office or group."""
        return total(self.previous_cells, office=self.office) if self.has_previous else None

    @property
    def offices(self) -> tuple[str, ...]:
        return tuple(sorted({c.office for c in self.cells} | {d.office for d in self.discrepancies}))

    @property
    def total(self) -> Figures:
        return total(self.cells, office=self.office)

    def by_department(self) -> list[Figures]:
        return rollup(self.cells, lambda c: (c.department,), lambda c: dict(
            office=self.office, department=c.department, worker=None, worker_name=None))

    def by_worker(self) -> list[Figures]:
        """Per person; a worker in two departments in the month gets one row per department."""
        return rollup([c for c in self.cells if c.worker],
                      lambda c: (c.office, c.department, c.worker),
                      lambda c: dict(office=c.office, department=c.department, worker=c.worker,
                                     worker_name=c.worker_name))

    def by_office(self) -> list[Figures]:
        return rollup(self.cells, lambda c: (c.office,), lambda c: dict(
            office=c.office, department=None, worker=None, worker_name=None))

    def findings_by_kind(self) -> dict[str, int]:
        counts = {kind: 0 for kind in KINDS}
        for d in self.discrepancies:
            counts[d.kind] += 1
        return counts

    def for_office(self, office: str) -> MonthTally:
        """This month narrowed to one office (the group tally holds every office's cells)."""
        return replace(self, office=office,
                       cells=tuple(c for c in self.cells if c.office == office),
                       discrepancies=tuple(d for d in self.discrepancies if d.office == office),
                       callbacks=tuple(c for c in self.callbacks if c.office == office),
                       previous_cells=tuple(c for c in self.previous_cells if c.office == office))

    def content(self) -> dict:
        """Everything the report shows, as plain sorted JSON-able values: the thing that is hashed."""
        return self.content_with([_jsonable_row(d) for d in self.discrepancies],
                             [dict(_jsonable_row(c), on_time=c.on_time) for c in self.callbacks])

    def split(self) -> dict[str, MonthTally]:
        """`for_office` of every office, in one pass over the rows (a group of 200 offices has 100k+ rows)."""
        parts: dict[str, tuple[list, list, list, list]] = {office: ([], [], [], []) for office in self.offices}
        for index, rows in enumerate((self.cells, self.discrepancies, self.callbacks, self.previous_cells)):
            for row in rows:
                part = parts.get(row.office)
                if part is not None:
                    part[index].append(row)
        return {office: replace(self, office=office, cells=tuple(cells), discrepancies=tuple(found),
                                callbacks=tuple(lines), previous_cells=tuple(before))
                for office, (cells, found, lines, before) in parts.items()}

    def contents(self, offices: dict[str, MonthTally] | None = None) -> dict[str, dict]:
        """`content()` of this tally and of each of its offices (`split()`, or `offices` if given), keyed by
        office; every row is turned into JSON once for all of them."""
        offices = self.split() if offices is None else offices
        findings = [_jsonable_row(d) for d in self.discrepancies]
        callbacks = [dict(_jsonable_row(c), on_time=c.on_time) for c in self.callbacks]
        out = {self.office: self.content_with(findings, callbacks)}
        by_office: dict[str, tuple[list, list]] = {office: ([], []) for office in offices}
        for index, rows in enumerate((findings, callbacks)):
            for row in rows:
                part = by_office.get(row["office"])
                if part is not None:
                    part[index].append(row)
        for office, tally in offices.items():
            out[office] = tally.content_with(*by_office[office])
        return out

    def content_with(self, findings: list[dict], callbacks: list[dict]) -> dict:
        """`content()` made of rows already turned into JSON (`jsonable_row`)."""
        return {
            "month": self.month,
            "office": self.office,
            "total": self.total.as_dict(),
            "previous": self.previous.as_dict() if self.previous else None,
            "offices": [f.as_dict() for f in self.by_office()],
            "departments": [f.as_dict() for f in self.by_department()],
            "workers": [f.as_dict() for f in self.by_worker()],
            "findings_by_kind": self.findings_by_kind(),
            "findings": findings,
            "callbacks": callbacks,
        }


# -- small pure helpers --------------------------------------------------------------------------

def ratio(part: int, whole: int) -> Decimal | None:
    """part/whole to four places (0.9167 = 91.67 %), None when there is nothing to rate."""
    return (Decimal(part) / Decimal(whole)).quantize(Decimal("0.0001")) if whole else None


def shift_month(month: str, by: int) -> str:
    year, mon = (int(x) for x in month.split("-"))
    index = year * 12 + (mon - 1) + by
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def parse_month(month: str) -> str:
    """'2026-10' (or '2026-1') normalised; ValueError for anything else."""
    try:
        year, mon = (int(x) for x in month.strip().split("-"))
        date(year, mon, 1)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"not a month (YYYY-MM): {month!r}") from exc
    return f"{year:04d}-{mon:02d}"


def reportable_month(month: str, *, calendar: BusinessCalendar, as_of: datetime) -> str:
    """`month` normalised, if it is over at `as_of`; DomainError for a malformed or unfinished month."""
    from models.errors import DomainError

    try:
        month = parse_month(month)
    except ValueError:
        raise DomainError("tally_bad_month", value=month) from None
    if month_window(month, calendar).end > as_of:
        raise DomainError("tally_month_not_over", month=month)
    return month


def month_window(month: str, calendar: BusinessCalendar) -> MonthWindow:
    """The local month `YYYY-MM` as aware moments [first day 00:00, next month's first day 00:00)."""
    month = parse_month(month)
    year, mon = (int(x) for x in month.split("-"))
    start = calendar.at(date(year, mon, 1), time(0))
    nxt = shift_month(month, 1)
    end = calendar.at(date(int(nxt[:4]), int(nxt[5:]), 1), time(0))
    return MonthWindow(month, start, end)


def month_of(moment: datetime, calendar: BusinessCalendar) -> str:
    local = calendar.local(moment)
    return f"{local.year:04d}-{local.month:02d}"


def total(cells: Iterable[Figures], *, office: str) -> Figures:
    acc = Figures(office=office, department=None, worker=None, worker_name=None)
    for cell in cells:
        acc = acc.plus(cell)
    return acc


def rollup(cells: Iterable[Figures], key, labels) -> list[Figures]:
    groups: dict[tuple, Figures] = {}
    for cell in cells:
        k = key(cell)
        base = groups.get(k) or Figures(**labels(cell))
        groups[k] = base.plus(cell)
    return [groups[k] for k in sorted(groups, key=lambda k: tuple("" if v is None else v for v in k))]


def jsonable_row(row: Discrepancy | CallbackLine) -> dict:
    """A finding or a callback line as JSON-able values (moments in ISO form, money as text)."""
    return {name: value.isoformat() if isinstance(value, datetime) else str(value) if isinstance(value, Decimal)
            else value for name, value in zip(_ROW_FIELDS[type(row)], _astuple(row))}


_jsonable_row = jsonable_row


def _money(value) -> Decimal:
    # SQLite sums NUMERIC as REAL: quantising to cents restores the exact amount of a few thousand receipts
    return Decimal(str(value or 0)).quantize(CENT)


def _within(column, window: MonthWindow):
    return and_(column >= window.start, column < window.end)


def _count_if(condition):
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


# -- the queries: one month, grouped in the database -----------------------------------------------

_KEY = ["office", "department", "worker", "worker_name"]


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
        .where(or_(_within(WorkOrder.issued_at, window), completed, accepted))
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
        .where(Receipt.state == "used", _within(Receipt.collected_at, window))
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
        .where(ServiceRequest.channel == "phone", _within(ServiceRequest.received_at, window))
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
                        columns=_KEY + ["phone_requests", "phone_replied_in_time"])


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
        .where(or_(due, done))
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
        .where(_within(WorkOrder.issued_at, window))
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
        .where(or_(_within(Callback.due_at, window), _within(Callback.done_at, window)))
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
        frame[column] = frame[column].map(_money).astype(object)
    return frame


# -- the findings -----------------------------------------------------------------------------------

def find_unpaid(session: Session, *, window: MonthWindow, calendar: BusinessCalendar,
                cutoff: time = time(17, 30)) -> list[Discrepancy]:
    """Chargeable jobs with no receipt by the month's end whose fee fell due in it: the daily cash check's rule
    (cash.fees_not_collected as of the month's last moment), so the report and the alert agree about every job."""
    found = fees_not_collected(session, as_of=window.last, calendar=calendar, cutoff=cutoff)
    return [Discrepancy(UNPAID.name, f.office, f.order, f.order, f.department, f.worker, f.worker_name,
                        f.accepted_at, expected=f.fee)
            for f in found if window.holds(fee_due(f.accepted_at, calendar, cutoff=cutoff))]


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
        .where(Receipt.state == "used", _within(Receipt.collected_at, window))
        .where(or_(WorkOrder.id.is_(None), WorkOrder.completed_at.is_(None), WorkOrder.accepted_at.is_(None),
                   ~done))
    )
    return [Discrepancy(PAID_WITHOUT_COMPLETION.name, office, order or receipt, order, dept or cdept, code, name, at,
                        amount=_money(amount), detail=receipt)
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
        .where(Receipt.state == "used", _within(Receipt.collected_at, window), Receipt.amount != WorkOrder.fee)
    )
    return [Discrepancy(AMOUNT_DIFFERS.name, office, number, number, dept, code, name, at, amount=_money(amount),
                        expected=_money(fee), detail=reason or "")
            for office, number, dept, code, name, at, amount, fee, reason, receipt in _rows(session, query)
            # SQLite compares NUMERIC as REAL: confirm in Decimal
            if _money(amount) != _money(fee)]


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
               Receipt.collected_at >= earliest, Receipt.collected_at < window.end, ~handed)
    )
    found = []
    for office, receipt, order, dept, cdept, code, name, at, amount in _rows(session, query):
        due = cash_due(at, calendar, cutoff=cutoff)
        if window.start <= due < window.end:
            found.append(Discrepancy(CASH_UNHANDED.name, office, order or receipt, order, dept or cdept, code, name,
                                     at, amount=_money(amount), detail=receipt))
    return found


def find_handover_shortfalls(session: Session, *, window: MonthWindow) -> list[Discrepancy]:
    """Handovers confirmed in the month where finance counted less than the receipts they cover: the daily cash
    check's rule (cash.classify_handover), so the report and the alert agree about every handover."""
    holder = aliased(Staff)
    covered = func.coalesce(func.sum(Receipt.amount), 0)
    query = (
        select(Office.code, CashHandover.id, CashHandover.number, holder.department, holder.code, holder.name,
               CashHandover.handed_at, CashHandover.confirmed_at, CashHandover.counted_amount,
               covered.label("covered"))
        .join(Office, Office.id == CashHandover.office_id)
        .join(holder, holder.id == CashHandover.handed_by_id)
        .outerjoin(Receipt, Receipt.handover_id == CashHandover.id)
        .where(_within(CashHandover.confirmed_at, window))
        .group_by(Office.code, CashHandover.id, CashHandover.number, holder.department, holder.code, holder.name,
                  CashHandover.handed_at, CashHandover.confirmed_at, CashHandover.counted_amount)
    )
    found = []
    for office, hid, number, dept, code, name, handed_at, at, counted, cov in _rows(session, query):
        finding = classify_handover(handover=number, collector=code, collector_name=name, department=dept,
                                    office=office, handed_at=handed_at, receipts=(), covered=_money(cov),
                                    counted=_money(counted))
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
    """Receipt numbers still blank at the month's end that a higher number skipped during it: the daily cash
    check's rule (cash.receipt_custody as of the month's last moment); a gap counts in the month it arose."""
    gaps = receipt_custody(session, as_of=window.last, calendar=calendar).gaps
    return [Discrepancy(RECEIPT_GAP.name, g.office, g.number, None, g.department, g.holder, g.holder_name,
                        g.issued_at, detail=g.number)
            for g in gaps if window.holds(g.skipped_at)]


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
        .where(_within(DepartmentReport.reported_at, window))
        # only the candidates: a month's 100k ordinary records need not come back to be ruled out one by one.
        # SQL lower() may lower fewer letters than Python's, never more, and the words are ASCII or Chinese:
        # this picks a superset of what mentions_out_of_scope confirms below
        .where(or_(DepartmentReport.order_id.is_(None),
                   *[func.lower(DepartmentReport.description).contains(w) for w in OUT_OF_SCOPE_WORDS]))
    )
    found = []
    for office, ref, order, dept, code, name, at, fee, description, address in _rows(session, query):
        amount = _money(fee) if fee is not None else None
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
        .where(_within(WorkOrder.accepted_at, window), or_(*words))
    )
    return [Discrepancy(OUT_OF_SCOPE.name, office, number, number, dept, code, name, at, amount=_money(fee),
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
        .where(_within(Callback.due_at, window), or_(Callback.done_at.is_(None), Callback.done_at >= window.end))
    )
    none_at_all = (
        select(Office.code, WorkOrder.number, WorkOrder.department, worker.code, worker.name, WorkOrder.accepted_at)
        .join(Office, Office.id == WorkOrder.office_id)
        .join(worker, worker.id == WorkOrder.worker_id)
        .where(_within(WorkOrder.accepted_at, window),
               ~exists().where(Callback.order_id == WorkOrder.id, Callback.created_at < window.end))
    )
    found: dict[str, Discrepancy] = {}
    for query, detail in ((late, "overdue"), (none_at_all, "none")):
        for office, number, dept, code, name, at in _rows(session, query):
            found.setdefault(number, Discrepancy(CALLBACK_MISSING.name, office, number, number, dept, code, name, at,
                                                 detail=detail))
    return list(found.values())


def find_rework_missing(session: Session, *, window: MonthWindow, calendar: BusinessCalendar,
                        rework_due_hours: int = 24) -> list[Discrepancy]:
    """Unsatisfied callbacks whose free rework fell due in the month and was not ordered by its end: the chase's
    rule (chase.missing_reworks, the same `rework_due_hours`), judged at the month's last moment."""
    found = chase.missing_reworks(session, as_of=window.last, calendar=calendar, rework_due_hours=rework_due_hours,
                                  judge=window.last)
    return [Discrepancy(REWORK_MISSING.name, m.office, m.order_number, m.order_number, m.department, m.worker,
                        m.worker_name, m.callback_done_at, detail=m.note)
            for m in found if window.holds(m.due_at)]


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


# -- the month -------------------------------------------------------------------------------------

def merge_cells(frames: Iterable[pd.DataFrame], discrepancies: Iterable[Discrepancy]) -> list[Figures]:
    """Pure: the per-group frames of one month and its findings merged into one Figures per cell."""
    counted = pd.DataFrame(
        [dict(office=d.office, department=d.department, worker=d.worker, worker_name=d.worker_name, findings=1)
         for d in discrepancies], columns=_KEY + ["findings"])
    merged: dict[tuple, dict] = {}
    for frame in [*frames, counted]:
        for record in frame.to_dict("records"):
            key = tuple(None if pd.isna(record[k]) else record[k] for k in _KEY)
            cell = merged.setdefault(key, {})
            for name, value in record.items():
                if name in _KEY or pd.isna(value):
                    continue
                cell[name] = cell.get(name, 0) + (value if isinstance(value, Decimal) else int(value))
    cells = []
    for (office, department, worker, worker_name), values in merged.items():
        for name in ("revenue_cash", "revenue_electronic"):
            values[name] = _money(values.get(name, 0))
        cells.append(Figures(office=office, department=department, worker=worker, worker_name=worker_name,
                             **values))
    return sorted(cells, key=lambda c: (c.office, c.department or "", c.worker or ""))


def reconcile_month(session: Session, *, month: str, calendar: BusinessCalendar, cash_cutoff: time = time(17, 30),
                    reply_minutes: int = 10, rework_due_hours: int = 24, with_previous: bool = True,
                    with_lines: bool = True) -> MonthTally:
    """The group-wide reconciled month (narrow it with `.for_office(code)`), with the previous month's totals.

    `with_lines=False` leaves out the callback lines (the previous month needs only its figures).
    """
    window = month_window(month, calendar)
    discrepancies = find_discrepancies(session, window=window, calendar=calendar, cash_cutoff=cash_cutoff,
                                       rework_due_hours=rework_due_hours)
    frames = [
        order_counts(session, window=window),
        revenue(session, window=window),
        phone_replies(session, window=window, reply_minutes=reply_minutes),
        callback_counts(session, window=window),
        rework_counts(session, window=window),
    ]
    tally = MonthTally(window.month, GROUP, window.start, window.end, tuple(merge_cells(frames, discrepancies)),
                       tuple(discrepancies), tuple(callback_lines(session, window=window)) if with_lines else ())
    if with_previous:
        before = reconcile_month(session, month=window.previous, calendar=calendar, cash_cutoff=cash_cutoff,
                                 reply_minutes=reply_minutes, rework_due_hours=rework_due_hours,
                                 with_previous=False, with_lines=False)
        tally = replace(tally, previous_cells=before.cells, has_previous=True)
    return tally
