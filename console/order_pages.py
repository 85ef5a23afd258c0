"""The order page (the whole story, as `bianmin orders show`) and CS's follow-ups: the reply to a phone request
and the callback, through the desk's own operations and refusals (models.desk), as the CLI records them."""
from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.exc import IntegrityError

from console import access, accounts
from console.context import Console
from console.text import Refused
from models import desk
from models.errors import DomainError
from models.ledger import values
from models.ledger.db import transaction
from models.ledger.tables import CALLBACK_OUTCOMES
from notifications.masking import mask_phone, mask_text

log = logging.getLogger("bianmin.console")


def register(app: FastAPI, c: Console) -> None:
    rt, settings = c.rt, c.settings

    def story_for(s, user: accounts.Account, number: str):
        from models.desk.story import order_story

        try:
            story = order_story(s, number=number)
        except DomainError as exc:
            raise Refused.of(exc, status=404) from None
        if not access.may_see_order(user, story.request.office):
            raise Refused("console.order.other_office", status=403)
        return story

    def order_page(request: Request, user: accounts.Account, number: str, *, notice: str | None = None,
                   error: str | None = None, status_code: int = 200) -> Response:
        with rt.sessions() as s:
            story = story_for(s, user, number)
        cs = access.is_cs_of(user, story.request.office)
        r = story.request
        request_view = {
            "number": r.number, "office": r.office, "channel": r.channel, "received_at": c.local(r.received_at),
            "received_by": r.received_by, "resident": r.resident, "address": r.address,
            "phone": r.phone if cs else mask_phone(r.phone), "category": r.category,
            "description": r.description if cs else mask_text(r.description), "agreed_fee": r.agreed_fee,
            "replied_at": c.local(r.replied_at), "replied_by": r.replied_by}
        open_callbacks = [cb.order for cb in story.callbacks if cb.done_at is None]
        return c.page(request, "order.html.j2", status=status_code, number=number, story=story, r=request_view,
                      cs=cs, staff=user.staff_code, open_callbacks=open_callbacks, outcomes=CALLBACK_OUTCOMES,
                      needs_reply=r.channel == "phone" and r.replied_at is None, notice=notice, error=error,
                      mask=(lambda text: text) if cs else mask_text)

    @app.get("/orders/{number}", response_class=HTMLResponse)
    def order_detail(request: Request, number: str, done: str | None = None, rework: str | None = None) -> Response:
        user = c.user_of(request)
        notice = None
        if done == "reply":
            notice = c.text("console.order.reply_done")
        elif done == "callback":
            notice = c.text("console.order.callback_done")
            if rework:
                notice += " " + c.text("console.order.rework_done", order=values.shown(rework))
        return order_page(request, user, number, notice=notice)

    def desk_action(request: Request, csrf: str, number: str, action: str,
                    op: Callable[[Any, str, Any], Any]) -> tuple[accounts.Account, Any] | Response:
        """Checks shared by the follow-ups, then `op(session, staff_code)` in one transaction; a refusal of the
        desk is shown on the order page in the clerk's words and changes nothing."""
        c.check_csrf(request, csrf)
        user = c.user_of(request)
        with rt.sessions() as s:
            story = story_for(s, user, number)
        if not access.is_cs_of(user, story.request.office):
            log.warning("console: %s (%s) refused %s on %s", user.login, user.role, action, number)
            raise Refused("console.order.cs_only", status=403)
        if not user.staff_code:
            raise Refused("console.order.staff_needed", status=403)
        try:
            with transaction(rt.sessions) as s:
                out = op(s, user.staff_code, story)
                c.audit(s, user, action, "service_request", story.request.number, {"number": number})
        except Refused:
            raise
        except DomainError as exc:
            return order_page(request, user, number, error=exc.message(c.locale), status_code=400)
        except IntegrityError:
            return order_page(request, user, number, status_code=409, error=c.text("console.order.conflict"))
        log.info("console: %s recorded %s on %s", user.login, action, number)
        return user, out

    @app.post("/orders/{number}/reply")
    def order_reply(request: Request, number: str, csrf: str = Form("")) -> Response:
        def op(s, staff: str, story):
            return desk.reply(s, request=story.request.number, by=staff, at=c.now())

        done = desk_action(request, csrf, number, "reply", op)
        if isinstance(done, Response):
            return done
        return RedirectResponse(f"/orders/{quote(number)}?done=reply", status_code=303)

    @app.post("/orders/{number}/callback")
    def order_callback(request: Request, number: str, csrf: str = Form(""), order: str = Form(""),
                       outcome: str = Form(""), note: str = Form("")) -> Response:
        if outcome not in CALLBACK_OUTCOMES:
            c.check_csrf(request, csrf)
            user = c.user_of(request)
            return order_page(request, user, number, status_code=400, error=c.text("console.order.no_outcome"))

        def op(s, staff: str, story):
            target = order or number
            if target not in {o.number for o in story.orders}:  # the form names an order of this job only
                raise Refused("console.order.not_this_job", status=400)
            return desk.callback(s, order=target, by=staff, outcome=outcome, at=c.now(),
                                 calendar=rt.calendar, note=note.strip() or None,
                                 callback_workdays=settings.callback_workdays,
                                 rework_within=timedelta(hours=settings.rework_due_hours))

        done = desk_action(request, csrf, number, "callback", op)
        if isinstance(done, Response):
            return done
        rework = done[1].rework_order
        suffix = f"&rework={quote(rework.number)}" if rework is not None else ""
        return RedirectResponse(f"/orders/{quote(number)}?done=callback{suffix}", status_code=303)
