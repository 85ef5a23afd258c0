"""monthly-tally: reconcile a month, write its report, send it to administration exactly once.

As a plain function of the Runtime (`run_monthly_tally`) and as the Prefect flow "monthly-tally".

Exactly once, per (month, office) with office "*" for the group:
- the figures and rows of a report are hashed (`notifications.report.content_hash`); a run whose hash equals
  the latest version's writes nothing and sends nothing;
- a new version is claimed by inserting its `report_runs` row (unique month, office, version): two runs at
  once compute the same version, one insert wins, the loser stops (on PostgreSQL it waits for the winner's
  commit and then fails the insert; on SQLite writers are serialised by BEGIN IMMEDIATE). The files are
  moved into `v<N>/` inside the winner's transaction, so a committed row always has its files;
- the send is claimed for a while, not marked done: `UPDATE report_runs SET send_claimed_by = :me,
  send_claimed_until = now + SEND_LEASE WHERE id = :id AND sent_at IS NULL AND (send_claimed_until IS NULL OR
  send_claimed_until < now)`. `sent_at` is set only after apprise reports success; a failed send clears the
  claim at once, and a run that died mid-send leaves a claim that expires, after which the next run sends it
  (once: the claim is a single conditional UPDATE). Claims use the wall clock, never `as_of` (a replay's time).
Version 1 of a month is always sent; a later version only with `resend=True` or `tally_resend_on_change`.
`resend=True` on an unchanged month that went out already sends it again (administration lost the mail):
its claim also accepts `sent_at` older than this run's start, so two resends at once still send once.

With no month (the schedule on the 1st), every month up to the previous one that has ledger data and no
report yet is done, oldest first (at most `CATCH_UP_LIMIT`), and every send left pending by a failed or
dead run is retried: downtime over the 1st or a crash mid-send loses no month.
"""
from __future__ import annotations

import gc
import json
import shutil
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from sqlalchemy import exists, or_, select, update
from sqlalchemy.exc import IntegrityError

from flows.hooks import on_flow_failure
from flows.runtime import Runtime, current_runtime, ledger_refusal
from models.db import transaction
from models.reconcile import (
    GROUP,
    MonthTally,
    month_of,
    month_window,
    reconcile_month,
    reportable_month,
    shift_month,
)
from models.tables import CashHandover, DepartmentReport, Receipt, ReportRun, ServiceRequest, WorkOrder
from notifications import report
from notifications.delivery import send_message

CATCH_UP_LIMIT = 12
# longer than any send takes (apprise gives up on a server well before), short enough that a send claimed by
# a run that died is retried by the next hourly/daily run
SEND_LEASE = timedelta(minutes=10)
CONTENT_FILE = "tally.json"
EMAIL_BODY = "email.html"  # the chart inline: for a tag whose every service is email
CHAT_BODY = "summary.html"  # the chart attached, not inlined: chat channels, webhooks, the outbox file


@dataclass(frozen=True)
class ReportOutcome:
    """What one run did for one (month, office) report.

    status: "new" (version 1), "new-version" (N+1 after a change), "unchanged" (same hash as the latest
    version), "concurrent" (another run produced this version at the same moment; this one did nothing),
    "pending" (a scheduled run retrying a send that an earlier run failed or died in).
    send_busy: another live run holds the claim on this send, so this run left it alone.
    """

    month: str
    office: str
    version: int
    content_hash: str
    status: str
    sent: bool
    path: str
    findings: int
    send_error: str | None = None
    sent_before: bool = False  # this version went out in an earlier run
    send_busy: bool = False


@dataclass(frozen=True)
class TallyResult:
    months: tuple[str, ...]
    reports: tuple[ReportOutcome, ...]

    @property
    def sent(self) -> int:
        return sum(r.sent for r in self.reports)


# -- which months ----------------------------------------------------------------------------------

def months_to_catch_up(rt: Runtime, *, as_of: datetime) -> list[str]:
    """Months before `as_of`'s month with ledger data and no group report yet, oldest first, at most CATCH_UP_LIMIT."""
    current = month_of(as_of, rt.calendar)
    candidates = [shift_month(current, -i) for i in range(CATCH_UP_LIMIT, 0, -1)]
    with transaction(rt.sessions) as s:
        reported = set(s.scalars(select(ReportRun.month).where(ReportRun.office == GROUP,
                                                               ReportRun.month.in_(candidates))))
        missing = []
        for month in candidates:
            if month in reported:
                continue
            window = month_window(month, rt.calendar)
            if _has_data(s, window.start, window.end):
                missing.append(month)
    return missing


def _has_data(s, start: datetime, end: datetime) -> bool:
    probes = [
        exists().where(WorkOrder.issued_at >= start, WorkOrder.issued_at < end),
        exists().where(WorkOrder.accepted_at >= start, WorkOrder.accepted_at < end),
        exists().where(Receipt.collected_at >= start, Receipt.collected_at < end),
        exists().where(ServiceRequest.received_at >= start, ServiceRequest.received_at < end),
        exists().where(DepartmentReport.reported_at >= start, DepartmentReport.reported_at < end),
        exists().where(CashHandover.confirmed_at >= start, CashHandover.confirmed_at < end),
    ]
    return any(s.scalar(select(probe)) for probe in probes)


# -- one report ------------------------------------------------------------------------------------

def _report_dir(rt: Runtime, office: str, month: str) -> Path:
    return rt.settings.effective_reports_dir / report.office_dir(office) / month


def _build(rt: Runtime, tally: MonthTally, content: report.ContentText, rows: report.SheetRows, folder: Path, *,
           version: int, previous: ReportRun | None) -> dict:
    """Write workbook, chart, email body and the tally's content (its canonical JSON) into `folder`; returns what
    the send needs."""
    s = rt.settings
    changes = prev_version = None
    if previous is not None:
        prev_version = previous.version
        old_path = Path(previous.file_path).with_name(CONTENT_FILE)
        old = json.loads(old_path.read_text(encoding="utf-8")) if old_path.exists() else {}
        changes = report.diff_content(old, content.figures)
    folder.mkdir(parents=True, exist_ok=True)
    name = f"bianmin-{report.office_dir(tally.office)}-{tally.month}-v{version}.xlsx"
    final_workbook = folder.parent / f"v{version}" / name
    report.write_workbook(tally, folder / name, locale=s.locale, version=version, tz=rt.calendar.tz,
                          changes=changes, previous_version=prev_version, rows=rows)
    chart = report.write_chart(tally, folder / "chart.png", locale=s.locale)
    for body, inline in ((EMAIL_BODY, True), (CHAT_BODY, False)):
        html = report.email_html(tally, locale=s.locale, version=version, workbook=final_workbook.resolve(),
                                 chart=chart, inline_chart=inline, changes=changes, previous_version=prev_version)
        (folder / body).write_text(html, encoding="utf-8")
    content.write(folder / CONTENT_FILE)
    return {"workbook": str(final_workbook), "changes": None if changes is None else len(changes)}


def _publish(rt: Runtime, tally: MonthTally, content: report.ContentText, rows: report.SheetRows, *, resend: bool,
             as_of: datetime, started: datetime) -> ReportOutcome:
    """Write and record the report of `tally` (whose content is `content`, its long sheets' rows `rows`) if its
    content is new; send it."""
    s = rt.settings
    content_hash = content.hash
    findings = len(tally.discrepancies)
    with transaction(rt.sessions) as session:
        latest = session.scalars(select(ReportRun).where(ReportRun.month == tally.month,
                                                         ReportRun.office == tally.office)
                                 .order_by(ReportRun.version.desc()).limit(1)).first()
    if latest is not None and latest.content_hash == content_hash:
        attempt = _Attempt(False, None, False)
        if resend or (latest.sent_at is None and latest.summary.get("send")):
            attempt = _send(rt, latest, again_since=started if resend else None)
        return ReportOutcome(tally.month, tally.office, latest.version, content_hash, "unchanged", attempt.sent,
                             latest.file_path, findings, attempt.error, sent_before=latest.sent_at is not None,
                             send_busy=attempt.busy)

    version = latest.version + 1 if latest else 1
    wanted = latest is None or resend or s.tally_resend_on_change
    base = _report_dir(rt, tally.office, tally.month)
    staging = base / f".v{version}-{uuid.uuid4().hex[:8]}"
    final = base / f"v{version}"
    try:
        built = _build(rt, tally, content, rows, staging, version=version, previous=latest)
        total = tally.total
        summary = {"send": wanted, "findings": findings, "accepted": total.accepted, "revenue": str(total.revenue),
                   "changes": built["changes"], "previous_version": latest.version if latest else None}
        try:
            with transaction(rt.sessions) as session:
                row = ReportRun(month=tally.month, office=tally.office, version=version, content_hash=content_hash,
                                file_path=built["workbook"], created_at=as_of, sent_at=None, summary=summary)
                session.add(row)
                session.flush()  # the unique (month, office, version) insert is the claim
                if final.exists():  # left by a run that died before its commit: its row never existed
                    shutil.rmtree(final)
                staging.rename(final)
        except IntegrityError:
            return ReportOutcome(tally.month, tally.office, version, content_hash, "concurrent", False,
                                 str(final), findings)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    attempt = _send(rt, row) if wanted else _Attempt(False, None, False)
    return ReportOutcome(tally.month, tally.office, version, content_hash, "new" if version == 1 else "new-version",
                         attempt.sent, row.file_path, findings, attempt.error, send_busy=attempt.busy)


@dataclass(frozen=True)
class _Attempt:
    sent: bool
    error: str | None
    busy: bool  # a live claim of another run


def _send(rt: Runtime, run: ReportRun, *, again_since: datetime | None = None,
          lease: timedelta = SEND_LEASE) -> _Attempt:
    """Claim the send of `run` for `lease`, send, then mark it sent, or give the claim back if delivery failed.

    With `again_since`, a report already sent before that moment is sent again (an explicit resend).
    """
    workbook = Path(run.file_path)
    if not workbook.exists():
        return _Attempt(False, f"workbook missing: {workbook}", False)
    me = uuid.uuid4().hex
    now = datetime.now(timezone.utc)
    unsent = ReportRun.sent_at.is_(None)
    if again_since is not None:
        unsent = or_(unsent, ReportRun.sent_at < again_since)
    with transaction(rt.sessions) as session:
        won = session.execute(
            update(ReportRun)
            .where(ReportRun.id == run.id, unsent,
                   or_(ReportRun.send_claimed_until.is_(None), ReportRun.send_claimed_until < now))
            .values(send_claimed_by=me, send_claimed_until=now + lease)).rowcount == 1
        if not won:
            busy = session.scalar(select(ReportRun.id).where(ReportRun.id == run.id, unsent,
                                                             ReportRun.send_claimed_until >= now)) is not None
    if not won:
        return _Attempt(False, None, busy)
    ok = _deliver(rt, run, workbook)
    mine = (ReportRun.id == run.id, ReportRun.send_claimed_by == me)
    with transaction(rt.sessions) as session:
        done = {"sent_at": datetime.now(timezone.utc)} if ok else {}
        # if this claim expired and another run took over, that run owns the row now: leave it alone
        session.execute(update(ReportRun).where(*mine).values(send_claimed_by=None, send_claimed_until=None, **done))
    return _Attempt(True, None, False) if ok else _Attempt(False, "delivery failed; the next run retries it", False)


def _deliver(rt: Runtime, run: ReportRun, workbook: Path) -> bool:
    """Send the report to every tag of the "monthly-report" route; True when apprise reported success for all."""
    s = rt.settings
    folder = workbook.parent
    title = report.title_for(run.month, run.office, run.version, locale=s.locale)
    tags = [t.strip() for t in s.alert_routes.get("monthly-report", "administration").split(",") if t.strip()]
    results = []
    for tag in tags:
        if _only_email(s.apprise_config, tag):
            body, attachments = EMAIL_BODY, [workbook]
        else:
            body, attachments = CHAT_BODY, [workbook, folder / "chart.png"]
        results.append(send_message(tag=tag, title=title, body=(folder / body).read_text(encoding="utf-8"),
                                    apprise_config=s.apprise_config, outbox_dir=s.effective_outbox_dir,
                                    attachments=attachments, body_format="html"))
    return all(results)


def pending_sends(rt: Runtime, *, as_of: datetime) -> list[ReportRun]:
    """Latest report versions of the catch-up months that should have gone out and did not (a failed or dead run)."""
    current = month_of(as_of, rt.calendar)
    months = [shift_month(current, -i) for i in range(CATCH_UP_LIMIT, 0, -1)]
    with transaction(rt.sessions) as session:
        runs = session.scalars(select(ReportRun).where(ReportRun.month.in_(months))
                               .order_by(ReportRun.month, ReportRun.office, ReportRun.version)).all()
    latest = {(r.month, r.office): r for r in runs}  # report_runs holds a few rows a month: no need for SQL here
    return [r for r in latest.values() if r.sent_at is None and r.summary.get("send")]


def _only_email(apprise_config: Path | None, tag: str) -> bool:
    """Whether every service of `tag` is email, which shows an inline chart (chat channels would get base64)."""
    if apprise_config is None:
        return False
    from notifications.delivery import AppriseConfigError, config_tags

    try:
        info = config_tags(apprise_config).get(tag)
    except AppriseConfigError:
        return False
    return bool(info and info.urls) and all(url.startswith(("mailto://", "mailtos://")) for url in info.urls)


# -- the run ---------------------------------------------------------------------------------------

def run_monthly_tally(rt: Runtime, month: str | None = None, resend: bool = False,
                      as_of: datetime | None = None) -> TallyResult:
    """Reconcile `month` (default: every missed month up to the previous one), report and send; idempotent."""
    s = rt.settings
    started = datetime.now(timezone.utc)
    as_of = as_of or started.astimezone(rt.calendar.tz)
    outcomes: list[ReportOutcome] = []
    if month is None:
        for run in pending_sends(rt, as_of=as_of):
            attempt = _send(rt, run)
            outcomes.append(ReportOutcome(run.month, run.office, run.version, run.content_hash, "pending",
                                          attempt.sent, run.file_path, int(run.summary.get("findings") or 0),
                                          attempt.error, send_busy=attempt.busy))
        months = months_to_catch_up(rt, as_of=as_of)
    else:
        months = [reportable_month(month, calendar=rt.calendar, as_of=as_of)]
    for m in months:
        with transaction(rt.read_sessions) as session:
            group = reconcile_month(session, month=m, calendar=rt.calendar, cash_cutoff=s.cash_cutoff,
                                    reply_minutes=s.reply_minutes)
        offices = group.split()
        contents = report.content_texts(group, offices)
        rows = report.SheetRows.split(group, offices, locale=s.locale, tz=rt.calendar.tz)
        # The month's million-odd row objects live until its last report is written. Left to the cyclic GC,
        # they keep its full collections rare, so each workbook's garbage (xlsxwriter's objects are cyclic)
        # piled up between them: +120 MB of peak RSS at a 100k-job month. Frozen, they are neither scanned nor
        # counted, and the workbooks' garbage goes as usual.
        gc.freeze()
        try:
            for office, tally in [*offices.items(), (group.office, group)]:
                outcomes.append(_publish(rt, tally, contents.pop(office), rows.pop(office), resend=resend,
                                         as_of=as_of, started=started))
        finally:
            gc.unfreeze()
    return TallyResult(tuple(months), tuple(outcomes))


def summary(rt: Runtime, result: TallyResult) -> str:
    """One line for the flow log, in the configured locale."""
    en = rt.settings.locale == "en"
    if not result.months:
        return "monthly-tally: no month to report" if en else "月度汇总:没有需要汇总的月份"
    parts = [f"{r.month} {r.office} v{r.version} {r.status}{' sent' if r.sent else ''}" for r in result.reports]
    return ("monthly-tally: " if en else "月度汇总:") + "; ".join(parts)


# -- Prefect ---------------------------------------------------------------------------------------

# a rerun is harmless by construction (same hash: nothing happens), so a transient failure may retry
@task(name="monthly-tally-run", retries=1, retry_delay_seconds=[30], cache_policy=NO_CACHE)
def _tally_task(month: str | None, resend: bool, as_of: datetime | None) -> TallyResult:
    return run_monthly_tally(current_runtime(), month, resend, as_of)


@flow(name="monthly-tally", on_failure=[on_flow_failure])
def monthly_tally_flow(month: str | None = None, resend: bool = False, as_of: datetime | None = None) -> TallyResult:
    """The reconciled monthly tally to administration; with no month, every missed month up to the previous one."""
    rt = current_runtime()
    if (refused := ledger_refusal(rt)) is not None:
        return refused
    result = _tally_task(month, resend, as_of)
    get_run_logger().info(summary(rt, result))
    return result
