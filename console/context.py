"""What every console page shares: the runtime, "now", the locale's words, templates, the session's user, CSRF,
the audit trail. Built once by create_app (console/app.py) and handed to each page module's `register`."""
from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from console import access, accounts
from console.text import Refused, text, text_or
from models import texts
from flows.runtime import Runtime
from models.ledger import values
from models.ledger.tables import AuditEvent

HERE = Path(__file__).parent


class NeedLogin(Exception):
    """No (or no longer a valid) session: go to the login page, show nothing."""


class Console:
    def __init__(self, rt: Runtime, now: Callable[[], datetime]) -> None:
        self.rt, self.settings, self.now = rt, rt.settings, now
        self.locale = rt.settings.locale
        self._units = tuple(texts.words(f"console.{u}", self.locale) for u in ("days", "hours", "minutes"))
        self.templates = Jinja2Templates(directory=HERE / "templates")
        self.templates.env.globals.update(
            text=self.text, locale=self.locale, local=self.local, html_lang="en" if self.locale == "en" else "zh-CN",
            status_word=lambda status: text_or(self.locale, f"console.status.{status}", status),
            role_name=lambda role: text_or(self.locale, f"console.role.{role}", role),
            nav_pages=lambda user: [(p, self.text(f"console.nav.{p}")) for p in access.pages_of(user)])

    def text(self, code: str, **values: Any) -> str:
        return text(self.locale, code, **values)

    def local(self, moment: datetime | str | None) -> str:
        """A moment as the office reads it (local time, to the minute)."""
        if not moment:
            return ""
        if isinstance(moment, str):
            try:
                moment = datetime.fromisoformat(moment)
            except ValueError:
                return values.shown(moment)
        # isoformat cut to the minute: the same text as strftime("%Y-%m-%d %H:%M"), at two thirds of its cost
        if moment.tzinfo is None:
            return moment.isoformat(" ", "minutes")
        return self.rt.calendar.local(moment).isoformat(" ", "minutes")[:16]

    def duration(self, minutes: float) -> str:
        days, rest = divmod(max(int(minutes), 0), 24 * 60)
        hours, mins = divmod(rest, 60)
        d, h, m = self._units  # formatted here: a page of cards calls this once per card
        parts = [d.format(n=days)] if days else []
        if hours or days:
            parts.append(h.format(n=hours))
        parts.append(m.format(n=mins))
        return " ".join(parts)

    def parse_local(self, value: str) -> datetime | None:
        """A time typed in a form (local when it names no zone); None when empty."""
        value = (value or "").strip()
        if not value:
            return None
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise Refused("console.bad_time", value=value) from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=self.rt.calendar.tz)

    # -- sessions and forms ---------------------------------------------------------------------------------

    @staticmethod
    def csrf_token(request: Request) -> str:
        token = request.session.get("csrf")
        if not token:
            token = request.session["csrf"] = secrets.token_urlsafe(32)
        return token

    @staticmethod
    def check_csrf(request: Request, sent: str | None) -> None:
        expected = request.session.get("csrf")
        if not expected or not sent or not secrets.compare_digest(str(expected), str(sent)):
            raise Refused("console.csrf", status=403)

    def page(self, request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        context.setdefault("user", getattr(request.state, "user", None))
        context["csrf"] = self.csrf_token(request)
        response = self.templates.TemplateResponse(request, name, context, status_code=status)
        response.headers["Cache-Control"] = "no-store"  # a shared phone's back button must not show a page
        return response

    def message(self, request: Request, status: int, title: str, text: str, *,
                link: str | None = None) -> HTMLResponse:
        return self.page(request, "message.html.j2", status=status, title=title, body=text, link=link)

    def user_of(self, request: Request, s=None) -> accounts.Account:
        """The session's user; `s`: the page's own database session (one connection per request, not two)."""
        user_id = request.session.get("uid")
        if not isinstance(user_id, int):
            raise NeedLogin()
        if s is not None:
            user = accounts.get_account(s, user_id)
        else:
            with self.rt.sessions() as own:
                user = accounts.get_account(own, user_id)
        if user is None or request.session.get("login") != user.login:
            request.session.pop("uid", None)
            raise NeedLogin()
        request.state.user = user
        return user

    def user_for(self, request: Request, page: str) -> accounts.Account:
        """The session's user when their role may open `page` (console/access.py PAGE_ROLES); else a 403 page."""
        user = self.user_of(request)
        if not access.may_open(user, page):
            raise Refused("console.page_refused", status=403, page=self.text(f"console.nav.{page}"),
                          role=text_or(self.locale, f"console.role.{user.role}", user.role))
        return user

    def audit(self, s, user: accounts.Account, action: str, entity: str, ref: str,
              after: dict | None = None) -> None:
        s.add(AuditEvent(at=self.now(), actor=user.name, action=action, entity=entity, entity_ref=ref[:60],
                         before=None, after={"login": user.login, "via": "console", **(after or {})}))

