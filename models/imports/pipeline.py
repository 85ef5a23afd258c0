"""On SQLite, a desk-decided sheet written one batch behind its deciding, by a thread of its own."""
from __future__ import annotations

from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from models.imports.batches import _decide, _Redo, _Verdict, _write_batch
from models.imports.readers import _Sheet
from models.imports.rejects import RejectedRow
from models.imports.rows import _DECIDERS, _Context
from models.imports.writers import _Decided, _Insert

def _can_overlap(sessions: sessionmaker[Session], sheet: _Sheet) -> bool:
    """Whether `_Pipeline` writes this sheet: a desk-decided kind, on an SQLite file (its write is a few GIL-free
    calls)."""
    engine = sessions.kw.get("bind")
    if sheet.kind.name not in _DECIDERS or engine is None or engine.dialect.name != "sqlite":
        return False
    # an in-memory database is one per connection: the writer thread's would not be the reader's
    database = engine.url.database or ""
    return database not in ("", ":memory:") and "mode=memory" not in str(engine.url)


class _Pipeline:
    """A desk-decided sheet's batches written by a thread of their own, while the next batch is read and decided.

    Deciding is Python's work and writing mostly the database's (on SQLite a few multi-row statements per table,
    each run without the GIL: `_insert_statements`), so on two cores they overlap. A batch is decided against the
    ledger as committed plus the batch still being written (`_decide`'s `over`), through a read-only session that
    never waits for the writer. It is sent to be written only once the batch before it has committed as decided; if that
    one had to be written again (the database refused it, or a row it changes had changed), this one is decided
    again. Each batch is still one transaction, written in file order, with the same rows, counts and rejects as
    `_write_batch` gives.
    """

    def __init__(self, sessions: sessionmaker[Session], batch, ctx: _Context, sheet: _Sheet,
                 counts: dict[str, int], rejects: list[RejectedRow]) -> None:
        from concurrent.futures import ThreadPoolExecutor

        from models.ledger.db import read_only

        engine = sessions.kw["bind"]
        self.reads = sessionmaker(read_only(engine), expire_on_commit=False)
        self.dialect = engine.dialect
        self.batch, self.ctx, self.sheet, self.counts, self.rejects = batch, ctx, sheet, counts, rejects
        self.writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bianmin-import-writer")
        self.flight: tuple[list[tuple[int, tuple]], _Verdict, Any] | None = None

    def put(self, pending: list[tuple[int, tuple]]) -> None:
        verdict, inserts = self._prepare(pending, over=self.flight[1].decided if self.flight else None)
        if self.flight is not None and not self._land():
            verdict, inserts = self._prepare(pending)  # the batch it was decided beside was not written as decided
        self.flight = (pending, verdict, self.writer.submit(self._write, verdict, inserts))

    def finish(self) -> None:
        if self.flight is not None:
            self._land()

    def close(self) -> None:
        """Let a batch still being written end (it commits or rolls back as a whole) before the import returns."""
        if self.flight is not None:
            self.flight[2].exception()
            self.flight = None
        self.writer.shutdown(wait=True)

    def _prepare(self, pending: list[tuple[int, tuple]], over: _Decided | None = None
                 ) -> tuple[_Verdict, tuple[list[_Insert], list[_Insert]]]:
        """The batch decided, and its INSERTs made: here, so that the writer thread only waits for the database
        and needs the GIL only a few times a batch."""
        with self.reads() as s, s.begin():
            verdict = _decide(s, self.ctx, self.sheet, pending, over)
        return verdict, verdict.decided.inserts(self.dialect, moments=self.sheet.moment_texts())

    def _write(self, verdict: _Verdict, inserts: tuple[list[_Insert], list[_Insert]]) -> None:
        with self.batch() as s:
            verdict.decided.write(s, inserts)

    def _land(self) -> bool:
        """Wait for the batch being written: True if it committed as decided, else it is written the usual way."""
        pending, verdict, future = self.flight
        self.flight = None
        try:
            future.result()
        except (_Redo, SQLAlchemyError):
            _write_batch(self.batch, self.ctx, self.sheet, pending, self.counts, self.rejects)
            return False
        verdict.count_into(self.counts, self.rejects)
        return True
