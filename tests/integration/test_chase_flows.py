"""chase-replies and chase-callbacks end to end: desk operations in, outbox rows out (keys, levels, tags).

Most tests call run_* directly (no Prefect) for speed; the `prefect` ones run the real flows under
Prefect's test harness.
"""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from flows.callbacks import (
    chase_callbacks_flow,
    chase_replies_flow,
    run_chase_callbacks,
    run_chase_replies,
)
from flows.runtime import Runtime, using_runtime
from models import desk
from models.ledger.db import transaction
from models.ledger.tables import Alert, FlowWatermark, WorkOrder
from tests.builders import accepted_job, at, order_for, request_for, setup_office


def open_alerts(rt: Runtime) -> set[tuple[str, int, str]]:
    """(row key, level, tag) of every unresolved alert."""
    with transaction(rt.sessions) as s:
        return {(a.dedupe_key, a.level, a.tag)
                for a in s.scalars(select(Alert).where(Alert.resolved_at.is_(None)))}


def resolved_keys(rt: Runtime) -> set[str]:
    with transaction(rt.sessions) as s:
        return set(s.scalars(select(Alert.dedupe_key).where(Alert.resolved_at.is_not(None))))


def overdue_callback_and_late_cleaning(rt: Runtime) -> tuple[str, str]:
    """A plumbing job accepted Mon 2026-11-23 12:10 (callback due Wed 17:30) and a cleaning order
    scheduled Thu 10:00 that nobody completed. Returns (plumbing order, cleaning order)."""
    with transaction(rt.sessions) as s:
        o = setup_office(s)
        job = accepted_job(s, rt.calendar, o, at=at("2026-11-23", "10:00"))
        req = request_for(s, o, at=at("2026-11-25", "15:00"), category="cleaning", channel="walk_in")
        late = order_for(s, o, req, at=at("2026-11-25", "15:10"), scheduled=at("2026-11-26", "10:00"))
        return job.number, late.number


def do_callback(rt: Runtime, order: str, when, outcome: str = "satisfied") -> None:
    with transaction(rt.sessions) as s:
        desk.callback(s, order=order, by="A1-CS1", outcome=outcome, at=when, calendar=rt.calendar)


# -- chase-callbacks ----------------------------------------------------------------------------------

def test_an_overdue_callback_goes_to_the_cs_supervisor_and_a_late_order_to_its_department(runtime):
    job, late = overdue_callback_and_late_cleaning(runtime)
    result = run_chase_callbacks(runtime, at("2026-11-26", "11:00"))
    assert open_alerts(runtime) == {
        (f"callback-overdue:{job}:1@cs-supervisor", 1, "cs-supervisor"),
        (f"order-overdue:{late}@cleaning-supervisor", 1, "cleaning-supervisor"),
    }
    assert (result.new, result.seen_again, result.resolved) == (2, 0, 0)
    [callback] = [f for f in result.findings if f.kind == "callback-overdue"]
    assert callback.facts["phone"] == "13812345678"  # raw in the ledger's outbox; masked when rendered
    assert (callback.holder, callback.facts["resident"]) == ("王客服", "刘女士")
    assert callback.due_at.isoformat() == at("2026-11-25", "17:30").isoformat()
    assert callback.overdue_minutes == 17 * 60 + 30


def test_running_again_at_the_same_moment_records_nothing_new(runtime):
    overdue_callback_and_late_cleaning(runtime)
    run_chase_callbacks(runtime, at("2026-11-26", "11:00"))
    before = open_alerts(runtime)
    again = run_chase_callbacks(runtime, at("2026-11-26", "11:00"))
    assert (again.new, again.seen_again, again.resolved) == (0, 2, 0)
    assert open_alerts(runtime) == before


def test_a_working_day_later_the_callback_escalates_to_the_cs_manager_and_the_supervisor_alert_stays(runtime):
    job, late = overdue_callback_and_late_cleaning(runtime)
    run_chase_callbacks(runtime, at("2026-11-26", "11:00"))
    result = run_chase_callbacks(runtime, at("2026-11-27", "09:00"))
    assert result.new == 1
    assert open_alerts(runtime) == {
        (f"callback-overdue:{job}:1@cs-supervisor", 1, "cs-supervisor"),
        (f"callback-overdue:{job}:2@cs-manager", 2, "cs-manager"),
        (f"order-overdue:{late}@cleaning-supervisor", 1, "cleaning-supervisor"),
    }


def test_doing_the_callback_resolves_both_levels_and_leaves_the_late_order_open(runtime):
    job, late = overdue_callback_and_late_cleaning(runtime)
    run_chase_callbacks(runtime, at("2026-11-27", "09:00"))
    do_callback(runtime, job, at("2026-11-27", "09:30"))
    result = run_chase_callbacks(runtime, at("2026-11-27", "09:40"))
    assert result.resolved == 2
    assert resolved_keys(runtime) == {f"callback-overdue:{job}:1@cs-supervisor",
                                      f"callback-overdue:{job}:2@cs-manager"}
    assert open_alerts(runtime) == {(f"order-overdue:{late}@cleaning-supervisor", 1, "cleaning-supervisor")}


def test_a_rework_order_without_its_callback_is_its_own_alert(runtime):
    with transaction(runtime.sessions) as s:
        o = setup_office(s)
        job = accepted_job(s, runtime.calendar, o, at=at("2026-11-23", "10:00")).number
    do_callback(runtime, job, at("2026-11-24", "10:00"), outcome="unsatisfied")
    with transaction(runtime.sessions) as s:
        rework = s.scalar(select(WorkOrder.number).where(WorkOrder.rework_of_id.is_not(None)))
        desk.complete(s, order=rework, by=o.plumber, at=at("2026-11-24", "15:00"))
        desk.accept(s, order=rework, signed_by="刘女士", at=at("2026-11-24", "15:10"), calendar=runtime.calendar)
    run_chase_callbacks(runtime, at("2026-11-27", "09:00"))
    assert open_alerts(runtime) == {(f"rework-callback-missing:{rework}:1@cs-supervisor", 1, "cs-supervisor")}


def test_a_callback_due_before_national_day_is_not_escalated_during_the_holiday(runtime):
    with transaction(runtime.sessions) as s:
        o = setup_office(s)
        # accepted Fri 2026-09-25: callback due Tue 09-29 17:30, level 2 would be due Wed 09-30 17:30
        job = accepted_job(s, runtime.calendar, o, at=at("2026-09-25", "10:00")).number
    level_one = {(f"callback-overdue:{job}:1@cs-supervisor", 1, "cs-supervisor")}
    for day in range(1, 8):  # Oct 1-7 off: hourly runs evaluate, nobody escalates
        for clock in ("03:00", "10:00", "16:00"):
            run_chase_callbacks(runtime, at(f"2026-10-0{day}", clock))
            assert open_alerts(runtime) == level_one, (day, clock)
    result = run_chase_callbacks(runtime, at("2026-10-08", "08:30"))
    assert result.new == 1
    assert open_alerts(runtime) == level_one | {(f"callback-overdue:{job}:2@cs-manager", 2, "cs-manager")}


def test_a_replay_of_the_past_reports_what_was_overdue_then_and_leaves_the_outbox_alone(runtime):
    job, late = overdue_callback_and_late_cleaning(runtime)
    run_chase_callbacks(runtime, at("2026-11-27", "09:00"))
    do_callback(runtime, job, at("2026-11-27", "09:30"))
    run_chase_callbacks(runtime, at("2026-11-27", "09:40"))
    after = open_alerts(runtime)
    replay = run_chase_callbacks(runtime, at("2026-11-26", "11:00"))
    assert not replay.recorded
    assert {f.key for f in replay.findings} == {f"callback-overdue:{job}:1", f"order-overdue:{late}"}
    assert open_alerts(runtime) == after
    with transaction(runtime.sessions) as s:
        mark = s.get(FlowWatermark, ("chase-callbacks", "*"))
        assert mark.window_end == at("2026-11-27", "09:40")


def test_the_first_run_after_downtime_records_everything_that_fell_due_meanwhile_at_once(runtime):
    with transaction(runtime.sessions) as s:
        o = setup_office(s)
        jobs = [accepted_job(s, runtime.calendar, o, at=at(f"2026-11-{day}", "10:00")).number
                for day in (16, 17, 18, 19)]
    # nothing ran from Mon 16th to Mon 30th; the first hourly run finds all of it
    result = run_chase_callbacks(runtime, at("2026-11-30", "09:00"))
    assert result.new == 2 * len(jobs)
    with transaction(runtime.sessions) as s:
        first_seen = set(s.scalars(select(Alert.first_seen)))
        pending = s.scalar(select(func.count()).select_from(Alert).where(Alert.sent_at.is_(None)))
    assert first_seen == {at("2026-11-30", "09:00")}
    assert pending == 2 * len(jobs)


# -- chase-replies ------------------------------------------------------------------------------------

def test_an_unanswered_phone_request_alerts_the_cs_supervisor_until_it_is_answered(runtime):
    with transaction(runtime.sessions) as s:
        o = setup_office(s)
        number = request_for(s, o, at=at("2026-11-23", "10:00")).number
    first = run_chase_replies(runtime, at("2026-11-23", "10:11"))
    assert open_alerts(runtime) == {(f"reply-overdue:{number}@cs-supervisor", 1, "cs-supervisor")}
    assert first.new == 1
    assert run_chase_replies(runtime, at("2026-11-23", "10:11")).new == 0
    with transaction(runtime.sessions) as s:
        desk.reply(s, request=number, by=o.clerk, at=at("2026-11-23", "10:20"))
    last = run_chase_replies(runtime, at("2026-11-23", "10:21"))
    assert last.resolved == 1
    assert open_alerts(runtime) == set()


def test_chase_replies_does_not_resolve_what_chase_callbacks_found(runtime):
    job, _ = overdue_callback_and_late_cleaning(runtime)
    run_chase_callbacks(runtime, at("2026-11-26", "11:00"))
    assert run_chase_replies(runtime, at("2026-11-26", "11:05")).resolved == 0
    assert len(open_alerts(runtime)) == 2


# -- under Prefect --------------------------------------------------------------------------------------

@pytest.mark.prefect
def test_the_prefect_flows_record_escalate_and_resolve(runtime, prefect_harness):
    job, late = overdue_callback_and_late_cleaning(runtime)
    with using_runtime(runtime):
        first = chase_callbacks_flow(as_of=at("2026-11-26", "11:00"))
        again = chase_callbacks_flow(as_of=at("2026-11-26", "11:00"))
        escalated = chase_callbacks_flow(as_of=at("2026-11-27", "09:00"))
        do_callback(runtime, job, at("2026-11-27", "09:30"))
        done = chase_callbacks_flow(as_of=at("2026-11-27", "09:40"))
        replies = chase_replies_flow(as_of=at("2026-11-27", "09:40"))
    assert (first.new, again.new, again.seen_again, escalated.new, done.resolved) == (2, 0, 2, 1, 2)
    assert replies.findings == ()
    assert open_alerts(runtime) == {(f"order-overdue:{late}@cleaning-supervisor", 1, "cleaning-supervisor")}
    with transaction(runtime.sessions) as s:
        marks = {m.flow: m.window_end for m in s.scalars(select(FlowWatermark))}
    assert marks == {"chase-callbacks": at("2026-11-27", "09:40"), "chase-replies": at("2026-11-27", "09:40")}


@pytest.mark.prefect
def test_a_failing_flow_alerts_ops_and_a_later_success_resolves_it(settings, tmp_path, prefect_harness):
    broken = tmp_path / "calendar.toml"
    broken.write_text("this is [not toml", encoding="utf-8")
    bad = Runtime(settings.model_copy(update={"calendar_override": broken}))
    with using_runtime(bad):
        state = chase_callbacks_flow(as_of=at("2026-11-26", "11:00"), return_state=True)
    assert state.is_failed()
    good = Runtime(settings)
    assert open_alerts(good) == {("flow-failed:chase-callbacks@ops", 1, "ops")}
    with using_runtime(good):
        assert chase_callbacks_flow(as_of=at("2026-11-26", "11:00"), return_state=True).is_completed()
    assert open_alerts(good) == set()
    assert resolved_keys(good) == {"flow-failed:chase-callbacks@ops"}
    bad.close()
    good.close()
