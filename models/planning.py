"""Hints that keep both planners on the partial indexes of open items, whatever the statistics say.

SQLite without ANALYZE statistics (the usual case for a small office ledger) takes any `column IS NULL`
on an indexed column for a selective equality: `receipts.handover_id IS NULL` would walk every electronic
payment ever made instead of the few cash receipts in `ix_receipts_cash_open`. `broad(term)` tells it the
term is true for most rows (SQLite's `likelihood(term, 0.99)`), which it still matches against a partial
index's WHERE clause; PostgreSQL, which has real statistics, gets the term unchanged.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import Boolean, ColumnElement
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.visitors import InternalTraversal


class broad(ColumnElement[bool]):  # noqa: N801 - reads as a function in a where clause
    """A condition most rows meet: never a reason to choose an index."""

    type = Boolean()
    inherit_cache = True
    _is_implicitly_boolean = True  # a condition as it stands, not a value to compare with true
    _traverse_internals = [("term", InternalTraversal.dp_clauseelement)]

    def __init__(self, term: ColumnElement[bool]) -> None:
        self.term = term


def _term(element: broad, compiler: Any, **kw: Any) -> str:
    return compiler.process(element.term, **kw)


@compiles(broad)
def _plain(element: broad, compiler: Any, **kw: Any) -> str:
    return _term(element, compiler, **kw)


@compiles(broad, "sqlite")
def _sqlite(element: broad, compiler: Any, **kw: Any) -> str:
    return f"likelihood({_term(element, compiler, **kw)}, 0.99)"


_SHORT = ("SELECT set_config('max_parallel_workers_per_gather', '0', true), set_config('jit', 'off', true), "
          "set_config('join_collapse_limit', '1', true), set_config('enable_hashjoin', 'off', true), "
          "set_config('enable_mergejoin', 'off', true)")


def short_queries(session: Session) -> None:
    """PostgreSQL, for the rest of this transaction: no parallel workers, no JIT compilation, joins in the order
    written and by nested loops.

    A check is a handful of index look-ups. PostgreSQL guesses a partial index's rows from its predicate's
    columns one by one (thousands, where there are tens), and that guess alone starts parallel workers and JIT
    compilation that cost 10-50 ms, many times the look-ups themselves. The checks' statements join outwards
    from the few rows of a partial index: searching every order of their seven or eight joins cost more to plan
    than to run (chase-callbacks: 4 ms of planning for 2 ms of execution at 10k orders, 0.8 ms in written order),
    and sometimes picked a worse plan. The same misjudged row count (241,019 open phone requests at 1M orders,
    for 100) made it hash every person, community and office of the group to join a hundred rows: joined by
    look-ups instead, the cost follows the rows found, not the size of the group.
    """
    if session.get_bind().dialect.name == "postgresql":
        # one round trip (set_config(..., true) is SET LOCAL): a check's own queries take a few of them
        session.connection().exec_driver_sql(_SHORT)
