"""chase-replies and chase-callbacks: load what is overdue as of a moment, record it in the outbox, report it.

Each run is one transaction: the findings, the resolution of what no longer holds, and the flow's
watermark commit together or not at all. A run as of a moment earlier than the watermark is a replay:
it reports what was overdue then and leaves the outbox alone. The rules look at state, not at "what changed since the
last run", so the first run after downtime covers everything that fell due meanwhile, and dispatch
turns it into one digest per recipient.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from sqlalchemy.orm import Session

from flows.fanout import fan_out, fans_out
from flows.hooks import retry_on_io_error, run_hooks
from flows.recording import record_run
from flows.runtime import Runtime, current_runtime, ledger_refusal
from models import findings as catalogue
from models.chase.findings import callback_chase_findings, reply_finding
from models.chase.queries import chase_callbacks, overdue_replies
from models.chase.rules import judged_at
from models.findings import Finding
from models.ledger.db import transaction

REPLY_KINDS = frozenset(k.name for k in catalogue.REPLY_KINDS)
CALLBACK_KINDS = frozenset(k.name for k in catalogue.CALLBACK_KINDS)


@dataclass(frozen=True)
class ChaseResult:
    """What one chase run found and what it did to the outbox."""

    flow: str
    as_of: datetime
    judged_at: datetime
    findings: tuple[Finding, ...]
    new: int = 0
    seen_again: int = 0
    resolved: int = 0
    recorded: bool = True  # False for a replay of a moment earlier than the last one recorded


# -- recording --------------------------------------------------------------------------------

def _record(rt: Runtime, session: Session, flow_name: str, findings: list[Finding], kinds: frozenset[str],
            as_of: datetime, judged: datetime, office: str | None = None) -> ChaseResult:
    synced = record_run(rt, session, flow_name=flow_name, findings=findings, kinds=kinds, as_of=as_of,
                        scope=office or "*", office=office)
    if synced is None:  # a replay reports what was overdue then
        return ChaseResult(flow=flow_name, as_of=as_of, judged_at=judged, findings=tuple(findings), recorded=False)
    return ChaseResult(flow=flow_name, as_of=as_of, judged_at=judged, findings=tuple(findings),
                       new=synced.new, seen_again=synced.seen_again, resolved=synced.resolved)


def run_chase_replies(rt: Runtime, as_of: datetime, office: str | None = None) -> ChaseResult:
    """Phone requests past their reply time as of `as_of` (in `office`, else the group), recorded in the outbox in
    one transaction."""
    with transaction(rt.sessions) as session:
        # one office's part of a fanned-out run (flows/fanout.py): its rows only, its watermark
        replies = overdue_replies(session, as_of=as_of, calendar=rt.calendar,
                                  reply_minutes=rt.settings.reply_minutes, office=office)
        return _record(rt, session, "chase-replies", [reply_finding(r, rt.calendar) for r in replies], REPLY_KINDS,
                       as_of, judged_at(as_of, rt.calendar), office)


def run_chase_callbacks(rt: Runtime, as_of: datetime, office: str | None = None) -> ChaseResult:
    """Overdue callbacks (by level), rework without callback or order, and late work orders, as of `as_of` (in
    `office`, else the group)."""
    s = rt.settings
    with transaction(rt.sessions) as session:
        found = chase_callbacks(session, as_of=as_of, calendar=rt.calendar,
                                escalate_workdays=s.callback_escalate_workdays,
                                rework_due_hours=s.rework_due_hours, office=office)
        return _record(rt, session, "chase-callbacks", callback_chase_findings(found, rt.calendar), CALLBACK_KINDS,
                       as_of, found.judged_at, office)


# -- Prefect --------------------------------------------------------------------------------

def _now(rt: Runtime) -> datetime:
    return datetime.now(rt.calendar.tz)


def _log(result: ChaseResult) -> ChaseResult:
    rt = current_runtime()
    get_run_logger().info(
        "%s as of %s (judged at %s): %d finding(s), %d new alert(s), %d seen again, %d resolved; "
        "recorded in %s", result.flow, result.as_of.isoformat(), result.judged_at.isoformat(),
        len(result.findings), result.new, result.seen_again, result.resolved,
        rt.engine.url.render_as_string(hide_password=True))
    for warning in rt.calendar_warnings():  # a year without make-up-day data: said loudly, never guessed
        get_run_logger().warning(warning)
    return result


# the whole run is one database transaction that rolls back on error, so retrying it is safe;
# only I/O errors are retried (a bug or bad data fails the same way twice)
@task(name="chase-replies-record", retries=2, retry_delay_seconds=[5, 30], cache_policy=NO_CACHE,
      retry_condition_fn=retry_on_io_error)
def _chase_replies_task(as_of: datetime) -> ChaseResult:
    return run_chase_replies(current_runtime(), as_of)


@task(name="chase-callbacks-record", retries=2, retry_delay_seconds=[5, 30], cache_policy=NO_CACHE,
      retry_condition_fn=retry_on_io_error)
def _chase_callbacks_task(as_of: datetime) -> ChaseResult:
    return run_chase_callbacks(current_runtime(), as_of)


@flow(name="chase-replies", **run_hooks())
def chase_replies_flow(as_of: datetime | None = None) -> ChaseResult:
    """Phone requests with no reply within the reply time."""
    if (refused := ledger_refusal(current_runtime())) is not None:
        return refused
    if fans_out(current_runtime()):  # a group on a work pool: one child run per office batch
        return fan_out("chase-replies", as_of=as_of)
    return _log(_chase_replies_task(as_of or _now(current_runtime())))


@flow(name="chase-callbacks", **run_hooks())
def chase_callbacks_flow(as_of: datetime | None = None) -> ChaseResult:
    """Overdue callbacks escalating by level, missing rework, rework callbacks, late work orders."""
    if (refused := ledger_refusal(current_runtime())) is not None:
        return refused
    if fans_out(current_runtime()):
        return fan_out("chase-callbacks", as_of=as_of)
    return _log(_chase_callbacks_task(as_of or _now(current_runtime())))
