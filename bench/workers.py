"""`python -m bench.workers [--offices 200] [--orders 25] [--batch 20] [--reps 2]`: the monthly tally of a group,
fanned out per office, on one and on two Prefect workers in the same run; and what a child run costs around its
offices' own work.

Set up once: bianmin's ledger on PostgreSQL (a fresh database, dropped at the end) with a generated October of
`--offices` offices, a real `prefect server` (SQLite, in a temporary folder), `bianmin deploy`, the schedules paused.
Then, `--reps` times, alternately with 1 and with 2 `prefect worker` processes: the month's reports deleted, one
`monthly-tally` run started for October, timed from its creation until it has ended (every office's report and the
group's written and delivered, which is checked). Each worker runs at most two flow runs at once (`--limit 2`:
the parent, which only waits, and one child), a one-core machine's worth; both workers share this machine's two
cores. Baseline in the same run: the same month's tally in one process, without Prefect (`run_monthly_tally`).

Child-run overhead: for the 2-worker runs, each `office-check` child's wall time on its worker against the time
its `office-reports` task took (the offices' own work): overhead = wall - work, as a ratio to the work.
"""
from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
TZ = ZoneInfo("Asia/Shanghai")
MONTH = "2026-10"
AS_OF = datetime(2026, 11, 2, 8, 0, tzinfo=TZ)
BIANMIN = str(Path(sys.executable).with_name("bianmin"))


def _api(url: str, fn):
    from prefect.client.orchestration import PrefectClient

    async def go():
        async with PrefectClient(url) as client:
            return await fn(client)
    return asyncio.run(go())


def _start(url: str, as_of: datetime) -> str:
    async def go(client):
        deployment = await client.read_deployment_by_name("monthly-tally/bianmin")
        run = await client.create_flow_run_from_deployment(deployment.id, parameters={
            "month": MONTH, "as_of": as_of.isoformat()})
        return run.id
    return _api(url, go)


def _state(url: str, run_id):
    async def go(client):
        return (await client.read_flow_run(run_id)).state
    return _api(url, go)


def _pause(url: str) -> None:
    async def go(client):
        for deployment in await client.read_deployments():
            await client.pause_deployment(deployment.id)
    _api(url, go)


def _children_overhead(url: str, parent_created: datetime) -> tuple[list[float], list[float]]:
    """(wall, work) per office-check child run created after `parent_created`."""
    from prefect.client.schemas.filters import (FlowFilter, FlowFilterName, FlowRunFilter, FlowRunFilterId,
                                                FlowRunFilterStartTime, TaskRunFilter, TaskRunFilterName)

    async def go(client):
        runs = await client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=["office-check"])),
            flow_run_filter=FlowRunFilter(start_time=FlowRunFilterStartTime(after_=parent_created)), limit=200)
        runs = [r for r in runs if r.state and r.state.is_completed() and r.start_time and r.end_time]
        work: dict = {}
        for run in runs:
            tasks = await client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id])),
                task_run_filter=TaskRunFilter(name=TaskRunFilterName(like_="office-reports")), limit=200)
            work[run.id] = sum(t.total_run_time.total_seconds() for t in tasks)
        return ([(r.end_time - r.start_time).total_seconds() for r in runs],
                [work.get(r.id, 0.0) for r in runs])
    return _api(url, go)


def main() -> None:  # noqa: C901 - a recipe, step by step
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--offices", type=int, default=200)
    parser.add_argument("--orders", type=int, default=25, help="orders per office in the month")
    parser.add_argument("--batch", type=int, default=20, help="offices per child run (BIANMIN_FANOUT_BATCH)")
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()

    from sqlalchemy import delete, select, text
    from sqlalchemy.engine import make_url

    from commands.generator import generate_month
    from flows.runtime import Runtime
    from flows.settings import Settings
    from flows.tally import run_monthly_tally
    from models.ledger.db import make_engine, transaction, upgrade
    from models.ledger.tables import ReportRun
    from tests.prefect_servers import PrefectServer, PrefectWorker, clean_env

    home = Path(tempfile.mkdtemp(prefix="bench-workers-"))
    home.chmod(0o700)
    admin_url = make_url(args.pg)
    name = f"bianmin_bench_workers_{uuid.uuid4().hex[:8]}"
    admin = make_engine(admin_url.render_as_string(hide_password=False), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    ledger = admin_url.set(database=name).render_as_string(hide_password=False)
    env = {"BIANMIN_DATABASE_URL": ledger, "BIANMIN_DATA_DIR": str(home / "var"), "BIANMIN_LOCALE": "en",
           "BIANMIN_CONFIG_FILE": str(home / "absent.toml"), "BIANMIN_FANOUT_BATCH": str(args.batch),
           "BIANMIN_SIGNOFF": "false"}
    server, workers = None, []
    try:
        upgrade(ledger)
        rt = Runtime(Settings(_env_file=None, database_url=ledger, data_dir=home / "var", locale="en", signoff=False))
        t0 = time.perf_counter()
        generate_month(rt.sessions, calendar=rt.calendar, month=MONTH, offices=args.offices,
                       orders_per_office=args.orders)
        print(f"generated {args.offices} offices x ~{args.orders} orders in {time.perf_counter() - t0:.0f} s",
              flush=True)

        def reset() -> None:
            with transaction(rt.sessions) as session:
                session.execute(delete(ReportRun).where(ReportRun.month == MONTH))
            shutil.rmtree(rt.settings.effective_reports_dir, ignore_errors=True)
            shutil.rmtree(rt.settings.effective_outbox_dir, ignore_errors=True)

        def delivered() -> int:
            with transaction(rt.sessions) as session:
                return len(session.scalars(select(ReportRun.id).where(ReportRun.month == MONTH,
                                                                      ReportRun.sent_at.is_not(None))).all())

        reset()
        t0 = time.perf_counter()
        inline = run_monthly_tally(rt, MONTH, as_of=AS_OF)
        baseline = time.perf_counter() - t0
        reports = len(inline.reports)
        assert delivered() == reports, (delivered(), reports)
        print(f"one process, no Prefect: {reports} reports in {baseline:.1f} s", flush=True)

        server = PrefectServer(home / "prefect").start()
        deployed = subprocess.run([BIANMIN, "deploy"], env=clean_env(PREFECT_API_URL=server.api_url,
                                                                      PREFECT_HOME=str(home / "deployer"), **env),
                                  capture_output=True, text=True, cwd=home, timeout=300)
        if deployed.returncode != 0:
            raise SystemExit(deployed.stdout + deployed.stderr)
        _pause(server.api_url)

        times: dict[int, list[float]] = {1: [], 2: []}
        overhead: list[tuple[float, float]] = []
        for rep in range(args.reps):
            for count in (1, 2):
                reset()
                workers = [PrefectWorker(server, "bianmin", f"w{rep}{count}{i}", {
                    **env, "PREFECT_WORKER_QUERY_SECONDS": "1", "PREFECT_WORKER_PREFETCH_SECONDS": "1"},
                    home, ROOT, limit=2).start() for i in range(count)]
                created = datetime.now(TZ)
                t0 = time.perf_counter()
                # a moment of its own per run: the children's idempotency keys would otherwise find the last run's
                run_id = _start(server.api_url, AS_OF + timedelta(minutes=rep * 2 + count))
                while not (state := _state(server.api_url, run_id)).is_final():
                    time.sleep(0.5)
                seconds = time.perf_counter() - t0
                for worker in workers:
                    worker.stop()
                workers = []
                if not state.is_completed() or delivered() != reports:
                    raise SystemExit(f"{count} worker(s): {state.name} {state.message}; {delivered()} delivered")
                times[count].append(seconds)
                print(f"rep {rep + 1}, {count} worker(s): {seconds:.1f} s", flush=True)
                if count == 2:
                    overhead += list(zip(*_children_overhead(server.api_url, created)))
        one, two = statistics.median(times[1]), statistics.median(times[2])
        wall = statistics.median(w for w, _ in overhead)
        work = statistics.median(k for _, k in overhead)
        print(f"\nmonthly tally of {args.offices} offices ({reports} reports, {args.batch} offices per child run):")
        print(f"  1 worker  median {one:.1f} s  {[round(t, 1) for t in times[1]]}")
        print(f"  2 workers median {two:.1f} s  {[round(t, 1) for t in times[2]]}")
        print(f"  2 workers / 1 worker = {two / one:.2f}x")
        print(f"  one process without Prefect {baseline:.1f} s: 1 worker {one / baseline:.2f}x, "
              f"2 workers {two / baseline:.2f}x of it")
        print(f"  child run: median wall {wall:.2f} s, its {args.batch} offices' work {work:.2f} s "
              f"({work / args.batch * 1000:.0f} ms an office); overhead {wall - work:.2f} s a run = "
              f"{(wall - work) / work:.2f}x its work, {(wall - work) / (work / args.batch):.1f}x one office's work")
    finally:
        for worker in workers:
            worker.kill()
        if server is not None:
            server.stop()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
