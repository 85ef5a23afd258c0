"""Many desk operations in one transaction (the ledger import): what they share, held by the caller and passed
to each operation, never kept in the session."""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from models.ledger.tables import AuditEvent


class Batch:
    """The state an importer keeps across thousands of operations: the natural keys and facts it looked up in bulk
    (answered from memory instead of one SELECT per row), and, inside `deferred`, the flushes and audit events put
    off until the end of the block, ids handed out from memory and the rows added but not yet flushed.

    The rules checked are the same with or without it; only where their answers come from changes.
    """

    def __init__(self) -> None:
        self.keys: dict[tuple[type, str], dict[str, bool]] = {}
        self.facts: dict[str, dict[Any, Any]] = {}
        self.audits = 0  # audit events written through this batch: a row that moved it has written something
        self.deferring = False
        self.audit_rows: list[dict[str, Any]] | None = None
        self.ids: dict[type, int] | None = None
        self.new: dict[tuple[type, Any], Any] | None = None  # rows added inside `deferred`, by natural key or id

    def note_keys(self, model: type, column: str, *, checked: Iterable[str], present: Iterable[str]) -> None:
        """Which of `checked` natural keys exist already (one bulk query by the caller)."""
        known = self.keys.setdefault((model, column), {})
        present = set(present)
        for value in checked:
            known[value] = value in present

    def note_facts(self, fact: str, known: dict[Any, Any]) -> None:
        """What the caller's bulk query found for `fact` (facts.ORDER_OF_REQUEST, facts.RECEIPT_OF_ORDER)."""
        self.facts.setdefault(fact, {}).update(known)

    def forget(self) -> None:
        """Drop the noted keys and facts (after a rollback the ledger may no longer hold them)."""
        self.keys = {}
        self.facts = {}

    def taking(self, model: type, column: str, value: str) -> None:
        """A key an operation has just used: taken from now on, if the batch knows the column."""
        known = self.keys.get((model, column))
        if known is not None:
            known[value] = True

    def fact_now(self, fact: str, key: Any, value: Any) -> None:
        known = self.facts.get(fact)
        if known is not None:
            known[key] = value

    @contextmanager
    def deferred(self, s: Session) -> Iterator[Session]:
        """Operations in this block flush only when a query or the caller needs it, and their audit events are
        inserted together when the block ends (one statement; nothing refers to an audit event's id).

        If the block raises, the audit events it collected are dropped with it: the caller rolls back.
        """
        if self.deferring:
            yield s
            return
        self.deferring = True
        self.audit_rows = []
        # SQLite cannot return the ids of a multi-row INSERT in order, so the ORM would insert row by row; the
        # session holds SQLite's write lock for its whole transaction (BEGIN IMMEDIATE), so ids handed out from
        # the table's highest are ours alone, and rows carrying their id go in with one executemany
        self.ids = {} if s.get_bind().dialect.name == "sqlite" else None
        self.new = {}
        try:
            yield s
            rows, self.audit_rows = self.audit_rows, []
            if rows:
                s.execute(insert(AuditEvent), rows)
        finally:
            self.deferring = False
            self.audit_rows = None
            self.ids = None
            self.new = None

    def new_id(self, s: Session, model: type) -> int | None:
        """An id for a new row inside `deferred` on SQLite (see there); None lets the database choose."""
        if self.ids is None:
            return None
        if model not in self.ids:
            self.ids[model] = s.scalar(select(func.coalesce(func.max(model.id), 0)))
        self.ids[model] += 1
        return self.ids[model]
