"""`bianmin run chase-*`: the flow runs under Prefect, prints what it found and queued, and exits 0 or 1."""
from __future__ import annotations

import json
import os
import shutil
import socket
import sqlite3
from contextlib import closing

import pytest
from typer.testing import CliRunner

from commands.cli import app
from commands.common import set_runtime
from flows.runtime import Runtime
from flows.settings import Settings
from models.ledger.db import transaction
from tests.builders import accepted_job, at, order_for, request_for, setup_office

pytestmark = pytest.mark.prefect


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def cli(settings, monkeypatch, prefect_harness):
    """The CLI on the test's settings; no local Prefect server in reach, so the harness is used."""
    for name in ("PREFECT_HOME", "PREFECT_SERVER_ANALYTICS_ENABLED"):  # restored after the test
        monkeypatch.setenv(name, os.environ.get(name, "") or "unused")
    monkeypatch.delenv("PREFECT_API_URL", raising=False)

    def invoke(*args: str, settings_: Settings | None = None):
        rt = Runtime((settings_ or settings).model_copy(update={"prefect_port": free_port()}))
        set_runtime(rt)
        try:
            return CliRunner().invoke(app, list(args))
        finally:
            set_runtime(None)
            rt.close()

    return invoke


def build_scenario(settings: Settings) -> tuple[str, str]:
    rt = Runtime(settings)
    with transaction(rt.sessions) as s:
        o = setup_office(s)
        job = accepted_job(s, rt.calendar, o, at=at("2026-11-23", "10:00"), phone="13912345678").number
        req = request_for(s, o, at=at("2026-11-25", "15:00"), category="cleaning", channel="walk_in")
        late = order_for(s, o, req, at=at("2026-11-25", "15:10"), scheduled=at("2026-11-26", "10:00")).number
    rt.close()
    return job, late


def test_run_chase_callbacks_prints_json_with_masked_phones_and_what_it_queued(cli, settings):
    job, late = build_scenario(settings)
    result = cli("run", "chase-callbacks", "--as-of", "2026-11-26T11:00", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert {(f["key"], f["tag"]) for f in data["findings"]} == {
        (f"callback-overdue:{job}:1", "cs-supervisor"), (f"order-overdue:{late}", "cleaning-supervisor")}
    assert (data["new"], data["seen_again"], data["resolved"], data["recorded"]) == (2, 0, 0, True)
    assert "13912345678" not in result.stdout
    assert {f["facts"]["phone"] for f in data["findings"]} == {"139****5678", "138****5678"}
    again = json.loads(cli("run", "chase-callbacks", "--as-of", "2026-11-26T11:00", "--json").stdout)
    assert (again["new"], again["seen_again"]) == (0, 2)


def test_run_chase_replies_prints_a_table_even_when_nothing_is_overdue(cli, settings):
    build_scenario(settings)
    result = cli("run", "chase-replies", "--as-of", "2026-11-26T11:00")
    assert result.exit_code == 0, result.output
    assert "chase-replies" in result.stdout
    assert "0 new" in result.stdout or "新增提醒 0 条" in result.stdout


def test_a_failed_run_exits_non_zero_and_still_reaches_ops(cli, settings, tmp_path, sqlite_template):
    # a migrated database whose alerts table is gone: the flow fails, and so does recording the failure in it
    # (a database never migrated is refused before the run: tests/e2e/test_unusable_ledger.py)
    damaged = tmp_path / "no-alerts.db"
    shutil.copy(sqlite_template, damaged)
    with closing(sqlite3.connect(damaged)) as conn:
        conn.execute("DROP TABLE alerts")
    broken = settings.model_copy(update={"database_url": f"sqlite:///{damaged}", "locale": "en"})
    result = cli("run", "chase-replies", "--as-of", "2026-11-26T11:00", settings_=broken)
    assert result.exit_code == 1
    assert "chase-replies failed" in result.output
    [message] = list(settings.effective_outbox_dir.glob("*ops*.txt"))
    text = message.read_text(encoding="utf-8")
    assert "To: ops" in text and "chase-replies" in text and "no such table" in text
