"""The cash check's business facts (procedure 3.2.2): cash held, handovers, receipt custody, fees, figures."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import ClassVar

from models import findings as catalogue
from models.findings import Kind

ZERO = Decimal("0.00")
CENT = Decimal("0.01")


@dataclass(frozen=True)
class CashHeld:
    """One cash receipt collected and not (yet) confirmed by finance as of the evaluation."""

    receipt: str
    order: str | None
    amount: Decimal
    collected_at: datetime
    collector: str
    collector_name: str
    department: str
    office: str


@dataclass(frozen=True)
class UnhandedCash:
    """Cash a collector still holds after its due time: one per collector and due time."""

    kind: ClassVar[Kind] = catalogue.CASH_UNHANDED

    collector: str
    collector_name: str
    department: str
    office: str
    due_at: datetime
    receipts: tuple[str, ...]
    orders: tuple[str, ...]
    total: Decimal
    overdue_minutes: int

    @property
    def key(self) -> str:
        return self.kind.key(self.collector, self.due_at.date().isoformat())


@dataclass(frozen=True)
class _HandoverCount:
    """What finance counted for one handover against the receipts it covers."""

    kind: ClassVar[Kind]

    handover: str
    collector: str
    collector_name: str
    department: str
    office: str
    handed_at: datetime
    receipts: tuple[str, ...]
    covered: Decimal
    counted: Decimal

    @property
    def key(self) -> str:
        return self.kind.key(self.handover)


@dataclass(frozen=True)
class HandoverShortfall(_HandoverCount):
    """Finance counted less than the receipts a handover covers."""

    kind: ClassVar[Kind] = catalogue.CASH_SHORTFALL

    @property
    def difference(self) -> Decimal:
        return self.covered - self.counted


@dataclass(frozen=True)
class HandoverOvercount(_HandoverCount):
    """Finance counted more than the receipts a handover covers: money without a receipt."""

    kind: ClassVar[Kind] = catalogue.CASH_OVERCOUNT

    @property
    def difference(self) -> Decimal:
        return self.counted - self.covered


@dataclass(frozen=True)
class UnreturnedReceipt:
    """Blank numbers of one book still with its holder after the return window: one per book."""

    kind: ClassVar[Kind] = catalogue.RECEIPT_UNRETURNED

    book: str
    holder: str
    holder_name: str
    department: str
    office: str
    issued_at: datetime
    return_due: datetime
    numbers: tuple[str, ...]

    @property
    def key(self) -> str:
        return self.kind.key(self.book)


@dataclass(frozen=True)
class ReceiptGap:
    """A blank number skipped: a higher number of the same book was already used."""

    kind: ClassVar[Kind] = catalogue.RECEIPT_GAP

    number: str
    book: str
    holder: str
    holder_name: str
    department: str
    office: str
    used_after: str  # the lowest higher number used
    issued_at: datetime  # when its book was issued
    skipped_at: datetime  # when a higher number was first used: the moment the gap arose

    @property
    def key(self) -> str:
        return self.kind.key(self.number)


@dataclass(frozen=True)
class ReceiptUsedTwice:
    """One receipt leaf used for two collections, or one order paid on two receipts (legacy/imported data)."""

    kind: ClassVar[Kind] = catalogue.RECEIPT_DOUBLE_USE

    how: str  # "number": one book serial on two receipt rows; "order": one order on two used receipts
    ref: str  # the serial's first number, or the order number
    numbers: tuple[str, ...]
    orders: tuple[str, ...]
    office: str
    total: Decimal

    @property
    def key(self) -> str:
        return self.kind.key(self.how, self.ref)


@dataclass(frozen=True)
class FeeNotCollected:
    """An accepted job with a fee due and no receipt by its cut-off."""

    kind: ClassVar[Kind] = catalogue.FEE_NOT_COLLECTED

    order: str
    office: str
    department: str
    worker: str  # staff code
    worker_name: str
    accepted_at: datetime
    due_at: datetime
    fee: Decimal
    resident: str
    phone: str
    address: str

    @property
    def key(self) -> str:
        return self.kind.key(self.order)


@dataclass(frozen=True)
class CollectorFigures:
    """One collector's money for the day: collected (cash / electronic), handed over, and still held."""

    collector: str
    name: str
    department: str
    office: str
    cash: Decimal = ZERO
    electronic: Decimal = ZERO
    handed_over: Decimal = ZERO
    outstanding: Decimal = ZERO


@dataclass(frozen=True)
class OfficeDayTotals:
    """An office's day: the sum of its collectors' figures."""

    office: str
    collectors: int
    cash: Decimal
    electronic: Decimal
    handed_over: Decimal
    outstanding: Decimal


@dataclass(frozen=True)
class CashCheck:
    """Everything one evaluation found, and the day's figures."""

    day: date
    as_of: datetime
    unhanded: tuple[UnhandedCash, ...] = ()
    shortfalls: tuple[HandoverShortfall, ...] = ()
    overcounts: tuple[HandoverOvercount, ...] = ()
    unreturned: tuple[UnreturnedReceipt, ...] = ()
    gaps: tuple[ReceiptGap, ...] = ()
    used_twice: tuple[ReceiptUsedTwice, ...] = ()
    fees_not_collected: tuple[FeeNotCollected, ...] = ()
    collectors: tuple[CollectorFigures, ...] = ()
    offices: tuple[OfficeDayTotals, ...] = ()
    findings_by_kind: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class ReceiptCustody:
    """The blank numbers that are findings as of one moment: skipped ones, and ones kept too long."""

    gaps: tuple[ReceiptGap, ...]
    unreturned: tuple[UnreturnedReceipt, ...]
