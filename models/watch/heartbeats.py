"""Flow-run heartbeats (`flow_runs`): one row per run, written when it starts and updated when it ends.

Written by the flows' Prefect state hooks (flows/hooks.py), read by `bianmin watch` and the console's Health
page. A run whose start was not recorded (the database was down then) gets its row when it ends.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from models.ledger.tables import FLOW_RUN_RESULTS, FlowRun

ENDED = tuple(r for r in FLOW_RUN_RESULTS if r != "running")


@dataclass(frozen=True)
class LastRun:
    """A flow's latest run as people read it: when, for which window, how it ended, which Prefect run it was."""

    flow: str
    scope: str
    started_at: datetime
    finished_at: datetime | None
    window_end: datetime | None
    result: str
    prefect_run_id: str | None
    worker: str | None
    message: str | None

    @property
    def seconds(self) -> float | None:
        """How long it ran; None while it runs."""
        return None if self.finished_at is None else (self.finished_at - self.started_at).total_seconds()


def start_run(session: Session, *, flow: str, scope: str, window_end: datetime | None, started_at: datetime,
              prefect_run_id: str | None, worker: str | None) -> int:
    """Record that a run started (result `running`); returns its row id."""
    row = FlowRun(flow=flow, scope=scope, window_end=window_end, started_at=started_at, result="running",
                  prefect_run_id=prefect_run_id, worker=worker)
    session.add(row)
    session.flush()
    return row.id


def finish_run(session: Session, *, flow: str, scope: str, prefect_run_id: str | None, result: str,
               finished_at: datetime, started_at: datetime | None = None, window_end: datetime | None = None,
               worker: str | None = None, message: str | None = None) -> int:
    """Record how a run ended: its `running` row updated, or a row of its own if its start was never recorded."""
    if result not in ENDED:
        raise ValueError(f"a run ends {ENDED}, not {result!r}")
    changes = {"result": result, "finished_at": finished_at, "message": message}
    if window_end is not None:
        changes["window_end"] = window_end
    if prefect_run_id is not None:
        done = session.execute(update(FlowRun).where(FlowRun.prefect_run_id == prefect_run_id,
                                                     FlowRun.result == "running").values(**changes)
                               .execution_options(synchronize_session=False)).rowcount
        if done:
            return done
    session.add(FlowRun(flow=flow, scope=scope, started_at=started_at or finished_at, prefect_run_id=prefect_run_id,
                        worker=worker, **changes))
    session.flush()
    return 1


def last_runs(session: Session, *, flows: tuple[str, ...] | None = None, scopes: tuple[str, ...] | None = None,
              result: str | None = None) -> dict[str, LastRun]:
    """Each flow's latest run (started last), optionally only runs with `result` and of `scopes`."""
    latest = select(FlowRun.flow, func.max(FlowRun.started_at).label("started_at"))
    if flows is not None:
        latest = latest.where(FlowRun.flow.in_(flows))
    if scopes is not None:
        latest = latest.where(FlowRun.scope.in_(scopes))
    if result is not None:
        latest = latest.where(FlowRun.result == result)
    latest = latest.group_by(FlowRun.flow).subquery()
    rows = select(FlowRun).join(latest, (FlowRun.flow == latest.c.flow) & (FlowRun.started_at == latest.c.started_at))
    if scopes is not None:
        rows = rows.where(FlowRun.scope.in_(scopes))
    if result is not None:
        rows = rows.where(FlowRun.result == result)
    out: dict[str, LastRun] = {}
    for r in session.scalars(rows.order_by(FlowRun.id)):
        out[r.flow] = LastRun(r.flow, r.scope, r.started_at, r.finished_at, r.window_end, r.result,
                              r.prefect_run_id, r.worker, r.message)
    return out


def first_run_at(session: Session) -> datetime | None:
    """When any flow first started: since then every flow should have been running."""
    return session.scalar(select(func.min(FlowRun.started_at)))
