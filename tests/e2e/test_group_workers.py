"""A group on the distributed engine, for real: a `prefect server` on 127.0.0.1 backed by PostgreSQL, bianmin's
ledger on PostgreSQL, `bianmin deploy`, two `prefect worker` processes on the pool, 20 generated offices.

The daily checks and the monthly tally fan out per office batch (BIANMIN_FANOUT_BATCH=2): every office's alerts
and reports reach the SMTP server exactly once, the child runs are spread over both workers (the workers' own "submitted-flow-run" events name
them), and a worker killed with its flow runs mid-run (its process group: a machine lost) loses nothing and
doubles nothing: its silent runs are marked Crashed by the automation `bianmin deploy` made, the parent puts
them back, the other worker finishes them. Skipped, saying why, only when PostgreSQL does not answer.
"""
from __future__ import annotations

import asyncio
import os
import re
import sys
import time
import uuid
from collections import Counter
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import make_url

from commands.generator import Plan, generate_month
from flows.runtime import Runtime
from flows.settings import Settings
from models.cash.findings import findings_of
from models.cash.queries import check_cash
from models.chase.findings import callback_chase_findings, reply_finding
from models.chase.queries import chase_callbacks, overdue_replies
from models.ledger.db import make_engine, transaction, upgrade
from models.ledger.tables import Alert, FlowWatermark
from notifications.outbox import alert_key, route_tags
from tests.prefect_servers import PrefectServer, PrefectWorker, clean_env
from tests.servers import SmtpSink, write_apprise_config

BIANMIN = str(Path(sys.executable).with_name("bianmin"))
ROOT = Path(__file__).resolve().parents[2]
PG_URL = os.environ.get("BIANMIN_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
TZ = ZoneInfo("Asia/Shanghai")
OFFICES = 20
BATCH = 2  # offices per child run: ten children a flow
TAGS = ("administration", "finance-manager", "engineering-supervisor", "cleaning-supervisor", "cs-supervisor",
        "cs-manager", "ops")
AS_OF = datetime(2026, 11, 2, 10, 0, tzinfo=TZ)          # Monday after the generated October
CASH_DAY, CASH_AS_OF = date(2026, 10, 30), datetime(2026, 10, 30, 18, 0, tzinfo=TZ)
FANNED = ("chase-callbacks", "chase-replies", "cash-check")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def databases():
    """Two fresh PostgreSQL databases, bianmin's ledger and the Prefect server's, dropped at the end."""
    pytest.importorskip("asyncpg", reason="the Prefect server on PostgreSQL needs asyncpg (requirements.lock)")
    admin_url = make_url(PG_URL)
    admin = make_engine(admin_url.render_as_string(hide_password=False), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any reason PostgreSQL is not there
        admin.dispose()
        pytest.skip(f"PostgreSQL at {admin_url.render_as_string()} does not answer: {type(exc).__name__}")
    names = {k: f"bianmin_group_{k}_{uuid.uuid4().hex[:8]}" for k in ("ledger", "prefect")}
    with admin.connect() as conn:
        for name in names.values():
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    ledger = admin_url.set(database=names["ledger"]).render_as_string(hide_password=False)
    prefect = admin_url.set(drivername="postgresql+asyncpg", database=names["prefect"]).render_as_string(
        hide_password=False)
    try:
        yield ledger, prefect
    finally:
        with admin.connect() as conn:
            for name in names.values():
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def expected_alert_keys(rt: Runtime) -> set[str]:
    """The outbox rows the three checks must leave for the whole group, asked of the ledger directly (read only):
    what one run over every office would record."""
    s, cal = rt.settings, rt.calendar
    with transaction(rt.sessions) as session:
        findings = [reply_finding(r, cal) for r in overdue_replies(session, as_of=AS_OF, calendar=cal,
                                                                    reply_minutes=s.reply_minutes)]
        findings += callback_chase_findings(chase_callbacks(session, as_of=AS_OF, calendar=cal,
                                                            escalate_workdays=s.callback_escalate_workdays,
                                                            rework_due_hours=s.rework_due_hours), cal)
        findings += findings_of(check_cash(session, day=CASH_DAY, as_of=CASH_AS_OF, calendar=cal,
                                           cutoff=s.cash_cutoff, return_workdays=s.receipt_return_workdays))
        session.rollback()
    return {alert_key(f.key, tag) for f in findings
            for tag in route_tags(s.alert_routes, kind=f.kind, level=f.level, department=f.department)}


def mailed_keys(smtp: SmtpSink) -> Counter:
    """(finding key @ recipient tag) per mail line "key ...": an alert mailed twice counts 2."""
    seen: Counter = Counter()
    for message in smtp.messages:
        tag = str(message["To"]).split("@")[0]
        for key in re.findall(r"^\s*key (\S+)$", SmtpSink.text(message), flags=re.M):
            seen[f"{key}@{tag}"] += 1
    return seen


class Api:
    """The Prefect server's REST API, through Prefect's client where it has the call."""

    def __init__(self, url: str) -> None:
        self.url = url

    def run(self, coroutine_fn, *args):
        from prefect.client.orchestration import PrefectClient

        async def go():
            async with PrefectClient(self.url) as client:
                return await coroutine_fn(client, *args)
        return asyncio.run(go())

    def start(self, deployment: str, **parameters) -> str:
        async def go(client):
            d = await client.read_deployment_by_name(deployment)
            return str((await client.create_flow_run_from_deployment(d.id, parameters=parameters)).id)
        return self.run(go)

    def runs(self, flow_name: str | None = None) -> list:
        from prefect.client.schemas.filters import FlowFilter, FlowFilterName

        async def go(client):
            flows = FlowFilter(name=FlowFilterName(any_=[flow_name])) if flow_name else None
            return await client.read_flow_runs(flow_filter=flows, limit=200)
        return self.run(go)

    def pause_schedules(self) -> None:
        async def go(client):
            for d in await client.read_deployments():
                await client.pause_deployment(d.id)
        self.run(go)

    def state(self, run_id: str):
        async def go(client):
            return (await client.read_flow_run(run_id)).state
        return self.run(go)

    def submitted_by(self) -> dict[str, list[str]]:
        """flow run id -> the names of the workers that submitted it, from the workers' own events."""
        out: dict[str, list[str]] = {}
        body = {"filter": {"event": {"name": ["prefect.worker.submitted-flow-run"]},
                           "occurred": {"since": "2000-01-01T00:00:00Z"}}, "limit": 50}
        page = httpx.post(f"{self.url}/events/filter", json=body, timeout=30).json()
        while True:
            for event in page["events"]:
                worker = event["resource"]["prefect.resource.name"]
                for related in event.get("related", []):
                    if related.get("prefect.resource.role") == "flow-run":
                        out.setdefault(related["prefect.resource.id"].rsplit(".", 1)[1], []).append(worker)
            if not page.get("next_page"):
                return out
            page = httpx.get(page["next_page"], timeout=30).json()


def overhead_figures(api: Api) -> str:
    """What a child run costs around its office's own work (a figure, not a check): the median wait from
    creation to start (worker polling), the run's wall time in its process, and its office-part task's time."""
    from statistics import median

    from prefect.client.schemas.filters import TaskRunFilter, TaskRunFilterName

    async def parts(client):
        runs = await client.read_task_runs(task_run_filter=TaskRunFilter(
            name=TaskRunFilterName(like_="office-part")), limit=200)
        return [r.total_run_time.total_seconds() for r in runs if r.state and r.state.is_completed()]
    children = [r for r in api.runs("office-check") if r.state.is_completed() and r.start_time and r.end_time]
    wait = median((r.start_time - r.expected_start_time).total_seconds() for r in children)
    wall = median((r.end_time - r.start_time).total_seconds() for r in children)
    work = median(api.run(parts))
    return (f"office-check child runs {len(children)}: median wait to start {wait:.1f} s, run {wall:.2f} s, "
            f"of which the office's part {work * 1000:.0f} ms; overhead/work = {(wall - work) / work:.0f}x "
            f"({(wait + wall - work) / work:.0f}x with the wait)")


def wait_until(predicate, *, timeout: float, every: float = 2.0, what: str = ""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def test_a_group_of_20_offices_on_two_workers_alerts_each_once_and_survives_a_lost_worker(tmp_path, databases):
    ledger_url, prefect_url = databases
    upgrade(ledger_url)
    rt = Runtime(Settings(_env_file=None, database_url=ledger_url, data_dir=tmp_path / "var", locale="en"))
    # problems planted round robin: every office has a reply, a callback and cash to be chased
    plan = Plan(unreplied=OFFICES, overdue_callbacks=OFFICES, cash_held=OFFICES, shortfalls=2, receipt_gaps=2)
    generate_month(rt.sessions, calendar=rt.calendar, month="2026-10", offices=OFFICES, orders_per_office=20,
                   plan=plan)
    expected = expected_alert_keys(rt)
    offices_told = {key.split(":")[1].split("-")[1] for key in expected if key.startswith(("reply-", "callback-"))}
    assert len(offices_told) == OFFICES, offices_told  # every office has something to be told

    smtp = SmtpSink().start()
    server = PrefectServer(tmp_path / "prefect", database_url=prefect_url).start()
    settings_env = {
        "BIANMIN_DATABASE_URL": ledger_url, "BIANMIN_DATA_DIR": str(tmp_path / "var"), "BIANMIN_LOCALE": "en",
        "BIANMIN_CONFIG_FILE": str(tmp_path / "absent.toml"), "BIANMIN_FANOUT_BATCH": str(BATCH),
        "BIANMIN_RUN_SILENT_SECONDS": "90", "BIANMIN_SIGNOFF": "false",
        "BIANMIN_APPRISE_CONFIG": str(write_apprise_config(
            tmp_path / "apprise.yml", {tag: smtp.url(to=f"{tag}@example.com") for tag in TAGS})),
    }
    workers = []
    try:
        import subprocess

        deployed = subprocess.run([BIANMIN, "deploy"], env=clean_env(PREFECT_API_URL=server.api_url,
                                                                      PREFECT_HOME=str(tmp_path / "deployer"),
                                                                      **settings_env),
                                  capture_output=True, text=True, cwd=tmp_path, timeout=300)
        assert deployed.returncode == 0, deployed.stdout + deployed.stderr
        api = Api(server.api_url)
        api.pause_schedules()  # the test starts each run itself, as of the generated month, not on the clock
        worker_env = {**settings_env, "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": "30", "PREFECT_WORKER_QUERY_SECONDS": "2",
                      "PREFECT_WORKER_PREFETCH_SECONDS": "2"}
        # three runs at once each (docs/deploy.md: cores + 1), so neither worker can take every child of a flow
        workers = [PrefectWorker(server, "bianmin", name, worker_env, tmp_path, ROOT, limit=3).start()
                   for name in ("w1", "w2")]

        # chase-callbacks: once the children run on both workers, the worker without the parent is lost
        parent = api.start("chase-callbacks/bianmin", as_of=AS_OF.isoformat())

        def spread() -> str | None:
            by = api.submitted_by()
            children = [r for r in api.runs("office-check") if r.state and r.state.is_running()]
            host = by.get(parent, [None])[0]
            victims = {w for r in children for w in by.get(str(r.id), []) if w != host}
            return next(iter(victims), None) if host and len({w for ws in by.values() for w in ws}) == 2 else None
        victim = wait_until(spread, timeout=300, every=1.0, what="children running on both workers")
        next(w for w in workers if w.name == victim).kill()
        wait_until(lambda: api.state(parent).is_final(), timeout=600, what="chase-callbacks to end")
        assert api.state(parent).is_completed(), api.state(parent)

        for deployment, parameters in (("chase-replies/bianmin", {"as_of": AS_OF.isoformat()}),
                                       ("cash-check/bianmin", {"day": CASH_DAY.isoformat(),
                                                               "as_of": CASH_AS_OF.isoformat()})):
            run = api.start(deployment, **parameters)
            wait_until(lambda: api.state(run).is_final(), timeout=600, what=f"{deployment} to end")
            assert api.state(run).is_completed(), (deployment, api.state(run))

        with transaction(rt.sessions) as session:
            marks = Counter(m.flow for m in session.scalars(select(FlowWatermark)) if m.scope != "*")
            stored = set(session.scalars(select(Alert.dedupe_key)))
        assert marks == {flow: OFFICES for flow in FANNED}  # every office's part of every check is in
        assert stored == expected  # nothing lost, nothing extra: what one run over the group would record

        for _ in range(2):  # the second dispatch finds nothing left to send
            run = api.start("dispatch/bianmin")
            wait_until(lambda: api.state(run).is_final(), timeout=300, what="dispatch to end")
        mailed = mailed_keys(smtp)
        assert set(mailed) == expected
        assert [k for k, n in mailed.items() if n != 1] == []  # exactly once, over both workers and the crash

        # the monthly tally: every office's report written by the children, the group's by the parent, each mailed
        # once to administration with its workbook
        run = api.start("monthly-tally/bianmin", month="2026-10", as_of=AS_OF.isoformat())
        wait_until(lambda: api.state(run).is_final(), timeout=600, what="monthly-tally to end")
        assert api.state(run).is_completed(), api.state(run)
        workbooks = Counter((str(m["To"]), name) for m in smtp.messages for name in SmtpSink.attachments(m)
                            if name.endswith(".xlsx"))
        reports = {f"bianmin-{office}-2026-10-v1.xlsx" for office in offices_told} | {"bianmin-group-2026-10-v1.xlsx"}
        assert set(workbooks) == {("administration@example.com", name) for name in reports}, workbooks
        assert set(workbooks.values()) == {1}
        tally_children = [r for r in api.runs("office-check") if r.name.startswith("monthly-tally")]
        assert len(tally_children) == OFFICES // BATCH and all(r.state.is_completed() for r in tally_children)

        by = api.submitted_by()
        children = [str(r.id) for r in api.runs("office-check")]
        workers_of_children = Counter(w for run_id in children for w in by.get(run_id, []))
        assert set(workers_of_children) == {"w1", "w2"}, workers_of_children
        crashed_then_redone = [r for r in api.runs("office-check") if r.run_count > 1]
        assert crashed_then_redone, "the lost worker's children were put back and finished elsewhere"
        print(f"\nchildren per worker {dict(workers_of_children)}, redone after the crash "
              f"{len(crashed_then_redone)}, alerts {len(expected)}, mails {len(smtp.messages)}")
        print(overhead_figures(api))
    finally:
        for worker in workers:
            worker.kill()
        server.stop()
        smtp.stop()
        rt.close()
