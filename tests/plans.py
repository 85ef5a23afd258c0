"""What the database plans for the SELECTs a piece of code runs: tests that a check reads through its indexes."""
from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import event
from sqlalchemy.orm import Session


_T = TypeVar("_T")


def query_plans(s: Session, run: Callable[[], _T], *, analyze: bool = False) -> tuple[_T, str]:
    """What `run()` returns, and the plans of every SELECT it sends on `s`'s engine, joined by " | ".

    On PostgreSQL table scans are forbidden for the EXPLAIN (tiny test tables make any plan cheap, so this shows
    which indexes the queries can use); `analyze` first gives the planner statistics of the rows the test made.
    """
    engine = s.get_bind()
    statements: list[tuple[str, object]] = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        result = run()
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    conn = s.connection()
    if conn.dialect.name == "postgresql":
        if analyze:
            conn.exec_driver_sql("ANALYZE")
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
        explain = "EXPLAIN"
    else:
        explain = "EXPLAIN QUERY PLAN"
    return result, " | ".join(" ".join(str(row[-1]) for row in conn.exec_driver_sql(f"{explain} {sql}", params))
                      for sql, params in statements)
