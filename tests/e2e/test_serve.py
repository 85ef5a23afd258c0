"""`bianmin serve` for real: a subprocess that starts its own Prefect server, runs flows on a fast cron,
and stops everything on SIGTERM. Slow (a minute or two: the cron fires on the minute), but the main job.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from sqlalchemy import select

from flows.runtime import Runtime
from flows.settings import Settings
from models.ledger.db import transaction, upgrade
from models.ledger.tables import Alert, FlowRun, FlowWatermark
from tests.builders import at, request_for, setup_office

BIANMIN = str(Path(sys.executable).with_name("bianmin"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve_env(data_dir: Path, port: int, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("BIANMIN_", "PREFECT_"))}  # the test's own settings only, no server configured
    env.update(BIANMIN_DATA_DIR=str(data_dir), BIANMIN_PREFECT_PORT=str(port), BIANMIN_LOCALE="en",
               BIANMIN_SCHEDULE_REPLIES="* * * * *", BIANMIN_SCHEDULE_DISPATCH="* * * * *",
               BIANMIN_CONFIG_FILE=str(data_dir / "none.toml"), **extra)
    return env


def wait_for(predicate, *, timeout: float, every: float = 2.0, process: subprocess.Popen | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if process is not None and process.poll() is not None:
            return predicate()
        time.sleep(every)
    return predicate()


@pytest.mark.slow
def test_serve_runs_the_flows_on_schedule_and_stops_cleanly_on_sigterm(tmp_path):
    data_dir, port = tmp_path / "var", free_port()
    settings = Settings(_env_file=None, data_dir=data_dir)
    upgrade(settings.effective_database_url)
    rt = Runtime(settings)
    with transaction(rt.sessions) as s:  # a phone call nobody answered, long ago: overdue whenever this runs
        o = setup_office(s)
        request = request_for(s, o, at=at("2026-11-02", "10:00"), phone="13812345678").number

    log = (tmp_path / "serve.log").open("wb")
    serve = subprocess.Popen([BIANMIN, "serve"], env=serve_env(data_dir, port), stdout=log,
                             stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        def completed_beats() -> list:
            with transaction(rt.sessions) as s:
                return s.execute(select(FlowRun.flow, FlowRun.result, FlowRun.prefect_run_id)
                                 .where(FlowRun.flow == "chase-replies", FlowRun.result == "completed")).all()

        def delivered() -> bool:
            with transaction(rt.sessions) as s:
                marks = set(s.scalars(select(FlowWatermark.flow)))
                sent = s.scalar(select(Alert.sent_at).where(Alert.dedupe_key == f"reply-overdue:{request}@cs-supervisor"))
            # the heartbeat's "completed" is written by the completion hook, after the run's own commit: the
            # dispatch may deliver its alert before that
            return {"chase-replies"} <= marks and sent is not None and bool(completed_beats())

        assert wait_for(delivered, timeout=240, process=serve), (tmp_path / "serve.log").read_text()
        beats = completed_beats()  # each served run left its heartbeat, with its Prefect run id
        assert beats and all(run_id for _, _, run_id in beats)

        # a one-off run finds serve's server and uses it instead of starting its own
        one_off = subprocess.run([BIANMIN, "run", "chase-replies", "--json"], env=serve_env(data_dir, port),
                                 capture_output=True, text=True, cwd=tmp_path, timeout=120)
        assert one_off.returncode == 0, one_off.stderr
        assert f"http://127.0.0.1:{port}/api" in one_off.stderr
        assert '"seen_again": 1' in one_off.stdout

        family = [serve, *psutil.Process(serve.pid).children(recursive=True)]
        family_pids = [p.pid for p in family]
    finally:
        serve.send_signal(signal.SIGTERM)
        try:
            code = serve.wait(90)
        except subprocess.TimeoutExpired:
            serve.kill()
            raise
        log.close()
        rt.close()

    output = (tmp_path / "serve.log").read_text()
    assert code == 0, output
    assert "Local Prefect server stopped" in output
    leftovers = [pid for pid in family_pids if psutil.pid_exists(pid)
                 and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
    assert leftovers == []
    [digest] = (data_dir / "outbox").glob("*cs-supervisor*.txt")
    text = digest.read_text(encoding="utf-8")
    assert request in text and "138****5678" in text and "13812345678" not in text


def test_serve_refuses_a_port_already_taken_and_says_so(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run([BIANMIN, "serve"], env=serve_env(tmp_path / "var", port), capture_output=True,
                                text=True, cwd=tmp_path, timeout=120)
    assert result.returncode == 2
    assert f"Port {port} is already in use" in result.stderr
    assert "Traceback" not in result.stderr
