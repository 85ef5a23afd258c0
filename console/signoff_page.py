"""The sign-off (/signoff/<month>): where the month's report stands with the departments, the signed-in party's
own view of the current version (its figures and the findings that concern it), and its confirm and dispute
forms, through the same operation and refusals as `bianmin tally confirm|dispute`."""
from __future__ import annotations

import json
import logging
from pathlib import Path

from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from console.context import Console
from console.text import Refused
from models.errors import DomainError
from models.ledger.db import transaction
from models.ledger.tables import ReportRun
from models.signoff import queries
from models.signoff.facts import AWAITING, CONFIRMED, CORRECTED, DISPUTED, OPEN, WITHDRAWN
from models.signoff.rules import party_of_role, party_view
from models.tally.facts import GROUP
from notifications.masking import mask_text
from notifications.report import confined, kind_label
from notifications.report_send import CONTENT_FILE

log = logging.getLogger("bianmin.console")
FINDINGS_SHOWN = 200  # a phone screen's worth; the workbook has them all


def register(app: FastAPI, c: Console) -> None:
    rt = c.rt

    def view_of(month: str, version: int, party: str) -> dict | None:
        """The party's view of `version`, from the group report's content as written (None if unreadable)."""
        with rt.sessions() as s:
            run = s.scalars(select(ReportRun).where(ReportRun.month == month, ReportRun.office == GROUP,
                                                    ReportRun.version == version)).first()
        if run is None:
            return None
        try:
            path = confined(c.settings.effective_reports_dir, Path(run.file_path).with_name(CONTENT_FILE))
            return party_view(json.loads(path.read_text(encoding="utf-8")), party)
        except (OSError, ValueError) as exc:
            log.warning("console: the content of %s v%s could not be read: %s", month, version, type(exc).__name__)
            return None

    @app.get("/signoff", response_class=HTMLResponse)
    def signoff_months(request: Request) -> Response:
        c.user_for(request, "signoff")
        with rt.sessions() as s:
            months = queries.months_with_signoff(s)
        if months:
            return RedirectResponse(f"/signoff/{months[0]}", status_code=303)
        return c.message(request, 200, c.text("console.nav.signoff"), c.text("console.signoff.none"))

    @app.get("/signoff/{month}", response_class=HTMLResponse)
    def signoff_page(request: Request, month: str) -> Response:
        user = c.user_for(request, "signoff")
        with rt.sessions() as s:
            status = queries.status(s, month=month) if len(month) == 7 else None
            months = queries.months_with_signoff(s)
        if status is None:
            raise Refused("console.signoff.no_such", status=404)
        party = party_of_role(user.role)
        view = view_of(month, status.version, party) if party else None
        findings = [dict(d, label=kind_label(d["kind"], c.locale) if d["kind"] else d["kind"],
                         detail=mask_text(d.get("detail") or "")) for d in (view or {}).get("findings", [])]
        figures = list(view["figures"][0]) if view and view["figures"] else []
        words = {
            "party": {p.party: c.text(f"console.signoff.party.{p.party}") for p in status.parties},
            "party_state": {s: c.text(f"console.signoff.party_state.{s}") for s in (AWAITING, CONFIRMED, DISPUTED)},
            "ended": {e: c.text(f"console.signoff.ended.{e}") for e in (OPEN, CORRECTED, WITHDRAWN)},
            "state": c.text(f"console.signoff.state.{status.state}"),
            "figure": {k: c.text(f"console.signoff.figure.{k}") for k in figures},
        }
        return c.page(request, "signoff.html.j2", so=status, party=party, view=view, months=months, words=words,
                      figure_keys=figures,
                      findings=findings[:FINDINGS_SHOWN], findings_total=len(findings),
                      may_answer=party is not None and status.state == queries.AWAITING_SIGNOFF)

    def answer(request: Request, month: str, csrf: str, kind: str, version: str, note: str = "",
               order: str = "") -> Response:
        user = c.user_for(request, "signoff")
        c.check_csrf(request, csrf)
        party = party_of_role(user.role)
        if party is None:
            raise Refused("console.signoff.not_a_party", status=403)
        try:
            chosen = int(version)
        except ValueError:
            raise Refused("console.signoff.bad_version", status=400) from None
        try:
            with transaction(rt.sessions) as s:
                queries.give_answer(s, month=month, party=party, who=user.login, answer=kind, at=c.now(),
                                    recorded_at=c.now(), version=chosen, note=note or None,
                                    order_number=order.strip() or None)
        except DomainError as exc:
            return c.message(request, 409, c.text("console.signoff.refused"), exc.message(c.locale),
                             link=f"/signoff/{month}")
        return RedirectResponse(f"/signoff/{month}", status_code=303)

    @app.post("/signoff/{month}/confirm")
    def signoff_confirm(request: Request, month: str, csrf: str = Form(""), version: str = Form("")) -> Response:
        return answer(request, month, csrf, "confirm", version)

    @app.post("/signoff/{month}/dispute")
    def signoff_dispute(request: Request, month: str, csrf: str = Form(""), version: str = Form(""),
                        note: str = Form(""), order: str = Form("")) -> Response:
        return answer(request, month, csrf, "dispute", version, note, order)
