"""cash-check: the end-of-day cash check, as a plain function of the Runtime and as the Prefect flow "cash-check".

Load → decide (models.cash: queries, then pure rules) → record in the outbox, in one transaction. The check looks at
the ledger's state as of a moment, not at what changed since the last run, so a missed evening is covered
by the next run and a replay of any past day sees exactly what was known then.

Which day and which moment:
- `day` given: that day's evaluation time (cut-off + grace, local), or `as_of` if given; never later than now.
- nothing given (the schedule: evening and morning): the moment is now; at or after today's evaluation time
  it is today's check, before it (the morning run) it is the previous working day's, seen as of now.
A day off is skipped, said so, and changes nothing: the findings still open stay open.

The outbox holds the latest knowledge. A run judged as of a moment earlier than the latest one recorded
(the flow's watermark) is a replay: it reports what was known then but writes nothing, so replaying last
week cannot reopen alerts that a handover has since resolved.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows.fanout import fan_out, fans_out
from flows.hooks import run_hooks
from flows.recording import record_run
from flows.runtime import Runtime, current_runtime, ledger_refusal
from models import findings as catalogue
from models import texts
from models.cash.facts import CollectorFigures, OfficeDayTotals
from models.cash.findings import findings_of
from models.cash.queries import check_cash
from models.cash.rules import evaluation_time
from models.findings import Finding
from models.ledger.db import transaction

CASH_KINDS = frozenset(k.name for k in catalogue.CASH_KINDS)


@dataclass(frozen=True)
class CashCheckResult:
    """One cash check: what it judged, what it found, the day's figures, and what it did to the outbox."""

    day: date
    as_of: datetime
    skipped: bool
    reason: str | None = None
    findings: tuple[Finding, ...] = ()
    counts: dict[str, int] = field(default_factory=dict)
    collectors: tuple[CollectorFigures, ...] = ()
    offices: tuple[OfficeDayTotals, ...] = ()
    new: int = 0
    seen_again: int = 0
    resolved: int = 0
    office: str | None = None
    recorded: bool = False  # False for a skipped day or a replay of an earlier moment: the outbox was not touched


FLOW_NAME = "cash-check"

# -- which day, which moment --------------------------------------------------------------------

def _evaluation(rt: Runtime, day: date) -> datetime:
    s = rt.settings
    return evaluation_time(day, rt.calendar, cutoff=s.cash_cutoff, grace_minutes=s.cash_check_grace_minutes)


def judge_window(rt: Runtime, day: date | None, as_of: datetime | None, now: datetime) -> tuple[date, datetime, bool]:
    """(day, as_of, skipped) for a run: see the module docstring."""
    cal = rt.calendar
    if day is None:
        moment = as_of or now
        today = cal.local(moment).date()
        if not cal.is_working_day(today):
            return today, moment, True
        return (today if moment >= _evaluation(rt, today) else cal.previous_working_day(today)), moment, False
    moment = as_of or min(_evaluation(rt, day), now)
    return day, moment, not cal.is_working_day(day)


# -- the run ------------------------------------------------------------------------------------

def run_cash_check(rt: Runtime, day: date | None = None, as_of: datetime | None = None, *,
                   office: str | None = None, now: datetime | None = None) -> CashCheckResult:
    """The cash check of `day` (default: the one due now), recorded in the outbox in one transaction."""
    s = rt.settings
    day, as_of, skipped = judge_window(rt, day, as_of, now or datetime.now(rt.calendar.tz))
    if skipped:
        return CashCheckResult(day=day, as_of=as_of, skipped=True, reason="day-off", office=office)
    with transaction(rt.sessions) as session:
        check = check_cash(session, day=day, as_of=as_of, calendar=rt.calendar, cutoff=s.cash_cutoff,
                                return_workdays=s.receipt_return_workdays, office=office)
        findings = findings_of(check)
        result = CashCheckResult(day=day, as_of=as_of, skipped=False, findings=tuple(findings),
                                 counts=dict(check.findings_by_kind), collectors=check.collectors,
                                 offices=check.offices, office=office)
        synced = record_run(rt, session, flow_name=FLOW_NAME, findings=findings, kinds=CASH_KINDS, as_of=as_of,
                            scope=office or "*", office=office)
        if synced is None:  # a replay of an earlier moment reports what was known then
            return result
    return replace(result, new=synced.new, seen_again=synced.seen_again, resolved=synced.resolved, recorded=True)


def summary(rt: Runtime, result: CashCheckResult) -> str:
    """One line for the flow log, in the configured locale."""
    locale = rt.settings.locale
    when = rt.calendar.local(result.as_of).strftime("%Y-%m-%d %H:%M")
    if result.skipped:
        return texts.render("flow.cash.day_off", locale, day=result.day)
    found = (", ".join(f"{k} {n}" for k, n in sorted(result.counts.items()) if n)
             or texts.render("flow.cash.nothing", locale))
    if not result.recorded:
        return texts.render("flow.cash.replayed", locale, day=result.day, when=when, found=found)
    return texts.render("flow.cash.summary", locale, day=result.day, when=when, found=found, new=result.new,
                        seen_again=result.seen_again, resolved=result.resolved)


# -- Prefect ------------------------------------------------------------------------------------

# the whole run is one transaction that rolls back on error, so retrying it is safe
@task(name="cash-check-record", retries=2, retry_delay_seconds=[5, 30], cache_policy=NO_CACHE)
def _cash_check_task(day: date | None, as_of: datetime | None, office: str | None,
                     now: datetime) -> CashCheckResult:
    return run_cash_check(current_runtime(), day, as_of, office=office, now=now)


@flow(name="cash-check", **run_hooks())
def cash_check_flow(day: date | None = None, as_of: datetime | None = None,
                    office: str | None = None) -> CashCheckResult:
    """Cash not handed to finance by its due time, handover mismatches, receipt custody, fees not collected."""
    rt = current_runtime()
    if (refused := ledger_refusal(rt)) is not None:
        return refused
    if office is None and fans_out(rt):  # a group on a work pool: one child run per office batch
        return fan_out(FLOW_NAME, day=day, as_of=as_of)
    result = _cash_check_task(day, as_of, office, datetime.now(rt.calendar.tz))
    logger = get_run_logger()
    logger.info(summary(rt, result))
    for warning in rt.calendar_warnings():  # a year without make-up-day data: say so, never guess silently
        logger.warning(warning)
    return result
