"""monthly-tally: reconcile a month, write its report, send it to administration exactly once.

As a plain function of the Runtime (`run_monthly_tally`) and as the Prefect flow "monthly-tally". The
writing and the exactly-once send are notifications.report_send's; this module is the recipe around them:
which months, one report per office and for the group, and the ops alerts of the reports that failed.

With no month (the schedule on the 1st), every month up to the previous one that has ledger data and no
report yet is done, oldest first (at most `CATCH_UP_LIMIT`), and every send left pending by a failed or
dead run is retried: downtime over the 1st or a crash mid-send loses no month.

One office's report failing (its folder cannot be written, its workbook or its send raises) does not stop the
others: its outcome says "failed", its claim (if it had one) is given back at once, an ops alert naming the
month and office is recorded in the outbox (`report_failure_key`), and the flow ends Failed with a message
naming it. The alert stays open until that report is written and sent; while it is open the scheduled run
redoes that month, so the next run retries the office. A database error still fails the whole run (Prefect
retries it; the office loop cannot get further without the database anyway).

A group on a work pool (`BIANMIN_FANOUT_BATCH`) first has its offices' reports of the new months written by
child runs (flows.fanout.fan_out_tally, the `prepare` step); this run's own pass then finds them unchanged,
redoes any office whose child failed, and builds the group's report once every office's part is in.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run as flow_run_context
from prefect.states import Failed
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

from flows.fanout import fan_out_tally, fans_out, moment_of
from flows.hooks import FLOW_FAILED, failure_key, on_flow_failure, run_hooks
from flows.runtime import Runtime, current_runtime, ledger_refusal
from flows.signoff import SignoffOutcome, hold_for_signoff, months_awaiting, run_signoff
from models import findings as catalogue
from models import texts
from models.ledger.db import transaction
from models.tally import findings as tally_findings
from models.tally.facts import shift_month
from models.tally.queries import months_to_catch_up, reconcile_month
from models.tally.rules import month_of, reportable_month
from models.ledger.tables import Alert
from notifications import report
from notifications.outbox import resolve_alerts, sync_findings
from notifications.report_content import content_texts
from notifications.report_send import ReportDesk, ReportOutcome, error_text, pending_sends, publish, send
from notifications.report_workbook import SheetRows

FLOW_NAME = "monthly-tally"
CATCH_UP_LIMIT = 12


@dataclass(frozen=True)
class TallyResult:
    months: tuple[str, ...]
    reports: tuple[ReportOutcome, ...]
    signoffs: tuple[SignoffOutcome, ...] = ()

    @property
    def sent(self) -> int:
        return sum(r.sent for r in self.reports)

    @property
    def failed(self) -> tuple[ReportOutcome, ...]:
        return tuple(r for r in self.reports if r.failed)


# -- which months ----------------------------------------------------------------------------------

def missed_months(rt: Runtime, *, as_of: datetime) -> list[str]:
    """Months before `as_of`'s month with ledger data and no group report yet, or a report that failed and is not
    yet redone, oldest first, at most CATCH_UP_LIMIT."""
    candidates = catch_up_months(rt, as_of=as_of)
    failed = months_with_failed_reports(rt, candidates)
    with transaction(rt.sessions) as session:
        return months_to_catch_up(session, months=candidates, redo=failed, calendar=rt.calendar)


def catch_up_months(rt: Runtime, *, as_of: datetime) -> list[str]:
    """The CATCH_UP_LIMIT months before `as_of`'s month, oldest first."""
    current = month_of(as_of, rt.calendar)
    return [shift_month(current, -i) for i in range(CATCH_UP_LIMIT, 0, -1)]


def report_desk(rt: Runtime) -> ReportDesk:
    """What the report send needs, from the runtime's settings."""
    s = rt.settings
    route = s.alert_routes.get(catalogue.MONTHLY_REPORT.name, catalogue.MONTHLY_REPORT.route)
    return ReportDesk(sessions=rt.sessions, reports_dir=s.effective_reports_dir, locale=s.locale, tz=rt.calendar.tz,
                      apprise_config=s.apprise_config, outbox_dir=s.effective_outbox_dir,
                      tags=tuple(t.strip() for t in route.split(",") if t.strip()),
                      resend_on_change=s.tally_resend_on_change)


# -- the run ---------------------------------------------------------------------------------------

def run_monthly_tally(rt: Runtime, month: str | None = None, resend: bool = False,
                      as_of: datetime | None = None,
                      prepare: Callable[[list[str], datetime], object] | None = None) -> TallyResult:
    """Reconcile `month` (default: every missed month up to the previous one), report and send; idempotent.
    `prepare(months, as_of)` is called first with the months not yet reported (a group's fan-out per office)."""
    s = rt.settings
    started = datetime.now(timezone.utc)
    as_of = as_of or started.astimezone(rt.calendar.tz)
    desk = report_desk(rt)
    outcomes: list[ReportOutcome] = []
    pending = pending_sends(rt.sessions, catch_up_months(rt, as_of=as_of)) if month is None else []
    if month is None:
        for run in pending:
            attempt = send(desk, run)
            outcomes.append(ReportOutcome(run.month, run.office, run.version, run.content_hash, "pending",
                                          attempt.sent, run.file_path, int(run.summary.get("findings") or 0),
                                          attempt.error, send_busy=attempt.busy))
        # a retried send that went out closes its failure alert before the catch-up looks for failed months
        record_report_failures(rt, outcomes, at=started)
        # a month before the departments is looked at every day: a corrected ledger makes a new version, answers
        # and the deadline make the final
        new = missed_months(rt, as_of=as_of)
        months = sorted(set(new) | set(months_awaiting(rt)))
    else:
        new = months = [reportable_month(month, calendar=rt.calendar, as_of=as_of)]
    if prepare is not None and new and not resend:
        prepare(new, as_of)
    signoffs: list[SignoffOutcome] = []
    for m in months:
        hold = hold_for_signoff(rt, m)
        first = len(outcomes)
        with transaction(rt.read_sessions) as session:
            group = reconcile_month(session, month=m, calendar=rt.calendar, cash_cutoff=s.cash_cutoff,
                                    reply_minutes=s.reply_minutes, rework_due_hours=s.rework_due_hours)
        offices = group.split()
        contents = content_texts(group, offices)
        rows = SheetRows.split(group, offices, locale=s.locale, tz=rt.calendar.tz)
        figures = contents[group.office].figures
        for office, tally in [*offices.items(), (group.office, group)]:
            try:
                outcome = publish(desk, tally, contents.pop(office), rows.pop(office), resend=resend,
                                  as_of=as_of, started=started, hold=hold)
            except DBAPIError:
                raise  # the database is down or refused: no office can go on, the whole run fails
            except Exception as exc:  # noqa: BLE001 - one office's report must not stop the others'
                outcome = ReportOutcome(m, office, 0, "", "failed", False, "", len(tally.discrepancies),
                                        error=error_text(exc))
            outcomes.append(outcome)
        if hold:
            done = run_signoff(rt, desk, group, offices, outcomes[first:], figures=figures, as_of=as_of)
            if done is not None:
                signoffs.append(done)
                outcomes.extend(done.finals)
    record_report_failures(rt, outcomes[len(pending):], at=started)
    return TallyResult(tuple(months), tuple(outcomes), tuple(signoffs))


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
        resolve_alerts(session, list(healed), as_of=at)


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
    parts += [f"{o.month} sign-off v{o.version} {o.step}, {o.state}{f', final ({o.final})' if o.final else ''}"
              for o in result.signoffs]
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
def _tally_task(month: str | None, resend: bool, as_of: datetime | None, fan_out: bool) -> TallyResult:
    return run_monthly_tally(current_runtime(), month, resend, as_of, prepare=fan_out_tally if fan_out else None)


@flow(name=FLOW_NAME, **run_hooks(on_failure=_on_tally_failure))
def monthly_tally_flow(month: str | None = None, resend: bool = False, as_of: datetime | None = None) -> TallyResult:
    """The reconciled monthly tally to administration; with no month, every missed month up to the previous one."""
    rt = current_runtime()
    if (refused := ledger_refusal(rt)) is not None:
        return refused
    fan_out = fans_out(rt)  # a group on a work pool: the offices' reports in child runs, the group's here
    if fan_out:
        as_of = moment_of(rt, as_of)  # a retry or a duplicate run asks for the same children
    result = _tally_task(month, resend, as_of, fan_out)
    logger = get_run_logger()
    logger.info(summary(rt, result))
    if result.failed:
        # the other offices' reports went out; the run still is not a success
        message = failure_message(rt, result)
        logger.error(message)
        _PARTIAL_RUNS.add(str(flow_run_context.id))
        return Failed(message=message)
    return result
