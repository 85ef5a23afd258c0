"""Health (/health): each flow's last run from bianmin's own records (its heartbeat in `flow_runs`: started,
result, window, duration, and a link to that run in the Prefect UI; before any heartbeat, the flow watermarks),
its open `flow-failed` alerts, deliveries pending and failing (the outbox), and, when Prefect answers, each
flow's next scheduled run with a link to it. The page never fails because Prefect is down: it says so.

Filtered like the alerts: the deliveries a user sees are those of alerts they may see; watermarks and runs of
their offices (and the group-wide ones)."""
from __future__ import annotations

import logging
import os
from datetime import datetime

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import func, select

from console import access
from console.context import Console
from models import findings
from models.ledger.tables import Alert, FlowWatermark
from models.watch import heartbeats
from notifications import outbox

log = logging.getLogger("bianmin.console")
FLOWS = ("chase-replies", "chase-callbacks", "cash-check", "monthly-tally", "dispatch")
PREFECT_TIMEOUT = 1.5  # seconds: a slow Prefect must not hold the page


def prefect_urls() -> tuple[str | None, str | None]:
    """(API URL, UI URL) from Prefect's own variables; the UI defaults to the API's server without /api."""
    api = (os.environ.get("PREFECT_API_URL") or "").rstrip("/") or None
    ui = (os.environ.get("PREFECT_UI_URL") or "").rstrip("/") or None
    if ui is None and api is not None:
        ui = api.removesuffix("/api")
    return api, ui


def next_runs(api: str) -> dict[str, tuple[datetime, str]]:
    """flow name -> (expected start, flow run id) of its next scheduled run, through Prefect's REST API."""
    with httpx.Client(base_url=api, timeout=PREFECT_TIMEOUT) as client:
        runs = client.post("/flow_runs/filter", json={
            "flow_runs": {"state": {"type": {"any_": ["SCHEDULED"]}}},
            "sort": "EXPECTED_START_TIME_ASC", "limit": 200}).raise_for_status().json()
        ids = sorted({r["flow_id"] for r in runs})
        flows = client.post("/flows/filter", json={"flows": {"id": {"any_": ids}}}).raise_for_status().json() \
            if ids else []
    names = {f["id"]: f["name"] for f in flows}
    out: dict[str, tuple[datetime, str]] = {}
    for r in runs:  # sorted by expected start: the first of each flow is its next
        name = names.get(r["flow_id"])
        if name and name not in out and r.get("expected_start_time"):
            out[name] = (datetime.fromisoformat(r["expected_start_time"].replace("Z", "+00:00")), r["id"])
    return out


def register(app: FastAPI, c: Console) -> None:
    rt = c.rt

    @app.get("/health", response_class=HTMLResponse)
    def health_page(request: Request) -> Response:
        user = c.user_for(request, "health")
        at = c.now()
        visible = access.visible_alerts(user)
        with rt.sessions() as s:
            marks = select(FlowWatermark).order_by(FlowWatermark.flow, FlowWatermark.scope)
            if not user.every_office:
                marks = marks.where(FlowWatermark.scope.in_(["*", *sorted(user.offices)]))
            watermarks = s.scalars(marks).all()
            runs = heartbeats.last_runs(s, scopes=None if user.every_office else ("*", *sorted(user.offices)))
            failed = s.execute(select(Alert.payload, Alert.last_seen).where(
                Alert.kind == findings.FLOW_FAILED.name, Alert.resolved_at.is_(None), visible)).all()
            last_sent = s.scalar(select(func.max(Alert.last_notified_at)).where(visible))
            status = outbox.status_expr(at)
            deliveries = s.execute(
                select(Alert.tag, func.count(), func.count(Alert.last_error), func.min(Alert.next_attempt_at))
                .where(Alert.resolved_at.is_(None), status == "pending", visible)
                .group_by(Alert.tag).order_by(Alert.tag)).all()
        failures: dict[str, list] = {}
        for payload, seen in failed:
            flow = ((payload or {}).get("facts") or {}).get("flow") or "?"
            failures.setdefault(flow, []).append(seen)
        api, ui = prefect_urls()
        upcoming, prefect_state = {}, "none" if api is None else "ok"
        if api is not None:
            try:
                upcoming = next_runs(api)
            except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
                log.warning("console: Prefect did not answer (%s)", type(exc).__name__)  # never the URL
                prefect_state = "down"
        flows = []
        order = {n: i for i, n in enumerate(FLOWS)}
        for name in sorted(set(FLOWS) | {m.flow for m in watermarks} | set(runs), key=lambda n: (order.get(n, 99), n)):
            marks_of = [m for m in watermarks if m.flow == name]
            # dispatch keeps no watermark: its last run that sent anything is the newest send of these alerts
            last = last_sent if name == "dispatch" else max((m.updated_at for m in marks_of), default=None)
            nxt = upcoming.get(name)
            run = runs.get(name)
            flows.append({
                "name": name, "last_run": c.local(run.started_at if run else last), "run": _run_view(c, run, ui),
                "failed": len(failures.get(name, [])),
                "scopes": [{"scope": m.scope, "window": c.local(m.window_end)} for m in marks_of],
                "next_run": c.local(nxt[0]) if nxt else "",
                "next_link": f"{ui}/runs/flow-run/{nxt[1]}" if nxt and ui else None})
        rows = [{"tag": tag, "pending": pending, "failing": failing, "next_attempt": c.local(nxt)}
                for tag, pending, failing, nxt in deliveries]
        return c.page(request, "health.html.j2", flows=flows, deliveries=rows, prefect_state=prefect_state,
                      prefect_ui=ui, as_of=c.local(at))


def _run_view(c: Console, run: heartbeats.LastRun | None, ui: str | None) -> dict | None:
    """A heartbeat as the page shows it: result, window, duration, and the run in the Prefect UI when known."""
    if run is None:
        return None
    seconds = run.seconds
    return {"result": run.result, "result_text": c.text(f"console.health.run.{run.result}"),
            "window": c.local(run.window_end),
            "seconds": None if seconds is None else f"{seconds:.0f}" if seconds >= 10 else f"{seconds:.1f}",
            "link": f"{ui}/runs/flow-run/{run.prefect_run_id}" if ui and run.prefect_run_id else None}
