"""What `bianmin watch` judges: pure rules over plain values, time passed in (`as_of`), no clock, no I/O.

A flow is stale when the scheduled runs it should have completed since its last successful run are missing:
two in a row for the flows that run all day (twice the schedule's interval: the tally, daily for its sign-off,
too), the one run of a schedule that fires once a month; the cash check counts only its runs on working days (a check skipped on a day off, or not run across the
October holiday, is not missed). A scheduled run counts as missed once `grace` (at most the schedule's interval)
has passed since its time, so a run still in progress is not a problem.
"""
from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from cronsim import CronSim, CronSimError

# a schedule that fires less than once in this many slots' look-ahead is judged on what it has
_MAX_SLOTS = 20_000


@dataclass(frozen=True)
class FlowSchedule:
    """When a flow should run: its cron expressions (local time), how many runs in a row may be missed before it
    is stale, and whether only runs on working days count."""

    flow: str
    crons: tuple[str, ...]
    missed_allowed: int = 1
    working_days_only: bool = False


@dataclass(frozen=True)
class StaleFlow:
    """A flow whose scheduled runs have not completed: since when it is owed, and its last success (None: never)."""

    flow: str
    last_success: datetime | None
    missed: tuple[datetime, ...]

    @property
    def key(self) -> str:
        return f"stale:{self.flow}"


@dataclass(frozen=True)
class FailingDelivery:
    """Alerts to one recipient tag that were tried and not accepted, or a `channel-failing` alert open for it."""

    tag: str
    alerts: int
    since: datetime | None
    error: str

    @property
    def key(self) -> str:
        return f"delivery-failing:{self.tag}"


@dataclass(frozen=True)
class LateDelivery:
    """Alerts to one tag due for longer than the threshold and never tried: nothing is dispatching them."""

    tag: str
    alerts: int
    due_since: datetime

    @property
    def key(self) -> str:
        return f"delivery-late:{self.tag}"


@dataclass(frozen=True)
class PrefectUnreachable:
    """The Prefect server (`PREFECT_API_URL`) did not answer its health check."""

    url: str
    reason: str

    key = "prefect-down"


@dataclass(frozen=True)
class LedgerUnreachable:
    """bianmin's own database cannot be used: nothing else can be judged."""

    reason: str

    key = "ledger-unusable"


Problem = StaleFlow | FailingDelivery | LateDelivery | PrefectUnreachable | LedgerUnreachable


class ScheduleError(ValueError):
    """A cron expression the rules cannot read."""


def _slots(crons: Iterable[str], start: datetime, tz: ZoneInfo) -> Iterator[datetime]:
    """Every scheduled moment strictly after `start`, of all `crons`, in order, each once."""
    try:
        iterators = [CronSim(expr, start.astimezone(tz).replace(second=0, microsecond=0)) for expr in crons]
    except CronSimError as exc:
        raise ScheduleError(str(exc)) from exc
    last = None
    for moment in heapq.merge(*iterators):
        if moment > start and moment != last:
            last = moment
            yield moment


def stale_flow(schedule: FlowSchedule, *, last_success: datetime | None, since: datetime, as_of: datetime,
               tz: ZoneInfo, is_working_day: Callable[[date], bool], grace: timedelta) -> StaleFlow | None:
    """The flow as stale at `as_of`, or None when it has run as often as its schedule asks.

    `last_success` is when its last completed run started (None: never); a flow that never ran is owed its runs
    from `since` (when bianmin began watching or running, whichever was first)."""
    start = last_success or since
    counted: list[datetime] = []
    raw = _slots(schedule.crons, start, tz)
    slot = next(raw, None)
    for _ in range(_MAX_SLOTS):
        if slot is None or slot > as_of:
            break
        following = next(raw, None)
        if schedule.working_days_only and not is_working_day(slot.astimezone(tz).date()):
            slot = following
            continue
        # a run may take a while: its slot is missed once the grace (at most an interval) has passed
        allowance = min(grace, following - slot) if following is not None else grace
        if slot + allowance > as_of:
            break
        counted.append(slot)
        if len(counted) > schedule.missed_allowed:
            return StaleFlow(schedule.flow, last_success, tuple(counted))
        slot = following
    return None


def failing_deliveries(tried: Iterable[tuple[str, int, datetime | None, str]],
                       channels_failing: Iterable[tuple[str, datetime | None, str]]) -> list[FailingDelivery]:
    """One problem per tag: (tag, alerts tried and not accepted, oldest, last error) merged with the open
    `channel-failing` alerts (channel, since, error)."""
    by_tag: dict[str, FailingDelivery] = {}
    for tag, count, since, error in tried:
        by_tag[tag] = FailingDelivery(tag, count, since, error)
    for tag, since, error in channels_failing:
        known = by_tag.get(tag)
        if known is None:
            by_tag[tag] = FailingDelivery(tag, 0, since, error)
    return [by_tag[t] for t in sorted(by_tag)]


def late_deliveries(untried: Iterable[tuple[str, int, datetime]], *, as_of: datetime,
                    late_after: timedelta) -> list[LateDelivery]:
    """Tags whose untried alerts have been due longer than `late_after`: (tag, count, due since) rows."""
    return [LateDelivery(tag, count, due) for tag, count, due in sorted(untried) if due <= as_of - late_after]


@dataclass(frozen=True)
class Notices:
    """What to send after one look: a problem message per new problem, a resolved notice per cleared one."""

    tell: tuple[str, ...] = ()
    resolve: tuple[str, ...] = ()
    forget: tuple[str, ...] = field(default=())  # cleared before anyone was told: dropped silently


def notices(*, told: dict[str, bool], current: Iterable[str]) -> Notices:
    """From what the watch remembers (problem key -> whether ops was told) and the problems found now."""
    now = set(current)
    tell = tuple(sorted(k for k in now if not told.get(k)))
    gone = sorted(k for k in told if k not in now)
    return Notices(tell, tuple(k for k in gone if told[k]), tuple(k for k in gone if not told[k]))
