"""Every flow run under Prefect leaves its heartbeat in `flow_runs` (flows/hooks.py's state hooks), which the
console's Health page shows with a link to the run in a real Prefect server (Prefect's test harness)."""
from __future__ import annotations

import os
import socket
from datetime import date, datetime, timedelta, timezone

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text

from console.app import create_app
from flows.callbacks import chase_callbacks_flow, chase_replies_flow
from flows.cash import cash_check_flow
from flows.runtime import Runtime, using_runtime
from models.ledger.db import transaction
from models.ledger.tables import FlowRun
from tests.builders import at
from tests.consoles import NOW, console_world, log_in

pytestmark = pytest.mark.prefect


def runs(rt: Runtime) -> list[FlowRun]:
    with transaction(rt.sessions) as s:
        rows = list(s.scalars(select(FlowRun).order_by(FlowRun.id)))
        s.expunge_all()
        return rows


def test_a_run_under_prefect_records_its_start_and_end_with_its_prefect_run_id(runtime, prefect_harness):
    as_of = at("2026-11-23", "10:11")
    with using_runtime(runtime):
        state = chase_replies_flow(as_of=as_of, return_state=True)

    assert state.is_completed()
    [run] = runs(runtime)
    assert (run.flow, run.scope, run.result, run.message) == ("chase-replies", "*", "completed", None)
    assert run.prefect_run_id == str(state.state_details.flow_run_id)
    assert run.window_end == as_of
    assert run.worker == f"{socket.gethostname()}:{os.getpid()}"
    assert run.started_at <= run.finished_at <= datetime.now(timezone.utc)


def test_a_cash_check_of_one_office_is_that_offices_heartbeat(runtime, prefect_harness):
    with using_runtime(runtime):
        assert cash_check_flow(day=date(2026, 10, 3), office="A1", return_state=True).is_completed()  # a day off

    [run] = runs(runtime)
    assert (run.flow, run.scope, run.result) == ("cash-check", "A1", "completed")


def test_a_failed_run_says_so_with_a_scrubbed_message(settings, tmp_path, prefect_harness):
    broken = tmp_path / "13812345678.toml"  # a resident's number where no one expected it
    broken.write_text("this is [not toml", encoding="utf-8")
    bad = Runtime(settings.model_copy(update={"calendar_override": broken}))
    with using_runtime(bad):
        state = chase_callbacks_flow(as_of=at("2026-11-26", "11:00"), return_state=True)
    bad.close()

    assert state.is_failed()
    good = Runtime(settings)
    [run] = runs(good)
    good.close()
    assert (run.flow, run.result) == ("chase-callbacks", "failed")
    assert "not valid TOML" in run.message and "138****5678" in run.message and "13812345678" not in run.message
    assert run.prefect_run_id == str(state.state_details.flow_run_id) and run.finished_at is not None


def test_a_heartbeat_that_cannot_be_written_never_fails_the_run(backend, runtime, prefect_harness):
    if backend != "sqlite":
        pytest.skip("drops a table of the test's own SQLite file; PostgreSQL's database is shared by the session")
    with transaction(runtime.sessions) as s:
        s.execute(text("DROP TABLE flow_runs"))  # as an older schema would lack it

    with using_runtime(runtime):
        state = chase_replies_flow(as_of=at("2026-11-23", "10:11"), return_state=True)

    assert state.is_completed()


# -- the Health page with a real Prefect server -----------------------------------------------------------------

def test_health_links_the_last_run_and_the_next_scheduled_run_to_the_prefect_ui(settings, engine, prefect_harness,
                                                                               monkeypatch):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import DeploymentScheduleCreate
    from prefect.client.schemas.schedules import CronSchedule
    from prefect.settings import get_current_settings
    from prefect.states import Scheduled

    world = console_world(settings, engine)
    api = get_current_settings().api.url.rstrip("/")
    monkeypatch.setenv("PREFECT_API_URL", api)
    monkeypatch.delenv("PREFECT_UI_URL", raising=False)
    with using_runtime(world.rt):
        last = chase_replies_flow(as_of=at("2026-11-05", "09:55"), return_state=True)
    next_start = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=2)
    with get_client(sync_client=True) as client:
        flow_id = client.read_flow_by_name("chase-replies").id
        deployment = client.create_deployment(flow_id=flow_id, name="bianmin-health", schedules=[
            DeploymentScheduleCreate(schedule=CronSchedule(cron="0 9 * * *", timezone="Asia/Shanghai"))])
        upcoming = client.create_flow_run_from_deployment(deployment, state=Scheduled(scheduled_time=next_start))

    try:
        with TestClient(create_app(world.rt, clock=lambda: NOW), base_url="http://127.0.0.1:8209") as browser:
            assert log_in(browser, "root").status_code == 303
            page = browser.get("/health").text
    finally:  # the harness's server is the session's: the next test must not find this run as the next one
        with get_client(sync_client=True) as client:
            client.delete_flow_run(upcoming.id)
        world.rt.close()

    ui = api.removesuffix("/api")
    shown = next_start.astimezone(world.rt.calendar.tz).strftime("%Y-%m-%d %H:%M")
    assert f'<a href="{ui}/runs/flow-run/{last.state_details.flow_run_id}">' in page
    assert "Result: completed" in page and "as of 2026-11-05 09:55" in page
    assert f'<a href="{ui}/runs/flow-run/{upcoming.id}">{shown}</a>' in page
    assert "cannot be reached" not in page
