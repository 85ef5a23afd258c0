"""One batch, one transaction: decided and written together, or row by row when that fails half-way."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import DataError, IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from models import desk
from models.errors import DomainError
from models.imports.cells import RowProblem, read_row
from models.imports.readers import _Sheet
from models.imports.rejects import RejectedRow, _reject
from models.imports.rows import _DECIDERS, _KEYS, _WRITERS, _Context, _field_of
from models.imports.writers import _Decided, _Redo
from models.ledger.tables import Office, Receipt, ServiceRequest, Staff, WorkOrder

def _no_counts() -> dict[str, int]:
    """A sheet's or a batch's counts before its first row (the fields of SheetResult after its kind)."""
    return {"rows": 0, "added": 0, "present": 0, "rejected": 0}


@contextmanager
def _unit_of_work(sessions: sessionmaker[Session], dry_run: bool):
    """Hands out a `batch()` context: its own committed transaction per batch, or one rolled-back one (dry run)."""
    if not dry_run:
        @contextmanager
        def batch():
            with sessions() as s, s.begin():
                yield s
        yield batch
        return
    with sessions() as s:
        s.begin()
        try:
            @contextmanager
            def batch():
                yield s
            yield batch
        finally:
            s.rollback()


def _write_batch(batch, ctx: _Context, sheet: _Sheet, pending: list[tuple[int, tuple]], counts: dict[str, int],
                 rejects: list[RejectedRow]) -> None:
    """One batch, one transaction: every row through its desk operations, flushed once at the end.

    A desk operation refuses before it writes anything, so a refused row needs no savepoint of its own. Only
    when a row fails after an operation of it has written (or the database refuses the batch's flush) is the
    batch rolled back to its savepoint and written again row by row, each row in its own savepoint.
    """
    known = dict(ctx.staff_by_code)
    try:
        with batch() as s:
            mine = _no_counts()
            refused: list[RejectedRow] = []
            try:
                with s.begin_nested():
                    _fast(s, ctx, sheet, pending, mine, refused)
            except _Redo:
                ctx.restore(known)
                ctx.found.clear()
                ctx.desk_batch.forget()
                # rows flushed and rolled back may linger in the identity map (the refusal's traceback holds
                # them) and their ids be handed out again: the row-by-row pass starts from what the database says
                s.expunge_all()
                mine = _no_counts()
                refused = []
                _row_by_row(s, ctx, sheet, pending, mine, refused)
            for key, value in mine.items():
                counts[key] += value
            rejects.extend(refused)
    except BaseException:
        ctx.restore(known)
        raise
    finally:
        ctx.found.clear()


def _fast(s: Session, ctx: _Context, sheet: _Sheet, pending: list[tuple[int, tuple]], counts: dict[str, int],
          rejects: list[RejectedRow]) -> None:
    kind = sheet.kind
    if kind.name in _DECIDERS:
        try:
            _decide_batch(s, ctx, sheet, pending, counts, rejects)
        except SQLAlchemyError as error:
            raise _Redo() from error
        return
    writer = _WRITERS[kind.name]
    rows = _read_batch(sheet.reader(ctx.calendar.tz), pending)
    ctx.found.clear()
    ctx.desk_batch.forget()
    try:
        # the session's identity map holds rows weakly: keep the offices and staff the desk reads by id
        # (s.get) alive for the batch, or each row would SELECT them again
        pinned = [*s.scalars(select(Office)), *s.scalars(select(Staff))]  # noqa: F841
        with _through_indexes(s):
            for model, column, fields in _KEYS[kind.name]:
                ctx.lookup(s, model, column, {v[f] for _, _, v in rows if isinstance(v, dict) for f in fields})
            _note_facts(s, ctx, kind.name)
        with ctx.desk_batch.deferred(s):
            for line, cells, values in rows:
                counts["rows"] += 1
                if isinstance(values, RowProblem):
                    rejects.append(_reject(sheet, line, cells, values.field, values.error))
                    counts["rejected"] += 1
                    continue
                written = ctx.desk_batch.audits
                try:
                    outcome = writer(s, ctx, values)
                except (RowProblem, DomainError) as error:
                    if ctx.desk_batch.audits != written:
                        raise _Redo() from error  # half a row is in the session: only a savepoint can undo it
                    if isinstance(error, RowProblem):
                        rejects.append(_reject(sheet, line, cells, error.field, error.error))
                    else:
                        rejects.append(_reject(sheet, line, cells, _field_of(kind, error), error))
                    counts["rejected"] += 1
                    continue
                counts[outcome] += 1
        s.flush()
    except SQLAlchemyError as error:
        raise _Redo() from error


@contextmanager
def _through_indexes(s: Session) -> Iterator[None]:
    """PostgreSQL, for the look-ups inside: find a batch's keys through their indexes, whatever the statistics say.

    An import grows its tables faster than autovacuum analyses them again (and a server may run without it): a
    table still believed empty turns the batch's `IN` list of keys into a sequential scan comparing every row with
    every key, 80 ms per batch at 20k rows and growing with the table, against 15 ms through the unique index.
    """
    conn = s.connection()
    if conn.dialect.name != "postgresql":
        yield
        return
    conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
    yield
    conn.exec_driver_sql("SET LOCAL enable_seqscan = on")  # not reached on an error: the rollback undoes the SET


def _note_facts(s: Session, ctx: _Context, kind: str) -> None:
    """What the desk would ask once per row, asked once for the batch: is this request's order issued yet,
    is this order paid yet."""
    if kind == "orders":
        ids = {r.id for (model, _), r in ctx.found.items() if model is ServiceRequest and r is not None}
        if ids:
            issued = dict(s.execute(select(WorkOrder.request_id, WorkOrder.number)
                                    .where(WorkOrder.request_id.in_(ids), WorkOrder.rework_of_id.is_(None))).all())
            ctx.desk_batch.note_facts(desk.ORDER_OF_REQUEST, {i: issued.get(i) for i in ids})
    elif kind == "receipts":
        ids = {r.id for (model, _), r in ctx.found.items() if model is WorkOrder and r is not None}
        if ids:
            paid = dict(s.execute(select(Receipt.order_id, Receipt.number)
                                  .where(Receipt.order_id.in_(ids), Receipt.state == "used")).all())
            ctx.desk_batch.note_facts(desk.RECEIPT_OF_ORDER, {i: paid.get(i) for i in ids})


def _read_batch(read: Callable[[tuple], dict[str, Any]], pending: list[tuple[int, tuple]]
                ) -> list[tuple[int, tuple, dict[str, Any] | RowProblem]]:
    """Each pending row's values, or the problem that stops it, in file order."""
    rows: list[tuple[int, tuple, dict[str, Any] | RowProblem]] = []
    for line, cells in pending:
        try:
            rows.append((line, cells, read(cells)))
        except RowProblem as problem:
            rows.append((line, cells, problem))
    return rows


@dataclass
class _Verdict:
    """One batch as the desk decided it: what to write, and what the batch counts and refuses once written."""
    decided: _Decided
    counts: dict[str, int]
    refused: list[RejectedRow]

    def count_into(self, counts: dict[str, int], rejects: list[RejectedRow]) -> None:
        for key, value in self.counts.items():
            counts[key] += value
        rejects.extend(self.refused)


def _decide(s: Session, ctx: _Context, sheet: _Sheet, pending: list[tuple[int, tuple]],
            over: _Decided | None = None) -> _Verdict:
    """Every row decided by the desk against the batch's facts (a refused row leaves nothing); nothing written.

    `over` is a batch decided before this one whose write may not have committed yet: this one sees its rows.
    """
    kind = sheet.kind
    look_up, decide = _DECIDERS[kind.name]
    ctx.facts = {}
    rows = _read_batch(sheet.reader(ctx.calendar.tz), pending)
    ctx.desk_batch.forget()
    batch = _Decided()
    verdict = _Verdict(batch, _no_counts(), [])
    counts, refused = verdict.counts, verdict.refused
    with _through_indexes(s):
        look_up(s, ctx, batch, [v for _, _, v in rows if isinstance(v, dict)], over)
    for line, cells, values in rows:
        counts["rows"] += 1
        try:
            if isinstance(values, RowProblem):
                raise values
            outcome, decisions = decide(s, ctx, batch, values)
        except RowProblem as problem:
            refused.append(_reject(sheet, line, cells, problem.field, problem.error))
            counts["rejected"] += 1
            continue
        except DomainError as error:
            refused.append(_reject(sheet, line, cells, _field_of(kind, error), error))
            counts["rejected"] += 1
            continue
        batch.take(decisions)
        counts[outcome] += 1
    return verdict


def _decide_batch(s: Session, ctx: _Context, sheet: _Sheet, pending: list[tuple[int, tuple]],
                  counts: dict[str, int], rejects: list[RejectedRow]) -> None:
    """Every row decided by the desk against the batch's facts (a refused row leaves nothing), then written."""
    verdict = _decide(s, ctx, sheet, pending)
    decided = verdict.decided
    decided.write(s, decided.inserts(s.connection().dialect, moments=sheet.moment_texts()))
    verdict.count_into(counts, rejects)


def _row_by_row(s: Session, ctx: _Context, sheet: _Sheet, pending: list[tuple[int, tuple]], counts: dict[str, int],
                rejects: list[RejectedRow]) -> None:
    kind = sheet.kind
    if kind.name in _DECIDERS:
        # the database refused the batch as a whole: each row alone, so only the row it refuses is lost
        for one in pending:
            for attempt in range(3):
                try:
                    with s.begin_nested():
                        _decide_batch(s, ctx, sheet, [one], counts, rejects)
                    break
                except (_Redo, IntegrityError) as error:
                    # a row it changes changed between the look-up and the write, or another writer took its
                    # number (a database whose reads do not lock): decide it again on what is there now
                    if attempt == 2:
                        if isinstance(error, _Redo):
                            raise
                        _refused_by_database(sheet, one, error, counts, rejects)
                except DataError as error:
                    _refused_by_database(sheet, one, error, counts, rejects)
                    break
        return
    writer = _WRITERS[kind.name]
    for line, cells in pending:
        try:
            values = read_row(kind, sheet.header_map, cells, ctx.calendar.tz)
            with s.begin_nested():
                outcome = writer(s, ctx, values)
            counts["rows"] += 1
            counts[outcome] += 1
        except RowProblem as problem:
            counts["rows"] += 1
            rejects.append(_reject(sheet, line, cells, problem.field, problem.error))
            counts["rejected"] += 1
        except DomainError as error:
            counts["rows"] += 1
            rejects.append(_reject(sheet, line, cells, _field_of(kind, error), error))
            counts["rejected"] += 1
        except (DataError, IntegrityError) as error:
            _refused_by_database(sheet, (line, cells), error, counts, rejects)


def _refused_by_database(sheet: _Sheet, one: tuple[int, tuple], error: SQLAlchemyError, counts: dict[str, int],
                         rejects: list[RejectedRow]) -> None:
    """A row the database itself will not store (a value longer than its column, a character it cannot hold):
    that row is reported, named by the database's error class only (its message quotes the row's values)."""
    line, cells = one
    counts["rows"] += 1
    counts["rejected"] += 1
    name = type(getattr(error, "orig", None) or error).__name__
    rejects.append(_reject(sheet, line, cells, None, DomainError("import_database_refused", error=name)))
