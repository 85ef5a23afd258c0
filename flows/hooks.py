"""What every flow does when it fails: tell the `ops` tag, through the outbox, in a transaction of its own.

The failed run's own transaction has rolled back, so the alert is recorded separately; if even that
cannot be written (the database is what failed), the message goes straight out through delivery.
"""
from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any

from flows.runtime import current_runtime
from flows.settings import mask_url_password
from models.db import transaction

log = logging.getLogger("bianmin.flows")

FLOW_FAILED = "flow-failed"


def failure_key(flow_name: str) -> str:
    """One open alert per failing flow: a flow failing every minute is one problem, repeated on the repeat interval."""
    return f"{FLOW_FAILED}:{flow_name}"


def _error_text(state: Any) -> str:
    # the message may quote a database URL; passwords never leave the process
    text = mask_url_password(str(getattr(state, "message", "") or "failed"))
    return text[:500]


def record_flow_failure(flow_name: str, run_name: str, error: str, *, at: datetime | None = None) -> bool:
    """Record a "flow-failed" finding for tag ops; returns whether it reached the outbox (else it was sent directly)."""
    from notifications.outbox import Finding, sync_findings

    rt = current_runtime()
    at = at or datetime.now(timezone.utc)
    finding = Finding(key=failure_key(flow_name), kind=FLOW_FAILED, office=None, level=1, severity=3,
                      facts={"flow": flow_name, "flow_run": run_name, "error": error, "at": at.isoformat()},
                      occurred_at=at)
    try:
        with transaction(rt.sessions) as session:
            sync_findings(session, [finding], kinds=set(), as_of=at, routes=rt.settings.alert_routes)
        return True
    except Exception as exc:  # the database may be the very thing that failed
        log.error("could not record the failure of %s in the outbox (%s); sending it directly",
                  flow_name, mask_url_password(str(exc))[:200])
    from notifications.delivery import send_message

    s = rt.settings
    title = ("bianmin flow failed: " if s.locale == "en" else "bianmin 流程失败:") + flow_name
    send_message(tag="ops", title=title, body=f"{run_name}\n{error}", apprise_config=s.apprise_config,
                 outbox_dir=s.effective_outbox_dir)
    return False


def on_flow_failure(flow: Any, flow_run: Any, state: Any) -> None:
    """Prefect on_failure hook: every bianmin flow lists it, so a failed run pages ops."""
    error = _error_text(state)
    log.error("flow %s run %s failed: %s", flow.name, flow_run.name, error)
    record_flow_failure(flow.name, str(flow_run.name), error)
