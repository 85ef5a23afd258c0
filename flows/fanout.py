"""Fan-out per office: a group's daily checks split into one child run per office batch, so several workers share
them, and one office failing stops no other.

Only when `BIANMIN_FANOUT_BATCH` > 0 and the run came from a deployment (its server has the `office-check`
deployment: `bianmin deploy` applies it, `bianmin serve` serves it). Otherwise, and always for a one-off
`bianmin run`, the flow checks every office in one run, as one office on SQLite always has.

The parent (chase-replies, chase-callbacks or cash-check on its schedule):
1. fixes the moment every office is judged at: the given `as_of`, else the run's scheduled time, so a duplicate
   scheduled run (Prefect #17508, #18894) or a re-run of the same window asks for exactly the same children;
2. starts one `office-check` run per batch of offices not yet done for that moment (bianmin's own record:
   the flow's watermark per office, `flow_watermarks(flow, scope=office)`), with `run_deployment(...,
   timeout=0, idempotency_key="<flow>:<office>:<moment>")`: the server makes each child once, any worker takes
   it; a child of the same key that failed or crashed before is put back to Scheduled, a finished one is not;
3. waits until every child has ended; a child that crashed (its worker died: the server marks a silent run
   Crashed, see flows/deploy.py) is put back to Scheduled once, for another worker;
4. reads from bianmin's database which offices are done; each office not done gets an `ops` alert naming it
   (`flow-failed:<flow>:<day>:<office>`), each office done resolves its earlier one.
The children's outbox writes are once by the outbox's unique keys and the per-office watermark, whatever the
scheduler does twice. The parent ends Completed when it reported every failed office itself (the children that
failed are Failed in Prefect, which pages ops through the automations too).

The monthly tally fans out the same way (`fan_out_tally`, before its own pass over each new month): each child
reconciles its batch of offices in one pass (`reconcile_month(offices=...)`, for each exactly its part of the
group) and writes and sends their reports, once by `report_runs`' unique version and content hash. When every
child has ended, the parent's pass finds those reports unchanged, redoes any office whose child failed, and
builds the group's report and its sign-off: the group's report is made only once every office's part is in.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

from flows.deployments import DEPLOYMENT_NAME
from flows.hooks import FLOW_FAILED, retry_on_io_error
from flows.runtime import Runtime, current_runtime, ledger_refusal
from models import findings as catalogue
from models import texts
from models.findings import Finding
from models.ledger.db import transaction
from models.ledger.tables import Alert, FlowWatermark, Office
from notifications.masking import mask_url_password, scrub
from notifications.outbox import resolve_alerts, sync_findings

OFFICE_FLOW = "office-check"
FANNED = ("chase-replies", "chase-callbacks", "cash-check")
TALLY = "monthly-tally"
POLL_SECONDS = 2.0


@dataclass(frozen=True)
class FanoutResult:
    """One fanned-out run: the moment, the offices, how many child runs, which offices are done, which failed."""

    flow: str
    as_of: datetime
    day: date | None
    offices: tuple[str, ...]
    runs: int
    done: tuple[str, ...]
    failed: dict[str, str] = field(default_factory=dict)
    skipped: bool = False


# -- when ----------------------------------------------------------------------------------------

def fans_out(rt: Runtime) -> bool:
    """Whether this flow run splits its work by office: a batch size is set and the run came from a deployment."""
    if rt.settings.fanout_batch <= 0:
        return False
    from prefect.runtime import deployment

    return deployment.id is not None


def batches(offices: list[str], size: int) -> list[tuple[str, ...]]:
    return [tuple(offices[i:i + size]) for i in range(0, len(offices), size)]


def idempotency_key(flow_name: str, batch: tuple[str, ...], moment: datetime, month: str | None = None) -> str:
    """The child's key: flow (and month, for the tally), office (or first..last of a batch) and the moment
    judged, to the second."""
    offices = batch[0] if len(batch) == 1 else f"{batch[0]}..{batch[-1]}"
    what = flow_name if month is None else f"{flow_name}:{month}"
    return f"{what}:{offices}:{moment.astimezone(timezone.utc).isoformat(timespec='seconds')}"


# -- bianmin's own record of what is done -------------------------------------------------------------

def office_codes(rt: Runtime) -> list[str]:
    with transaction(rt.sessions) as session:
        return list(session.scalars(select(Office.code).order_by(Office.code)))


def done_offices(rt: Runtime, flow_name: str, offices: list[str] | tuple[str, ...], moment: datetime) -> set[str]:
    """Offices whose part of `flow_name` was recorded as of `moment` or later (their watermark)."""
    with transaction(rt.sessions) as session:
        return set(session.scalars(select(FlowWatermark.scope).where(
            FlowWatermark.flow == flow_name, FlowWatermark.scope.in_(list(offices)),
            FlowWatermark.window_end >= moment)))


def office_failure_key(flow_name: str, day: str, office: str) -> str:
    return catalogue.FLOW_FAILED.key(flow_name, day, office)


def record_office_failures(rt: Runtime, flow_name: str, *, day: str, failed: dict[str, str], done: list[str],
                           at: datetime) -> None:
    """An ops alert per failed office (one per office and day: a check failing every 5 minutes is one problem);
    the open ones of the offices now done are resolved."""
    s = rt.settings
    findings = [Finding(key=office_failure_key(flow_name, day, office), kind=FLOW_FAILED, office=office, level=1,
                        severity=catalogue.FLOW_FAILED.severity, subject=f"{office} {day}", occurred_at=at,
                        facts={"flow": flow_name, "office": office, "day": day,
                               "error": f"{flow_name} of office {office}: {error}"})
                for office, error in sorted(failed.items())]
    prefix = catalogue.FLOW_FAILED.key(flow_name) + ":"
    with transaction(rt.sessions) as session:
        if findings:  # kinds left empty: recording these must not resolve any other failure
            sync_findings(session, findings, kinds=set(), as_of=at, routes=s.alert_routes,
                          repeat_every=timedelta(hours=s.repeat_hours))
        if done:
            healed = session.scalars(select(Alert.id).where(
                Alert.kind == FLOW_FAILED, Alert.resolved_at.is_(None), Alert.office.in_(done),
                Alert.dedupe_key.startswith(prefix, autoescape=True))).all()
            resolve_alerts(session, list(healed), as_of=at)


# -- the parent ------------------------------------------------------------------------------------

def moment_of(rt: Runtime, as_of: datetime | None) -> datetime:
    """The moment a fanned-out run judges: `as_of`, else the run's scheduled time (the same for a duplicate)."""
    if as_of is not None:
        return as_of
    from prefect.runtime import flow_run

    scheduled = flow_run.scheduled_start_time
    return datetime.fromtimestamp(scheduled.timestamp(), tz=rt.calendar.tz).replace(microsecond=0)


def fan_out(flow_name: str, *, as_of: datetime | None = None, day: date | None = None) -> FanoutResult:
    """Run `flow_name` as one child run per office batch and wait for them all (see the module docstring)."""
    rt = current_runtime()
    logger = get_run_logger()
    moment = moment_of(rt, as_of)
    if flow_name == "cash-check":
        from flows.cash import judge_window

        day, moment, skipped = judge_window(rt, day, moment, max(moment, datetime.now(rt.calendar.tz)))
        if skipped:
            logger.info(texts.render("flow.cash.day_off", rt.settings.locale, day=day))
            return FanoutResult(flow_name, moment, day, (), 0, (), skipped=True)
    offices = office_codes(rt)
    todo = [o for o in offices if o not in done_offices(rt, flow_name, offices, moment)]
    children = [_start_child(flow_name, batch, moment, day) for batch in batches(todo, rt.settings.fanout_batch)]
    states = _wait(children, timeout=rt.settings.run_silent_seconds * 2 + 600)
    done = done_offices(rt, flow_name, offices, moment)
    failed = {office: states.get(batch, "not started")
              for batch in batches(todo, rt.settings.fanout_batch) for office in batch if office not in done}
    label = (day or rt.calendar.local(moment).date()).isoformat()
    record_office_failures(rt, flow_name, day=label, failed=failed, done=sorted(done),
                           at=datetime.now(timezone.utc))
    result = FanoutResult(flow_name, moment, day, tuple(offices), len(children), tuple(sorted(done)), failed)
    names = "; ".join(f"{o}: {e}" for o, e in sorted(failed.items()))
    logger.info(texts.render("flow.fanout.summary", rt.settings.locale, flow=flow_name, offices=len(offices),
                             runs=len(children), done=len(done), failed=len(failed),
                             names=f" ({names})" if names else ""))
    if failed:
        logger.error(texts.render("flow.fanout.failed", rt.settings.locale, flow=flow_name, failed=len(failed),
                                  names=", ".join(sorted(failed))))
    return result


def _start_child(flow_name: str, batch: tuple[str, ...], moment: datetime, day: date | None,
                 month: str | None = None) -> tuple:
    """One `office-check` run for `batch`, made once by its idempotency key; if that run had failed or crashed
    (an earlier run of the same window), it is put back to Scheduled: a re-run redoes only what is missing."""
    from prefect import get_client
    from prefect.deployments import run_deployment
    from prefect.states import Scheduled

    parameters = {"flow": flow_name, "offices": list(batch), "as_of": moment, "day": day}
    if month is not None:
        parameters["month"] = month
    name = f"{flow_name}{'' if month is None else ':' + month}:{'+'.join(batch)}"
    run = run_deployment(f"{OFFICE_FLOW}/{DEPLOYMENT_NAME}", timeout=0, parameters=parameters,
                         idempotency_key=idempotency_key(flow_name, batch, moment, month),
                         flow_run_name=name[:200], tags=["bianmin", flow_name])
    if run.state is not None and run.state.is_final() and not run.state.is_completed():
        with get_client(sync_client=True) as client:
            client.set_flow_run_state(run.id, Scheduled(), force=True)
    return (batch if month is None else (month, *batch)), run.id


def _wait(children: list[tuple], *, timeout: float) -> dict[tuple[str, ...], str]:
    """Wait until every child has ended (a crashed one is rescheduled once); returns batch -> how it ended."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.states import Scheduled

    by_id = {run_id: batch for batch, run_id in children}
    ended: dict[tuple[str, ...], str] = {}
    retried: set = set()
    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while by_id:
            runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=list(by_id))))
            for run in runs:
                state = run.state
                if state is None or not state.is_final():
                    continue
                if state.is_crashed() and run.id not in retried:  # its worker died: another one takes it
                    retried.add(run.id)
                    client.set_flow_run_state(run.id, Scheduled(), force=True)
                    continue
                ended[by_id.pop(run.id)] = f"{state.name}: {state.message or ''}".strip(": ")[:300]
            if not by_id or time.monotonic() > deadline:
                break
            time.sleep(POLL_SECONDS)
    for batch in by_id.values():
        ended[batch] = f"still running after {timeout:.0f} s"
    return ended


def fan_out_tally(months: list[str], as_of: datetime) -> dict[tuple[str, ...], str]:
    """Write every office's report of `months` in one child run per office batch and wait for them all; returns
    (month, *offices) -> how its child ended. The caller's own pass over the months then does the rest."""
    rt = current_runtime()
    offices = office_codes(rt)
    children = [_start_child(TALLY, batch, as_of, None, month=month)
                for month in months for batch in batches(offices, rt.settings.fanout_batch)]
    ended = _wait(children, timeout=rt.settings.run_silent_seconds * 2 + 600)
    unfinished = {label: state for label, state in ended.items() if not state.startswith("Completed")}
    get_run_logger().info(texts.render("flow.fanout.tally", rt.settings.locale, months=", ".join(months),
                                       offices=len(offices), runs=len(children), done=len(children) - len(unfinished),
                                       failed=len(unfinished)))
    return ended


# -- the child -------------------------------------------------------------------------------------

def publish_office_report(rt: Runtime, tally: Any, content: Any, rows: Any, as_of: datetime) -> dict[str, Any]:
    """Write and send one office's report (its `MonthTally`, `ContentText` and `SheetRows`), or hold it for the
    sign-off as the parent's pass would, if its content is new; a report that failed raises."""
    from flows.signoff import hold_for_signoff
    from flows.tally import report_desk
    from notifications.report_send import publish

    outcome = publish(report_desk(rt), tally, content, rows, resend=False, as_of=as_of,
                      started=datetime.now(timezone.utc), hold=hold_for_signoff(rt, tally.month))
    if outcome.failed:
        raise RuntimeError(outcome.error or outcome.send_error or "the report failed")
    return {"office": tally.office, "month": tally.month, "status": outcome.status, "version": outcome.version,
            "sent": outcome.sent}


def run_office_tallies(rt: Runtime, month: str, offices: list[str],
                       as_of: datetime) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The reports of `offices` for `month`, from one reconciliation of those offices (not of the group), each
    written and sent if new; an office with nothing in the month has none, and one office's report failing
    stops no other (the parent's pass redoes it). Returns what was done and office -> error."""
    from models.tally.queries import reconcile_month
    from notifications.report_content import content_texts
    from notifications.report_workbook import SheetRows

    s = rt.settings
    with transaction(rt.read_sessions) as session:
        tally = reconcile_month(session, month=month, calendar=rt.calendar, cash_cutoff=s.cash_cutoff,
                                reply_minutes=s.reply_minutes, rework_due_hours=s.rework_due_hours,
                                offices=tuple(offices))
    parts = tally.split()
    contents = content_texts(tally, parts)
    rows = SheetRows.split(tally, parts, locale=s.locale, tz=rt.calendar.tz)
    done, errors = [], {}
    for office in offices:
        if office not in parts:
            done.append({"office": office, "month": month, "status": "nothing"})
            continue
        try:
            done.append(publish_office_report(rt, parts[office], contents[office], rows[office], as_of))
        except DBAPIError:
            raise  # the database, not this office: the task's retry, then the parent, redo the batch
        except Exception as exc:  # noqa: BLE001 - one office's report must not stop the others'
            errors[office] = _error(exc)
    return done, errors


def run_office_part(rt: Runtime, flow_name: str, office: str, as_of: datetime, day: date | None) -> dict[str, Any]:
    """One office's part of `flow_name` as of `as_of`, in one transaction (the flows' own functions)."""
    if flow_name == "chase-replies":
        from flows.callbacks import run_chase_replies

        r = run_chase_replies(rt, as_of, office)
    elif flow_name == "chase-callbacks":
        from flows.callbacks import run_chase_callbacks

        r = run_chase_callbacks(rt, as_of, office)
    else:
        from flows.cash import run_cash_check

        r = run_cash_check(rt, day, as_of, office=office)
    return {"office": office, "findings": len(r.findings), "new": r.new, "seen_again": r.seen_again,
            "resolved": r.resolved}


# one office's transaction rolls back on error, so retrying it is safe; only I/O errors are retried
@task(name="office-part", retries=2, retry_delay_seconds=[5, 30], cache_policy=NO_CACHE,
      retry_condition_fn=retry_on_io_error)
def _office_part(flow_name: str, office: str, as_of: datetime, day: date | None) -> dict[str, Any]:
    return run_office_part(current_runtime(), flow_name, office, as_of, day)


# one task a batch, not an office: a report's claim is its unique version, so a retried batch finds the reports
# it wrote unchanged and writes and sends each once
@task(name="office-reports", retries=2, retry_delay_seconds=[5, 30], cache_policy=NO_CACHE,
      retry_condition_fn=retry_on_io_error)
def _office_reports(month: str, offices: list[str], as_of: datetime) -> tuple[list[dict[str, Any]], dict[str, str]]:
    return run_office_tallies(current_runtime(), month, offices, as_of)


def _office_parts(flow_name: str, offices: list[str], as_of: datetime,
                  day: date | None) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Each office's part in a task of its own; what was done, and office -> error."""
    parts, errors = [], {}
    for office in offices:
        try:
            parts.append(_office_part(flow_name, office, as_of, day))
        except Exception as exc:  # noqa: BLE001 - one office's failure must not stop the others
            errors[office] = _error(exc)
    return parts, errors


def _error(exc: BaseException) -> str:
    return scrub(mask_url_password(f"{type(exc).__name__}: {exc}"))[:300]


@flow(name=OFFICE_FLOW, log_prints=False)
def office_check_flow(flow: str, offices: list[str], as_of: datetime, day: date | None = None,
                      month: str | None = None) -> Any:
    """One batch of offices' part of a fanned-out check (or of the monthly tally's `month`); offices already done
    for `as_of` are skipped, and one office failing does not stop the others (the run then ends Failed, naming
    them; its parent alerts ops, or redoes the office's report itself)."""
    rt = current_runtime()
    if (refused := ledger_refusal(rt)) is not None:
        return refused
    if flow not in FANNED and not (flow == TALLY and month):
        from prefect.states import Failed

        return Failed(message=f"office-check does not run {flow!r}: only {', '.join(FANNED)} and {TALLY} of a month")
    if flow == TALLY:
        parts, errors = _office_reports(month, offices, as_of)
        already: set[str] = set()
    else:
        already = done_offices(rt, flow, offices, as_of)
        parts, errors = _office_parts(flow, [o for o in offices if o not in already], as_of, day)
    get_run_logger().info("%s as of %s: %d office(s) done, %d already done, %d failed", flow, as_of.isoformat(),
                          len(parts), len(already), len(errors))
    if errors:
        from prefect.states import Failed

        return Failed(message="; ".join(f"{o}: {e}" for o, e in sorted(errors.items())))
    return parts
