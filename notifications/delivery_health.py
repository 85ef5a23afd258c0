"""How the outbox's deliveries are doing, per recipient tag: what `bianmin watch` and the console's Health page ask.

Plain rows out; the rules that turn them into problems are models/watch/rules.py's. "Pending" is the outbox's
own status (not sent, not resolved, not acknowledged, not silenced); a row whose last attempt failed carries
its (already scrubbed) `last_error` until a send succeeds, which clears it: that, not `attempts` (which counts
the successful sends of repeats too), tells a failing delivery from a waiting one.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from models import findings as catalogue
from models.ledger.tables import Alert
from notifications.outbox import status_expr


def failing_by_tag(session: Session, *, as_of: datetime) -> list[tuple[str, int, datetime, str]]:
    """(tag, alerts whose last attempt failed, oldest first seen, one of their errors): pending alerts and owed
    "resolved" lines alike."""
    owed = and_(Alert.resolved_at.is_not(None), Alert.resolved_notified_at.is_(None))
    rows = session.execute(
        select(Alert.tag, func.count(), func.min(Alert.first_seen), func.max(Alert.last_error))
        .where(Alert.last_error.is_not(None), or_(status_expr(as_of) == "pending", owed))
        .group_by(Alert.tag).order_by(Alert.tag))
    return [(tag, count, since, error or "") for tag, count, since, error in rows]


def channels_failing(session: Session) -> list[tuple[str, datetime, str]]:
    """(channel, since, error) of each open `channel-failing` alert, one per channel."""
    out: dict[str, tuple[str, datetime, str]] = {}
    for payload, first_seen in session.execute(select(Alert.payload, Alert.first_seen).where(
            Alert.kind == catalogue.CHANNEL_FAILING.name, Alert.resolved_at.is_(None))):
        facts = (payload or {}).get("facts") or {}
        channel = str(facts.get("channel") or "?")
        if channel not in out or first_seen < out[channel][1]:
            out[channel] = (channel, first_seen, str(facts.get("error") or ""))
    return [out[c] for c in sorted(out)]


def waiting_by_tag(session: Session, *, as_of: datetime) -> list[tuple[str, int, datetime]]:
    """(tag, pending alerts never failed and due by `as_of`, since when the oldest is due)."""
    due = func.coalesce(Alert.next_attempt_at, Alert.first_seen)
    rows = session.execute(
        select(Alert.tag, func.count(), func.min(due))
        .where(Alert.last_error.is_(None), status_expr(as_of) == "pending", due <= as_of)
        .group_by(Alert.tag).order_by(Alert.tag))
    return [(tag, count, since) for tag, count, since in rows]
