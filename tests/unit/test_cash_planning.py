"""models.planning.broad: a planner hint for SQLite, invisible to PostgreSQL."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from models.planning import broad
from models.ledger.tables import Receipt


def _where(dialect) -> str:
    stmt = select(Receipt.id).where(broad(Receipt.handover_id.is_(None)), Receipt.state == "used")
    return str(stmt.compile(dialect=dialect)).split("WHERE", 1)[1].strip()


def test_a_broad_condition_tells_sqlite_it_holds_for_most_rows():
    assert _where(sqlite.dialect()) == "likelihood(receipts.handover_id IS NULL, 0.99) AND receipts.state = ?"


def test_a_broad_condition_is_the_bare_condition_on_postgresql():
    assert _where(postgresql.dialect()).startswith("receipts.handover_id IS NULL AND receipts.state = ")


def test_statements_with_different_broad_conditions_are_cached_apart():
    a = select(Receipt.id).where(broad(Receipt.handover_id.is_(None)))
    b = select(Receipt.id).where(broad(Receipt.order_id.is_(None)))
    assert a._generate_cache_key() != b._generate_cache_key()
