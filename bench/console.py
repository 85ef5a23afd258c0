"""The console's alerts page at group scale (issue 20): `python -m bench.console`.

1. In one process: the alerts page (an administrator of every office, the open view) over 5,000 open alerts in
   200 offices; the page's server time (the request through the ASGI app, no network) against the time of its
   own SQL, measured in the same run: every statement the request ran is captured and run again, alone, on the
   same database, fetching all its rows. Server time: from the request entering the ASGI app to the last byte of
   its answer leaving it (session, login check, queries, masking, template). Printed as a ratio (issue 20: server time <= 2x its SQL).
2. 50 concurrent clients (httpx, async), each logged in, against a real `bianmin web` process on the same
   database: p50 / p95 latency of the alerts page and of one alert's page.

No thresholds here: figures to read and to put in docs/console.md, with the machine and the date.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
from sqlalchemy import event, insert

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "bench passphrase 20"
NOW = datetime(2026, 11, 26, 10, 0, tzinfo=timezone(timedelta(hours=8)))
KINDS = (("callback-overdue", "cs-supervisor", 2), ("reply-overdue", "cs-supervisor", 3),
         ("order-overdue", "engineering-supervisor", 2), ("cash-unhanded", "finance-manager", 3))


def build(url: str, *, alerts: int, offices: int) -> None:
    """A migrated ledger with `offices` offices and `alerts` open alerts spread over them, and one admin user."""
    from console import accounts
    from models.ledger.db import make_engine, transaction, upgrade
    from models.ledger.tables import Alert, Office

    upgrade(url)
    engine = make_engine(url)
    codes = [f"O{n:03d}" for n in range(1, offices + 1)]
    start = NOW.astimezone(timezone.utc) - timedelta(days=3)
    rows = []
    for n in range(alerts):
        kind, tag, severity = KINDS[n % len(KINDS)]
        office = codes[n % offices]
        number = f"WO-{office}-{n:06d}"
        seen = start + timedelta(seconds=37 * n)
        facts = {"order_number": number, "request_number": f"R-{office}-{n:06d}", "resident": "刘女士",
                 "phone": "138****5678", "address": f"{n % 30 + 1}栋{n % 6 + 1}单元{n % 900 + 101}",
                 "community": f"{office}-C1", "holder": "王客服", "due_at": (seen - timedelta(hours=2)).isoformat()}
        rows.append({"dedupe_key": f"{kind}:{number}:1@{tag}", "kind": kind, "office": office,
                     "order_number": number, "severity": severity, "level": 1, "tag": tag,
                     "payload": {"key": f"{kind}:{number}:1", "subject": number, "facts": facts,
                                 "due_at": facts["due_at"], "overdue_minutes": 120},
                     "first_seen": seen, "last_seen": seen, "next_attempt_at": seen, "attempts": 0})
    with transaction(engine) as s:
        s.execute(insert(Office), [{"code": c, "name": f"第{c}服务处"} for c in codes])
        s.execute(insert(Alert), rows)
        accounts.add_user(s, login="bench", name="压测管理员", role="admin", offices=[], password=PASSWORD,
                          at=NOW)
    engine.dispose()


def settings_for(url: str, data: Path, port: int):
    from pydantic import SecretStr

    from flows.settings import Settings

    return Settings(_env_file=None, database_url=url, data_dir=data, secret_key=SecretStr("b" * 48), locale="zh_CN",
                    public_url=f"http://127.0.0.1:{port}")


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def page_vs_sql(url: str, data: Path, *, reps: int) -> dict:
    """Server time of GET /alerts against the time of the SQL it ran (captured, run again alone)."""
    from fastapi.testclient import TestClient

    from console.app import create_app
    from flows.runtime import Runtime

    rt = Runtime(settings_for(url, data, 8209))
    captured: list[tuple[str, object]] = []
    capturing = False

    @event.listens_for(rt.engine, "before_cursor_execute")
    def _capture(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
        # the page's queries; not the driver's own BEGIN / SET LOCAL, which belong to the connection
        if capturing and statement.lstrip().upper().startswith(("SELECT", "WITH")):
            captured.append((statement, parameters))

    server, sql, rows_shown = [], [], 0
    app = create_app(rt, clock=lambda: NOW)
    spent: list[float] = []

    async def timed(scope, receive, send):  # noqa: ANN001
        # the server's time: from the request entering the app to the last byte of its answer leaving it
        started = time.perf_counter()
        await app(scope, receive, send)
        spent.append(time.perf_counter() - started)

    with TestClient(timed, base_url="http://127.0.0.1:8209") as client:
        form = client.get("/login")
        client.post("/login", data={"login": "bench", "password": PASSWORD, "csrf": csrf_of(form.text),
                                    "next": "/alerts"}, follow_redirects=False)
        client.get("/alerts")  # warm: templates compiled, statements cached
        for _ in range(reps):
            captured.clear()
            capturing = True
            response = client.get("/alerts")
            server.append(spent[-1])
            capturing = False
            assert response.status_code == 200, response.status_code
            rows_shown = response.text.count('class="card sev')
            raw = rt.engine.raw_connection()
            try:
                cursor = raw.cursor()
                started = time.perf_counter()
                for statement, parameters in captured:
                    cursor.execute(statement, parameters)
                    if cursor.description is not None:
                        cursor.fetchall()
                sql.append(time.perf_counter() - started)
                cursor.close()
            finally:
                raw.close()
    rt.close()
    best_server, best_sql = statistics.median(server), statistics.median(sql)
    # each rep's page and its SQL are measured back to back: the median of their ratios is the least noisy figure
    # on a shared machine
    ratio = statistics.median(a / b for a, b in zip(server, sql))
    return {"server_s": round(best_server, 4), "sql_s": round(best_sql, 4), "ratio": round(ratio, 2),
            "statements": len(captured), "rows_shown": rows_shown, "reps": reps}


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def clients(base: str, *, count: int, requests: int, paths: list[str]) -> dict:
    """`count` clients at once, each with its own logged-in session, each asking `requests` pages in turn; the
    logins (argon2, deliberately slow) all finish before the first timed request."""
    async def log_in(c: httpx.AsyncClient) -> None:
        form = await c.get("/login")
        login = await c.post("/login", data={"login": "bench", "password": PASSWORD, "csrf": csrf_of(form.text),
                                             "next": "/alerts"})
        assert login.status_code in (200, 303), login.status_code

    async def one(c: httpx.AsyncClient, n: int) -> list[float]:
        times = []
        for i in range(requests):
            started = time.perf_counter()
            response = await c.get(paths[(n + i) % len(paths)])
            times.append(time.perf_counter() - started)
            assert response.status_code == 200, response.status_code
        return times

    sessions = [httpx.AsyncClient(base_url=base, timeout=120) for _ in range(count)]
    try:
        for chunk in range(0, count, 10):  # ten logins at a time: the server's login pause is per attempt
            await asyncio.gather(*(log_in(c) for c in sessions[chunk:chunk + 10]))
        # fresh connections with the sessions' cookies: the server closes a connection idle past its keep-alive
        cookies = [c.cookies for c in sessions]
        await asyncio.gather(*(c.aclose() for c in sessions))
        sessions = [httpx.AsyncClient(base_url=base, timeout=120, cookies=jar) for jar in cookies]
        started = time.perf_counter()
        times = sorted(t for ts in await asyncio.gather(*(one(c, n) for n, c in enumerate(sessions))) for t in ts)
        wall = time.perf_counter() - started
    finally:
        await asyncio.gather(*(c.aclose() for c in sessions))
    q = statistics.quantiles(times, n=100, method="inclusive")
    return {"clients": count, "requests": len(times), "p50_s": round(q[49], 3), "p95_s": round(q[94], 3),
            "max_s": round(times[-1], 3), "wall_s": round(wall, 1), "per_s": round(len(times) / wall, 1)}


def concurrent(url: str, data: Path, *, count: int, requests: int, alerts: int) -> dict:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BIANMIN_", "PREFECT_"))}
    env.update({"BIANMIN_DATABASE_URL": url, "BIANMIN_DATA_DIR": str(data), "BIANMIN_SECRET_KEY": "b" * 48,
                "BIANMIN_LOCALE": "zh_CN", "BIANMIN_PUBLIC_URL": f"http://127.0.0.1:{port}"})
    bianmin = Path(sys.executable).with_name("bianmin")
    server = subprocess.Popen([str(bianmin), "web", "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            raise SystemExit("bianmin web did not answer: " + server.stderr.read(2000).decode(errors="replace"))
        ids = [1, alerts // 4, alerts // 2, alerts * 3 // 4]
        return {"alerts_page": asyncio.run(clients(base, count=count, requests=requests, paths=["/alerts"])),
                "alert_page": asyncio.run(clients(base, count=count, requests=requests * 5,
                                                  paths=[f"/alerts/{i}" for i in ids]))}
    finally:
        server.terminate()
        server.wait(timeout=20)


@contextlib.contextmanager
def database(args, folder: Path):
    """A SQLite file in `folder`, or a PostgreSQL database made for this run and dropped after it."""
    if args.db == "sqlite":
        yield f"sqlite:///{folder / 'bench.db'}"
        return
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from models.ledger.db import make_engine

    server = make_url(args.pg_url)
    name = f"bianmin_bench_console_{uuid.uuid4().hex[:8]}"
    admin = make_engine(server.render_as_string(hide_password=False), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.console", description=__doc__.split("\n\n")[0])
    parser.add_argument("--alerts", type=int, default=5000)
    parser.add_argument("--offices", type=int, default=200)
    parser.add_argument("--reps", type=int, default=21)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=2, help="alerts pages per client (one alert's page: 5x)")
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--pg-url", default=os.environ.get("BIANMIN_BENCH_PG_URL",
                                                           "postgresql://postgres@127.0.0.1:5432/postgres"),
                        help="a PostgreSQL server; the bench creates a database of its own there and drops it")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bianmin-bench-console-") as tmp, database(args, Path(tmp)) as url:
        data = Path(tmp)
        build(url, alerts=args.alerts, offices=args.offices)
        result = {"date": datetime.now().strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, "
                  f"{os.cpu_count()} cores", "db": url.split(":", 1)[0], "alerts": args.alerts,
                  "offices": args.offices, "page_vs_sql": page_vs_sql(url, data, reps=args.reps)}
        p = result["page_vs_sql"]
        print(f"alerts page, {args.alerts} open alerts over {args.offices} offices ({result['db']}): server "
              f"{p['server_s'] * 1000:.0f} ms, its SQL {p['sql_s'] * 1000:.0f} ms ({p['statements']} statements), "
              f"ratio {p['ratio']:.2f} (medians of {p['reps']}; {p['rows_shown']} alerts shown)", flush=True)
        result["concurrent"] = concurrent(url, data, count=args.clients, requests=args.requests,
                                          alerts=args.alerts)
        for name, c in result["concurrent"].items():
            print(f"{name}: {c['clients']} clients, {c['requests']} requests against bianmin web: p50 "
                  f"{c['p50_s'] * 1000:.0f} ms, p95 {c['p95_s'] * 1000:.0f} ms, max {c['max_s'] * 1000:.0f} ms, "
                  f"{c['per_s']}/s", flush=True)
        print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
