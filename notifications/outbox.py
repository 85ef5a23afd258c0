"""The alert outbox: findings recorded in the caller's transaction, one row per (finding, recipient tag).

Row key. A finding routed to several tags (`"finance-manager,{dept}-supervisor"`) becomes one row per
tag, keyed `<finding key>@<tag>` in the `dedupe_key` column, whose unique constraint is what makes
two racing detectors write one row (INSERT .. ON CONFLICT DO UPDATE, never read-then-write). The tag
stored is the routed tag without office; narrowing to `tag@OFFICE` is decided at delivery, where the
apprise config is known (see notifications.dispatcher).

Life of a row:
  pending   sent_at IS NULL, not resolved; claimed and delivered by the dispatcher
  sent      delivered; seen again it only refreshes last_seen/facts, and becomes pending again once
            `repeat_every` has passed since it was last delivered (working hours when a calendar is
            given, else wall time), unless acked at its current level
  resolved  the detector ran and the finding no longer holds; if it had been delivered, the next
            digest carries a short "resolved" line (settings.send_resolved)
  acked     an operator took it: no repeats until its level changes
  silenced  a silence (kind, office, until) is active: kept pending, not delivered until it ends
A resolved finding that comes back is reopened (pending again).
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, case, exists, func, or_, select, update
from sqlalchemy.orm import Session

from models.calendar import BusinessCalendar
from models.findings import Finding
from models.ledger.jsonable import to_jsonable
from models.ledger.tables import Alert, AlertSilence, AuditEvent, UTCDateTime
from models.signoff.facts import PARTY_TAGS
from notifications.masking import mask_facts, mask_phone

FALLBACK_TAG = "ops"  # a finding nobody is routed to still reaches someone: nothing is dropped silently
DEPARTMENT_PLACEHOLDER = "{dept}"
PARTY_PLACEHOLDER = "{party}"  # the tag of the sign-off party the finding is for (models/signoff/facts.py)
ROUTED_DEPARTMENTS = ("cs", "engineering", "cleaning")  # departments whose staff hold work, cash and receipts
STATUSES = ("pending", "sent", "resolved", "acked", "silenced")


@dataclass(frozen=True)
class SyncResult:
    """What one sync did: rows first seen, rows seen again, rows resolved, and the alert keys it wrote."""

    new: int
    seen_again: int
    resolved: int
    keys: list[str]


# -- routing ------------------------------------------------------------------------------------------

def route_tags(routes: dict[str, str], *, kind: str, level: int = 1, department: str | None = None) -> list[str]:
    """The tags a finding goes to: `kind:level`, else `kind`, comma list, `{dept}` filled; `ops` if none."""
    spec = routes.get(f"{kind}:{level}") or routes.get(kind) or ""
    tags: list[str] = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        if PARTY_PLACEHOLDER in part:
            if department not in PARTY_TAGS:
                continue
            part = part.replace(PARTY_PLACEHOLDER, PARTY_TAGS[department])
        if DEPARTMENT_PLACEHOLDER in part:
            if not department:
                continue  # no department known: the other tags (or ops) still get it
            part = part.replace(DEPARTMENT_PLACEHOLDER, department)
        if part not in tags:
            tags.append(part)
    return tags or [FALLBACK_TAG]


def routed_tags(routes: dict[str, str]) -> list[str]:
    """Every tag the routes can produce (`{dept}` expanded over the departments that hold work)."""
    tags: set[str] = {FALLBACK_TAG}
    for spec in routes.values():
        for part in (p.strip() for p in spec.split(",")):
            if not part:
                continue
            if PARTY_PLACEHOLDER in part:
                tags.update(part.replace(PARTY_PLACEHOLDER, tag) for tag in PARTY_TAGS.values())
            elif DEPARTMENT_PLACEHOLDER in part:
                tags.update(part.replace(DEPARTMENT_PLACEHOLDER, d) for d in ROUTED_DEPARTMENTS)
            else:
                tags.add(part)
    return sorted(tags)


KEY_MAX = 200  # alerts.dedupe_key


def alert_key(finding_key: str, tag: str) -> str:
    """The outbox row key of one finding for one tag (a digest replaces the middle of an over-long key)."""
    key = f"{finding_key}@{tag}"
    if len(key) <= KEY_MAX:
        return key
    digest = hashlib.sha256(finding_key.encode("utf-8")).hexdigest()[:16]
    head = finding_key[:KEY_MAX - len(tag) - len(digest) - 3]
    return f"{head}~{digest}@{tag}"


# -- recording ------------------------------------------------------------------------------------------

def _insert_for(session: Session):
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


def _jsonable(value: Any) -> Any:
    # facts should already be JSON values; a stray datetime or Decimal must not fail the detector's transaction
    return to_jsonable(value)


#: the typed common fields of a finding, stored beside its facts in every alert payload
COMMON_FIELDS = ("subject", "holder", "due_at", "overdue_minutes", "amount")


def _facts(finding: Finding) -> dict[str, Any]:
    # the payload is read to build messages, never to call anyone: the ledger keeps the only full numbers
    facts = mask_facts(_jsonable(finding.facts))
    if facts.get("phone"):
        facts["phone"] = mask_phone(facts["phone"])
    common = mask_facts(_jsonable({name: getattr(finding, name) for name in COMMON_FIELDS}))
    return {"key": finding.key, "department": finding.department,
            "occurred_at": finding.occurred_at.isoformat() if finding.occurred_at else None,
            **common, "facts": facts}


def _masked_payload(payload: dict[str, Any]) -> dict[str, Any]:
    facts = mask_facts(payload.get("facts") or {})
    if isinstance(facts, dict) and facts.get("phone"):
        facts["phone"] = mask_phone(facts["phone"])
    return {**payload, "facts": facts}


def mask_stored_payloads(session: Session, *, batch: int = 1000) -> int:
    """Mask the residents' numbers in alerts written before their free text was masked; how many rows changed."""
    changed, last_id = 0, 0
    while True:
        rows = session.execute(select(Alert.id, Alert.payload).where(Alert.id > last_id)
                               .order_by(Alert.id).limit(batch)).all()
        if not rows:
            return changed
        for alert_id, payload in rows:
            masked = _masked_payload(payload or {})
            if masked != (payload or {}):
                session.execute(update(Alert).where(Alert.id == alert_id).values(payload=masked))
                changed += 1
        last_id = rows[-1][0]


def _with_common_fields(payload: dict[str, Any], order_number: str | None) -> dict[str, Any]:
    """An older version's payload with the common fields it kept among its facts (or the order column) lifted out."""
    facts = payload.get("facts") or {}
    subject = (order_number or facts.get("order_number") or facts.get("request_number") or facts.get("receipt")
               or facts.get("number"))
    overdue = facts.get("overdue_minutes")
    return {**payload, "subject": subject, "holder": facts.get("holder"), "due_at": facts.get("due_at"),
            "overdue_minutes": overdue if isinstance(overdue, int) else None,
            "amount": str(facts["amount"]) if facts.get("amount") not in (None, "") else None}


def fill_common_fields(session: Session, *, batch: int = 1000) -> int:
    """Give alerts stored before findings had typed common fields their subject, holder, due time, lateness and
    amount, so that they still render; how many rows changed."""
    changed, last_id = 0, 0
    while True:
        rows = session.execute(select(Alert.id, Alert.order_number, Alert.payload).where(Alert.id > last_id)
                               .order_by(Alert.id).limit(batch)).all()
        if not rows:
            return changed
        for alert_id, order_number, payload in rows:
            if payload is not None and "subject" not in payload:
                session.execute(update(Alert).where(Alert.id == alert_id)
                                .values(payload=_with_common_fields(payload, order_number)))
                changed += 1
        last_id = rows[-1][0]


def sync_findings(session: Session, findings: Iterable[Finding], *, kinds: set[str], as_of: datetime,
                  routes: dict[str, str], office: str | None = None,
                  repeat_every: timedelta = timedelta(hours=4),
                  calendar: BusinessCalendar | None = None, not_before: datetime | None = None) -> SyncResult:
    """Record findings as of `as_of` in the caller's transaction and resolve open alerts of `kinds` no longer found.

    `not_before` holds a new (or reopened) alert back until then: a finding that only matters if it lasts.
    """
    rows: dict[str, dict[str, Any]] = {}
    for f in findings:
        for tag in route_tags(routes, kind=f.kind, level=f.level, department=f.department):
            key = alert_key(f.key, tag)
            rows[key] = dict(dedupe_key=key, kind=f.kind, office=f.office, order_number=f.order_number,
                             severity=f.severity, level=f.level, tag=tag, payload=_facts(f),
                             first_seen=as_of, last_seen=as_of, next_attempt_at=not_before or as_of, attempts=0)
    cutoff = calendar.working_time_before(as_of, repeat_every) if calendar else as_of - repeat_every

    keys = sorted(rows)
    gone = _gone(session, kinds=kinds, office=office, found=set(rows))
    # PostgreSQL: every writer (detectors here, dispatchers when recording) takes its row locks in
    # dedupe_key order, up front, so two of them can wait on each other but never deadlock
    lock = session.get_bind().dialect.name == "postgresql"
    existing: set[str] = set()
    wanted = sorted(set(keys) | {key for _id, key in gone})
    for start in range(0, len(wanted), 500):
        q = select(Alert.dedupe_key).where(Alert.dedupe_key.in_(wanted[start:start + 500]))
        if lock:
            q = q.order_by(Alert.dedupe_key).with_for_update()
        existing.update(session.scalars(q))
    if keys:
        # one statement, compiled once per dialect and cached, executed for every row (executemany): a
        # multi-row VALUES would be built and compiled again on every call
        params = [{**rows[k], "sync_as_of": as_of, "sync_cutoff": cutoff} for k in keys]
        session.execute(_upsert(session), params)
    seen_again = len(existing & set(keys))
    new = len(keys) - seen_again

    resolved = _resolve(session, [row_id for row_id, _key in gone], as_of=as_of)
    session.flush()
    return SyncResult(new=new, seen_again=seen_again, resolved=resolved, keys=keys)


_UPSERTS: dict[str, Any] = {}


def _upsert(session: Session):
    """INSERT .. ON CONFLICT (dedupe_key) DO UPDATE for one row; `sync_as_of`/`sync_cutoff` are bound per row."""
    dialect = session.get_bind().dialect.name
    stmt = _UPSERTS.get(dialect)
    if stmt is not None:
        return stmt
    a = Alert.__table__.c
    insert = _insert_for(session)(Alert.__table__)
    ex = insert.excluded
    at = bindparam("sync_as_of", type_=UTCDateTime())
    acked_at_level = and_(a.acked_at.is_not(None), a.acked_level == ex.level)
    renotify = or_(
        a.resolved_at.is_not(None),                       # it came back
        and_(a.sent_at.is_not(None), a.level != ex.level),  # it changed level
        and_(a.sent_at.is_not(None), ~acked_at_level,       # still true after the repeat interval
             a.last_notified_at <= bindparam("sync_cutoff", type_=UTCDateTime())),
    )
    stmt = insert.on_conflict_do_update(
        index_elements=[a.dedupe_key],
        set_={
            "last_seen": case((ex.last_seen > a.last_seen, ex.last_seen), else_=a.last_seen),
            "payload": ex.payload, "severity": ex.severity, "level": ex.level, "office": ex.office,
            "order_number": ex.order_number,
            "sent_at": case((renotify, None), else_=a.sent_at),
            # a finding that came back waits as a new one would (`not_before`); a repeat is due at once
            "next_attempt_at": case((a.resolved_at.is_not(None), ex.next_attempt_at), (renotify, at),
                                    else_=a.next_attempt_at),
            "attempts": case((renotify, 0), else_=a.attempts),
            "last_error": case((renotify, None), else_=a.last_error),
            "resolved_at": None,
            "resolved_notified_at": case((a.resolved_at.is_not(None), None), else_=a.resolved_notified_at),
        },
    )
    _UPSERTS[dialect] = stmt
    return stmt


def _gone(session: Session, *, kinds: set[str], office: str | None, found: set[str]) -> list[tuple[int, str]]:
    """Open alerts of `kinds` (in `office`) whose finding was not found this time."""
    if not kinds:
        return []
    conditions = [Alert.kind.in_(sorted(kinds)), Alert.resolved_at.is_(None)]
    if office is not None:
        conditions.append(Alert.office == office)
    open_rows = session.execute(select(Alert.id, Alert.dedupe_key).where(*conditions)).all()
    return [(row.id, row.dedupe_key) for row in open_rows if row.dedupe_key not in found]


def _resolve(session: Session, ids: list[int], *, as_of: datetime) -> int:
    resolved = 0
    for start in range(0, len(ids), 500):
        result = session.execute(
            update(Alert).where(Alert.id.in_(ids[start:start + 500]), Alert.resolved_at.is_(None))
            .values(resolved_at=as_of,
                    # nobody was ever told about it: there is nothing to take back
                    resolved_notified_at=case((Alert.last_notified_at.is_(None), as_of),
                                              else_=Alert.resolved_notified_at))
            .execution_options(synchronize_session=False))
        resolved += result.rowcount or 0
    return resolved


def resolve_alerts(session: Session, ids: list[int], *, as_of: datetime) -> int:
    """Resolve these open rows (what they reported no longer holds), in the caller's transaction."""
    return _resolve(session, ids, as_of=as_of)


# -- operator actions -------------------------------------------------------------------------------------

def _matching(key: str):
    """Rows of one alert key, or every tag's row of one finding key."""
    return or_(Alert.dedupe_key == key, Alert.dedupe_key.startswith(key + "@", autoescape=True))


def ack(session: Session, *, key: str, by: str, at: datetime) -> int:
    """Acknowledge open alerts of `key` (an alert key or a finding key): no repeats until the level changes."""
    result = session.execute(
        update(Alert).where(_matching(key), Alert.resolved_at.is_(None))
        .values(acked_at=at, acked_by=by, acked_level=Alert.level)
        .execution_options(synchronize_session=False))
    count = result.rowcount or 0
    if count:
        session.add(AuditEvent(at=at, actor=by, action="ack", entity="alert", entity_ref=key[:60], before=None,
                               after={"key": key, "rows": count}))
        session.flush()
    return count


def silence(session: Session, *, kind: str, office: str | None, starts_at: datetime, until: datetime,
            by: str, reason: str, alert_key: str | None = None) -> AlertSilence:
    """Record a time-boxed silence of one kind (in one office, or everywhere), or of one alert row (`alert_key`)."""
    row = AlertSilence(kind=kind, office=office, starts_at=starts_at, until=until, created_by=by, reason=reason,
                       alert_key=alert_key)
    session.add(row)
    session.flush()
    after = {"kind": kind, "office": office, "starts_at": starts_at.isoformat(), "until": until.isoformat(),
             "reason": reason}
    if alert_key is not None:
        after["alert_key"] = alert_key
    session.add(AuditEvent(at=starts_at, actor=by, action="silence", entity="alert_silence", entity_ref=str(row.id),
                           before=None, after=after))
    session.flush()
    return row


def active_silences(session: Session, *, as_of: datetime) -> list[AlertSilence]:
    """Silences in force at `as_of`."""
    return list(session.scalars(select(AlertSilence).where(AlertSilence.starts_at <= as_of, AlertSilence.until > as_of)
                                .order_by(AlertSilence.until)))


def silenced_clause(as_of: datetime):
    """SQL truth of "an active silence covers this alert" at `as_of`."""
    return exists().where(
        AlertSilence.kind == Alert.kind,
        or_(AlertSilence.office.is_(None), AlertSilence.office == Alert.office),
        or_(AlertSilence.alert_key.is_(None), AlertSilence.alert_key == Alert.dedupe_key),
        AlertSilence.starts_at <= as_of, AlertSilence.until > as_of,
    )


def acked_clause():
    """SQL truth of "acknowledged at its current level"."""
    return and_(Alert.acked_at.is_not(None), Alert.acked_level == Alert.level)


def status_expr(as_of: datetime):
    """The listing status of a row at `as_of`: pending|sent|resolved|acked|silenced."""
    return case(
        (Alert.resolved_at.is_not(None), "resolved"),
        (acked_clause(), "acked"),
        (Alert.sent_at.is_not(None), "sent"),
        (silenced_clause(as_of), "silenced"),
        else_="pending",
    )


@dataclass(frozen=True)
class AlertView:
    """One outbox row as operators see it (never any delivery URL)."""

    key: str
    alert_key: str
    kind: str
    level: int
    severity: int
    tag: str
    office: str | None
    order: str | None
    status: str
    attempts: int
    first_seen: datetime
    last_seen: datetime
    sent_at: datetime | None
    next_attempt_at: datetime | None
    last_error: str | None
    acked_by: str | None


def list_alerts(session: Session, *, as_of: datetime, open_only: bool = False, limit: int = 1000) -> list[AlertView]:
    """Outbox rows, newest first; `open_only` keeps those not resolved."""
    status = status_expr(as_of).label("status")
    q = select(Alert, status).order_by(Alert.last_seen.desc(), Alert.id.desc()).limit(limit)
    if open_only:
        q = q.where(Alert.resolved_at.is_(None))
    out = []
    for alert, st in session.execute(q):
        out.append(AlertView(
            key=(alert.payload or {}).get("key") or alert.dedupe_key.rsplit("@", 1)[0],
            alert_key=alert.dedupe_key, kind=alert.kind, level=alert.level, severity=alert.severity,
            tag=alert.tag, office=alert.office, order=alert.order_number, status=st, attempts=alert.attempts,
            first_seen=alert.first_seen, last_seen=alert.last_seen, sent_at=alert.sent_at,
            next_attempt_at=alert.next_attempt_at, last_error=alert.last_error, acked_by=alert.acked_by))
    return out


def counts_by_status(session: Session, *, as_of: datetime) -> dict[str, int]:
    """How many rows are in each status at `as_of`."""
    status = status_expr(as_of)
    rows = session.execute(select(status, func.count()).group_by(status)).all()
    return {s: 0 for s in STATUSES} | {s: n for s, n in rows}
