"""The desk's plain values: what a decision reads (offices and staff as facts), and what it decides."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

from models.ledger.tables import Callback, WorkOrder

ZERO = Decimal("0.00")
# a rework order is scheduled this long after the unsatisfied callback unless the caller says otherwise
DEFAULT_REWORK_WITHIN = timedelta(hours=24)
# a receipt's serial is an Integer column: 32 bits on PostgreSQL
SERIAL_LIMIT = 2**31

# facts a batch can carry (Batch.note_facts): what the desk would otherwise SELECT once per operation
ORDER_OF_REQUEST = "order_of_request"  # request id -> number of its (non-rework) order, None if not issued
RECEIPT_OF_ORDER = "receipt_of_order"  # order id -> number of the used receipt that paid it, None if unpaid


@dataclass(frozen=True)
class CallbackOutcome:
    """What a callback recorded, and the free rework order it opened (unsatisfied only)."""

    callback: Callback
    rework_order: WorkOrder | None


@dataclass(frozen=True, slots=True)  # slots: no __dict__ per decision, one made per imported row
class Decision:
    """What one operation decided before anything is written: a new row of `model` (`where` None) or the changes to
    the row whose natural key is `where`, and the audit events that record it.

    The desk applies a decision at once through its session; the ledger import decides a batch of rows against
    facts it looked up in bulk and writes each table with a few statements. One decision, two ways of writing it:
    the same refusals, rows and audit events either way.
    """

    model: type
    values: dict[str, Any]
    where: tuple[str, str] | None
    audits: tuple[dict[str, Any], ...]


@dataclass(frozen=True)
class Linked:
    """A decision that writes rows which refer to each other (ids known only once written): the main row's
    decision, and the rows or changes that follow it, by name, for its apply to link."""

    main: Decision
    rows: dict[str, Any] = field(default_factory=dict)


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
