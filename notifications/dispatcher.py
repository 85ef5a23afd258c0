"""Delivery of the outbox: claim due alerts, one digest per recipient tag, apprise, mark sent or back off.

Exactly-once as far as the far side lets us: an alert is marked sent only in the transaction after a
send that apprise reported fully successful (the claims and their leases: notifications.claims).

One run claims in batches until nothing due is left (up to `max_alerts`), so each tag gets ONE digest
per run however many alerts it has; the tags' digests are sent in parallel by a few threads (a send is
mostly waiting on a socket), the parts of one tag in order by one thread, and each part's outcome is
committed as soon as its send is over, in a transaction of its own: only a part apprise reported fully sent
marks its alerts sent, and a crash re-sends at most the parts in flight (one per sending thread).

Long digests are split into numbered parts below the tightest size limit of the tag's services
(notifications.digest); each part marks only its own items, so a failure in part 2 never re-sends part 1.
"""
from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from models import findings as catalogue
from models.findings import Finding
from models.ledger.db import transaction
from models.ledger.tables import Alert
from notifications.claims import claim_all, lock_in_key_order, pending_count, record, release, where_ids
from notifications.delivery import DEFAULT_BODY_LIMIT, AppriseConfigError, Courier, Delivery, deliver
from notifications.digest import _ITEM_COLUMNS, DigestItem, DigestPart, item_from, render_digest
from notifications.outbox import FALLBACK_TAG, resolve_alerts, route_tags, sync_findings

log = logging.getLogger("bianmin.dispatch")


@dataclass(frozen=True)
class DispatchResult:
    """What one dispatch did."""

    messages_sent: int
    alerts_sent: int
    resolved_sent: int
    failed: int
    pending_left: int
    per_tag: dict[str, int] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    files: tuple[str, ...] = ()
    messages_failed: int = 0  # digests (parts) a service did not accept this run: they stay pending, with backoff


@dataclass
class TagOutcome:
    """What one destination tag's sends did in a run (each part already recorded when this is read)."""

    tag: str
    messages_sent: int = 0
    messages_failed: int = 0
    alerts_sent: int = 0
    resolved_sent: int = 0
    alerts_failed: int = 0
    error: str | None = None  # the first failure of the run, when a part failed
    files: list[str] = field(default_factory=list)

    def add(self, part: DigestPart, result: Delivery, sent: int, told: int, failed: int) -> None:
        self.alerts_sent += sent
        self.resolved_sent += told
        self.alerts_failed += failed
        if result.ok:
            self.messages_sent += 1
            if result.path:
                self.files.append(str(result.path))
        else:
            self.messages_failed += 1
            if self.error is None:
                self.error = result.error or "delivery failed"




# -- channel health ------------------------------------------------------------------------------------------

CHANNEL_FAILING = catalogue.CHANNEL_FAILING.name
ALWAYS_TAG = "always"  # apprise's tag for a URL that receives every tag's messages


def channel_alert_tags(channel: str, *, routes: dict[str, str], config_tags: set[str]) -> list[str]:
    """Where the alert about a failing `channel` goes: its route (default `ops`) without the failing channel;
    when that leaves no tag the apprise config has, every other tag of the config, so that a failing `ops`
    is never the only road to the people who can mend it."""
    failing = channel.lower()
    wanted = [t for t in route_tags(routes, kind=CHANNEL_FAILING) if t.lower() != failing]
    if not config_tags:  # no apprise config (outbox files): nothing to choose from
        return wanted or [FALLBACK_TAG]
    usable = [t for t in wanted if t.lower() in config_tags]
    if usable:
        return usable
    others = sorted(t for t in config_tags if t not in (failing, ALWAYS_TAG, "(untagged)"))
    return others or wanted or [FALLBACK_TAG]


def record_channel_health(sessions: sessionmaker[Session], *, failing: dict[str, str], healthy: list[str],
                          config_tags: set[str], as_of: datetime, after: timedelta, routes: dict[str, str],
                          repeat_every: timedelta) -> None:
    """A channel (destination tag) whose send failed gets a `channel-failing` alert held back until `after` has
    passed since its first failure (seen again it keeps that moment); a channel whose send went through
    resolves its alert (closed silently if nobody had been told yet)."""
    healthy_set = set(healthy)
    with sessions() as s:
        open_rows = [(row_id, ((payload or {}).get("facts") or {}).get("channel"))
                     for row_id, payload in s.execute(select(Alert.id, Alert.payload).where(
                         Alert.kind == CHANNEL_FAILING, Alert.resolved_at.is_(None)))]
    mended = [row_id for row_id, channel in open_rows if channel in healthy_set]
    if not failing and not mended:
        return
    with transaction(sessions) as s:
        if mended:
            lock_in_key_order(s, mended)
            resolve_alerts(s, mended, as_of=as_of)
        for channel, error in sorted(failing.items()):
            tags = channel_alert_tags(channel, routes=routes, config_tags=config_tags)
            finding = Finding(key=catalogue.CHANNEL_FAILING.key(channel), kind=CHANNEL_FAILING, office=None,
                              severity=catalogue.CHANNEL_FAILING.severity,
                              subject=channel, facts={"channel": channel, "error": error}, occurred_at=as_of)
            # kinds left empty: one channel's failure resolves nothing else
            sync_findings(s, [finding], kinds=set(), as_of=as_of, routes={CHANNEL_FAILING: ",".join(tags)},
                          repeat_every=repeat_every, not_before=as_of + after)


# -- the dispatcher -----------------------------------------------------------------------------------------

def dispatch(sessions: sessionmaker[Session], *, apprise_config: Path | None, outbox_dir: Path, locale: str,
             as_of: datetime, timezone: str = "Asia/Shanghai", send_resolved: bool = True,
             backoff_base_seconds: int = 60, backoff_max_seconds: int = 3600,
             lease: timedelta = timedelta(minutes=10), dispatcher_id: str | None = None,
             body_limit: int | None = None, concurrency: int = 8, claim_batch: int = 5000,
             max_alerts: int = 50_000, channel_alert_after: timedelta | None = None,
             ops_routes: dict[str, str] | None = None,
             repeat_every: timedelta = timedelta(hours=4),
             link: Callable[[int], str] | None = None) -> DispatchResult:
    """Deliver every due alert as one digest per recipient tag; failures stay pending with backoff.

    Tags are sent in parallel (`concurrency` threads: the time of a send is spent waiting on a socket); the
    parts of one tag go in order, by one thread, and each part's outcome is committed as soon as its send is
    over. With `channel_alert_after`, a tag failing that long raises a `channel-failing` alert (see
    `record_channel_health`; `ops_routes` are the alert routes it is routed by). `link(alert_id)` gives the URL
    each open item carries (the console's signed link, made by the caller, who holds the key).
    """
    me = dispatcher_id or f"dispatch-{uuid.uuid4().hex[:12]}"
    tz = ZoneInfo(timezone)
    ids = claim_all(sessions, me=me, as_of=as_of, lease=lease, send_resolved=send_resolved, batch=claim_batch,
                    max_alerts=max_alerts)
    if not ids:
        with sessions() as s:
            return DispatchResult(0, 0, 0, 0, pending_count(s, as_of=as_of))

    courier = Courier()  # the run's sends read the config as it is now, once: the tags below and every send
    tags_info: dict[str, Any] = {}
    config_error: str | None = None
    if apprise_config is not None:
        try:
            tags_info = courier.version(apprise_config).tags()
        except AppriseConfigError as exc:
            config_error = str(exc)

    groups: dict[str, tuple[list[DigestItem], list[DigestItem]]] = defaultdict(lambda: ([], []))
    with sessions() as s:
        conn = s.connection()  # Core rows: the ORM's result machinery cost more than the rows' own values
        for among in where_ids(s, ids):
            # plain rows with the columns a digest line reads: item_from takes them as it takes an Alert
            for alert in conn.execute(select(*_ITEM_COLUMNS).where(among)):
                resolved = alert.resolved_at is not None
                # an office with its own managers has its own tag in the apprise config: `cs-supervisor@A1`
                # (apprise lower-cases the tags it reads)
                dest = alert.tag
                if alert.office and f"{alert.tag}@{alert.office}".lower() in tags_info:
                    dest = f"{alert.tag}@{alert.office}".lower()
                groups[dest][1 if resolved else 0].append(item_from(
                    alert, as_of=as_of, tz=tz, resolved=resolved,
                    link=link(alert.id) if link is not None and not resolved else None))

    def render(dest: str) -> tuple[str, list[DigestPart]]:
        items, resolved_items = groups[dest]
        info = tags_info.get(dest.lower())
        limit = body_limit or (info.body_limit if info else (None if apprise_config is None else DEFAULT_BODY_LIMIT))
        return dest, render_digest(dest, items, resolved_items, locale=locale, as_of=as_of, tz=tz, body_limit=limit,
                                   title_in_body=bool(info and info.title_limit == 0),
                                   markdown=bool(info and info.markdown))

    def send_part(dest: str, part: DigestPart) -> Delivery:
        if config_error:
            return Delivery(ok=False, error=config_error)
        try:
            return deliver(tag=dest, title=part.title, body=part.body, apprise_config=apprise_config,
                           outbox_dir=outbox_dir, body_format=part.body_format, at=as_of, courier=courier)
        except Exception as exc:  # noqa: BLE001 - recorded as a failure so the other tags' sends still count
            return Delivery(ok=False, error=f"{type(exc).__name__}: {getattr(exc, 'strerror', None) or ''}")

    def record_part(part: DigestPart, result: Delivery) -> tuple[int, int, int]:
        if result.ok:
            sent, told, failures = list(part.alert_ids), list(part.resolved_ids), {}
        else:
            sent, told = [], []
            failures = {(result.error or "delivery failed")[:1000]: list(part.alert_ids + part.resolved_ids)}
        return record(sessions, me=me, ids=list(part.alert_ids + part.resolved_ids), sent=sent, told=told,
                      failures=failures, as_of=as_of, backoff_base=backoff_base_seconds,
                      backoff_max=backoff_max_seconds)

    def send_and_record(job: tuple[str, list[DigestPart]]) -> TagOutcome:
        # each part is recorded (committed) as soon as its send is over: a crash, or one slow channel, never
        # holds back the record of what the other tags' services have already accepted
        dest, parts = job
        done = TagOutcome(dest)
        for part in parts:  # the parts of one tag in order, each recorded before the next goes
            result = send_part(dest, part)
            sent, told, failed = record_part(part, result)
            done.add(part, result, sent, told, failed)
        return done

    dests = sorted(groups)
    workers = max(1, min(concurrency, len(dests)))
    per_dest: list[TagOutcome] = []
    try:
        with courier:  # the SMTP sessions the sends leave open end with them
            if workers == 1:
                per_dest = [send_and_record(render(dest)) for dest in dests]
            else:
                with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bianmin-dispatch") as pool:
                    # each digest starts on its way as soon as it is rendered, while the next one is rendered
                    futures = [pool.submit(send_and_record, render(dest)) for dest in dests]
                    failures = [f.exception() for f in futures]  # waits for every tag, whatever fails
                    first = next((exc for exc in failures if exc is not None), None)
                    if first is not None:
                        raise first
                    per_dest = [f.result() for f in futures]  # in tag order, whatever order they finish in
    except BaseException:
        # rows of a tag whose send or record never happened go back now rather than when the lease ends
        try:
            release(sessions, me=me, ids=ids)
        except Exception:  # noqa: BLE001 - the database may be what failed: the lease gives them back then
            log.warning("could not release the claimed alerts after a failed dispatch; their lease will")
        raise

    files: list[str] = []
    errors: dict[str, str] = {}
    per_tag: dict[str, int] = {}
    for done in per_dest:
        files.extend(done.files)
        if done.alerts_sent:
            per_tag[done.tag] = done.alerts_sent
        if done.error is not None:
            errors[done.tag] = done.error
    if channel_alert_after is not None:
        record_channel_health(
            sessions, failing={d.tag: d.error for d in per_dest if d.error is not None},
            healthy=[d.tag for d in per_dest if d.error is None], config_tags=set(tags_info), as_of=as_of,
            after=channel_alert_after, routes=ops_routes or {}, repeat_every=repeat_every)
    with sessions() as s:
        left = pending_count(s, as_of=as_of)
    return DispatchResult(messages_sent=sum(d.messages_sent for d in per_dest),
                          alerts_sent=sum(d.alerts_sent for d in per_dest),
                          resolved_sent=sum(d.resolved_sent for d in per_dest),
                          failed=sum(d.alerts_failed for d in per_dest), pending_left=left, per_tag=per_tag,
                          errors=errors, files=tuple(files),
                          messages_failed=sum(d.messages_failed for d in per_dest))

