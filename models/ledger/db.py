"""Engines, sessions and schema migrations; nothing here reads settings."""
from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from models.errors import DomainError

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


class LedgerUnusable(DomainError):
    """The ledger database cannot be used as configured (unreachable, missing, not migrated): refused before
    anything was read or written, one line naming the URL with its password masked."""


# query arguments that carry a secret (libpq's password=, sslpassword=; a token or key of some driver)
_SECRET_QUERY = re.compile(r"(?P<key>(?:^|[?&;])[^=&;]*(?:password|passwd|pwd|secret|token|key)[^=&;]*=)[^&;#]*", re.I)


def shown_url(url: str | URL, *, mask: str = "***") -> str:
    """The URL as it may be shown or logged: SQLAlchemy's own rendering with the password hidden (as `mask`),
    and any secret-looking query value hidden too. The one place a URL's password is masked."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):  # not even a URL: hide whatever stands between the scheme and an @
        shown = re.sub(r"(?<=://)[^/@\s]*@", f"{mask}@", str(url))
    else:
        shown = parsed.render_as_string(hide_password=True)
        if parsed.password is not None and mask != "***":
            # SQLAlchemy writes "***" where the password was, first thing after the user name
            shown = shown.replace(":***@", f":{mask}@", 1)
    return _SECRET_QUERY.sub(lambda m: f"{m['key']}{mask}", shown)


def _reason(exc: BaseException, url: str | URL) -> str:
    """The driver's complaint on one line (psycopg's spans several), never quoting the password."""
    text_ = " ".join(str(getattr(exc, "orig", None) or exc).split())
    try:
        password = make_url(url).password
    except ArgumentError:
        password = None
    if password:
        text_ = text_.replace(str(password), "***")
    return text_[:300]


def unusable(exc: BaseException, url: str | URL) -> LedgerUnusable:
    """The refusal for an error met while opening the ledger at `url`."""
    shown = shown_url(url)
    if isinstance(exc, ArgumentError):  # unparsable URL, unknown scheme or driver (NoSuchModuleError)
        return LedgerUnusable("ledger_bad_url", url=shown, reason=_reason(exc, url))
    orig = getattr(exc, "orig", None)
    # PostgreSQL's "no such database" (3D000; psycopg gives no sqlstate for a refused connection, only the text)
    if getattr(orig, "sqlstate", None) == "3D000" or re.search(r'FATAL: +database ".*" does not exist', str(orig)):
        return LedgerUnusable("ledger_no_database", url=shown)
    return LedgerUnusable("ledger_unreachable", url=shown, reason=_reason(exc, url))


_REVISION_LINE = re.compile(r'^(down_)?revision\s*(?::[^=]*)?=\s*["\']([^"\']+)["\']', re.M)


@cache
def head_revision() -> str:
    """The newest migration's revision, read from the version files (alembic's loader costs ~0.7 s a process)."""
    revisions, parents = set(), set()
    for path in (MIGRATIONS_DIR / "versions").glob("*.py"):
        for down, value in _REVISION_LINE.findall(path.read_text(encoding="utf-8")):
            (parents if down else revisions).add(value)
    heads = revisions - parents
    if len(heads) != 1:
        raise RuntimeError(f"the migrations have {len(heads)} heads: {sorted(heads)}")
    return heads.pop()


def check_ledger(engine: Engine, url: str | URL | None = None) -> None:
    """Raise LedgerUnusable unless the database answers and its schema is at the newest migration.
    `url` is the one to name in the message (the engine's may have its driver added)."""
    url = url or engine.url
    try:
        with read_only(engine).connect() as conn:
            revision = (conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
                        if inspect(conn).has_table("alembic_version") else None)
    except DBAPIError as exc:
        raise unusable(exc, url) from exc
    head = head_revision()
    if revision == head:
        return
    shown = shown_url(url)
    if revision is None:
        raise LedgerUnusable("ledger_not_migrated", url=shown)
    raise LedgerUnusable("ledger_old_schema", url=shown, revision=revision, head=head)


def open_ledger(url: str, **kwargs) -> Engine:
    """An engine on the ledger at `url`, checked once: it answers and `bianmin db upgrade` has been run."""
    try:
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:") \
                and not Path(parsed.database).exists():
            # connecting would create an empty file: say what is missing instead
            raise LedgerUnusable("ledger_not_migrated", url=shown_url(url))
        engine = make_engine(url, **kwargs)
    except ArgumentError as exc:
        raise unusable(exc, url) from exc
    try:
        check_ledger(engine, url)
    except BaseException:
        engine.dispose()
        raise
    return engine


def json_serializer(value: Any) -> str:
    """The text of JSON columns: json.dumps' own (its public form; tests hold the text to it)."""
    if value is None:
        return "null"  # json.dumps' text, without building an encoder: every registration's audit has no `before`
    return json.dumps(value)


def make_engine(url: str, **kwargs) -> Engine:
    """An engine for `url`; SQLite gets WAL, foreign keys and a busy timeout."""
    kwargs.setdefault("json_serializer", json_serializer)
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        url = parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        # how long a writer waits for SQLite's lock before "database is locked": 30 s, or the URL's own
        # `?timeout=` in seconds (pysqlite's parameter), for the connection and its busy_timeout pragma alike
        wait = float(parsed.query.get("timeout", kwargs.get("connect_args", {}).get("timeout", 30)))
        kwargs.setdefault("connect_args", {"timeout": wait})
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", functools.partial(_sqlite_pragmas, busy_ms=int(wait * 1000)))
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


def _sqlite_pragmas(dbapi_connection, _record, *, busy_ms: int = 30000) -> None:
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
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

    try:  # a URL that cannot connect is one line naming it, not alembic's traceback
        engine = make_engine(url)
        engine.connect().close()
    except (ArgumentError, DBAPIError) as exc:
        raise unusable(exc, url) from exc
    engine.dispose()
    command.upgrade(alembic_config(url), revision)
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision() or ""
    finally:
        engine.dispose()
