"""The console's web application: server-rendered pages and POST forms (FastAPI + Jinja2).

Rules every route keeps:
- GET never changes anything (mail scanners and chat previews open links); every change is a POST carrying the
  session's CSRF token.
- Nothing is shown before a login: a page asked for without one redirects to /login and carries no data.
- What a user sees is filtered by role and offices (console/access.py); a resident's full phone only to CS of
  that office. Refusals are short pages in the configured locale, never a trace.
- Acks, silences and the desk's follow-ups go through the same functions as the CLI (notifications.outbox,
  models.desk), in one transaction each, and so write the same audit events, naming the user.

This module holds the frame (sessions, headers, error pages), the login and the signed links; each page's
routes live in a module of their own (alert_pages, order_pages, cash_page, report_pages, health_page).
"""
from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from urllib.parse import quote, urlsplit

from fastapi import FastAPI, Form, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware

from console import accounts, alert_pages, cash_page, health_page, order_pages, report_pages, signoff_page
from console.context import HERE, Console, NeedLogin
from console.links import LinkExpired, LinkInvalid, read_alert_token
from console.secret import secret_key
from console.text import Refused
from flows.runtime import Runtime
from models.ledger.db import transaction

log = logging.getLogger("bianmin.console")
SESSION_COOKIE = "bianmin_session"
SESSION_HOURS = 12
FAILED_LOGIN_PAUSE = 0.5  # seconds every failed login costs the one who sent it
PAGES = (alert_pages, order_pages, cash_page, report_pages, signoff_page, health_page)


# no framing (a hidden ack button under a decoy page), no scripts or styles but ours, forms post here only
SECURITY_HEADERS = ((b"content-security-policy",
                     b"default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"),
                    (b"x-frame-options", b"DENY"), (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"same-origin"))


class SecurityHeaders:
    """SECURITY_HEADERS on every answer that does not set its own. Plain ASGI: Starlette's @app.middleware("http")
    runs each request through a task group and a stream of its own, ~0.45 ms a request here against ~0.01 ms."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers}
                headers += [(name, value) for name, value in SECURITY_HEADERS if name not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


def create_app(rt: Runtime, *, clock: Callable[[], datetime] | None = None) -> FastAPI:
    """The console for one runtime (settings, engine, calendar). `clock` gives "now" (tests replay a moment)."""
    settings = rt.settings
    c = Console(rt, clock or (lambda: datetime.now(rt.calendar.tz)))
    text, page, message = c.text, c.page, c.message
    secure = settings.public_url.startswith("https://")

    app = FastAPI(title="bianmin", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(SessionMiddleware, secret_key=secret_key(settings), session_cookie=SESSION_COOKIE,
                       max_age=SESSION_HOURS * 3600, same_site="lax", https_only=secure)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    # -- the frame: error pages and headers -------------------------------------------------------------------

    @app.exception_handler(NeedLogin)
    async def _need_login(request: Request, exc: NeedLogin) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)

    @app.exception_handler(Refused)
    async def _refused(request: Request, exc: Refused) -> Response:
        return message(request, exc.status, text("console.refused"), exc.message(c.locale))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            return message(request, 404, text("console.not_found"), text("console.no_page"), link="/alerts")
        return message(request, exc.status_code, text("console.refused"), text("console.invalid_request"))

    @app.exception_handler(RequestValidationError)
    async def _bad_request(request: Request, exc: RequestValidationError) -> Response:
        # FastAPI's own answer echoes the input back as JSON; a malformed address gets a page like any refusal
        return message(request, 400, text("console.bad_request"), text("console.malformed"), link="/alerts")

    app.add_middleware(SecurityHeaders)

    @app.exception_handler(SQLAlchemyError)
    async def _db_error(request: Request, exc: SQLAlchemyError) -> Response:
        log.error("console: database error %s", type(exc).__name__)  # never the statement: it holds values
        return message(request, 503, text("console.unavailable"), text("console.db_down"))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.error("console: %s on %s %s", type(exc).__name__, request.method, request.url.path)
        return message(request, 500, text("console.error"), text("console.error_logged"))

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
        c.check_csrf(request, csrf)
        login = login.strip()[:200]

        def check() -> accounts.LoginResult:  # argon2 and the database off the event loop
            with transaction(rt.sessions) as s:
                return accounts.authenticate(s, login=login, password=password[:accounts.PASSWORD_MAX], at=c.now())

        result = await run_in_threadpool(check)
        if result.account is None:
            log.warning("console: failed login for %s from %s", repr(login) if result.known else "an unknown login",
                        request.client.host if request.client else "?")
            await asyncio.sleep(FAILED_LOGIN_PAUSE)
            if result.wait > timedelta(0):
                error = text("console.login.wait", seconds=int(result.wait.total_seconds()) + 1)
            else:
                error = text("console.login.wrong")
            return page(request, "login.html.j2", status=401, next=safe_next(next), error=error, user=None,
                        login=login)
        request.session.clear()  # a new session on login: nothing set before it (fixation) carries over
        request.session.update({"uid": result.account.id, "login": result.account.login,
                                "csrf": secrets.token_urlsafe(32)})
        return RedirectResponse(safe_next(next), status_code=303)

    @app.post("/logout")
    def logout(request: Request, csrf: str = Form("")) -> Response:
        c.check_csrf(request, csrf)
        try:
            user = c.user_of(request)
        except NeedLogin:
            user = None
        if user is not None:
            with transaction(rt.sessions) as s:
                c.audit(s, user, "logout", "user", user.login)
        request.session.clear()
        return RedirectResponse("/login", status_code=303)

    # -- signed links ---------------------------------------------------------------------------------------

    @app.get("/a/{token}", response_class=HTMLResponse)
    def alert_link(request: Request, token: str) -> Response:
        # the token is checked before the login, so a bad link says so at once; it shows nothing of the alert
        try:
            alert_id = read_alert_token(settings, token)
        except LinkExpired:
            return message(request, 410, text("console.link.expired_title"),
                           text("console.link.expired", hours=settings.link_hours), link="/alerts")
        except LinkInvalid:
            return message(request, 400, text("console.link.invalid_title"), text("console.link.invalid"),
                           link="/alerts")
        c.user_of(request)  # no session: NeedLogin sends the user to /login, then back here
        return RedirectResponse(f"/alerts/{alert_id}", status_code=303)

    for pages in PAGES:
        pages.register(app, c)
    return app
