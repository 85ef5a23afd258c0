"""The monthly reports (/reports): every version of every month from report_runs, sent or not, to whom (each tag
and its services as the send recorded them, without secrets; else the route's tags) and when; its HTML summary
and its workbook, for administration and managers, for their offices only.

A file is served only from the folder the run recorded, and only once its resolved path is checked to be
inside the reports folder (notifications.report.confined, as the report's own writing does)."""
from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path
from urllib.parse import unquote, urlsplit

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from sqlalchemy import select

from console import accounts
from console.context import Console
from console.text import Refused
from models.ledger.tables import ReportRun
from models.tally.facts import GROUP
from notifications.masking import privacy_url
from notifications.report import UnsafeReportPath, confined, office_dir
from notifications.report_send import EMAIL_BODY

log = logging.getLogger("bianmin.console")
REPORT_LIMIT = 240  # twenty years of one office's months, or a year of a large group's latest versions
WORKBOOK_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


OUTBOX = "outbox"  # what report_send records for a tag when no apprise config is set


@lru_cache(maxsize=512)
def shown_service(service: str) -> str:
    """A service a report went to, as the page shows it: apprise's privacy form derived again from what the row
    holds (report_send stores it so already; a row written any other way must still show no password or token),
    without apprise's default query arguments, which say nothing about where it went."""
    parts = urlsplit(privacy_url(service))
    path = unquote(parts.path).rstrip("/")
    return f"{parts.scheme}://{unquote(parts.netloc)}{path}"


def recipients(c: Console, sent_to: object) -> list[tuple[str, list[str]]]:
    """report_runs.sent_to as (tag, services shown): [] when the run recorded none (a send before it was kept)."""
    if not isinstance(sent_to, list):
        return []
    out = []
    for entry in sent_to:
        if not isinstance(entry, dict) or not isinstance(entry.get("tag"), str):
            continue
        services = entry.get("services") if isinstance(entry.get("services"), list) else []
        out.append((entry["tag"], [c.text("console.reports.outbox") if s == OUTBOX else shown_service(str(s))
                                   for s in services]))
    return out


def visible_runs(user: accounts.Account):
    """SQL truth of "this user may see this report": the group's report only to users of every office."""
    return None if user.every_office else ReportRun.office.in_(sorted(user.offices))


def register(app: FastAPI, c: Console) -> None:
    rt, settings = c.rt, c.settings
    route = settings.alert_routes.get("monthly-report", "administration")
    tags = ", ".join(t.strip() for t in route.split(",") if t.strip())

    def run_of(user: accounts.Account, run_id: int) -> ReportRun:
        with rt.sessions() as s:
            run = s.get(ReportRun, run_id)
        if run is None:
            raise Refused("console.reports.no_such", status=404)
        if not (user.every_office or run.office in user.offices):
            log.warning("console: %s refused report %s", user.login, run_id)
            raise Refused("console.reports.other_office", status=403)
        return run

    def file_of(run: ReportRun, name: str | None = None) -> Path:
        """The run's workbook (or `name` beside it), confined to the reports folder; a refusal page if not."""
        root = settings.effective_reports_dir
        try:
            workbook = confined(root, Path(run.file_path))
            # the folder names the run's office and month: a row pointing at another report's files is refused
            if workbook.parent.parent != root / office_dir(run.office) / run.month:
                raise UnsafeReportPath(None, workbook, root)
            path = confined(root, workbook.parent / name) if name else workbook
        except UnsafeReportPath:
            log.warning("console: report %s has a file outside the reports folder", run.id)
            raise Refused("console.reports.missing", status=404) from None
        if not path.is_file():
            raise Refused("console.reports.missing", status=404)
        return path

    @app.get("/reports", response_class=HTMLResponse)
    def reports_page(request: Request) -> Response:
        user = c.user_for(request, "reports")
        q = select(ReportRun).order_by(ReportRun.month.desc(), ReportRun.office, ReportRun.version.desc())
        if (where := visible_runs(user)) is not None:
            q = q.where(where)
        with rt.sessions() as s:
            runs = s.scalars(q.limit(REPORT_LIMIT)).all()
        rows = [{"id": r.id, "month": r.month, "version": r.version, "created": c.local(r.created_at),
                 "office": c.text("console.reports.group") if r.office == GROUP else r.office,
                 "sent": c.local(r.sent_at), "sent_to": recipients(c, r.sent_to) if r.sent_at else [],
                 "to_send": bool((r.summary or {}).get("send")),
                 "findings": (r.summary or {}).get("findings"), "revenue": (r.summary or {}).get("revenue"),
                 "changes": (r.summary or {}).get("changes") or []} for r in runs]
        return c.page(request, "reports.html.j2", rows=rows, tags=tags)

    @app.get("/reports/{run_id}/summary", response_class=HTMLResponse)
    def report_summary(request: Request, run_id: int) -> Response:
        user = c.user_for(request, "reports")
        path = file_of(run_of(user, run_id), EMAIL_BODY)  # the email's body: its chart inline
        response = HTMLResponse(path.read_text(encoding="utf-8"))
        # the report's own page: its styles and chart inline, nothing fetched; no script ever runs
        response.headers["Content-Security-Policy"] = ("default-src 'none'; style-src 'unsafe-inline'; "
                                                       "img-src data:; frame-ancestors 'none'")
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.get("/reports/{run_id}/workbook")
    def report_workbook(request: Request, run_id: int) -> Response:
        user = c.user_for(request, "reports")
        run = run_of(user, run_id)
        path = file_of(run)
        name = f"bianmin-{office_dir(run.office)}-{run.month}-v{run.version}.xlsx"
        return FileResponse(path, media_type=WORKBOOK_TYPE, filename=name, headers={"Cache-Control": "no-store"})
