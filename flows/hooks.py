"""What every flow does as it runs: record its heartbeat, and when it fails tell the `ops` tag.

Every bianmin flow lists `run_hooks()` (Prefect state hooks), so no flow body knows about either:
- a heartbeat row in `flow_runs` when the run starts and when it ends (models/watch/heartbeats.py), which
  `bianmin watch` and the console's Health page read; a heartbeat that cannot be written is a warning in the
  log, never a failed run (a database that is down is reported by the failure hook's fallback below);
- a failed or crashed run records a `flow-failed` alert for `ops` in a transaction of its own (the run's own
  transaction has rolled back); if even that cannot be written (the database is what failed), the message
  goes straight out through delivery.
"""
from __future__ import annotations

import logging
import os
import socket
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import case, update

from flows.runtime import current_runtime
from models import findings as catalogue
from models import texts
from models.ledger.db import transaction
from models.ledger.tables import Alert
from models.watch import heartbeats
from notifications.masking import mask_url_password, scrub

log = logging.getLogger("bianmin.flows")

FLOW_FAILED = catalogue.FLOW_FAILED.name


def failure_key(flow_name: str) -> str:
    """One open alert per failing flow: a flow failing every minute is one problem, repeated on the repeat interval."""
    return catalogue.FLOW_FAILED.key(flow_name)


def _error_text(state: Any) -> str:
    # the message may quote a database URL or an apprise URL; secrets and residents' numbers never leave
    return scrub(mask_url_password(str(getattr(state, "message", "") or "failed")))[:500]


def _calendar_if_any(rt: Any):
    try:  # a broken calendar override may be the very failure being reported
        return rt.calendar
    except Exception:
        return None


_TRANSIENT = ("locked", "connect", "timeout", "timed out", "closed", "terminat", "reset", "broken pipe",
              "could not serialize", "deadlock")


def retry_on_io_error(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect retry_condition_fn: retry what a second attempt can fix (a dropped connection, a locked
    database, a network error), not a bug, bad data or a missing table, which fail the same way again."""
    from sqlalchemy.exc import DBAPIError, DisconnectionError

    error = state.data if isinstance(getattr(state, "data", None), BaseException) else None
    if error is None:
        try:
            error = state.result(raise_on_failure=False)
        except Exception as exc:
            error = exc
    if isinstance(error, DisconnectionError) or (isinstance(error, DBAPIError) and error.connection_invalidated):
        return True
    if isinstance(error, DBAPIError):
        return any(marker in str(error.orig).lower() for marker in _TRANSIENT)
    return isinstance(error, (ConnectionError, TimeoutError))


def record_flow_failure(flow_name: str, run_name: str, error: str, *, at: datetime | None = None) -> bool:
    """Record a flow-failed finding for tag ops; returns whether it reached the outbox (else it was sent directly)."""
    from notifications.outbox import Finding, sync_findings

    rt = current_runtime()
    at = at or datetime.now(timezone.utc)
    finding = Finding(key=failure_key(flow_name), kind=FLOW_FAILED, office=None, level=1,
                      severity=catalogue.FLOW_FAILED.severity,
                      facts={"flow": flow_name, "flow_run": run_name, "error": error, "at": at.isoformat()},
                      occurred_at=at)
    try:
        with transaction(rt.sessions) as session:
            # kinds left empty: recording one flow's failure must not resolve another flow's
            sync_findings(session, [finding], kinds=set(), as_of=at, routes=rt.settings.alert_routes,
                          calendar=_calendar_if_any(rt))
        return True
    except Exception as exc:  # the database may be the very thing that failed
        log.error("could not record the failure of %s in the outbox (%s); sending it directly",
                  flow_name, mask_url_password(str(exc))[:200])
    from notifications.delivery import send_message

    s = rt.settings
    title = texts.render("flow.failed_title", s.locale, flow=flow_name)
    send_message(tag="ops", title=title, body=f"{run_name}\n{error}", apprise_config=s.apprise_config,
                 outbox_dir=s.effective_outbox_dir)
    return False


def _page_ops(flow: Any, flow_run: Any, state: Any, how: str) -> None:
    error = _error_text(state)
    log.error("flow %s run %s %s: %s", flow.name, flow_run.name, how, error)
    record_flow_failure(flow.name, str(flow_run.name), error)


def on_flow_failure(flow: Any, flow_run: Any, state: Any) -> None:
    """Prefect on_failure hook: every bianmin flow lists it, so a failed run pages ops."""
    _page_ops(flow, flow_run, state, "failed")


def on_flow_crashed(flow: Any, flow_run: Any, state: Any) -> None:
    """Prefect on_crashed hook: a run that died of something outside its code (a signal, the process ending)
    is a failure ops must hear of too."""
    _page_ops(flow, flow_run, state, "crashed")


def resolve_flow_failure(flow_name: str, *, at: datetime | None = None) -> int:
    """A flow that succeeds again resolves its own open flow-failed alert (and no other flow's)."""
    at = at or datetime.now(timezone.utc)
    with transaction(current_runtime().sessions) as session:
        result = session.execute(
            update(Alert)
            .where(Alert.kind == FLOW_FAILED, Alert.resolved_at.is_(None),
                   Alert.dedupe_key.startswith(failure_key(flow_name) + "@", autoescape=True))
            # as the outbox resolves: nobody told means nothing to take back
            .values(resolved_at=at, resolved_notified_at=case((Alert.last_notified_at.is_(None), at),
                                                              else_=Alert.resolved_notified_at))
            .execution_options(synchronize_session=False))
        return result.rowcount or 0


def on_flow_completion(flow: Any, flow_run: Any, state: Any) -> None:
    """Prefect on_completion hook: a run that succeeds after a failure closes the ops alert."""
    try:
        if resolve_flow_failure(flow.name):
            log.info("flow %s is healthy again: its flow-failed alert is resolved", flow.name)
    except Exception as exc:  # never turn a good run into a failed one over its bookkeeping
        log.warning("could not resolve the flow-failed alert of %s: %s", flow.name, mask_url_password(str(exc))[:200])


# -- heartbeats -----------------------------------------------------------------------------------------------

def worker_name(flow_run: Any = None) -> str:
    """Which process ran it: host and pid, and the Prefect work pool when a worker started it (Prefect exposes
    no worker name to the run itself)."""
    where = f"{socket.gethostname()}:{os.getpid()}"
    pool = getattr(flow_run, "work_pool_name", None)
    return f"{where} ({pool})"[:120] if pool else where[:120]


def _parameters(flow_run: Any) -> tuple[str, datetime | None]:
    """(scope, window end) from the run's parameters: its office (else the group, "*") and its as_of, if given."""
    params = getattr(flow_run, "parameters", None) or {}
    office = params.get("office")
    as_of = params.get("as_of")
    if isinstance(as_of, str):  # parameters of a run created through the API arrive as JSON
        try:
            as_of = datetime.fromisoformat(as_of)
        except ValueError:
            as_of = None
    window = as_of if isinstance(as_of, datetime) and as_of.tzinfo is not None else None
    return (str(office)[:60] if office else "*"), window


def _run_id(flow_run: Any) -> str | None:
    run_id = getattr(flow_run, "id", None)
    return str(run_id) if run_id is not None else None


def _quietly(what: str, flow_name: str, write) -> None:
    """Write a heartbeat in a transaction of its own; a heartbeat must never fail (or retry) the run itself."""
    try:
        with transaction(current_runtime().sessions) as session:
            write(session)
    except Exception as exc:  # noqa: BLE001 - the ledger down is reported by the failure hook, not here
        log.warning("could not record the %s of %s in flow_runs: %s", what, flow_name,
                    scrub(mask_url_password(str(exc)))[:200])


def on_flow_running(flow: Any, flow_run: Any, state: Any) -> None:
    """Prefect on_running hook: the heartbeat row of a run that has started (result `running`)."""
    scope, window = _parameters(flow_run)
    now = datetime.now(timezone.utc)
    _quietly("start", flow.name, lambda s: heartbeats.start_run(
        s, flow=flow.name, scope=scope, window_end=window or now, started_at=now, prefect_run_id=_run_id(flow_run),
        worker=worker_name(flow_run)))


def on_flow_ended(flow: Any, flow_run: Any, state: Any) -> None:
    """Prefect on_completion / on_failure / on_crashed hook: the heartbeat row says how the run ended."""
    if state.is_completed():
        result, message = "completed", None
    else:
        result, message = ("crashed" if state.is_crashed() else "failed"), _error_text(state)
    scope, window = _parameters(flow_run)
    now = datetime.now(timezone.utc)
    _quietly("end", flow.name, lambda s: heartbeats.finish_run(
        s, flow=flow.name, scope=scope, prefect_run_id=_run_id(flow_run), result=result, finished_at=now,
        window_end=window, worker=worker_name(flow_run), message=message))


def run_hooks(*, on_failure: Any = on_flow_failure) -> dict[str, list]:
    """The state hooks every bianmin flow lists, `@flow(name=..., **run_hooks())`: heartbeats first (so a failing
    alert hook cannot lose them), then the ops alerts; a flow with its own failure alerting passes `on_failure`."""
    return {"on_running": [on_flow_running], "on_completion": [on_flow_ended, on_flow_completion],
            "on_failure": [on_flow_ended, on_failure], "on_crashed": [on_flow_ended, on_flow_crashed]}
