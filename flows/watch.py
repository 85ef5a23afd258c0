"""`bianmin watch`: the system watching itself, from outside the scheduler it watches.

Run by the machine's cron or a systemd timer, never by Prefect: it reads bianmin's own database (the flows'
heartbeats in `flow_runs`, the outbox) and asks the Prefect server's `/health`, judges with the pure rules of
models/watch/rules.py, and tells `ops` straight through apprise (notifications.delivery.send_message, not the
outbox: the dispatcher may be what is broken) once per problem, and once more when it clears.

What it told is kept in a small JSON file (`BIANMIN_WATCH_STATE_FILE`, default `<data_dir>/watch-state.json`),
not in the database, because "the database cannot be used" is one of the problems it must be able to tell and
then remember having told. The file is replaced atomically (a reader never sees half of it), is private (0600),
and two watches at once take turns on a lock file beside it. A lost or unreadable state file costs at most one
repeated message per open problem.

No Prefect import here: a watch must run when Prefect cannot.
"""
from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from flows.deployments import schedules
from flows.runtime import Runtime
from flows.settings import Settings
from models import texts
from models.calendar import CalendarError
from models.ledger.db import LedgerUnusable
from models.watch import heartbeats
from models.watch.rules import (
    FlowSchedule,
    LedgerUnreachable,
    PrefectUnreachable,
    ScheduleError,
    failing_deliveries,
    late_deliveries,
    notices,
    stale_flow,
)
from notifications.masking import mask_url_password, scrub

log = logging.getLogger("bianmin.watch")

OPS_TAG = "ops"
STATE_VERSION = 1
WORKING_DAYS_ONLY = {"cash-check"}  # a cash check on a day off skips: only its working days' runs are owed


def missed_allowed(crons: list[str]) -> int:
    """Runs in a row a flow may miss before it is stale: none for a schedule that fires once a month (a day of the
    month in every cron, as `0 8 1 * *`), one (twice the interval) for the others, the daily tally included."""
    return 0 if all(len(c.split()) == 5 and c.split()[2] != "*" for c in crons) else 1


@dataclass(frozen=True)
class Check:
    """One thing the watch looked at: `check` (flow, deliveries, prefect, ledger), what (`name`), ok / problem /
    skipped, a line for people, and for a problem its key and one-line title (what the ops message is called)."""

    check: str
    name: str
    status: str
    detail: str
    key: str | None = None
    title: str | None = None


@dataclass
class WatchResult:
    """One watch: what it found, and which problems it told ops of, which it said are resolved, which sends failed."""

    as_of: datetime
    checks: list[Check]
    state_file: Path
    told: list[str] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    @property
    def problems(self) -> list[str]:
        return [c.key for c in self.checks if c.status == "problem" and c.key]

    @property
    def ok(self) -> bool:
        return not self.problems and not self.failed


def flow_schedules(settings: Settings) -> list[FlowSchedule]:
    """Each flow's schedule as the watch judges it: the deployments' own crons (flows/deployments.py)."""
    return [FlowSchedule(name, tuple(crons), missed_allowed(crons), name in WORKING_DAYS_ONLY)
            for name, crons in schedules(settings).items()]


# -- looking ----------------------------------------------------------------------------------------------------

def _local(rt: Runtime, moment: datetime | None) -> str:
    return rt.calendar.local(moment).strftime("%Y-%m-%d %H:%M") if moment is not None else ""


def _t(rt: Runtime, code: str, **values: Any) -> str:
    return texts.render(code, rt.settings.locale, **values)


def flow_checks(rt: Runtime, session, *, as_of: datetime, watching_since: datetime) -> list[Check]:
    """One check per scheduled flow: stale or not, by its last completed heartbeat."""
    s = rt.settings
    last = heartbeats.last_runs(session, result="completed")
    first = heartbeats.first_run_at(session)
    since = min(watching_since, first) if first is not None else watching_since
    out = []
    for schedule in flow_schedules(s):
        success = last.get(schedule.flow)
        started = success.started_at if success else None
        stale = stale_flow(schedule, last_success=started, since=since, as_of=as_of, tz=rt.calendar.tz,
                           is_working_day=rt.calendar.is_working_day,
                           grace=timedelta(minutes=s.watch_grace_minutes))
        last_text = _local(rt, started) or _t(rt, "flow.watch.never")
        if stale is None:
            out.append(Check("flow", schedule.flow, "ok", _t(rt, "flow.watch.flow_ok", last=last_text)))
            continue
        missed = ", ".join(_local(rt, m) for m in stale.missed)
        out.append(Check("flow", schedule.flow, "problem",
                         _t(rt, "flow.watch.stale_detail", last=last_text, missed=missed),
                         stale.key, _t(rt, "flow.watch.stale", flow=schedule.flow)))
    return out


def delivery_checks(rt: Runtime, session, *, as_of: datetime) -> list[Check]:
    """One check per tag whose deliveries fail or wait too long; one `ok` check when none does."""
    from notifications import delivery_health

    minutes = rt.settings.watch_pending_minutes
    failing = failing_deliveries(delivery_health.failing_by_tag(session, as_of=as_of),
                                 delivery_health.channels_failing(session))
    late = late_deliveries(delivery_health.waiting_by_tag(session, as_of=as_of), as_of=as_of,
                           late_after=timedelta(minutes=minutes))
    out = []
    for problem in failing:
        out.append(Check("deliveries", problem.tag, "problem", _t(
            rt, "flow.watch.failing_detail", alerts=problem.alerts, since=_local(rt, problem.since),
            error=scrub(problem.error)[:300]), problem.key, _t(rt, "flow.watch.failing", tag=problem.tag)))
    for problem in late:
        out.append(Check("deliveries", problem.tag, "problem", _t(
            rt, "flow.watch.late_detail", alerts=problem.alerts, since=_local(rt, problem.due_since),
            minutes=minutes), problem.key, _t(rt, "flow.watch.late", tag=problem.tag)))
    return out or [Check("deliveries", "*", "ok", _t(rt, "flow.watch.deliveries_ok"))]


def prefect_check(rt: Runtime) -> Check:
    """The Prefect server's `/health`, with a short timeout; skipped (and said so) when PREFECT_API_URL is unset."""
    api = (os.environ.get("PREFECT_API_URL") or "").strip().rstrip("/")
    if not api:
        return Check("prefect", "prefect", "skipped", _t(rt, "flow.watch.prefect_skipped"))
    shown = mask_url_password(api)
    reason = None
    try:
        with urllib.request.urlopen(f"{api}/health", timeout=rt.settings.watch_prefect_timeout) as response:
            if response.status != 200:
                reason = f"HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        reason = f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        # the reason only (refused, timed out), never the URL again with whatever it carries
        reason = type(getattr(exc, "reason", None) or exc).__name__
    if reason is None:
        return Check("prefect", "prefect", "ok", _t(rt, "flow.watch.prefect_ok", url=shown))
    problem = PrefectUnreachable(shown, reason)
    return Check("prefect", "prefect", "problem", _t(rt, "flow.watch.prefect_detail", url=shown, reason=reason),
                 problem.key, _t(rt, "flow.watch.prefect"))


def look(rt: Runtime, *, as_of: datetime, watching_since: datetime) -> list[Check]:
    """Every check, as of `as_of`; a database that cannot be used is the one problem that hides the others."""
    checks: list[Check] = []
    try:
        rt.engine
        with rt.sessions() as session:
            checks += flow_checks(rt, session, as_of=as_of, watching_since=watching_since)
            checks += delivery_checks(rt, session, as_of=as_of)
    except LedgerUnusable as exc:
        checks.append(_ledger_problem(rt, exc.message(rt.settings.locale)))
    except SQLAlchemyError as exc:  # reachable when checked, gone since
        checks.append(_ledger_problem(rt, scrub(mask_url_password(str(exc)))[:300]))
    except (CalendarError, ScheduleError) as exc:  # a broken override file or cron: the flows cannot be judged
        checks.append(Check("flow", "*", "problem", scrub(str(exc))[:300], "schedule-unreadable",
                            _t(rt, "flow.watch.stale", flow="*")))
    checks.append(prefect_check(rt))
    return checks


def _ledger_problem(rt: Runtime, reason: str) -> Check:
    problem = LedgerUnreachable(reason)
    return Check("ledger", "ledger", "problem", reason, problem.key, _t(rt, "flow.watch.ledger"))


# -- remembering ------------------------------------------------------------------------------------------------

@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One watch at a time per state file (a timer firing while a slow watch still runs waits its turn)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.with_name(path.name + ".lock"), os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def read_state(path: Path, *, as_of: datetime) -> dict[str, Any]:
    """The state file's content; a missing or unreadable one starts afresh (said in the log)."""
    fresh = {"version": STATE_VERSION, "watching_since": as_of.isoformat(), "problems": {}}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return fresh
    except (OSError, ValueError) as exc:
        log.warning("watch state %s unreadable (%s): starting afresh", path, type(exc).__name__)
        return fresh
    if not isinstance(data, dict) or not isinstance(data.get("problems"), dict):
        log.warning("watch state %s is not a watch state: starting afresh", path)
        return fresh
    try:
        datetime.fromisoformat(data["watching_since"])
    except (KeyError, TypeError, ValueError):
        data["watching_since"] = as_of.isoformat()
    return data


def write_state(path: Path, data: dict[str, Any]) -> None:
    """Replace the state file at once: written to a private temporary file beside it, then renamed over it."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(data, out, ensure_ascii=False, indent=1, sort_keys=True)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)


# -- telling ----------------------------------------------------------------------------------------------------

def _tags_for(rt: Runtime, check: Check | None) -> list[str]:
    """ops, except when the failing deliveries are ops' own: then where a failing ops channel is reported."""
    if check is None or check.check != "deliveries" or check.name.lower() != OPS_TAG:
        return [OPS_TAG]
    from notifications.delivery import AppriseConfigError, config_tags
    from notifications.dispatcher import channel_alert_tags

    s = rt.settings
    try:
        known = set(config_tags(s.apprise_config)) if s.apprise_config else set()
    except AppriseConfigError:
        known = set()
    return channel_alert_tags(OPS_TAG, routes=s.alert_routes, config_tags=known)


def _send(rt: Runtime, tags: list[str], title: str, body: str) -> bool:
    from notifications.delivery import send_message

    s = rt.settings
    sent = False
    for tag in tags:
        try:
            sent = send_message(tag=tag, title=title, body=body, apprise_config=s.apprise_config,
                                outbox_dir=s.effective_outbox_dir) or sent
        except Exception as exc:  # noqa: BLE001 - a watch that cannot tell says so and tries again next time
            log.warning("watch: could not send to %s: %s", tag, type(exc).__name__)
    return sent


def watch(rt: Runtime, *, as_of: datetime, host: str | None = None) -> WatchResult:
    """Look, compare with what was told before, tell ops of each new problem and each one cleared, remember."""
    host = host or socket.gethostname()
    path = rt.settings.effective_watch_state_file
    when = _local(rt, as_of)
    with _locked(path):
        state = read_state(path, as_of=as_of)
        checks = look(rt, as_of=as_of, watching_since=datetime.fromisoformat(state["watching_since"]))
        result = WatchResult(as_of, checks, path)
        known: dict[str, dict[str, Any]] = state["problems"]
        current = {c.key: c for c in checks if c.status == "problem" and c.key}
        plan = notices(told={k: bool(v.get("told")) for k, v in known.items()}, current=current)
        for key in plan.tell:
            check = current[key]
            entry = known.setdefault(key, {"since": as_of.isoformat()})
            entry.update(title=check.title, detail=check.detail)
            if _send(rt, _tags_for(rt, check), _t(rt, "flow.watch.title", what=check.title),
                     _t(rt, "flow.watch.body", detail=check.detail, as_of=when, host=host)):
                entry["told"] = as_of.isoformat()
                result.told.append(key)
            else:
                result.failed.append(key)
        for key in plan.resolve:
            entry = known[key]
            what = entry.get("title") or key
            since = _local(rt, datetime.fromisoformat(entry["since"])) if entry.get("since") else ""
            tags = [OPS_TAG] if not key.startswith("delivery-") else _tags_for(
                rt, Check("deliveries", key.partition(":")[2], "ok", ""))
            if _send(rt, tags, _t(rt, "flow.watch.title_resolved", what=what),
                     _t(rt, "flow.watch.body_resolved", what=what, as_of=when, since=since)):
                del known[key]
                result.resolved.append(key)
            else:
                result.failed.append(key)
        for key in plan.forget:
            del known[key]
        for key in current:  # still open and already told: only the detail is refreshed
            if key in known and key not in plan.tell:
                known[key]["detail"] = current[key].detail
        state["version"] = STATE_VERSION
        state["checked_at"] = as_of.isoformat()
        write_state(path, state)
    return result

