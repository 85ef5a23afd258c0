"""One run recorded: its findings synced into the outbox and the flow's watermark moved, in the caller's transaction.

The outbox holds the latest knowledge. A run as of a moment earlier than the flow's watermark is a replay: it
writes nothing, so replaying last week can neither reopen alerts since resolved nor resolve today's.
"""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta, timezone

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from flows.runtime import Runtime
from models.ledger.tables import FlowWatermark
from models.findings import Finding
from notifications.outbox import SyncResult, sync_findings


def record_watermark(session: Session, *, flow_name: str, as_of: datetime, scope: str = "*") -> None:
    """Remember the latest moment this flow evaluated; replaying an earlier moment does not move it back."""
    now = datetime.now(timezone.utc)
    mark = session.get(FlowWatermark, (flow_name, scope))
    if mark is None:
        try:
            with session.begin_nested():
                session.add(FlowWatermark(flow=flow_name, scope=scope, window_end=as_of, updated_at=now))
            return
        except IntegrityError:  # a concurrent run wrote it first
            mark = session.scalars(select(FlowWatermark).where(
                FlowWatermark.flow == flow_name, FlowWatermark.scope == scope)).one()
    if as_of > mark.window_end:
        mark.window_end = as_of
    mark.updated_at = now


def record_run(rt: Runtime, session: Session, *, flow_name: str, findings: Iterable[Finding],
               kinds: Iterable[str], as_of: datetime, scope: str = "*",
               office: str | None = None) -> SyncResult | None:
    """Sync the findings of `kinds` as of `as_of` and move the watermark of (flow, scope); None for a replay."""
    mark = session.get(FlowWatermark, (flow_name, scope))
    if mark is not None and as_of < mark.window_end:
        return None
    s = rt.settings
    synced = sync_findings(session, findings, kinds=set(kinds), as_of=as_of, routes=s.alert_routes, office=office,
                           repeat_every=timedelta(hours=s.repeat_hours), calendar=rt.calendar)
    record_watermark(session, flow_name=flow_name, as_of=as_of, scope=scope)
    return synced
