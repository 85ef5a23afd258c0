"""What every flow does when it fails: tell the `ops` tag, through the outbox, in a transaction of its own.

The failed run's own transaction has rolled back, so the alert is recorded separately; if even that
cannot be written (the database is what failed), the message goes straight out through delivery.
"""
from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import case, update

from flows.runtime import current_runtime
from models import findings as catalogue
from models import texts
from models.ledger.db import transaction
from models.ledger.tables import Alert
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


def on_flow_failure(flow: Any, flow_run: Any, state: Any) -> None:
    """Prefect on_failure hook: every bianmin flow lists it, so a failed run pages ops."""
    error = _error_text(state)
    log.error("flow %s run %s failed: %s", flow.name, flow_run.name, error)
    record_flow_failure(flow.name, str(flow_run.name), error)


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
