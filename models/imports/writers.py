"""A batch's decisions written together: a few statements per table (on SQLite, multi-row INSERTs)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from itertools import chain
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Table, bindparam, insert, update
from sqlalchemy.orm import Session

from models import desk
from models.ledger.tables import AuditEvent, ServiceRequest, UTCDateTime

class _Redo(Exception):
    """The batch cannot be written in one go (a row failed half-way, or the database refused the batch)."""


# the natural key of each table a decision adds rows to
_NATURAL = {ServiceRequest: "number"}
_NONE: dict[str, Any] = {}  # no rows of a model (never written to)


class _Decided:
    """One batch's decisions: its new rows by natural key (later rows of the batch see them), the changes it makes
    to ledger rows, and the audit events, in the order the rows were decided."""

    def __init__(self) -> None:
        # by model, then natural key: a (model, key) pair per row would be one more object a row for the cyclic GC
        # to track, and to carry into its oldest generation while the batch is decided and written
        self.new: dict[type, dict[str, dict[str, Any]]] = {}
        self.ledger: dict[type, dict[str, dict[str, Any]]] = {}  # ledger rows the batch refers to, as it sees them
        # (model, (key column, key), the values it sets, what the batch saw in those columns before)
        self.changes: list[tuple[type, tuple[str, str], dict[str, Any], dict[str, Any]]] = []
        self.audits: list[dict[str, Any]] = []

    def known(self, model: type, key: str) -> dict[str, Any] | None:
        """The row with this natural key as the batch sees it (decided in this batch or in the ledger), or None."""
        row = self.new.get(model, _NONE).get(key)
        return row if row is not None else self.ledger.get(model, _NONE).get(key)

    def seen(self, model: type, key: str, row: dict[str, Any]) -> None:
        """A ledger row the batch refers to, as it sees it."""
        self.ledger.setdefault(model, {})[key] = row

    def take(self, decisions: list[desk.Decision]) -> None:
        """Keep one row's decisions (all of them: a row is taken whole or refused whole)."""
        for d in decisions:
            if d.where is None:
                new = self.new.get(d.model)
                if new is None:
                    new = self.new[d.model] = {}
                new[d.values[_NATURAL[d.model]]] = d.values  # the batch owns it from here
            else:
                added = self.new.get(d.model, _NONE).get(d.where[1])
                if added is not None:
                    added.update(d.values)  # a row added by this batch goes in already changed
                else:
                    seen = self.ledger[d.model][d.where[1]]
                    was = {name: seen.get(name) for name in d.values}
                    seen.update(d.values)
                    self.changes.append((d.model, d.where, d.values, was))
            self.audits.extend(d.audits)

    def inserts(self, dialect: Any, *,
                moments: dict[int, tuple[datetime, str]] | None = None) -> tuple[list[_Insert], list[_Insert]]:
        """The statements that add the batch's new rows, and those that add its audit events
        (see `_insert_statements`).

        `moments`: the stored texts of the times already converted (`_Sheet.moment_texts`), kept from batch to batch.
        """
        # a row's moment is one datetime object in its row and in its audit event (register's received_at and
        # at, reply's replied_at and at): converted for SQLite once, not once per column it is written to
        moments = {} if moments is None else moments
        rows = [st for model, new in self.new.items()
                for st in _insert_statements(dialect, model.__table__, list(new.values()), moments)]
        audits = _insert_statements(dialect, AuditEvent.__table__, self.audits, moments) if self.audits else []
        return rows, audits

    def write(self, s: Session, inserts: tuple[list[_Insert], list[_Insert]] | None = None) -> None:
        """Each table's new rows, then the changes of each shape, then the audit events: a few statements each.

        A change is written only where the row still holds what the batch saw (the decision was made on that): if
        another writer changed it since, the batch is refused (_Redo) and written again row by row, deciding anew.
        `inserts`: what `inserts()` gave, prepared beforehand (by the thread that decided the batch).
        """
        conn = s.connection()
        rows, audits = inserts if inserts is not None else self.inserts(conn.dialect)
        for statement in rows:
            statement.run(conn)
        shapes: dict[tuple[type, str, tuple[str, ...]], list[dict[str, Any]]] = {}
        for model, (column, key), values, was in self.changes:
            shapes.setdefault((model, column, tuple(values)), []).append(
                {"_key": key, **values, **{f"_was_{name}": value for name, value in was.items()}})
        for (model, column, names), changed in shapes.items():
            table = model.__table__
            unchanged = [table.c[name].is_not_distinct_from(bindparam(f"_was_{name}", type_=table.c[name].type))
                         for name in names]
            result = conn.execute(update(table).where(table.c[column] == bindparam("_key"), *unchanged), changed)
            if result.rowcount != len(changed):
                raise _Redo()
            # the session may hold some of these rows (a dry run's earlier batches): let it read them again
            for obj in list(s.identity_map.values()):
                if isinstance(obj, model):
                    s.expire(obj)
        for statement in audits:
            statement.run(conn)


@dataclass(frozen=True)
class _Insert:
    """One INSERT ready to run: driver-level SQL with its parameters, or (sql None) rows for SQLAlchemy's insert."""
    table: Table
    sql: str | None
    params: Any

    def run(self, conn: Connection) -> None:
        if self.sql is None:
            conn.execute(insert(self.table), self.params)
        else:
            conn.exec_driver_sql(self.sql, self.params)


def _insert_statements(dialect: Any, table: Table, rows: list[dict[str, Any]],
                       moments: dict[int, tuple[datetime, str]] | None = None) -> list[_Insert]:
    """The rows as INSERTs; on SQLite, multi-row ones with each value put through its column type's bind processor
    here.

    SQLAlchemy's executemany builds each row's parameters through the compiled statement, 5 us a row besides the
    types' own work, a tenth of an imported row's cost. The values stored are the same: the same statement, the
    same processors (the dialect's, for each column's type). PostgreSQL keeps SQLAlchemy's way (its driver batches).
    `moments` keeps the stored text of each UTCDateTime value by the object's identity (datetimes are immutable;
    the object is kept with its text, so an id is never taken for another object's).

    On SQLite the rows go `_ROWS_PER_INSERT` at a time as one `INSERT ... VALUES (...), (...)` with every value
    bound, as executemany binds them (the same types, the same refusals: tests/unit/test_import_writing.py). One
    call inserts them all without Python's GIL, where executemany takes the GIL back between rows (and a thread
    writing beside busy Python code would wait for it at every row), and SQLite spends about half of what it
    spent on the same rows sent as one JSON array through `json_each` (20 batches of the bench's rows replayed).
    """
    if dialect.name != "sqlite":
        return [_Insert(table, None, rows)]
    statements = []
    shapes: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        shapes.setdefault(tuple(row), []).append(row)
    for keys, same in shapes.items():
        shape = _insert_shape(dialect, table, keys)
        if shape is None:
            statements.append(_Insert(table, None, same))  # its parameters are not the row's keys in order
            continue
        if not any(shape.processors):
            params = list(chain.from_iterable(row.values() for row in same))
        else:
            params = _processed(table, keys, shape.processors, same, {} if moments is None else moments)
        start, width = 0, len(keys)
        for count in _statement_sizes(len(same), shape.rows_per_statement):
            statements.append(_Insert(table, shape.sql(count), tuple(params[start:start + count * width])))
            start += count * width
    return statements


# rows per multi-row INSERT: a batch's rows in one or two statements, because the writer thread needs the GIL
# again for each (100k rows imported one batch ahead: 200 a statement, the writer waited 1.6 s for the GIL; 1,024,
# 0.6 s). A full statement's SQL is the same text every batch, so the driver keeps it compiled per connection.
_ROWS_PER_INSERT = 1024


def _statement_sizes(rows: int, most: int) -> list[int]:
    """`rows` cut into statements of `most` rows, then the rest as a multiple of 64 rows and what is left.

    Each size is a statement of its own to compile, and the driver keeps a connection's last 128 compiled: cut so,
    the sizes a table's batches leave are a few dozen texts (the large ones 15), each compiled once, where the rest
    as it comes would be a new text, compiled and cached again, nearly every batch (29 MB more memory at 100k rows).
    """
    sizes = [most] * (rows // most)
    rest = rows % most
    sizes += [size for size in (rest - rest % 64, rest % 64) if size]
    return sizes


@lru_cache(maxsize=1)
def _sqlite_parameter_limit() -> int:
    """The most parameters one SQLite statement takes in this build (999 before SQLite 3.32, 32,766 since)."""
    import sqlite3

    conn = sqlite3.connect(":memory:")
    try:
        return conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    finally:
        conn.close()


@dataclass(frozen=True)
class _InsertShape:
    """What an INSERT of rows with these keys needs, worked out once per table and keys (a batch's rows share a
    few shapes, and compiling the statement again for each batch cost more than some of its rows)."""
    head: str  # INSERT INTO table (columns) VALUES
    row: str  # (?, ?, ...)
    processors: tuple[Any, ...]
    rows_per_statement: int

    def sql(self, rows: int) -> str:
        return _values_sql(self.head, self.row, rows)


@lru_cache(maxsize=1024)
def _values_sql(head: str, row: str, rows: int) -> str:
    return f"{head} {', '.join([row] * rows)}"


@lru_cache(maxsize=256)
def _insert_shape(dialect: Any, table: Table, keys: tuple[str, ...]) -> _InsertShape | None:
    """None when the compiled statement's parameters are not the keys in order."""
    compiled = insert(table).compile(dialect=dialect, column_keys=list(keys))
    if compiled.positiontup != list(keys):
        return None
    head, _, row = compiled.string.partition(" VALUES ")
    return _InsertShape(
        head=f"{head} VALUES", row=row,
        processors=tuple(table.c[k].type.dialect_impl(dialect).bind_processor(dialect) for k in keys),
        rows_per_statement=max(1, min(_ROWS_PER_INSERT, _sqlite_parameter_limit() // max(1, len(keys)))))


def _processed(table: Table, keys: tuple[str, ...], processors: Sequence[Any], rows: list[dict[str, Any]],
               memo: dict[int, tuple[datetime, str]]) -> list[Any]:
    """The rows' values, row after row in the order of `keys`, through their columns' bind processors."""
    # column by column: a comprehension per processed column costs less than a loop over every value of the rows
    # with a branch per column (the rows share their keys, in order: `_insert_statements` groups them so)
    columns: list[Any] = list(zip(*(row.values() for row in rows)))
    for i, (key, process) in enumerate(zip(keys, processors)):
        if process is None:
            continue
        if not isinstance(table.c[key].type, UTCDateTime):
            columns[i] = [process(value) for value in columns[i]]
            continue

        def stored(value: datetime, process: Any = process) -> str:
            memo[id(value)] = (value, text := process(value))
            return text

        columns[i] = [None if value is None
                      else known[1] if (known := memo.get(id(value))) is not None and known[0] is value
                      else stored(value)
                      for value in columns[i]]
    # laid out flat, a slice per column, not zipped back into a tuple per row: one object fewer per row for the
    # cyclic GC to track, and no second copy when the statements' parameters are cut from it
    flat: list[Any] = [None] * (len(rows) * len(keys))
    for i, column in enumerate(columns):
        flat[i::len(keys)] = column
    return flat
