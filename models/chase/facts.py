"""The chases' business facts: what is overdue as of a moment (procedure 3.2.3, 4.2)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class OverdueReply:
    """A phone request nobody called back within the reply time (procedure 4.2)."""

    request_number: str
    office: str
    community: str | None
    address: str
    resident: str
    phone: str
    holder: str  # the CS clerk who took the call
    received_at: datetime
    due_at: datetime
    overdue_minutes: int


@dataclass(frozen=True)
class OverdueCallback:
    """An accepted job whose return visit is not done by its due time; level 2 once escalated."""

    order_number: str
    request_number: str
    office: str
    community: str | None
    address: str
    resident: str
    phone: str
    holder: str  # the CS clerk who registered the request and owes the callback
    department: str
    worker: str
    callback_id: int
    due_at: datetime
    escalates_at: datetime
    overdue_minutes: int
    level: int

    @property
    def levels(self) -> tuple[int, ...]:
        """Every level reached: at level 2 the supervisor's level-1 finding still stands."""
        return tuple(range(1, self.level + 1))


@dataclass(frozen=True)
class ReworkWithoutCallback(OverdueCallback):
    """A free rework order accepted by the resident whose own callback is overdue (procedure 3.2.3)."""

    rework_of: str = ""


@dataclass(frozen=True)
class MissingRework:
    """An unsatisfied callback with no rework order issued within the allowed hours."""

    order_number: str
    request_number: str
    office: str
    community: str | None
    address: str
    resident: str
    phone: str
    holder: str  # the CS clerk who recorded the unsatisfied callback
    department: str
    callback_done_at: datetime
    due_at: datetime
    overdue_minutes: int
    worker: str  # staff code of the job's worker: the monthly tally counts it against them
    worker_name: str
    note: str


@dataclass(frozen=True)
class OverdueWorkOrder:
    """A work order not completed by its scheduled time: the department supervisor's to chase."""

    order_number: str
    request_number: str
    office: str
    community: str | None
    address: str
    resident: str
    phone: str
    holder: str  # the worker the order was issued to
    department: str
    rework_of: str | None
    due_at: datetime
    overdue_minutes: int


@dataclass(frozen=True)
class CallbackChase:
    """Everything chase-callbacks found as of one moment, judged as of `judged_at`."""

    as_of: datetime
    judged_at: datetime
    callbacks: tuple[OverdueCallback, ...] = ()
    rework_callbacks: tuple[ReworkWithoutCallback, ...] = ()
    missing_reworks: tuple[MissingRework, ...] = ()
    overdue_orders: tuple[OverdueWorkOrder, ...] = ()
