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

One office's report failing (its folder cannot be written, its workbook or its send raises) does not stop the
others: its outcome says "failed", its claim (if it had one) is given back at once, an ops alert naming the
month and office is recorded in the outbox (`report_failure_key`), and the flow ends Failed with a message
naming it. The alert stays open until that report is written and sent; while it is open the scheduled run
redoes that month, so the next run retries the office. A database error still fails the whole run (Prefect
retries it; the office loop cannot get further without the database anyway).
"""
from __future__ import annotations

import json
import shutil
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run as flow_run_context
from prefect.states import Failed
from sqlalchemy import case, exists, or_, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from flows.hooks import FLOW_FAILED, failure_key, on_flow_completion, on_flow_failure
from flows.runtime import Runtime, current_runtime, ledger_refusal
from flows.settings import mask_url_password
from models import findings as catalogue
from models import texts
from models.ledger.db import transaction
from models.tally import findings as tally_findings
from models.tally.facts import GROUP, MonthTally, shift_month
from models.tally.queries import reconcile_month
from models.tally.rules import month_of, month_window, reportable_month
from models.ledger.tables import Alert, CashHandover, DepartmentReport, Receipt, ReportRun, ServiceRequest, WorkOrder
from notifications import report
from notifications.delivery import send_message
from notifications.masking import scrub
from notifications.outbox import sync_findings

FLOW_NAME = "monthly-tally"
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
    "pending" (a scheduled run retrying a send that an earlier run failed or died in), "failed" (writing or
    recording the report raised: `error` says why; nothing of it was committed).
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
    error: str | None = None  # why a "failed" report could not be written or recorded

    @property
    def failed(self) -> bool:
        """The report was not written, or its send failed: ops is told and a later run retries it."""
        return self.status == "failed" or self.send_error is not None


@dataclass(frozen=True)
class TallyResult:
    months: tuple[str, ...]
    reports: tuple[ReportOutcome, ...]

    @property
    def sent(self) -> int:
        return sum(r.sent for r in self.reports)

    @property
    def failed(self) -> tuple[ReportOutcome, ...]:
        return tuple(r for r in self.reports if r.failed)


# -- which months ----------------------------------------------------------------------------------

def months_to_catch_up(rt: Runtime, *, as_of: datetime) -> list[str]:
    """Months before `as_of`'s month with ledger data and no group report yet, or a report that failed and is not
    yet redone, oldest first, at most CATCH_UP_LIMIT."""
    current = month_of(as_of, rt.calendar)
    candidates = [shift_month(current, -i) for i in range(CATCH_UP_LIMIT, 0, -1)]
    failed = months_with_failed_reports(rt, candidates)
    with transaction(rt.sessions) as s:
        reported = set(s.scalars(select(ReportRun.month).where(ReportRun.office == GROUP,
                                                               ReportRun.month.in_(candidates)))) - failed
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
    """The folder of one report, checked to be inside the reports folder (an old ledger may hold any code)."""
    root = rt.settings.effective_reports_dir
    return report.confined(root, root / report.office_dir(office) / month)


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
    name = f"bianmin-{report.office_dir(tally.office)}-{tally.month}-v{version}.xlsx"
    root = s.effective_reports_dir

    def inside(path: Path) -> Path:
        return report.confined(root, path)

    final_workbook = inside(folder.parent / f"v{version}" / name)
    inside(folder).mkdir(parents=True, exist_ok=True)
    report.write_workbook(tally, inside(folder / name), locale=s.locale, version=version, tz=rt.calendar.tz,
                          changes=changes, previous_version=prev_version, rows=rows)
    chart = report.write_chart(tally, inside(folder / "chart.png"), locale=s.locale)
    for body, inline in ((EMAIL_BODY, True), (CHAT_BODY, False)):
        html = report.email_html(tally, locale=s.locale, version=version, workbook=final_workbook.resolve(),
                                 chart=chart, inline_chart=inline, changes=changes, previous_version=prev_version)
        inside(folder / body).write_text(html, encoding="utf-8")
    content.write(inside(folder / CONTENT_FILE))
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
    staging = report.confined(s.effective_reports_dir, base / f".v{version}-{uuid.uuid4().hex[:8]}")
    final = report.confined(s.effective_reports_dir, base / f"v{version}")
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
    ok, error = False, "delivery failed; the next run retries it"
    try:
        ok = _deliver(rt, run, workbook)
    except DBAPIError:
        raise
    except Exception as exc:  # noqa: BLE001 - an unreadable body, an outbox that cannot be written: a failed send
        error = f"delivery raised {_error_text(exc)}; the next run retries it"
    finally:
        # the claim goes back even when delivery raised, so the next run retries at once instead of waiting out
        # the lease; only a process that dies here leaves its claim to expire
        mine = (ReportRun.id == run.id, ReportRun.send_claimed_by == me)
        with transaction(rt.sessions) as session:
            done = {"sent_at": datetime.now(timezone.utc)} if ok else {}
            # if this claim expired and another run took over, that run owns the row now: leave it alone
            session.execute(update(ReportRun).where(*mine)
                            .values(send_claimed_by=None, send_claimed_until=None, **done))
    return _Attempt(True, None, False) if ok else _Attempt(False, error, False)


def _deliver(rt: Runtime, run: ReportRun, workbook: Path) -> bool:
    """Send the report to every tag of the monthly-report route; True when apprise reported success for all."""
    s = rt.settings
    folder = workbook.parent
    title = report.title_for(run.month, run.office, run.version, locale=s.locale)
    route = s.alert_routes.get(catalogue.MONTHLY_REPORT.name, catalogue.MONTHLY_REPORT.route)
    tags = [t.strip() for t in route.split(",") if t.strip()]
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
    pending = pending_sends(rt, as_of=as_of) if month is None else []
    if month is None:
        for run in pending:
            attempt = _send(rt, run)
            outcomes.append(ReportOutcome(run.month, run.office, run.version, run.content_hash, "pending",
                                          attempt.sent, run.file_path, int(run.summary.get("findings") or 0),
                                          attempt.error, send_busy=attempt.busy))
        # a retried send that went out closes its failure alert before the catch-up looks for failed months
        record_report_failures(rt, outcomes, at=started)
        months = months_to_catch_up(rt, as_of=as_of)
    else:
        months = [reportable_month(month, calendar=rt.calendar, as_of=as_of)]
    for m in months:
        with transaction(rt.read_sessions) as session:
            group = reconcile_month(session, month=m, calendar=rt.calendar, cash_cutoff=s.cash_cutoff,
                                    reply_minutes=s.reply_minutes, rework_due_hours=s.rework_due_hours)
        offices = group.split()
        contents = report.content_texts(group, offices)
        rows = report.SheetRows.split(group, offices, locale=s.locale, tz=rt.calendar.tz)
        for office, tally in [*offices.items(), (group.office, group)]:
            try:
                outcome = _publish(rt, tally, contents.pop(office), rows.pop(office), resend=resend,
                                   as_of=as_of, started=started)
            except DBAPIError:
                raise  # the database is down or refused: no office can go on, the whole run fails
            except Exception as exc:  # noqa: BLE001 - one office's report must not stop the others'
                outcome = ReportOutcome(m, office, 0, "", "failed", False, "", len(tally.discrepancies),
                                        error=_error_text(exc))
            outcomes.append(outcome)
    record_report_failures(rt, outcomes[len(pending):], at=started)
    return TallyResult(tuple(months), tuple(outcomes))


def _error_text(exc: BaseException) -> str:
    # an OSError names the file; a secret in a URL or a resident's mobile never reaches the alert
    return scrub(mask_url_password(f"{type(exc).__name__}: {exc}"))[:300]


def report_failure_key(month: str, office: str) -> str:
    """The ops alert of one (month, office) report that failed (models.tally.findings)."""
    return tally_findings.report_failure_key(FLOW_NAME, month, office)


def record_report_failures(rt: Runtime, outcomes: list[ReportOutcome], *, at: datetime) -> None:
    """Record an ops alert for each of `outcomes` that failed; resolve it for each that now went well."""
    if not outcomes:
        return
    s = rt.settings
    findings, fine = [], []
    for r in outcomes:
        if r.send_busy:
            continue  # another run is sending it: that run says how it went
        if not r.failed:
            fine.append(report_failure_key(r.month, r.office))
            continue
        findings.append(tally_findings.report_failure(
            flow=FLOW_NAME, month=r.month, office=r.office, office_label=report.office_label(r.office, "en"),
            written=r.status != "failed", error=r.error or r.send_error or "", at=at))
    with transaction(rt.sessions) as session:
        if findings:
            # kinds left empty: recording these must not resolve any other flow's failure
            sync_findings(session, findings, kinds=set(), as_of=at, routes=s.alert_routes,
                          repeat_every=timedelta(hours=s.repeat_hours))
        fine_keys = set(fine)
        open_failures = session.execute(select(Alert.id, Alert.dedupe_key).where(
            Alert.kind == FLOW_FAILED, Alert.resolved_at.is_(None),
            Alert.dedupe_key.startswith(failure_key(FLOW_NAME) + ":", autoescape=True))).all()
        healed = [row_id for row_id, key in open_failures if key.rsplit("@", 1)[0] in fine_keys]
        if healed:  # resolved as the outbox resolves: nobody told means nothing to take back
            session.execute(
                update(Alert).where(Alert.id.in_(healed))
                .values(resolved_at=at, resolved_notified_at=case((Alert.last_notified_at.is_(None), at),
                                                                  else_=Alert.resolved_notified_at))
                .execution_options(synchronize_session=False))


def months_with_failed_reports(rt: Runtime, months: list[str]) -> set[str]:
    """Those of `months` with a report whose failure alert is still open: the catch-up redoes them."""
    prefix = failure_key(FLOW_NAME) + ":"
    with transaction(rt.sessions) as session:
        keys = session.scalars(select(Alert.dedupe_key).where(
            Alert.kind == FLOW_FAILED, Alert.resolved_at.is_(None),
            Alert.dedupe_key.startswith(prefix, autoescape=True)))
        return {key[len(prefix):].split(":", 1)[0] for key in keys} & set(months)


def summary(rt: Runtime, result: TallyResult) -> str:
    """One line for the flow log, in the configured locale."""
    locale = rt.settings.locale
    if not result.months:
        return texts.render("flow.tally.nothing", locale)
    parts = [f"{r.month} {r.office} failed" if r.status == "failed" else
             f"{r.month} {r.office} v{r.version} {r.status}{' sent' if r.sent else ''}" for r in result.reports]
    return texts.render("flow.tally.summary", locale, reports="; ".join(parts))


# flow runs that ended Failed over failed reports: their ops alerts, one per (month, office), are recorded already
_PARTIAL_RUNS: set[str] = set()


def failure_message(rt: Runtime, result: TallyResult) -> str:
    """Which reports failed, in the configured locale; the others were written and sent."""
    failed = result.failed
    names = "; ".join(f"{r.month} {report.office_label(r.office, rt.settings.locale)}: {r.error or r.send_error}"
                      for r in failed)
    total, done = len(result.reports), len(result.reports) - len(failed)
    return texts.render("flow.tally.failed", rt.settings.locale, failed=len(failed), total=total, names=names,
                        done=done)


def _on_tally_failure(flow: Any, flow_run: Any, state: Any) -> None:
    """Failed reports already have their ops alerts; any other failure is the flow's own (`on_flow_failure`)."""
    if str(flow_run.id) in _PARTIAL_RUNS:
        _PARTIAL_RUNS.discard(str(flow_run.id))
        return
    on_flow_failure(flow, flow_run, state)


# -- Prefect ---------------------------------------------------------------------------------------

# a rerun is harmless by construction (same hash: nothing happens), so a transient failure may retry
@task(name="monthly-tally-run", retries=1, retry_delay_seconds=[30], cache_policy=NO_CACHE)
def _tally_task(month: str | None, resend: bool, as_of: datetime | None) -> TallyResult:
    return run_monthly_tally(current_runtime(), month, resend, as_of)


@flow(name=FLOW_NAME, on_failure=[_on_tally_failure], on_completion=[on_flow_completion])
def monthly_tally_flow(month: str | None = None, resend: bool = False, as_of: datetime | None = None) -> TallyResult:
    """The reconciled monthly tally to administration; with no month, every missed month up to the previous one."""
    rt = current_runtime()
    if (refused := ledger_refusal(rt)) is not None:
        return refused
    result = _tally_task(month, resend, as_of)
    logger = get_run_logger()
    logger.info(summary(rt, result))
    if result.failed:
        # the other offices' reports went out; the run still is not a success
        message = failure_message(rt, result)
        logger.error(message)
        _PARTIAL_RUNS.add(str(flow_run_context.id))
        return Failed(message=message)
    return result
