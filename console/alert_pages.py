"""The alerts pages: the list (open, acknowledged, silenced, history), one alert, ack and silence.

Acks and silences go through the CLI's own outbox operations (notifications.outbox), so they write the same
audit events, by the logged-in user's name."""
from __future__ import annotations

import logging
from collections import namedtuple
from dataclasses import dataclass
from datetime import datetime, timedelta

from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import and_, func, or_, select

from console import access, accounts
from console.context import Console
from console.text import Refused, text_or
from models import findings
from models.errors import DomainError
from models.ledger import values
from models.ledger.db import transaction
from models.ledger.tables import Alert, AlertSilence, AuditEvent, ServiceRequest
from notifications import outbox
from notifications.masking import mask_facts, mask_phone, mask_text

log = logging.getLogger("bianmin.console")
PAGE_SIZE = 50  # a phone screen's worth of cards; the rest a page further (?page=2)
MAX_PAGE = 1000
VIEWS = ("open", "acked", "silenced", "history")
FOLLOW_UP_KINDS = frozenset({findings.REPLY_OVERDUE.name, findings.CALLBACK_OVERDUE.name,
                             findings.REWORK_CALLBACK_MISSING.name, findings.REWORK_MISSING.name})
_TIME_FACTS = {"escalates_at", "received_at", "scheduled_for", "callback_done_at"}
# what a card reads: Core rows of these columns (the ORM's objects cost more than a page's own SQL)
_ROW_COLUMNS = (Alert.id, Alert.dedupe_key, Alert.kind, Alert.office, Alert.level, Alert.severity, Alert.tag,
                Alert.order_number, Alert.payload, Alert.first_seen, Alert.last_seen, Alert.acked_by, Alert.acked_at,
                Alert.resolved_at)
# the same as plain tuples: a card reads ~20 fields, and a Row's attribute costs ten times a namedtuple's
_Listed = namedtuple("_Listed", [column.key for column in _ROW_COLUMNS] + ["status"])
_CARD_FACTS = ("request_number", "phone", "due_at", "holder", "order_number", "resident", "address")
_SHOWN_APART = {"office", "phone", "resident", "address", "holder", "due_at", "overdue_minutes", "order_number",
                "request_number", "callback_id"}


@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ costs a setattr call per field, 50 cards a page
class AlertCard:
    """One alert as the list's card shows it: every text already masked for this user."""

    id: int
    kind: str
    label: str
    office: str | None
    level: int
    severity: int
    tag: str
    status: str
    order: str | None
    request: str | None
    due: str
    overdue: str
    holder: str
    resident: str
    phone: str
    address: str
    acked_by: str | None
    acked_at: str
    resolved_at: str


@dataclass(slots=True)
class AlertRow(AlertCard):
    """One alert as its own page shows it: the card, its key and times, and every other fact."""

    key: str
    first_seen: str
    last_seen: str
    facts: list[tuple[str, str]]


def row_finding_key(alert: Alert) -> str:
    return (alert.payload or {}).get("key") or alert.dedupe_key.rsplit("@", 1)[0]


def view_clause(view: str, at: datetime):
    acked, silenced = outbox.acked_clause(), outbox.silenced_clause(at)
    if view == "acked":
        return and_(Alert.resolved_at.is_(None), acked)
    if view == "silenced":
        return and_(Alert.resolved_at.is_(None), ~acked, silenced)
    if view == "history":
        return or_(Alert.resolved_at.is_not(None), Alert.acked_at.is_not(None))
    return and_(Alert.resolved_at.is_(None), ~acked, ~silenced)


def full_phones(s, user: accounts.Account, alerts: list) -> dict[str, str]:
    """request number -> the ledger's phone, for the alerts whose office this user is CS of."""
    wanted = {(a.payload or {}).get("facts", {}).get("request_number") for a in alerts
              if access.is_cs_of(user, a.office)}
    wanted.discard(None)
    if not wanted:
        return {}
    return dict(s.execute(select(ServiceRequest.number, ServiceRequest.phone)
                          .where(ServiceRequest.number.in_(sorted(wanted)))).all())


def _card(c: Console, alert, user: accounts.Account, status: str, phones: dict[str, str], at: datetime,
          facts: dict, labels: dict[str, str]) -> dict:
    """A card's fields from an Alert or a row of _ROW_COLUMNS and its masked facts."""
    payload = alert.payload or {}
    request_no = facts.get("request_number")
    phone = mask_phone(facts.get("phone")) if facts.get("phone") else ""
    if access.is_cs_of(user, alert.office) and request_no in phones:
        phone = phones[request_no]  # CS of that office calls the resident back: the ledger's full number
    # the finding's common fields (due time, holder) sit beside its facts in the payload (outbox._facts)
    due = payload.get("due_at") or facts.get("due_at")
    holder = payload.get("holder") or facts.get("holder")
    overdue = ""
    if due:
        try:
            overdue = c.duration((at - datetime.fromisoformat(due)).total_seconds() / 60)
        except (TypeError, ValueError):
            overdue = ""
    label = labels.get(alert.kind)
    if label is None:
        kind = findings.BY_NAME.get(alert.kind)
        label = labels[alert.kind] = (kind.label(c.locale) if kind is not None and kind.label is not None
                                      else alert.kind)
    return dict(
        id=alert.id, kind=alert.kind, label=label, office=alert.office, level=alert.level,
        severity=alert.severity, tag=alert.tag, status=status, order=alert.order_number or facts.get("order_number"),
        request=request_no, due=c.local(due), overdue=overdue, holder=str(holder or ""),
        resident=str(facts.get("resident") or ""), phone=phone, address=str(facts.get("address") or ""),
        acked_by=alert.acked_by, acked_at=c.local(alert.acked_at), resolved_at=c.local(alert.resolved_at))


def card_of(c: Console, alert, user: accounts.Account, status: str, phones: dict[str, str], at: datetime,
            labels: dict[str, str]) -> AlertCard:
    """The list's card: only the facts it shows are masked and formatted (a page has 50 cards; the rest of
    each alert's facts belong to its own page)."""
    raw = (alert.payload or {}).get("facts") or {}
    facts = {k: raw[k] for k in _CARD_FACTS if k in raw} if isinstance(raw, dict) else {}
    plain = [v for v in facts.values() if isinstance(v, str)]
    # one scan of the card's texts joined by a non-digit: mask_text leaves the whole unchanged only when it
    # would leave each part unchanged (its patterns never span the separator); else each is masked on its own
    joined = "\x00".join(plain)
    if len(plain) != len(facts) or mask_text(joined) != joined:
        facts = {k: mask_facts(v) for k, v in facts.items()}
    return AlertCard(**_card(c, alert, user, status, phones, at, facts, labels))


def row_of(c: Console, alert, user: accounts.Account, status: str, phones: dict[str, str],
           at: datetime) -> AlertRow:
    """An alert's own page: its card, its times and every fact it carries."""
    facts = mask_facts((alert.payload or {}).get("facts") or {})
    if not isinstance(facts, dict):
        facts = {}
    shown = [(text_or(c.locale, f"console.fact.{k}", k),
              c.local(v) if k in _TIME_FACTS else values.shown(mask_text(str(v)), 200))
             for k, v in facts.items() if k not in _SHOWN_APART and v not in (None, "")
             and isinstance(v, (str, int, float))]
    return AlertRow(**_card(c, alert, user, status, phones, at, facts, {}), key=alert.dedupe_key,
                    first_seen=c.local(alert.first_seen), last_seen=c.local(alert.last_seen), facts=shown)


def visible_alert(s, user: accounts.Account, alert_id: int) -> Alert:
    alert = s.get(Alert, alert_id)
    if alert is None:
        raise Refused("console.alert.no_such", status=404)
    if not access.may_see_alert(user, alert):
        log.warning("console: %s refused alert %s", user.login, alert_id)
        raise Refused("console.alert.not_yours", status=403)
    return alert


def register(app: FastAPI, c: Console) -> None:
    rt = c.rt

    @app.get("/alerts", response_class=HTMLResponse)
    def alerts_page(request: Request, view: str = "open", office: str | None = None,
                    kind: str | None = None, page: int = 1) -> Response:
        view = view if view in VIEWS else "open"
        page = min(max(page, 1), MAX_PAGE)
        at = c.now()
        status = outbox.status_expr(at).label("status")
        in_view = view_clause(view, at)  # built once: the list and the office counts share it
        if view == "history":
            order = (func.coalesce(Alert.resolved_at, Alert.acked_at).desc(), Alert.id.desc())
        else:  # most severe first, then the oldest
            order = (Alert.severity.desc(), Alert.level.desc(), Alert.first_seen, Alert.id)
        with rt.sessions() as s:
            user = c.user_of(request, s)
            where = [access.visible_alerts(user), in_view]
            if office:
                where.append(Alert.office == office)
            if kind:
                where.append(Alert.kind == kind)
            found = s.execute(select(*_ROW_COLUMNS, status).where(*where).order_by(*order)
                              .offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE + 1)).all()
            listed = [_Listed._make(a) for a in found[:PAGE_SIZE]]
            phones = full_phones(s, user, listed)
            labels: dict[str, str] = {}  # a kind's label, looked up once per page
            rows = [card_of(c, a, user, a.status, phones, at, labels) for a in listed]
            counts = dict(s.execute(select(Alert.office, func.count()).where(
                access.visible_alerts(user), in_view).group_by(Alert.office)).all())
            silences = []
            if view in ("silenced", "history"):
                q = select(AlertSilence).order_by(AlertSilence.until.desc()).limit(100)
                if not user.every_office:
                    q = q.where(AlertSilence.office.in_(list(user.offices)))
                if view == "silenced":
                    q = q.where(AlertSilence.starts_at <= at, AlertSilence.until > at)
                silences = [{"kind": x.kind, "office": x.office, "key": x.alert_key, "until": c.local(x.until),
                             "by": x.created_by, "reason": x.reason} for x in s.scalars(q)]
        kinds = sorted({r.kind for r in rows})
        return c.page(request, "alerts.html.j2", rows=rows, view=view, office=office, kind=kind, kinds=kinds,
                      offices=sorted((o or "-", n) for o, n in counts.items()), more=len(found) > PAGE_SIZE,
                      silences=silences, page=page, first=(page - 1) * PAGE_SIZE)

    def alert_page(request: Request, user: accounts.Account, alert_id: int, *, notice: str | None = None,
                   error: str | None = None, status_code: int = 200) -> Response:
        at = c.now()
        with rt.sessions() as s:
            alert = visible_alert(s, user, alert_id)
            status = s.scalar(select(outbox.status_expr(at)).where(Alert.id == alert.id))
            row = row_of(c, alert, user, status, full_phones(s, user, [alert]), at)
            history = [{"at": c.local(e.at), "actor": e.actor, "action": e.action,
                        "after": mask_facts(e.after or {})} for e in s.scalars(
                select(AuditEvent).where(
                    or_(and_(AuditEvent.entity == "alert",
                             AuditEvent.entity_ref.in_({alert.dedupe_key[:60], row_finding_key(alert)[:60]})),
                        and_(AuditEvent.entity == "alert_page", AuditEvent.entity_ref == str(alert.id))))
                .order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(50))]
        default_until = (at + timedelta(hours=24)).astimezone(rt.calendar.tz).strftime("%Y-%m-%dT%H:%M")
        may_follow_up = access.is_cs_of(user, row.office) and row.kind in FOLLOW_UP_KINDS and bool(
            row.order or row.request)
        return c.page(request, "alert.html.j2", status=status_code, row=row, history=history, notice=notice,
                      error=error, default_until=default_until, may_follow_up=may_follow_up)

    @app.get("/alerts/{alert_id}", response_class=HTMLResponse)
    def alert_detail(request: Request, alert_id: int, done: str | None = None) -> Response:
        user = c.user_of(request)
        notice = {"ack": c.text("console.alert.acked_notice"),
                  "silence": c.text("console.alert.silenced_notice")}.get(done or "")
        return alert_page(request, user, alert_id, notice=notice)

    @app.post("/alerts/{alert_id}/ack")
    def alert_ack(request: Request, alert_id: int, csrf: str = Form("")) -> Response:
        c.check_csrf(request, csrf)
        user = c.user_of(request)
        with transaction(rt.sessions) as s:
            alert = visible_alert(s, user, alert_id)
            if alert.resolved_at is not None:
                raise Refused("console.alert.already_resolved", status=409)
            # the CLI's own operation (`bianmin alerts ack`): same row update and audit event, by the user's name
            outbox.ack(s, key=alert.dedupe_key, by=user.name, at=c.now())
        log.info("console: %s acknowledged alert %s", user.login, alert_id)
        return RedirectResponse(f"/alerts/{alert_id}?done=ack", status_code=303)

    @app.post("/alerts/{alert_id}/silence")
    def alert_silence(request: Request, alert_id: int, csrf: str = Form(""), scope: str = Form("key"),
                      until: str = Form(""), reason: str = Form("")) -> Response:
        c.check_csrf(request, csrf)
        user = c.user_of(request)
        at = c.now()
        try:
            ends = c.parse_local(until)
            if ends is None:
                raise Refused("console.silence.no_until")
            if ends <= at:
                raise Refused("console.silence.past")
            values.moment(ends, field="until", now=at)
            reason_text = values.text(reason, field=c.text("console.alert.reason"), column=AlertSilence.reason)
            if not reason_text:
                raise Refused("console.silence.no_reason")
            if scope not in ("key", "kind"):
                raise Refused("console.silence.bad_scope")
        except DomainError as exc:  # a Refused too: shown on the alert's page, nothing recorded
            return alert_page(request, user, alert_id, error=exc.message(c.locale), status_code=400)
        with transaction(rt.sessions) as s:
            alert = visible_alert(s, user, alert_id)
            row = outbox.silence(s, kind=alert.kind, office=alert.office, starts_at=at, until=ends, by=user.name,
                                 reason=reason_text, alert_key=alert.dedupe_key if scope == "key" else None)
            c.audit(s, user, "silence", "alert_page", str(alert.id), {"silence": row.id, "scope": scope,
                                                                      "until": ends.isoformat()})
        log.info("console: %s silenced alert %s (%s)", user.login, alert_id, scope)
        return RedirectResponse(f"/alerts/{alert_id}?done=silence", status_code=303)
