"""Delivery of the outbox: claim due alerts, one digest per recipient tag, apprise, mark sent or back off.

Exactly-once as far as the far side lets us: an alert is marked sent only in the transaction after a
send that apprise reported fully successful; two dispatchers never hold the same alert because each
first claims rows (PostgreSQL: SELECT .. FOR UPDATE SKIP LOCKED, then a conditional UPDATE; SQLite:
the conditional UPDATE alone, writers being serialised by BEGIN IMMEDIATE). A claim is a lease
(`claimed_until`): a dispatcher that dies mid-send releases its rows when the lease runs out.

One run claims in batches until nothing due is left (up to `max_alerts`), so each tag gets ONE digest
per run however many alerts it has; the tags' digests are sent in parallel by a few threads (a send is
mostly waiting on a socket), the parts of one tag in order by one thread, and each part's outcome is
committed as soon as its send is over, in a transaction of its own: only a part apprise reported fully sent
marks its alerts sent, and a crash re-sends at most the parts in flight (one per sending thread).

Long digests are split into numbered parts below the tightest size limit of the tag's services; each
part marks only its own items, so a failure in part 2 never re-sends part 1.
"""
from __future__ import annotations

import functools
import logging
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from sqlalchemy import Integer, and_, any_, func, literal, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from models import findings as catalogue
from models import texts
from models.ledger.db import transaction
from models.rules import overdue_minutes
from models.ledger.tables import Alert
from notifications.delivery import DEFAULT_BODY_LIMIT, AppriseConfigError, Courier, Delivery, deliver
from notifications.masking import mask_phone, mask_text
from notifications.outbox import (FALLBACK_TAG, Finding, acked_clause, resolve_alerts, route_tags, silenced_clause,
                                  sync_findings)

log = logging.getLogger("bianmin.dispatch")

TEMPLATES = Path(__file__).with_name("templates")
SPLIT_MARGIN = 200  # room for the part marker and a service's own framing


@dataclass(frozen=True)
class DigestItem:
    """One alert as a line of a digest (phone already masked)."""

    alert_id: int
    key: str
    kind: str
    level: int
    severity: int
    office: str | None
    number: str | None
    community: str | None
    address: str | None
    resident: str | None
    phone: str | None
    overdue_minutes: int | None
    due_at: str | None
    holder: str | None
    worker: str | None
    amount: str | None
    receipts: list[str] | None
    detail: str | None
    repeat: bool
    resolved: bool
    age_from: datetime


@dataclass(frozen=True)
class DigestPart:
    """One message: its title and body, and the alerts it carries."""

    tag: str
    title: str
    body: str
    alert_ids: tuple[int, ...]
    resolved_ids: tuple[int, ...]
    body_format: str = "text"


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


# -- rendering ------------------------------------------------------------------------------------------

# the templates ship with the code: checking their files' mtimes before every digest cost more than rendering it
_env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=False, undefined=StrictUndefined,
                   keep_trailing_newline=False, auto_reload=False)
# the digests' kind labels come from the finding catalogue, one table per locale; their other words from the
# translation catalogue, in the `locale` each module is made for
_env.globals["finding_labels"] = {locale: catalogue.labels("label", locale) for locale in texts.LOCALES}
_env.globals["text"] = texts.render


class _Macros:
    """The digest macros of one locale and format; Markdown borrows what it does not define from text."""

    def __init__(self, locale: str, markdown: bool) -> None:
        self.text = _env.get_template("alert_digest.txt.j2").make_module({"locale": locale})
        self.md = _env.get_template("alert_digest.md.j2").make_module({"locale": locale}) if markdown else None

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if self.md is not None and hasattr(self.md, name):
            return getattr(self.md, name)
        return getattr(self.text, name)


@functools.cache
def _macros(locale: str, markdown: bool) -> _Macros:
    return _Macros(locale, markdown)


def _blocks(rendered: Any, sep: str, count: int) -> list[str]:
    """One macro call's output cut back into its `count` lines (each was followed by `sep`)."""
    blocks = str(rendered).split(sep)
    blocks.pop()  # after the last separator
    if len(blocks) != count:
        raise ValueError(f"a digest template rendered {len(blocks)} lines for {count} items")
    return blocks


def _as_int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _local(value: str | None, tz: ZoneInfo) -> str | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value).astimezone(tz).strftime("%Y-%m-%d %H:%M")
    except (TypeError, ValueError):
        return mask_text(str(value))


_ITEM_COLUMNS = (Alert.id, Alert.dedupe_key, Alert.kind, Alert.level, Alert.severity, Alert.office, Alert.tag,
                 Alert.order_number, Alert.payload, Alert.first_seen, Alert.last_notified_at, Alert.resolved_at)


def item_from(alert: Alert, *, as_of: datetime, tz: ZoneInfo, resolved: bool = False) -> DigestItem:
    """A digest line's facts from an outbox row; phone numbers masked, free text scrubbed of mobiles."""
    payload = alert.payload or {}
    facts = payload.get("facts") or {}
    # the finding's typed common fields (models.findings.Finding); `bianmin db upgrade` gave older rows theirs
    due_at = payload.get("due_at")
    overdue = _as_int(payload.get("overdue_minutes"))
    if overdue is None and due_at:
        try:
            overdue = overdue_minutes(datetime.fromisoformat(due_at), as_of)
        except (TypeError, ValueError):
            overdue = None
    detail_parts = [str(facts[k]) for k in ("note", "reason", "flow", "flow_run", "error", "message") if facts.get(k)]
    receipts = facts.get("receipts")
    return DigestItem(
        alert_id=alert.id, key=payload.get("key") or alert.dedupe_key, kind=alert.kind, level=alert.level,
        severity=alert.severity, office=alert.office,
        number=payload.get("subject"),
        community=facts.get("community"), address=mask_text(facts.get("address")) or None,
        resident=mask_text(facts.get("resident")) or None,
        phone=mask_phone(facts.get("phone")) or None,
        overdue_minutes=overdue, due_at=_local(due_at, tz),
        holder=payload.get("holder"), worker=facts.get("worker"),
        amount=str(payload["amount"]) if payload.get("amount") not in (None, "") else None,
        receipts=[str(r) for r in receipts] if isinstance(receipts, (list, tuple)) else None,
        detail=mask_text(" · ".join(detail_parts))[:500] or None,
        repeat=alert.last_notified_at is not None and not resolved,
        resolved=resolved,
        age_from=datetime.fromisoformat(payload["occurred_at"]) if payload.get("occurred_at") else alert.first_seen,
    )


def order_items(items: list[DigestItem]) -> list[DigestItem]:
    """Most severe first, then the oldest."""
    return sorted(items, key=lambda it: (-it.severity, it.age_from, it.number or "", it.alert_id))


def render_digest(tag: str, items: list[DigestItem], resolved: list[DigestItem], *, locale: str, as_of: datetime,
                  tz: ZoneInfo, body_limit: int | None = None, title_in_body: bool = False,
                  markdown: bool = False) -> list[DigestPart]:
    """The digest for one tag, split into numbered parts when it would exceed `body_limit` characters."""
    m = _macros(locale, markdown)
    items = order_items(items)
    resolved = sorted(resolved, key=lambda it: (it.number or "", it.alert_id))
    head = str(m.header(tag, None, as_of.astimezone(tz).strftime("%Y-%m-%d %H:%M")))
    foot = str(m.footer()) if items else ""
    res_head = str(m.resolved_header())
    # every line of the digest in one macro call (a call per line cost more than the line), each line followed
    # by a separator no alert's text can hold, so the digest can still be cut below the size limit between lines
    sep = f"\x1e{uuid.uuid4().hex}\x1e"
    blocks = [(text, it, False) for text, it in zip(_blocks(m.items(items, sep), sep, len(items)), items)]
    blocks += [(text, it, True) for text, it in zip(_blocks(m.resolved_lines(resolved, sep), sep, len(resolved)),
                                                   resolved)]
    budget = None
    if body_limit:
        budget = body_limit - SPLIT_MARGIN - len(head) - len(foot) - len(res_head) - (300 if title_in_body else 0)
        budget = max(budget, 200)
        # one item longer than a whole part (a 260 KB address pasted into a note) is cut to fit, marked as cut,
        # so it cannot push the part past the service's limit; the other items stay whole in their parts
        marker = str(m.truncated())
        blocks = [(_cut(text, budget, marker) if len(text) > budget else text, it, r) for text, it, r in blocks]

    groups: list[list[tuple[str, DigestItem, bool]]] = [[]]
    size = 0
    for block in blocks:
        if budget is not None and groups[-1] and size + len(block[0]) > budget:
            groups.append([])
            size = 0
        groups[-1].append(block)
        size += len(block[0])

    counts_all = _counts(items)
    parts: list[DigestPart] = []
    for n, group in enumerate(groups, 1):
        text = head
        shown_resolved_head = False
        for body, _it, is_resolved in group:
            if is_resolved and not shown_resolved_head:
                text += res_head
                shown_resolved_head = True
            text += body
        text += foot
        title = str(m.title(tag, counts_all, len(resolved), n, len(groups)))
        parts.append(DigestPart(
            tag=tag, title=mask_text(title), body=mask_text(text).strip() + "\n",
            alert_ids=tuple(it.alert_id for _b, it, r in group if not r),
            resolved_ids=tuple(it.alert_id for _b, it, r in group if r),
            body_format="markdown" if markdown else "text"))
    return parts


def _cut(block: str, budget: int, marker: str) -> str:
    """`block` cut to `budget` characters with `marker` where the text stops; its last line (the ack key) kept."""
    block = mask_text(block)  # masked before the cut, so the cut never leaves half a mobile readable
    _before, newline, last = block.rpartition("\n")
    tail = newline + last if newline and len(last) <= budget // 4 else ""
    return block[:max(budget - len(marker) - len(tail), 0)].rstrip() + marker + tail


def _counts(items: list[DigestItem]) -> dict[Any, int]:
    counts: dict[Any, int] = {1: 0, 2: 0, 3: 0}
    for it in items:
        counts[min(max(it.severity, 1), 3)] += 1
    counts["total"] = len(items)
    return counts


# -- claiming -----------------------------------------------------------------------------------------------

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
        ids = _lock_in_key_order(s, list(s.scalars(select(Alert.id).where(unnoticed))))
        for among in _among(s, ids):
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


def _release_and_record(sessions: sessionmaker[Session], *, me: str, ids: list[int], outcomes: list[tuple[DigestPart, Delivery]],
                        as_of: datetime, backoff_base: int, backoff_max: int) -> tuple[int, int, int]:
    sent_ids = [i for part, result in outcomes if result.ok for i in part.alert_ids]
    told_ids = [i for part, result in outcomes if result.ok for i in part.resolved_ids]
    failures: dict[str, list[int]] = defaultdict(list)  # one UPDATE per error text and attempt count, not per part
    for part, result in outcomes:
        if not result.ok:
            failures[(result.error or "delivery failed")[:1000]].extend(part.alert_ids + part.resolved_ids)
    released = dict(claimed_by=None, claimed_until=None)  # each outcome's UPDATE also gives the rows back
    with transaction(sessions) as s:
        _lock_in_key_order(s, ids)
        mine = [Alert.claimed_by == me]
        for among in _among(s, sent_ids):
            s.execute(update(Alert).where(among, *mine).values(
                sent_at=as_of, last_notified_at=as_of, attempts=Alert.attempts + 1, last_error=None,
                next_attempt_at=None, **released).execution_options(synchronize_session=False))
        for among in _among(s, told_ids):
            s.execute(update(Alert).where(among, *mine).values(
                resolved_notified_at=as_of, **released).execution_options(synchronize_session=False))
        for error, row_ids in failures.items():
            for attempts, group in _by_attempts(s, row_ids):
                delay = min(backoff_base * (2 ** attempts), backoff_max)  # attempts before this one
                for among in _among(s, group):
                    s.execute(update(Alert).where(among, *mine).values(
                        attempts=Alert.attempts + 1, last_error=error, next_attempt_at=as_of + timedelta(seconds=delay),
                        **released).execution_options(synchronize_session=False))
        recorded = set(sent_ids) | set(told_ids) | {i for row_ids in failures.values() for i in row_ids}
        for among in _among(s, [i for i in ids if i not in recorded]):
            s.execute(update(Alert).where(among, *mine)
                      .values(**released).execution_options(synchronize_session=False))
    return len(sent_ids), len(told_ids), sum(len(v) for v in failures.values())


def _release(sessions: sessionmaker[Session], *, me: str, ids: list[int]) -> None:
    """Give back the rows of `ids` this dispatcher still holds (those whose outcome was never recorded)."""
    with sessions() as s:
        held = [i for among in _among(s, ids)
                for i in s.scalars(select(Alert.id).where(among, Alert.claimed_by == me))]
    if not held:
        return
    with transaction(sessions) as s:
        _lock_in_key_order(s, held)
        for among in _among(s, held):
            s.execute(update(Alert).where(among, Alert.claimed_by == me)
                      .values(claimed_by=None, claimed_until=None).execution_options(synchronize_session=False))


def _chunks(ids: list[int], size: int = 500) -> Iterator[list[int]]:
    for start in range(0, len(ids), size):
        yield ids[start:start + size]


def _among(s: Session, ids: list[int]) -> Iterator[Any]:
    """`alerts.id` among `ids` as WHERE clauses: one `= ANY(array)` on PostgreSQL (a single parameter, however
    many ids), IN lists of 500 on SQLite (whose bound parameters are limited)."""
    if not ids:
        return
    if s.get_bind().dialect.name == "postgresql":
        yield Alert.id == any_(_pg_ids(ids))
        return
    for chunk in _chunks(ids):
        yield Alert.id.in_(chunk)


def _lock_in_key_order(s: Session, ids: list[int]) -> list[int]:
    """PostgreSQL: lock these rows up front in dedupe_key order, the order every outbox writer uses (no deadlocks)."""
    if s.get_bind().dialect.name != "postgresql" or not ids:
        return ids
    # one statement with the ids as one array: PostgreSQL sorts first and locks the rows as the sort hands
    # them over, so they are locked in dedupe_key order (40 IN-list statements for 10,000 ids cost ~0.5 s)
    return list(s.scalars(select(Alert.id).where(Alert.id == any_(_pg_ids(ids)))
                          .order_by(Alert.dedupe_key).with_for_update()))


def _pg_ids(ids: list[int]):
    from sqlalchemy.dialects.postgresql import ARRAY

    return literal(list(ids), ARRAY(Integer))


def _by_attempts(s: Session, ids: list[int]) -> list[tuple[int, list[int]]]:
    groups: dict[int, list[int]] = defaultdict(list)
    for among in _among(s, ids):
        for row_id, attempts in s.execute(select(Alert.id, Alert.attempts).where(among)):
            groups[attempts].append(row_id)
    return sorted(groups.items())


def pending_count(session: Session, *, as_of: datetime) -> int:
    """Alerts still waiting to go out (not sent, not resolved, not acked), silenced ones included."""
    return session.scalar(select(func.count()).select_from(Alert).where(
        Alert.sent_at.is_(None), Alert.resolved_at.is_(None), ~acked_clause())) or 0


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
            _lock_in_key_order(s, mended)
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
             repeat_every: timedelta = timedelta(hours=4)) -> DispatchResult:
    """Deliver every due alert as one digest per recipient tag; failures stay pending with backoff.

    Tags are sent in parallel (`concurrency` threads: the time of a send is spent waiting on a socket); the
    parts of one tag go in order, by one thread, and each part's outcome is committed as soon as its send is
    over. With `channel_alert_after`, a tag failing that long raises a `channel-failing` alert (see
    `record_channel_health`; `ops_routes` are the alert routes it is routed by).
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
        for among in _among(s, ids):
            # plain rows with the columns a digest line reads: item_from takes them as it takes an Alert
            for alert in conn.execute(select(*_ITEM_COLUMNS).where(among)):
                resolved = alert.resolved_at is not None
                # an office with its own managers has its own tag in the apprise config: `cs-supervisor@A1`
                # (apprise lower-cases the tags it reads)
                dest = alert.tag
                if alert.office and f"{alert.tag}@{alert.office}".lower() in tags_info:
                    dest = f"{alert.tag}@{alert.office}".lower()
                groups[dest][1 if resolved else 0].append(item_from(alert, as_of=as_of, tz=tz, resolved=resolved))

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

    def record(outcomes: list[tuple[DigestPart, Delivery]]) -> tuple[int, int, int]:
        ids_of = [i for part, _r in outcomes for i in part.alert_ids + part.resolved_ids]
        return _release_and_record(sessions, me=me, ids=ids_of, outcomes=outcomes, as_of=as_of,
                                   backoff_base=backoff_base_seconds, backoff_max=backoff_max_seconds)

    def send_and_record(job: tuple[str, list[DigestPart]]) -> TagOutcome:
        # each part is recorded (committed) as soon as its send is over: a crash, or one slow channel, never
        # holds back the record of what the other tags' services have already accepted
        dest, parts = job
        done = TagOutcome(dest)
        for part in parts:  # the parts of one tag in order, each recorded before the next goes
            result = send_part(dest, part)
            sent, told, failed = record([(part, result)])
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
            _release(sessions, me=me, ids=ids)
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
