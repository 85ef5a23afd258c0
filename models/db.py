"""Engines, sessions and schema migrations; nothing here reads settings."""
from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


# json.dumps(value) builds a new C encoder on every call; audit events are written several per imported row.
# Made once with json.dumps' own defaults, the text is the same (only the circular-reference check is left out:
# a JSON column's value is plain data)
_ENCODE = json.encoder.c_make_encoder(  # type: ignore[attr-defined]
    None, json.JSONEncoder().default, json.encoder.encode_basestring_ascii, None, ": ", ", ", False, False, True,
) if json.encoder.c_make_encoder is not None else None  # type: ignore[attr-defined]


def json_serializer(value: Any) -> str:
    """The text json.dumps(value) gives, made faster: JSON columns are written through it."""
    if _ENCODE is None or isinstance(value, str):
        return json.dumps(value)
    return "".join(_ENCODE(value, 0))


def make_engine(url: str, **kwargs) -> Engine:
    """An engine for `url`; SQLite gets WAL, foreign keys and a busy timeout."""
    kwargs.setdefault("json_serializer", json_serializer)
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        url = parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        kwargs.setdefault("connect_args", {"timeout": 30})
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    # a checkpoint (WAL pages copied into the database, with an fsync) after 10,000 pages (~40 MB) instead of
    # SQLite's 1,000: a batch of an import dirties a few thousand index pages, so with the default nearly every
    # commit checkpointed and the same pages were copied again and again (a tenth of an import's time). Commits
    # are as durable either way; the WAL file grows to about that size and is reused.
    cursor.execute("PRAGMA wal_autocheckpoint=10000")
    cursor.close()


def _sqlite_begin(conn) -> None:
    # pysqlite's own transaction handling defers BEGIN; take control so that writers serialise at
    # BEGIN IMMEDIATE instead of failing when a read lock cannot be upgraded. Read-only work (reports)
    # asks for DEFERRED: in WAL mode its snapshot then never holds up the desk's writes.
    mode = conn.get_execution_options().get("sqlite_begin", "IMMEDIATE")
    if mode not in ("IMMEDIATE", "DEFERRED"):
        raise ValueError(f"sqlite_begin must be IMMEDIATE or DEFERRED, not {mode!r}")
    conn.exec_driver_sql(f"BEGIN {mode}")


def read_only(engine: Engine) -> Engine:
    """The same engine for work that only reads: on SQLite its transactions do not take the write lock."""
    return engine.execution_options(sqlite_begin="DEFERRED")


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """A sessionmaker whose objects stay readable after commit."""
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(engine_or_factory: Engine | sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back (changing nothing) on any error."""
    factory = engine_or_factory if isinstance(engine_or_factory, sessionmaker) else session_factory(engine_or_factory)
    with factory() as session, session.begin():
        yield session


def alembic_config(url: str):
    """An alembic Config pointing at bianmin's migrations and the given database."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> str:
    """Create or migrate the database at `url`; safe to run again. Returns the revision reached."""
    from alembic import command
    from alembic.runtime.migration import MigrationContext

    command.upgrade(alembic_config(url), revision)
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision() or ""
    finally:
        engine.dispose()
