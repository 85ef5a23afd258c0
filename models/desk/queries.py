"""What the desk's decisions read from the ledger: keyword-only, the session passed in, None where there is no row.

A `batch` (models.desk.batch.Batch) answers from what its caller looked up in bulk, or from the rows it added
and has not flushed yet; without one every answer is a query.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models.desk.batch import Batch
from models.desk.facts import ORDER_OF_REQUEST, RECEIPT_OF_ORDER
from models.ledger.tables import Callback, Office, Receipt, ReceiptBook, Staff, WorkOrder


def ensure_id(s: Session, *, row: Any) -> int:
    """The row's id, flushing first if it was added in this (deferred) session and has none yet."""
    if row.id is None:
        s.flush()
    return row.id


def row(s: Session, *, model: type, ref: Any, column: str = "code") -> Any:
    """The row of `model` whose `column` is `ref` (`ref` itself when it is such a row), or None."""
    if isinstance(ref, model):
        return ref
    return s.scalar(select(model).where(getattr(model, column) == str(ref)))


def receipt(s: Session, *, ref: Any, batch: Batch | None = None) -> Receipt | None:
    """The receipt with this number (or `ref` itself), one the batch added and has not flushed included."""
    new = batch.new if batch is not None else None
    if new and isinstance(ref, str) and (Receipt, ref) in new:
        return new[(Receipt, ref)]
    return row(s, model=Receipt, ref=ref, column="number")


def book(s: Session, *, book_id: int, batch: Batch | None = None) -> ReceiptBook:
    """The receipt book with this id, one the batch added and has not flushed included."""
    new = batch.new if batch is not None else None
    if new and (ReceiptBook, book_id) in new:
        return new[(ReceiptBook, book_id)]
    return s.get(ReceiptBook, book_id)


def office(s: Session, *, office_id: int) -> Office:
    """The office with this id."""
    return s.get(Office, office_id)


def staff(s: Session, *, staff_id: int) -> Staff:
    """The staff member with this id."""
    return s.get(Staff, staff_id)


def taken(s: Session, *, model: type, column: str, value: str, batch: Batch | None = None) -> bool:
    """Whether a row of `model` has `value` in `column` (its natural key)."""
    known = batch.keys.get((model, column)) if batch is not None else None
    if known is not None and value in known:
        return known[value]
    return s.scalar(select(model.id).where(getattr(model, column) == value)) is not None


def next_number(s: Session, *, model: type, column: str, prefix: str, office_id: int, when: str,
                at: datetime) -> str:
    """The next `<prefix>-<nnn>` for one office and day; the unique constraint settles any race."""
    # only that office's rows of that day are read (a LIKE on the number would scan the whole table on
    # PostgreSQL's non-C collations); an imported number in the same format is skipped by probing
    col, moment = getattr(model, column), getattr(model, when)
    start = at.replace(hour=0, minute=0, second=0, microsecond=0)
    numbers = s.scalars(select(col).where(model.office_id == office_id, moment >= start,
                                          moment < start + timedelta(days=1))).all()
    highest = 0
    for number in numbers:
        tail = number[len(prefix) + 1:] if number.startswith(f"{prefix}-") else ""
        if tail.isdigit():
            highest = max(highest, int(tail))
    candidate = f"{prefix}-{highest + 1:03d}"
    while s.scalar(select(model.id).where(col == candidate)) is not None:
        highest += 1
        candidate = f"{prefix}-{highest + 1:03d}"
    return candidate


def order_of_request(s: Session, *, request: Any, batch: Batch | None = None) -> str | None:
    """The number of the request's (non-rework) work order, None if none is issued."""
    known = batch.facts.get(ORDER_OF_REQUEST) if batch is not None else None
    if known is not None and request.id in known:
        return known[request.id]
    return s.scalar(select(WorkOrder.number).where(WorkOrder.request_id == ensure_id(s, row=request),
                                                   WorkOrder.rework_of_id.is_(None)))


def receipt_of_order(s: Session, *, order: WorkOrder, batch: Batch | None = None) -> str | None:
    """The number of the used receipt that paid the order, None if it is unpaid."""
    known = batch.facts.get(RECEIPT_OF_ORDER) if batch is not None else None
    if known is not None and order.id in known:
        return known[order.id]
    return s.scalar(select(Receipt.number).where(Receipt.order_id == ensure_id(s, row=order),
                                                 Receipt.state == "used").limit(1))


def receipt_clash(s: Session, *, numbers: list[str], batch: Batch | None = None) -> str | None:
    """The first of these receipt numbers the ledger already holds, if any."""
    known = batch.keys.get((Receipt, "number"), {}) if batch is not None else {}
    if all(n in known for n in numbers):
        return next((n for n in numbers if known[n]), None)
    return s.scalar(select(Receipt.number).where(Receipt.number.in_(numbers)).limit(1))


def receipts(s: Session, *, numbers: list[str]) -> dict[str, Receipt]:
    """The receipts with these numbers, by number."""
    return {r.number: r for r in s.scalars(select(Receipt).where(Receipt.number.in_(numbers)))}


def owed_callback(s: Session, *, order: WorkOrder) -> Callback | None:
    """The order's earliest callback not yet done."""
    return s.scalar(select(Callback).where(Callback.order_id == ensure_id(s, row=order), Callback.done_at.is_(None))
                    .order_by(Callback.due_at, Callback.id).limit(1))


def chain_root(s: Session, *, order: WorkOrder) -> WorkOrder:
    """The first order of the order's rework chain."""
    root = order
    while root.rework_of_id is not None:
        root = s.get(WorkOrder, root.rework_of_id)
    return root


def rework_count(s: Session, *, request_id: int) -> int:
    """How many rework orders the request's job has (every rework of a job shares its request)."""
    return s.scalar(select(func.count()).select_from(WorkOrder).where(WorkOrder.request_id == request_id,
                                                                      WorkOrder.rework_of_id.is_not(None)))
