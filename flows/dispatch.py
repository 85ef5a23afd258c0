"""dispatch: deliver the outbox's due alerts as one digest per recipient tag, every minute.

The logic lives in notifications.dispatcher (it takes the session factory, the apprise config, the outbox
folder and the locale); this module wires it from the runtime's settings and wraps it in a Prefect flow.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from console.links import alert_linker
from flows.hooks import run_hooks
from flows.runtime import Runtime, current_runtime, ledger_refusal
from notifications.dispatcher import DispatchResult, dispatch

__all__ = ["DispatchResult", "run_dispatch", "dispatch_flow"]


def run_dispatch(rt: Runtime, as_of: datetime) -> DispatchResult:
    """Send every alert due at `as_of`; what fails stays pending with backoff, and a channel failing longer than
    `channel_alert_minutes` raises a `channel-failing` alert to ops. Each item carries its console link
    (BIANMIN_PUBLIC_URL/a/<token>), signed here, where the key is. Safe to run concurrently."""
    s = rt.settings
    return dispatch(rt.sessions, apprise_config=s.apprise_config, outbox_dir=s.effective_outbox_dir,
                    locale=s.locale, as_of=as_of, timezone=s.timezone, send_resolved=s.send_resolved,
                    backoff_base_seconds=s.backoff_base_seconds, backoff_max_seconds=s.backoff_max_seconds,
                    lease=timedelta(minutes=10), channel_alert_after=timedelta(minutes=s.channel_alert_minutes),
                    ops_routes=s.alert_routes, repeat_every=timedelta(hours=s.repeat_hours),
                    link=alert_linker(s))


# no retries here: a failed send is already retried by the outbox's backoff, on the next minute's run
@task(name="dispatch-send", cache_policy=NO_CACHE)
def _dispatch_task(as_of: datetime) -> DispatchResult:
    return run_dispatch(current_runtime(), as_of)


@flow(name="dispatch", **run_hooks())
def dispatch_flow(as_of: datetime | None = None) -> DispatchResult:
    """Deliver pending alerts as digests, one per recipient tag, with backoff on failure."""
    rt = current_runtime()
    if (refused := ledger_refusal(rt)) is not None:
        return refused
    return _dispatch_task(as_of or datetime.now(rt.calendar.tz))
