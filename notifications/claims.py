"""The outbox's claim/lease engine: which alerts a dispatcher holds, and what their sends did.

Two dispatchers never hold the same alert because each first claims rows (PostgreSQL: SELECT .. FOR UPDATE
SKIP LOCKED, then a conditional UPDATE; SQLite: the conditional UPDATE alone, writers being serialised by
BEGIN IMMEDIATE). A claim is a lease (`claimed_until`): a dispatcher that dies mid-send releases its rows
when the lease runs out. An alert is marked sent only by `record`, after a send the far side accepted.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Integer, and_, any_, func, literal, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from models.ledger.db import transaction
from models.ledger.tables import Alert
from notifications.outbox import acked_clause, silenced_clause


def _due_queries(as_of: datetime, limit: int):
    """Two candidate queries, each on its partial index: alerts to send, and "resolved" lines owed."""
    not_waiting = or_(Alert.next_attempt_at.is_(None), Alert.next_attempt_at <= as_of)
    free = or_(Alert.claimed_until.is_(None), Alert.claimed_until < as_of)
    pending = select(Alert.id).where(Alert.sent_at.is_(None), Alert.resolved_at.is_(None), ~acked_clause(),
                                     ~silenced_clause(as_of), not_waiting, free)
    owed = select(Alert.id).where(Alert.resolved_at.is_not(None), Alert.resolved_notified_at.is_(None),
                                  not_waiting, free)
    return [q.limit(limit) for q in (pending, owed)]  # no ORDER BY: it would make SQLite walk the table by rowid


def claim(sessions: sessionmaker[Session], *, me: str, as_of: datetime, lease: timedelta,
          limit: int = 5000, send_resolved: bool = True) -> list[int]:
    """Claim due alerts for dispatcher `me` until as_of + lease; returns the claimed row ids."""
    if not send_resolved:
        _close_unwanted_resolved(sessions)
    return _claim_batch(sessions, me=me, as_of=as_of, lease=lease, limit=limit)[0]


def claim_all(sessions: sessionmaker[Session], *, me: str, as_of: datetime, lease: timedelta,
              batch: int = 5000, max_alerts: int = 50_000, send_resolved: bool = True) -> list[int]:
    """Claim every due alert (up to `max_alerts`) in batches, so one run sends each tag ONE digest."""
    if not send_resolved:
        _close_unwanted_resolved(sessions)
    claimed: list[int] = []
    while len(claimed) < max_alerts:
        ids, more = _claim_batch(sessions, me=me, as_of=as_of, lease=lease,
                                 limit=min(batch, max_alerts - len(claimed)))
        claimed.extend(ids)
        if not more:
            break
    return sorted(claimed)


def _close_unwanted_resolved(sessions: sessionmaker[Session]) -> None:
    # nobody wants the "resolved" lines: close them without a message
    with transaction(sessions) as s:
        unnoticed = and_(Alert.resolved_at.is_not(None), Alert.resolved_notified_at.is_(None))
        ids = lock_in_key_order(s, list(s.scalars(select(Alert.id).where(unnoticed))))
        for among in where_ids(s, ids):
            s.execute(update(Alert).where(among, unnoticed)
                      .values(resolved_notified_at=Alert.resolved_at).execution_options(synchronize_session=False))


def _claim_batch(sessions: sessionmaker[Session], *, me: str, as_of: datetime, lease: timedelta,
                 limit: int) -> tuple[list[int], bool]:
    """One claim transaction; also says whether a candidate query was cut at `limit` (more may be due)."""
    claimed: list[int] = []
    more = False
    with transaction(sessions) as s:
        postgres = s.get_bind().dialect.name == "postgresql"
        for candidates in _due_queries(as_of, limit):
            if postgres:  # rows another dispatcher holds are skipped, not waited for
                ids = list(s.scalars(candidates.with_for_update(skip_locked=True, of=Alert)))
                more = more or len(ids) >= limit
                if not ids:
                    continue
                target = Alert.id == any_(_pg_ids(ids))
            else:
                # correlate(None): the subquery reads alerts itself, it must not melt into the UPDATE's alerts
                target = Alert.id.in_(candidates.correlate(None).scalar_subquery())
            # the claim is conditional: a row someone else claimed meanwhile is not taken over
            got = list(s.scalars(
                update(Alert).where(target, or_(Alert.claimed_until.is_(None), Alert.claimed_until < as_of))
                .values(claimed_by=me, claimed_until=as_of + lease).returning(Alert.id)
                .execution_options(synchronize_session=False)))
            more = more or len(got) >= limit
            claimed.extend(got)
    return sorted(claimed), more


def record(sessions: sessionmaker[Session], *, me: str, ids: list[int], sent: list[int], told: list[int],
           failures: dict[str, list[int]], as_of: datetime, backoff_base: int,
           backoff_max: int) -> tuple[int, int, int]:
    """Record what the sends of the claimed `ids` did, and give the rows back: `sent` alerts are marked sent,
    `told` resolved alerts marked told, `failures` (error text -> ids) wait with backoff; the rest are released."""
    released = dict(claimed_by=None, claimed_until=None)  # each outcome's UPDATE also gives the rows back
    with transaction(sessions) as s:
        lock_in_key_order(s, ids)
        mine = [Alert.claimed_by == me]
        for among in where_ids(s, sent):
            s.execute(update(Alert).where(among, *mine).values(
                sent_at=as_of, last_notified_at=as_of, attempts=Alert.attempts + 1, last_error=None,
                next_attempt_at=None, **released).execution_options(synchronize_session=False))
        for among in where_ids(s, told):
            s.execute(update(Alert).where(among, *mine).values(
                resolved_notified_at=as_of, **released).execution_options(synchronize_session=False))
        for error, row_ids in failures.items():
            for attempts, group in _by_attempts(s, row_ids):
                delay = min(backoff_base * (2 ** attempts), backoff_max)  # attempts before this one
                for among in where_ids(s, group):
                    s.execute(update(Alert).where(among, *mine).values(
                        attempts=Alert.attempts + 1, last_error=error, next_attempt_at=as_of + timedelta(seconds=delay),
                        **released).execution_options(synchronize_session=False))
        recorded = set(sent) | set(told) | {i for row_ids in failures.values() for i in row_ids}
        for among in where_ids(s, [i for i in ids if i not in recorded]):
            s.execute(update(Alert).where(among, *mine)
                      .values(**released).execution_options(synchronize_session=False))
    return len(sent), len(told), sum(len(v) for v in failures.values())


def release(sessions: sessionmaker[Session], *, me: str, ids: list[int]) -> None:
    """Give back the rows of `ids` this dispatcher still holds (those whose outcome was never recorded)."""
    with sessions() as s:
        held = [i for among in where_ids(s, ids)
                for i in s.scalars(select(Alert.id).where(among, Alert.claimed_by == me))]
    if not held:
        return
    with transaction(sessions) as s:
        lock_in_key_order(s, held)
        for among in where_ids(s, held):
            s.execute(update(Alert).where(among, Alert.claimed_by == me)
                      .values(claimed_by=None, claimed_until=None).execution_options(synchronize_session=False))


def _chunks(ids: list[int], size: int = 500) -> Iterator[list[int]]:
    for start in range(0, len(ids), size):
        yield ids[start:start + size]


def where_ids(s: Session, ids: list[int]) -> Iterator[Any]:
    """`alerts.id` among `ids` as WHERE clauses: one `= ANY(array)` on PostgreSQL (a single parameter, however
    many ids), IN lists of 500 on SQLite (whose bound parameters are limited)."""
    if not ids:
        return
    if s.get_bind().dialect.name == "postgresql":
        yield Alert.id == any_(_pg_ids(ids))
        return
    for chunk in _chunks(ids):
        yield Alert.id.in_(chunk)


def lock_in_key_order(s: Session, ids: list[int]) -> list[int]:
    """PostgreSQL: lock these rows up front in dedupe_key order, the order every outbox writer uses (no deadlocks)."""
    if s.get_bind().dialect.name != "postgresql" or not ids:
        return ids
    # one statement with the ids as one array: PostgreSQL sorts first and locks the rows as the sort hands
    # them over, so they are locked in dedupe_key order
    return list(s.scalars(select(Alert.id).where(Alert.id == any_(_pg_ids(ids)))
                          .order_by(Alert.dedupe_key).with_for_update()))


def _pg_ids(ids: list[int]):
    from sqlalchemy.dialects.postgresql import ARRAY

    return literal(list(ids), ARRAY(Integer))


def _by_attempts(s: Session, ids: list[int]) -> list[tuple[int, list[int]]]:
    groups: dict[int, list[int]] = defaultdict(list)
    for among in where_ids(s, ids):
        for row_id, attempts in s.execute(select(Alert.id, Alert.attempts).where(among)):
            groups[attempts].append(row_id)
    return sorted(groups.items())


def pending_count(session: Session, *, as_of: datetime) -> int:
    """Alerts still waiting to go out (not sent, not resolved, not acked), silenced ones included."""
    return session.scalar(select(func.count()).select_from(Alert).where(
        Alert.sent_at.is_(None), Alert.resolved_at.is_(None), ~acked_clause())) or 0


