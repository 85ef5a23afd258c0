"""Database down: the ledger's PostgreSQL connections killed mid-flow and mid-dispatch (pg_terminate_backend from a
second connection), SQLite held by another writer ("database is locked").

Promises measured: no half-written findings (a run's alerts are all there or none), no run reported successful that
was not (its Prefect state is Failed), and nothing lost: a rerun after the fault delivers every alert.

The fault is placed at an exact statement of the flow's transaction through SQLAlchemy's public event API
(`before_cursor_execute` on the runtime's engine): nothing of bianmin is replaced, the flows run as Prefect runs them.
"""
from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import event, func, select, text
from sqlalchemy.engine import make_url

from flows.callbacks import chase_callbacks_flow
from flows.dispatch import dispatch_flow
from flows.runtime import Runtime, using_runtime
from models.ledger.db import make_engine, transaction
from models.ledger.tables import Alert
from tests.builders import accepted_job, at, order_for, request_for, setup_office
from tests.servers import write_apprise_config

pytestmark = pytest.mark.prefect

JOBS = 8  # callbacks overdue (cs-supervisor) and as many late orders each for engineering and cleaning
AS_OF = at("2026-11-27", "11:00")
LEASE = timedelta(minutes=11)  # dispatch leases what it claimed for 10 minutes: the rerun comes after that
TAGS = ("cs-supervisor", "cs-manager", "engineering-supervisor", "cleaning-supervisor")
KILL = ("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid()")


def overdue_work(rt: Runtime) -> None:
    """JOBS callbacks overdue and escalated (supervisor and manager) and 2 x JOBS late orders (engineering,
    cleaning): 4 x JOBS alerts in 4 digests."""
    with transaction(rt.sessions) as s:
        o = setup_office(s)
        for n in range(JOBS):
            accepted_job(s, rt.calendar, o, at=at("2026-11-23", "09:00") + timedelta(minutes=n))
            for category in ("plumbing", "cleaning"):
                req = request_for(s, o, at=at("2026-11-25", "15:00") + timedelta(minutes=n), category=category,
                                  channel="walk_in")
                order_for(s, o, req, at=at("2026-11-25", "15:10") + timedelta(minutes=n),
                          scheduled=at("2026-11-26", "10:00"))


def alert_count(rt: Runtime) -> int:
    """Alerts about the work (the ops alert a failed run raises is not one of them)."""
    with rt.read_sessions() as s:  # a reader: on SQLite it needs no lock another writer holds
        return s.scalar(select(func.count()).select_from(Alert).where(Alert.kind != "flow-failed"))


def expected_deliveries(rt: Runtime) -> list[tuple[str, str]]:
    """(tag, order number) of every alert about the work: each must be listed in a digest to that tag."""
    with rt.read_sessions() as s:
        return [tuple(row) for row in s.execute(select(Alert.tag, Alert.order_number)
                                                .where(Alert.kind != "flow-failed"))]


def runtime_for(settings, db_url: str, config) -> Runtime:
    return Runtime(settings.model_copy(update={"database_url": db_url, "apprise_config": config, "locale": "en"}))


def delivered(http_server, expected: list[tuple[str, str]]) -> tuple[int, int]:
    """(lost, duplicates): alerts never listed in an accepted digest to their tag, and listings beyond the first."""
    bodies = [(r.path.strip("/"), r.json()["message"]) for r in http_server.accepted()]
    times = [sum(number in body for path, body in bodies if path == tag) for tag, number in expected]
    return sum(1 for n in times if n == 0), sum(n - 1 for n in times if n > 1)


def most_listings(http_server, expected: list[tuple[str, str]]) -> int:
    """How many accepted digests to its tag listed the alert listed most often."""
    bodies = [(r.path.strip("/"), r.json()["message"]) for r in http_server.accepted()]
    return max(sum(number in body for path, body in bodies if path == tag) for tag, number in expected)


class FaultAt:
    """Calls `fault()` once, just before the first statement for which `when(statement)` holds."""

    def __init__(self, engine, when: Callable[[str], bool], fault: Callable[[], None]) -> None:
        self.engine, self.when, self.fault, self.fired = engine, when, fault, 0
        event.listen(engine, "before_cursor_execute", self)

    def __call__(self, conn, cursor, statement, parameters, context, executemany) -> None:
        if not self.fired and self.when(statement):
            self.fired += 1
            self.fault()

    def remove(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self)


@pytest.fixture
def receivers(tmp_path, http_server):
    return write_apprise_config(tmp_path / "apprise.yml",
                                {tag: http_server.url(f"/{tag}") for tag in (*TAGS, "ops")})


def test_postgresql_connections_killed_mid_flow_and_mid_dispatch_lose_nothing(
        backend, db_url, settings, receivers, http_server, prefect_harness, figure):
    if backend != "postgresql":
        pytest.skip("pg_terminate_backend needs PostgreSQL (BIANMIN_TEST_DATABASE_URL)")
    rt = runtime_for(settings, db_url, receivers)
    killer = make_engine(db_url)
    overdue_work(rt)
    seen: list[int] = []  # alert counts another connection saw at each fault and after each run

    def kill() -> None:
        with killer.begin() as conn:
            conn.execute(text(KILL))
        seen.append(alert_count(rt))

    # mid-flow: the findings are inserted, the run's transaction is still open when its connection dies
    inserted = []

    def after_the_alerts_insert(statement: str) -> bool:
        if inserted:
            return True
        if statement.lstrip().upper().startswith("INSERT INTO ALERTS"):
            inserted.append(statement)
        return False

    chase_fault = FaultAt(rt.engine, after_the_alerts_insert, kill)
    with using_runtime(rt):
        chase = chase_callbacks_flow(as_of=AS_OF, return_state=True)
    chase_fault.remove()
    after_chase = alert_count(rt)
    seen.append(after_chase)
    found = len(chase.result().findings) if chase.is_completed() else None
    expected = expected_deliveries(rt)

    # mid-dispatch: killed when the first digest has reached its receiver and dispatch goes back to the ledger
    dispatch_fault = FaultAt(rt.engine, lambda statement: bool(http_server.accepted()), kill)
    with using_runtime(rt):
        first = dispatch_flow(as_of=AS_OF, return_state=True)
    dispatch_fault.remove()
    with using_runtime(rt):  # the fault is over: the next dispatch once the dead run's lease has run out
        rerun = dispatch_flow(as_of=AS_OF + LEASE, return_state=True)
    lost, duplicates = delivered(http_server, expected)
    rt.close()
    killer.dispose()

    faults = sum(f.fired for f in (chase_fault, dispatch_fault))
    half_written = sum(1 for count in seen if count not in (0, found))
    false_success = (int(chase.is_completed() and after_chase != found)
                     + int(first.is_completed()))  # its sends were never recorded: it cannot have succeeded
    figure("database down", backend="postgresql", faults=faults, half_written=half_written,
           false_success=false_success, lost=lost, duplicates=duplicates)
    assert faults == 2
    assert seen[0] == 0  # at the moment of the fault the inserted findings were not visible to anyone
    assert chase.is_completed() and after_chase == found == 4 * JOBS  # retried whole on a new connection
    assert first.is_failed()
    assert rerun.is_completed()
    assert (half_written, false_success, lost) == (0, 0, 0)
    # each digest is recorded as soon as it is accepted: only those in flight when the fault cut their record (at
    # most one per tag, the tags sending side by side) are sent again, and each of those once
    assert duplicates <= len(expected)
    assert most_listings(http_server, expected) <= 2


def test_sqlite_database_is_locked_fails_the_run_and_a_rerun_loses_nothing(
        backend, db_url, settings, receivers, http_server, prefect_harness, figure):
    if backend != "sqlite":
        pytest.skip("SQLite's lock")
    # writers wait 1 s for the lock instead of 30 (the URL's `timeout`, as an operator may set it)
    rt = runtime_for(settings, f"{db_url}?timeout=1", receivers)
    overdue_work(rt)
    path = make_url(db_url).database

    def hold_the_lock() -> sqlite3.Connection:
        other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)  # released by a timer
        other.execute("BEGIN EXCLUSIVE")
        return other

    # a chase run while another writer holds the database: its first attempt fails on the lock, and the whole
    # transaction is retried once the lock is gone
    other = hold_the_lock()
    release = threading.Timer(2.0, other.rollback)
    release.start()
    with using_runtime(rt):
        chase = chase_callbacks_flow(as_of=AS_OF, return_state=True)
    release.join()
    other.close()
    after_chase = alert_count(rt)
    found = len(chase.result().findings) if chase.is_completed() else None
    expected = expected_deliveries(rt)

    # a dispatch while locked throughout: it must fail, not report a success it did not have
    other = hold_the_lock()
    with using_runtime(rt):
        locked = dispatch_flow(as_of=AS_OF, return_state=True)
    during = alert_count(rt)
    sent_while_locked = len([r for r in http_server.accepted() if r.path.strip("/") in TAGS])
    other.rollback()
    other.close()
    with using_runtime(rt):
        rerun = dispatch_flow(as_of=AS_OF + timedelta(minutes=1), return_state=True)
    lost, duplicates = delivered(http_server, expected)
    rt.close()

    half_written = sum(1 for count in (after_chase, during) if count not in (0, found))
    false_success = int(chase.is_completed() and after_chase != found) + int(locked.is_completed())
    figure("database down", backend="sqlite (database is locked)", faults=2, half_written=half_written,
           false_success=false_success, lost=lost, duplicates=duplicates)
    assert chase.is_completed() and after_chase == found == 4 * JOBS
    assert locked.is_failed() and "locked" in (locked.message or "")
    assert sent_while_locked == 0
    assert rerun.is_completed()
    assert (half_written, false_success, lost, duplicates) == (0, 0, 0, 0)
