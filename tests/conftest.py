"""Shared fixtures: a freshly migrated database per test on SQLite and, when
BIANMIN_TEST_DATABASE_URL is set, on PostgreSQL too (the whole suite, parametrised).

Use `db_url` / `engine` / `runtime` for anything touching the ledger; build data with tests/builders.py.
"""
from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings
from sqlalchemy import text
from sqlalchemy.engine import make_url

from flows.runtime import Runtime
from flows.settings import Settings
from models.calendar import BusinessCalendar
from models.ledger.db import make_engine, upgrade
from models.ledger.tables import Base

# no time limit per example: hypothesis's default 200 ms deadline is a timing threshold, and it fails a correct
# rule on a loaded shared machine
hypothesis_settings.register_profile("bianmin", deadline=None)
hypothesis_settings.load_profile("bianmin")

PG_URL = os.environ.get("BIANMIN_TEST_DATABASE_URL")
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])
# tables whose rows the migrations seed; everything else is emptied between tests
SEEDED = {"departments", "alembic_version"}


def pytest_report_header(config) -> str:
    return f"bianmin backends: {', '.join(BACKENDS)}"


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A database of its own for this test session, migrated once, dropped at the end."""
    admin_url = make_url(PG_URL)
    name = f"bianmin_test_{uuid.uuid4().hex[:10]}"
    admin = make_engine(admin_url.render_as_string(hide_password=False), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin_url.set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _empty_postgres(url: str) -> None:
    names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables if t.name not in SEEDED)
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    finally:
        engine.dispose()


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    return request.param


@pytest.fixture
def db_url(backend, request, tmp_path) -> str:
    """An empty, migrated ledger database on the test's backend."""
    if backend == "sqlite":
        path = tmp_path / "bianmin.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url = request.getfixturevalue("postgres_database")
    _empty_postgres(url)
    return url


@pytest.fixture
def engine(db_url):
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def settings(db_url, tmp_path) -> Settings:
    """Settings as a fresh install would have them, pointed at the test's database and folders; the departments'
    sign-off is off (the tally tests send straight to administration), tests/integration/test_signoff.py turns
    it on."""
    return Settings(
        _env_file=None,
        data_dir=tmp_path / "var",
        database_url=db_url,
        outbox_dir=tmp_path / "outbox",
        reports_dir=tmp_path / "reports",
        signoff=False,
    )


@pytest.fixture
def runtime(settings) -> Iterator[Runtime]:
    rt = Runtime(settings)
    yield rt
    rt.close()


@pytest.fixture
def calendar() -> BusinessCalendar:
    return BusinessCalendar()


@pytest.fixture(scope="session")
def prefect_harness(tmp_path_factory) -> Iterator[None]:
    """Prefect's test harness, started once per test session (it costs ~13 s)."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield
