"""The console's web application: server-rendered pages and POST forms (FastAPI + Jinja2).

Rules every route keeps:
- GET never changes anything (mail scanners and chat previews open links); every change is a POST carrying the
  session's CSRF token.
- Nothing is shown before a login: a page asked for without one redirects to /login and carries no data.
- What a user sees is filtered by role and offices (console/access.py); a resident's full phone only to CS of
  that office. Refusals are short pages in the configured locale, never a trace.
- Acks, silences and the desk's follow-ups go through the same functions as the CLI (notifications.outbox,
  models.desk), in one transaction each, and so write the same audit events, naming the user.
"""
from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from fastapi import FastAPI, Form, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy import and_, func, or_, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware

from console import access, accounts
from console.links import LinkExpired, LinkInvalid, read_alert_token
from console.secret import secret_key
from console.text import Refused, pick
from flows.runtime import Runtime
from models import desk, findings
from models.errors import DomainError
from models.ledger import values
from models.ledger.db import transaction
from models.ledger.tables import CALLBACK_OUTCOMES, Alert, AlertSilence, AuditEvent, ServiceRequest
from notifications import outbox
from notifications.masking import mask_facts, mask_phone, mask_text

log = logging.getLogger("bianmin.console")
HERE = Path(__file__).parent
SESSION_COOKIE = "bianmin_session"
SESSION_HOURS = 12
FAILED_LOGIN_PAUSE = 0.5  # seconds every failed login costs the one who sent it
PAGE_LIMIT = 500
VIEWS = ("open", "acked", "silenced", "history")


class NeedLogin(Exception):
    """No (or no longer a valid) session: go to the login page, show nothing."""


@dataclass(frozen=True)
class AlertRow:
    """One alert as a page shows it: every text already masked for this user."""

    id: int
    key: str
    kind: str
    label: str
    office: str | None
    level: int
    severity: int
    tag: str
    status: str
    order: str | None
    request: str | None
    first_seen: str
    last_seen: str
    due: str
    overdue: str
    holder: str
    resident: str
    phone: str
    address: str
    acked_by: str | None
    acked_at: str
    resolved_at: str
    facts: list[tuple[str, str]]


_FACT_LABELS = {
    "order_number": ("通知单", "Order"), "request_number": ("登记单", "Request"), "resident": ("住户", "Resident"),
    "phone": ("电话", "Phone"), "address": ("地址", "Address"), "community": ("小区", "Community"),
    "holder": ("经办人", "Holder"), "worker": ("维修工", "Worker"), "department": ("部门", "Department"),
    "due_at": ("应办时间", "Due"), "escalates_at": ("升级时间", "Escalates"), "received_at": ("来电时间", "Received"),
    "scheduled_for": ("约定时间", "Scheduled"), "callback_done_at": ("回访时间", "Callback done"),
    "rework_of": ("返修自", "Rework of"), "collector": ("收款人", "Collector"), "amount": ("金额", "Amount"),
    "day": ("日期", "Day"), "handover": ("交款单", "Handover"), "number": ("票据号", "Receipt"),
}
_TIME_FACTS = {"escalates_at", "received_at", "scheduled_for", "callback_done_at"}
_STATUS_WORDS = {"pending": ("待发送", "pending"), "sent": ("已发送", "sent"), "resolved": ("已解除", "resolved"),
                 "acked": ("已确认", "acked"), "silenced": ("已静默", "silenced")}
_SHOWN_APART = {"office", "phone", "resident", "address", "holder", "due_at", "overdue_minutes", "order_number",
                "request_number", "callback_id"}


def create_app(rt: Runtime, *, clock: Callable[[], datetime] | None = None) -> FastAPI:
    """The console for one runtime (settings, engine, calendar). `clock` gives "now" (tests replay a moment)."""
    settings = rt.settings
    locale = settings.locale
    now: Callable[[], datetime] = clock or (lambda: datetime.now(rt.calendar.tz))
    secure = settings.public_url.startswith("https://")

    app = FastAPI(title="bianmin", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(SessionMiddleware, secret_key=secret_key(settings), session_cookie=SESSION_COOKIE,
                       max_age=SESSION_HOURS * 3600, same_site="lax", https_only=secure)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    templates = Jinja2Templates(directory=HERE / "templates")

    def _(zh: str, en: str) -> str:
        return pick(locale, zh, en)

    def local(moment: datetime | str | None) -> str:
        if not moment:
            return ""
        if isinstance(moment, str):
            try:
                moment = datetime.fromisoformat(moment)
            except ValueError:
                return values.shown(moment)
        if moment.tzinfo is None:
            return moment.strftime("%Y-%m-%d %H:%M")
        return rt.calendar.local(moment).strftime("%Y-%m-%d %H:%M")

    def duration(minutes: float) -> str:
        minutes = int(minutes)
        days, rest = divmod(max(minutes, 0), 24 * 60)
        hours, mins = divmod(rest, 60)
        parts = [f"{days}{_('天', 'd')}"] if days else []
        if hours or days:
            parts.append(f"{hours}{_('小时', 'h')}")
        parts.append(f"{mins}{_('分', 'min')}")
        return " ".join(parts)

    templates.env.globals.update(_=_, locale=locale, local=local, status_word=lambda s: pick(
        locale, *_STATUS_WORDS.get(s, (s, s))), role_name=lambda r: pick(
        locale, *access.ROLE_NAMES.get(r, (r, r))), html_lang="en" if locale == "en" else "zh-CN")

    # -- plumbing ---------------------------------------------------------------------------------------

    def csrf_token(request: Request) -> str:
        token = request.session.get("csrf")
        if not token:
            token = request.session["csrf"] = secrets.token_urlsafe(32)
        return token

    def check_csrf(request: Request, sent: str | None) -> None:
        expected = request.session.get("csrf")
        if not expected or not sent or not secrets.compare_digest(str(expected), str(sent)):
            raise Refused("表单已过期或不是从本站提交的,请刷新页面后重试",
                          "This form expired or was not sent from this site: reload the page and try again",
                          status=403)

    def page(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        context.setdefault("user", getattr(request.state, "user", None))
        context["csrf"] = csrf_token(request)
        response = templates.TemplateResponse(request, name, context, status_code=status)
        response.headers["Cache-Control"] = "no-store"  # a shared phone's back button must not show a page
        return response

    def message(request: Request, status: int, title: str, text: str, *, link: str | None = None) -> HTMLResponse:
        return page(request, "message.html.j2", status=status, title=title, text=text, link=link)

    def user_of(request: Request) -> accounts.Account:
        user_id = request.session.get("uid")
        if not isinstance(user_id, int):
            raise NeedLogin()
        with rt.sessions() as s:
            user = accounts.get_account(s, user_id)
        if user is None or request.session.get("login") != user.login:
            request.session.pop("uid", None)
            raise NeedLogin()
        request.state.user = user
        return user

    def audit(s, user: accounts.Account, action: str, entity: str, ref: str, after: dict | None = None) -> None:
        s.add(AuditEvent(at=now(), actor=user.name, action=action, entity=entity, entity_ref=ref[:60], before=None,
                         after={"login": user.login, "via": "console", **(after or {})}))

    @app.exception_handler(NeedLogin)
    async def _need_login(request: Request, exc: NeedLogin) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)

    @app.exception_handler(Refused)
    async def _refused(request: Request, exc: Refused) -> Response:
        return message(request, exc.status, _("不能办理", "Refused"), exc.message(locale))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            return message(request, 404, _("找不到", "Not found"), _("没有这个页面。", "There is no such page."),
                           link="/alerts")
        return message(request, exc.status_code, _("不能办理", "Refused"), _("请求无效。", "Invalid request."))

    @app.exception_handler(RequestValidationError)
    async def _bad_request(request: Request, exc: RequestValidationError) -> Response:
        # FastAPI's own answer echoes the input back as JSON; a malformed address gets a page like any refusal
        return message(request, 400, _("请求无效", "Invalid request"), _("地址或表单不对。", "Malformed address or form."),
                       link="/alerts")

    @app.middleware("http")
    async def _headers(request: Request, call_next):
        response = await call_next(request)
        # no framing (a hidden ack button under a decoy page), no scripts or styles but ours, forms post here only
        response.headers.setdefault("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'; "
                                    "form-action 'self'; base-uri 'none'")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        return response

    @app.exception_handler(SQLAlchemyError)
    async def _db_error(request: Request, exc: SQLAlchemyError) -> Response:
        log.error("console: database error %s", type(exc).__name__)  # never the statement: it holds values
        return message(request, 503, _("暂时无法办理", "Unavailable"),
                       _("台账数据库暂时无法使用,请稍后再试。", "The ledger database cannot be used right now; try again later."))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.error("console: %s on %s %s", type(exc).__name__, request.method, request.url.path)
        return message(request, 500, _("出错了", "Error"), _("系统出错,已记录。", "Something went wrong; it was logged."))

    def safe_next(target: str | None) -> str:
        # only a path of this site: an open redirect would make our login page a phishing tool
        if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
            return "/alerts"
        parts = urlsplit(target)
        return target if not parts.scheme and not parts.netloc else "/alerts"

    # -- login ------------------------------------------------------------------------------------------

    @app.get("/", include_in_schema=False)
    def root() -> Response:
        return RedirectResponse("/alerts", status_code=303)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/login", response_class=HTMLResponse)
    def login_form(request: Request, next: str | None = None) -> Response:
        return page(request, "login.html.j2", next=safe_next(next), error=None, user=None)

    @app.post("/login", response_class=HTMLResponse)
    async def login(request: Request, login: str = Form(""), password: str = Form(""), csrf: str = Form(""),
                    next: str = Form("/alerts")) -> Response:
        check_csrf(request, csrf)
        login = login.strip()[:200]

        def check() -> accounts.LoginResult:  # argon2 and the database off the event loop
            with transaction(rt.sessions) as s:
                return accounts.authenticate(s, login=login, password=password[:accounts.PASSWORD_MAX], at=now())

        result = await run_in_threadpool(check)
        if result.account is None:
            log.warning("console: failed login for %s from %s", repr(login) if result.known else "an unknown login",
                        request.client.host if request.client else "?")
            await asyncio.sleep(FAILED_LOGIN_PAUSE)
            if result.wait > timedelta(0):
                error = _(f"尝试次数过多,请 {int(result.wait.total_seconds()) + 1} 秒后再试",
                          f"Too many attempts: try again in {int(result.wait.total_seconds()) + 1} s")
            else:
                error = _("登录名或密码不对", "Wrong login or password")
            return page(request, "login.html.j2", status=401, next=safe_next(next), error=error, user=None,
                        login=login)
        request.session.clear()  # a new session on login: nothing set before it (fixation) carries over
        request.session.update({"uid": result.account.id, "login": result.account.login,
                                "csrf": secrets.token_urlsafe(32)})
        return RedirectResponse(safe_next(next), status_code=303)

    @app.post("/logout")
    def logout(request: Request, csrf: str = Form("")) -> Response:
        check_csrf(request, csrf)
        try:
            user = user_of(request)
        except NeedLogin:
            user = None
        if user is not None:
            with transaction(rt.sessions) as s:
                audit(s, user, "logout", "user", user.login)
        request.session.clear()
        return RedirectResponse("/login", status_code=303)

    # -- alerts -----------------------------------------------------------------------------------------

    def row_of(alert: Alert, user: accounts.Account, status: str, phones: dict[str, str], at: datetime) -> AlertRow:
        payload = alert.payload or {}
        facts = mask_facts(payload.get("facts") or {})
        if not isinstance(facts, dict):
            facts = {}
        request_no = facts.get("request_number")
        phone = mask_phone(facts.get("phone")) if facts.get("phone") else ""
        if access.is_cs_of(user, alert.office) and request_no in phones:
            phone = phones[request_no]  # CS of that office calls the resident back: the ledger's full number
        due = facts.get("due_at")
        overdue = ""
        if due:
            try:
                overdue = duration((at - datetime.fromisoformat(due)).total_seconds() / 60)
            except (TypeError, ValueError):
                overdue = ""
        kind = findings.BY_NAME.get(alert.kind)
        label = kind.label(locale) if kind is not None and kind.label is not None else alert.kind
        shown = [(pick(locale, *_FACT_LABELS.get(k, (k, k))),
                  local(v) if k in _TIME_FACTS else values.shown(mask_text(str(v)), 200))
                 for k, v in facts.items() if k not in _SHOWN_APART and v not in (None, "")
                 and isinstance(v, (str, int, float))]
        return AlertRow(
            id=alert.id, key=alert.dedupe_key, kind=alert.kind, label=label, office=alert.office, level=alert.level,
            severity=alert.severity, tag=alert.tag, status=status, order=alert.order_number or facts.get("order_number"),
            request=request_no, first_seen=local(alert.first_seen), last_seen=local(alert.last_seen), due=local(due),
            overdue=overdue, holder=str(facts.get("holder") or ""), resident=str(facts.get("resident") or ""),
            phone=phone, address=str(facts.get("address") or ""), acked_by=alert.acked_by,
            acked_at=local(alert.acked_at), resolved_at=local(alert.resolved_at), facts=shown)

    def full_phones(s, user: accounts.Account, alerts: list[Alert]) -> dict[str, str]:
        """request number -> the ledger's phone, for the alerts whose office this user is CS of."""
        wanted = {(a.payload or {}).get("facts", {}).get("request_number") for a in alerts
                  if access.is_cs_of(user, a.office)}
        wanted.discard(None)
        if not wanted:
            return {}
        return dict(s.execute(select(ServiceRequest.number, ServiceRequest.phone)
                              .where(ServiceRequest.number.in_(sorted(wanted)))).all())

    def view_clause(view: str, at: datetime):
        acked, silenced = outbox.acked_clause(), outbox.silenced_clause(at)
        if view == "acked":
            return and_(Alert.resolved_at.is_(None), acked)
        if view == "silenced":
            return and_(Alert.resolved_at.is_(None), ~acked, silenced)
        if view == "history":
            return or_(Alert.resolved_at.is_not(None), Alert.acked_at.is_not(None))
        return and_(Alert.resolved_at.is_(None), ~acked, ~silenced)

    @app.get("/alerts", response_class=HTMLResponse)
    def alerts_page(request: Request, view: str = "open", office: str | None = None,
                    kind: str | None = None) -> Response:
        user = user_of(request)
        view = view if view in VIEWS else "open"
        at = now()
        status = outbox.status_expr(at).label("status")
        where = [access.visible_alerts(user), view_clause(view, at)]
        if office:
            where.append(Alert.office == office)
        if kind:
            where.append(Alert.kind == kind)
        if view == "history":
            order = (func.coalesce(Alert.resolved_at, Alert.acked_at).desc(), Alert.id.desc())
        else:  # most severe first, then the oldest
            order = (Alert.severity.desc(), Alert.level.desc(), Alert.first_seen, Alert.id)
        with rt.sessions() as s:
            found = s.execute(select(Alert, status).where(*where).order_by(*order).limit(PAGE_LIMIT + 1)).all()
            alerts = [a for a, _st in found[:PAGE_LIMIT]]
            phones = full_phones(s, user, alerts)
            rows = [row_of(a, user, st, phones, at) for a, st in found[:PAGE_LIMIT]]
            counts = dict(s.execute(select(Alert.office, func.count()).where(
                access.visible_alerts(user), view_clause(view, at)).group_by(Alert.office)).all())
            silences = []
            if view in ("silenced", "history"):
                q = select(AlertSilence).order_by(AlertSilence.until.desc()).limit(100)
                if not user.every_office:
                    q = q.where(AlertSilence.office.in_(list(user.offices)))
                if view == "silenced":
                    q = q.where(AlertSilence.starts_at <= at, AlertSilence.until > at)
                silences = [{"kind": x.kind, "office": x.office, "key": x.alert_key, "until": local(x.until),
                             "by": x.created_by, "reason": x.reason} for x in s.scalars(q)]
        kinds = sorted({r.kind for r in rows})
        return page(request, "alerts.html.j2", rows=rows, view=view, office=office, kind=kind, kinds=kinds,
                    offices=sorted((o or "-", n) for o, n in counts.items()), more=len(found) > PAGE_LIMIT,
                    silences=silences)

    def visible_alert(s, user: accounts.Account, alert_id: int) -> Alert:
        alert = s.get(Alert, alert_id)
        if alert is None:
            raise Refused("找不到这条提醒", "No such alert", status=404)
        if not access.may_see_alert(user, alert):
            log.warning("console: %s refused alert %s", user.login, alert_id)
            raise Refused("这条提醒不属于您的岗位或服务处", "This alert is not for your role or office", status=403)
        return alert

    def alert_page(request: Request, user: accounts.Account, alert_id: int, *, notice: str | None = None,
                   error: str | None = None, status_code: int = 200) -> Response:
        at = now()
        with rt.sessions() as s:
            alert = visible_alert(s, user, alert_id)
            status = s.scalar(select(outbox.status_expr(at)).where(Alert.id == alert.id))
            row = row_of(alert, user, status, full_phones(s, user, [alert]), at)
            history = [{"at": local(e.at), "actor": e.actor, "action": e.action,
                        "after": mask_facts(e.after or {})} for e in s.scalars(
                select(AuditEvent).where(
                    or_(and_(AuditEvent.entity == "alert",
                             AuditEvent.entity_ref.in_({alert.dedupe_key[:60], row_finding_key(alert)[:60]})),
                        and_(AuditEvent.entity == "alert_page", AuditEvent.entity_ref == str(alert.id))))
                .order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(50))]
        default_until = (at + timedelta(hours=24)).astimezone(rt.calendar.tz).strftime("%Y-%m-%dT%H:%M")
        may_follow_up = access.is_cs_of(user, row.office) and row.kind in FOLLOW_UP_KINDS and bool(
            row.order or row.request)
        return page(request, "alert.html.j2", status=status_code, row=row, history=history, notice=notice,
                    error=error, default_until=default_until, may_follow_up=may_follow_up)

    @app.get("/alerts/{alert_id}", response_class=HTMLResponse)
    def alert_detail(request: Request, alert_id: int, done: str | None = None) -> Response:
        user = user_of(request)
        notice = {"ack": _("已确认,不再重复提醒(级别变化时会再次提醒)。", "Acknowledged: no more reminders unless its level changes."),
                  "silence": _("已静默。", "Silenced.")}.get(done or "")
        return alert_page(request, user, alert_id, notice=notice)

    @app.post("/alerts/{alert_id}/ack")
    def alert_ack(request: Request, alert_id: int, csrf: str = Form("")) -> Response:
        check_csrf(request, csrf)
        user = user_of(request)
        with transaction(rt.sessions) as s:
            alert = visible_alert(s, user, alert_id)
            if alert.resolved_at is not None:
                raise Refused("这条提醒已解除,无需确认", "This alert is already resolved: nothing to acknowledge", status=409)
            # the CLI's own operation (`bianmin alerts ack`): same row update and audit event, by the user's name
            outbox.ack(s, key=alert.dedupe_key, by=user.name, at=now())
        log.info("console: %s acknowledged alert %s", user.login, alert_id)
        return RedirectResponse(f"/alerts/{alert_id}?done=ack", status_code=303)

    @app.post("/alerts/{alert_id}/silence")
    def alert_silence(request: Request, alert_id: int, csrf: str = Form(""), scope: str = Form("key"),
                      until: str = Form(""), reason: str = Form("")) -> Response:
        check_csrf(request, csrf)
        user = user_of(request)
        at = now()
        try:
            ends = parse_local(until)
            if ends is None:
                raise Refused("请填写静默截止时间", "Give the time the silence ends")
            if ends <= at:
                raise Refused("静默截止时间必须晚于现在", "The silence must end later than now")
            values.moment(ends, field="until", now=at)
            reason_text = values.text(reason, field=_("原因", "reason"), column=AlertSilence.reason)
            if not reason_text:
                raise Refused("请说明静默原因", "Give a reason for the silence")
            if scope not in ("key", "kind"):
                raise Refused("静默范围不对", "Unknown silence scope")
        except DomainError as exc:
            return alert_page(request, user, alert_id, error=exc.message(locale), status_code=400)
        except Refused as exc:
            return alert_page(request, user, alert_id, error=exc.message(locale), status_code=400)
        with transaction(rt.sessions) as s:
            alert = visible_alert(s, user, alert_id)
            row = outbox.silence(s, kind=alert.kind, office=alert.office, starts_at=at, until=ends, by=user.name,
                                 reason=reason_text, alert_key=alert.dedupe_key if scope == "key" else None)
            audit(s, user, "silence", "alert_page", str(alert.id), {"silence": row.id, "scope": scope,
                                                                    "until": ends.isoformat()})
        log.info("console: %s silenced alert %s (%s)", user.login, alert_id, scope)
        return RedirectResponse(f"/alerts/{alert_id}?done=silence", status_code=303)

    def parse_local(value: str) -> datetime | None:
        value = (value or "").strip()
        if not value:
            return None
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise Refused(f"时间格式不对:{values.shown(value)}", f"Malformed time {values.shown(value)!r}") from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=rt.calendar.tz)

    # -- signed links ---------------------------------------------------------------------------------------

    @app.get("/a/{token}", response_class=HTMLResponse)
    def alert_link(request: Request, token: str) -> Response:
        # the token is checked before the login, so a bad link says so at once; it shows nothing of the alert
        try:
            alert_id = read_alert_token(settings, token)
        except LinkExpired:
            return message(request, 410, _("链接已过期", "Link expired"),
                           _(f"此链接已超过 {settings.link_hours:g} 小时有效期。请登录后在提醒列表中查看。",
                             f"This link is older than {settings.link_hours:g} hours. Log in and find the alert "
                             f"in the list."), link="/alerts")
        except LinkInvalid:
            return message(request, 400, _("链接无效", "Invalid link"),
                           _("此链接不完整或已被改动。请打开提醒中的原始链接,或登录后在提醒列表中查看。",
                             "This link is incomplete or was altered. Open the link from the alert as sent, or log "
                             "in and find the alert in the list."), link="/alerts")
        user_of(request)  # no session: NeedLogin sends the user to /login, then back here
        return RedirectResponse(f"/alerts/{alert_id}", status_code=303)

    # -- orders and the desk's follow-ups -------------------------------------------------------------------

    def story_for(s, user: accounts.Account, number: str):
        from models.story import order_story

        try:
            story = order_story(s, number=number)
        except DomainError as exc:
            raise Refused(exc.message("zh_CN"), exc.message("en"), status=404) from None
        if not access.may_see_order(user, story.request.office):
            raise Refused("这张单据不属于您的服务处", "This order belongs to another office", status=403)
        return story

    def order_page(request: Request, user: accounts.Account, number: str, *, notice: str | None = None,
                   error: str | None = None, status_code: int = 200) -> Response:
        with rt.sessions() as s:
            story = story_for(s, user, number)
        cs = access.is_cs_of(user, story.request.office)
        r = story.request
        request_view = {
            "number": r.number, "office": r.office, "channel": r.channel, "received_at": local(r.received_at),
            "received_by": r.received_by, "resident": r.resident, "address": r.address,
            "phone": r.phone if cs else mask_phone(r.phone), "category": r.category,
            "description": r.description if cs else mask_text(r.description), "agreed_fee": r.agreed_fee,
            "replied_at": local(r.replied_at), "replied_by": r.replied_by}
        open_callbacks = [c.order for c in story.callbacks if c.done_at is None]
        return page(request, "order.html.j2", status=status_code, number=number, story=story, r=request_view,
                    cs=cs, staff=user.staff_code, open_callbacks=open_callbacks, outcomes=CALLBACK_OUTCOMES,
                    needs_reply=r.channel == "phone" and r.replied_at is None, notice=notice, error=error,
                    mask=(lambda text: text) if cs else mask_text)

    @app.get("/orders/{number}", response_class=HTMLResponse)
    def order_detail(request: Request, number: str, done: str | None = None, rework: str | None = None) -> Response:
        user = user_of(request)
        notice = None
        if done == "reply":
            notice = _("已记录回复。", "Reply recorded.")
        elif done == "callback":
            notice = _("已记录回访。", "Callback recorded.")
            if rework:
                notice += " " + _(f"已开无偿返修单 {values.shown(rework)}。", f"Free rework order {values.shown(rework)} issued.")
        return order_page(request, user, number, notice=notice)

    def desk_action(request: Request, csrf: str, number: str, action: str,
                    op: Callable[[Any, str, Any], Any]) -> tuple[accounts.Account, Any] | Response:
        """Checks shared by the follow-ups, then `op(session, staff_code)` in one transaction; a refusal of the
        desk is shown on the order page in the clerk's words and changes nothing."""
        check_csrf(request, csrf)
        user = user_of(request)
        with rt.sessions() as s:
            story = story_for(s, user, number)
        if not access.is_cs_of(user, story.request.office):
            log.warning("console: %s (%s) refused %s on %s", user.login, user.role, action, number)
            raise Refused("只有本服务处的客服可以办理回复和回访", "Only customer service of this office may record "
                          "replies and callbacks", status=403)
        if not user.staff_code:
            raise Refused("您的账号没有对应的员工代码,请管理员用 users add --staff 设置",
                          "Your account has no staff code: ask the administrator to set one (users add --staff)",
                          status=403)
        try:
            rt.calendar
            with transaction(rt.sessions) as s:
                out = op(s, user.staff_code, story)
                audit(s, user, action, "service_request", story.request.number, {"number": number})
        except DomainError as exc:
            return order_page(request, user, number, error=exc.message(locale), status_code=400)
        except IntegrityError:
            return order_page(request, user, number, status_code=409,
                              error=_("与已有记录冲突,请重试", "Conflicts with an existing record, please retry"))
        log.info("console: %s recorded %s on %s", user.login, action, number)
        return user, out

    @app.post("/orders/{number}/reply")
    def order_reply(request: Request, number: str, csrf: str = Form("")) -> Response:
        def op(s, staff: str, story):
            return desk.reply(s, request=story.request.number, by=staff, at=now())

        done = desk_action(request, csrf, number, "reply", op)
        if isinstance(done, Response):
            return done
        return RedirectResponse(f"/orders/{quote(number)}?done=reply", status_code=303)

    @app.post("/orders/{number}/callback")
    def order_callback(request: Request, number: str, csrf: str = Form(""), order: str = Form(""),
                       outcome: str = Form(""), note: str = Form("")) -> Response:
        if outcome not in CALLBACK_OUTCOMES:
            check_csrf(request, csrf)
            user = user_of(request)
            return order_page(request, user, number, status_code=400,
                              error=_("请选择回访结果", "Choose the callback's outcome"))

        def op(s, staff: str, story):
            target = order or number
            if target not in {o.number for o in story.orders}:  # the form names an order of this job only
                raise Refused("回访的通知单不属于这张单据", "That order is not part of this job", status=400)
            return desk.callback(s, order=target, by=staff, outcome=outcome, at=now(),
                                 calendar=rt.calendar, note=note.strip() or None,
                                 callback_workdays=settings.callback_workdays,
                                 rework_within=timedelta(hours=settings.rework_due_hours))

        done = desk_action(request, csrf, number, "callback", op)
        if isinstance(done, Response):
            return done
        rework = done[1].rework_order
        suffix = f"&rework={quote(rework.number)}" if rework is not None else ""
        return RedirectResponse(f"/orders/{quote(number)}?done=callback{suffix}", status_code=303)

    return app


FOLLOW_UP_KINDS = frozenset({findings.REPLY_OVERDUE.name, findings.CALLBACK_OVERDUE.name,
                             findings.REWORK_CALLBACK_MISSING.name, findings.REWORK_MISSING.name})


def row_finding_key(alert: Alert) -> str:
    return (alert.payload or {}).get("key") or alert.dedupe_key.rsplit("@", 1)[0]


