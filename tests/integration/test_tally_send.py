"""The monthly report's send: claimed for a while, marked sent only after delivery, never lost and never doubled.

A run that dies mid-send leaves a claim that expires; a later run sends the report once. A live run's claim
is left alone. An explicit resend sends an unchanged month again, once even when asked twice at once.
"""
from __future__ import annotations

import socket
import subprocess
import sys
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import select, update

from flows.tally import run_monthly_tally
from notifications.report_send import SEND_LEASE
from models.ledger.db import transaction
from models.ledger.tables import ReportRun
from tests.builders import at
from tests.integration.test_tally import AFTER_OCTOBER, build_october
from tests.servers import http_server  # noqa: F401  (fixture)

# the run that dies: the same settings as the test's runtime, in a process of its own
DYING_RUN = """
import sys
from datetime import datetime
from pathlib import Path
from flows.runtime import Runtime
from flows.settings import Settings
from flows.tally import run_monthly_tally

url, data, outbox, reports, apprise, as_of = sys.argv[1:]
rt = Runtime(Settings(_env_file=None, database_url=url, data_dir=Path(data), outbox_dir=Path(outbox),
                      reports_dir=Path(reports), apprise_config=Path(apprise), signoff=False))
run_monthly_tally(rt, "2026-10", as_of=datetime.fromisoformat(as_of))
"""


class SilentServer:
    """A TCP server on 127.0.0.1 that takes connections and never answers: a send that hangs."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.connected = threading.Event()
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        try:
            while True:
                conn, _ = self.sock.accept()
                self.held.append(conn)
                self.connected.set()
        except OSError:  # closed
            pass

    def close(self) -> None:
        for conn in self.held:
            conn.close()
        self.sock.close()


def _apprise_config(path: Path, url: str) -> Path:
    path.write_text(f"urls:\n  - {url}:\n    - tag: administration\n", encoding="utf-8")
    return path


def _runs(runtime) -> dict[str, ReportRun]:
    with transaction(runtime.sessions) as s:
        return {r.office: r for r in s.scalars(select(ReportRun))}


def _titles(sink) -> list[str]:
    return [body["title"] for body in sink.json_bodies()]


def test_a_send_left_by_a_dead_run_is_sent_once_after_its_claim_expires(runtime, engine, calendar, http_server,
                                                                          tmp_path):
    build_october(engine, calendar)
    s = runtime.settings
    silent = SilentServer()
    try:
        hanging = _apprise_config(tmp_path / "hanging.yml", f"json://127.0.0.1:{silent.port}/hook")
        dying = subprocess.Popen([sys.executable, "-c", DYING_RUN, s.database_url, str(s.data_dir),
                                  str(s.outbox_dir), str(s.reports_dir), str(hanging), AFTER_OCTOBER.isoformat()],
                                 cwd=Path(__file__).parents[2], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            assert silent.connected.wait(120), dying.stderr.read().decode() if dying.poll() is not None else ""
        finally:
            dying.kill()  # dies in the middle of sending office A1's report
            dying.wait()
    finally:
        silent.close()

    left = _runs(runtime)
    assert list(left) == ["A1"]  # the group's report was never reached
    assert left["A1"].sent_at is None and left["A1"].send_claimed_by is not None
    assert left["A1"].send_claimed_until > datetime.now(timezone.utc)

    runtime.settings.apprise_config = _apprise_config(tmp_path / "apprise.yml", http_server.url("/hook"))
    soon = run_monthly_tally(runtime, "2026-10", as_of=at("2026-11-01", "09:00"))
    assert [(r.office, r.status, r.sent, r.send_busy) for r in soon.reports] == [
        ("A1", "unchanged", False, True), ("*", "new", True, False)]
    assert _titles(http_server) == [next(t for t in _titles(http_server) if "全集团" in t)]

    with transaction(runtime.sessions) as session:  # the dead run's lease runs out
        session.execute(update(ReportRun).where(ReportRun.office == "A1")
                        .values(send_claimed_until=datetime.now(timezone.utc) - timedelta(seconds=1)))
    later = run_monthly_tally(runtime, as_of=at("2026-11-02", "08:00"))  # the scheduled run
    assert [(r.office, r.status, r.sent) for r in later.reports] == [("A1", "pending", True)]
    assert run_monthly_tally(runtime, as_of=at("2026-11-03", "08:00")).reports == ()
    assert sum("全集团" not in t for t in _titles(http_server)) == 1
    assert all(r.sent_at is not None and r.send_claimed_by is None for r in _runs(runtime).values())


def test_a_send_claimed_by_a_live_run_is_left_to_it(runtime, engine, calendar):
    build_october(engine, calendar)
    first = run_monthly_tally(runtime, "2026-10", as_of=AFTER_OCTOBER)
    assert first.sent == 2
    with transaction(runtime.sessions) as session:  # a resend in progress in another process
        session.execute(update(ReportRun).values(send_claimed_by="another-run",
                                                 send_claimed_until=datetime.now(timezone.utc) + SEND_LEASE))
    busy = run_monthly_tally(runtime, "2026-10", resend=True, as_of=at("2026-11-05", "08:00"))
    assert [(r.sent, r.send_busy) for r in busy.reports] == [(False, True)] * 2
    assert len(list(runtime.settings.effective_outbox_dir.glob("*.txt"))) == 2
    assert {r.send_claimed_by for r in _runs(runtime).values()} == {"another-run"}


def test_a_failed_send_gives_its_claim_back_at_once(runtime, engine, calendar, http_server, tmp_path):
    build_october(engine, calendar)
    runtime.settings.apprise_config = _apprise_config(tmp_path / "apprise.yml", http_server.url("/hook"))
    http_server.respond(500)
    failed = run_monthly_tally(runtime, "2026-10", as_of=AFTER_OCTOBER)
    assert failed.sent == 0 and all(r.send_error for r in failed.reports)
    assert all(r.sent_at is None and r.send_claimed_until is None for r in _runs(runtime).values())

    http_server.respond(200)
    retried = run_monthly_tally(runtime, as_of=at("2026-11-01", "09:00"))  # the scheduled run, not by hand
    assert [(r.status, r.sent) for r in retried.reports] == [("pending", True)] * 2
    assert len(http_server.accepted()) == 2


def test_resend_sends_an_unchanged_month_again_and_the_schedule_never_does(runtime, engine, calendar):
    build_october(engine, calendar)
    outbox = runtime.settings.effective_outbox_dir
    assert run_monthly_tally(runtime, "2026-10", as_of=AFTER_OCTOBER).sent == 2
    assert run_monthly_tally(runtime, "2026-10", as_of=at("2026-11-02", "08:00")).sent == 0
    assert run_monthly_tally(runtime, as_of=at("2026-11-02", "09:00")).sent == 0
    resent = run_monthly_tally(runtime, "2026-10", resend=True, as_of=at("2026-11-03", "08:00"))
    assert [(r.version, r.status, r.sent, r.sent_before) for r in resent.reports] == [(1, "unchanged", True, True)] * 2
    assert len(list(outbox.glob("*.txt"))) == 4


def test_two_resends_at_once_send_the_month_once_more(runtime, engine, calendar):
    build_october(engine, calendar)
    run_monthly_tally(runtime, "2026-10", as_of=AFTER_OCTOBER)
    results, errors = [], []
    barrier = threading.Barrier(2)

    def resend():
        try:
            barrier.wait()
            results.append(run_monthly_tally(runtime, "2026-10", resend=True, as_of=at("2026-11-03", "08:00")))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=resend) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sum(r.sent for r in results) == 2  # A1 and the group, once each
    assert len(list(runtime.settings.effective_outbox_dir.glob("*.txt"))) == 4
