"""The monthly tally's business facts (procedure 3.2.4): the month, its cells of figures, its findings.

A month is judged as of its last moment (local midnight that ends it): an event recorded later (a late
callback, a handover on the 1st, a backdated import of the next month) does not change its figures. A job
belongs to the month of its acceptance, revenue to the month of its receipt, a callback to the month it
fell due, cash, an unpaid fee and a missing rework to the month they fell due, a receipt gap to the month it
arose (cash collected on the evening of the 31st is due on the next working day, so it is judged in the
month that day falls in, never twice, never lost). docs/rules.md says which rule decides each fact.

The heavy work is GROUP BY in the database; pandas only merges the per-group results of one month.
Money stays Decimal end to end (pandas would turn NUMERIC into float64).
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields, replace
from datetime import datetime, timedelta
from decimal import Decimal

from models.findings import TALLY_KINDS
from models.ledger.jsonable import to_jsonable

GROUP = "*"
CENT = Decimal("0.01")
ZERO = Decimal("0.00")
#: a cell of figures is keyed by these columns
CELL_KEY = ["office", "department", "worker", "worker_name"]

#: finding kinds in the order the report lists them
KINDS = tuple(k.name for k in TALLY_KINDS)


@dataclass(frozen=True)
class MonthWindow:
    """A calendar month in local time, as the aware moments that bound it: [start, end)."""

    month: str
    start: datetime
    end: datetime
    offices: tuple[str, ...] | None = None  # some offices' part of the month; None: the whole group

    def covers(self, office: str) -> bool:
        return self.offices is None or office in self.offices

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
        return self.content_with([to_jsonable(d) for d in self.discrepancies],
                                 [dict(to_jsonable(c), on_time=c.on_time) for c in self.callbacks])

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
        findings = [to_jsonable(d) for d in self.discrepancies]
        callbacks = [dict(to_jsonable(c), on_time=c.on_time) for c in self.callbacks]
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
        """`content()` made of rows already turned into JSON (`to_jsonable`)."""
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


# -- the arithmetic of the facts: cells add up, rates are derived -----------------------------------

def ratio(part: int, whole: int) -> Decimal | None:
    """part/whole to four places (0.9167 = 91.67 %), None when there is nothing to rate."""
    return (Decimal(part) / Decimal(whole)).quantize(Decimal("0.0001")) if whole else None


def shift_month(month: str, by: int) -> str:
    year, mon = (int(x) for x in month.split("-"))
    index = year * 12 + (mon - 1) + by
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


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

