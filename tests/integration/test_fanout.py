"""The per-office fan-out's parts on a real ledger (SQLite and PostgreSQL): each office's part records exactly what
one run over the group records for that office; a part already done is not done again; an office that failed is
one ops alert naming it, resolved when that office's part is done. The parent with real workers is
tests/e2e/test_group_workers.py."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy import select

from flows.callbacks import run_chase_callbacks, run_chase_replies
from flows.cash import run_cash_check
from flows.fanout import (
    batches,
    done_offices,
    idempotency_key,
    office_check_flow,
    office_codes,
    record_office_failures,
    run_office_part,
)
from flows.runtime import Runtime, using_runtime
from models.ledger.db import transaction
from models.ledger.tables import Alert
from tests.builders import accepted_job, at, collect_fee, give_receipts, request_for, setup_office

AS_OF = at("2026-11-27", "11:00")


def two_offices(rt: Runtime) -> None:
    """At A1 and at B2: a phone call nobody answered, a callback overdue, cash never handed over."""
    with transaction(rt.sessions) as s:
        for code, first in (("A1", "000101"), ("B2", "200101")):
            o = setup_office(s, code)
            request_for(s, o, at=at("2026-11-25", "10:00"), phone="13812345678")
            job = accepted_job(s, rt.calendar, o, at=at("2026-11-23", "10:00"))
            receipts = give_receipts(s, o, first=first, count=5)
            collect_fee(s, o, job, receipt=receipts[0], at=at("2026-11-23", "13:00"))


def outbox(rt: Runtime) -> dict[str, tuple]:
    with transaction(rt.sessions) as s:
        return {a.dedupe_key: (a.office, a.level, a.tag, a.resolved_at is None)
                for a in s.scalars(select(Alert).where(Alert.kind != "flow-failed"))}


def test_each_office_part_records_what_one_group_run_records(runtime):
    two_offices(runtime)
    assert office_codes(runtime) == ["A1", "B2"]
    for office in ("A1", "B2"):
        for flow in ("chase-replies", "chase-callbacks"):
            run_office_part(runtime, flow, office, AS_OF, None)
        run_office_part(runtime, "cash-check", office, at("2026-11-23", "18:00"), at("2026-11-23").date())
    fanned = outbox(runtime)
    assert {office for office, *_ in fanned.values()} == {"A1", "B2"}
    assert done_offices(runtime, "chase-replies", ["A1", "B2"], AS_OF) == {"A1", "B2"}

    # the same ledger checked by one run over the group (its own watermark, scope "*") from an empty outbox
    with transaction(runtime.sessions) as s:
        s.execute(Alert.__table__.delete())
    run_chase_replies(runtime, AS_OF)
    run_chase_callbacks(runtime, AS_OF)
    run_cash_check(runtime, at("2026-11-23").date(), at("2026-11-23", "18:00"))
    assert outbox(runtime) == fanned


@pytest.mark.prefect
def test_a_child_run_does_only_the_offices_not_yet_done_for_its_moment(runtime, prefect_harness):
    two_offices(runtime)
    with using_runtime(runtime):
        first = office_check_flow(flow="chase-replies", offices=["A1"], as_of=AS_OF)
        assert [p["office"] for p in first] == ["A1"] and first[0]["new"] == 1
        before = outbox(runtime)
        second = office_check_flow(flow="chase-replies", offices=["A1", "B2"], as_of=AS_OF)
    assert [p["office"] for p in second] == ["B2"]  # A1 was done for this moment: not done again
    after = outbox(runtime)
    assert {k: v for k, v in after.items() if v[0] == "A1"} == before
    assert {v[0] for v in after.values()} == {"A1", "B2"}


@pytest.mark.prefect
def test_a_child_asked_for_a_flow_it_does_not_run_fails_and_changes_nothing(runtime, prefect_harness):
    two_offices(runtime)
    with using_runtime(runtime):
        state = office_check_flow(flow="monthly-tally", offices=["A1"], as_of=AS_OF, return_state=True)
    assert state.is_failed() and "monthly-tally" in state.message
    assert outbox(runtime) == {}


def test_a_failed_office_is_one_ops_alert_naming_it_until_its_part_is_done(runtime):
    two_offices(runtime)
    now = datetime(2026, 11, 27, 3, 0, tzinfo=timezone.utc)
    for _ in range(2):  # failing again the same day is the same alert, seen again
        record_office_failures(runtime, "chase-replies", day="2026-11-27", failed={"B2": "Crashed: worker lost"},
                               done=["A1"], at=now)
    with transaction(runtime.sessions) as s:
        [alert] = s.scalars(select(Alert).where(Alert.kind == "flow-failed")).all()
        assert (alert.dedupe_key, alert.office, alert.tag) == ("flow-failed:chase-replies:2026-11-27:B2@ops", "B2", "ops")
        assert "B2" in alert.payload["facts"]["error"] and alert.resolved_at is None
    record_office_failures(runtime, "chase-callbacks", day="2026-11-27", failed={}, done=["B2"], at=now)
    with transaction(runtime.sessions) as s:  # another flow's success leaves it open
        assert s.scalars(select(Alert.resolved_at).where(Alert.kind == "flow-failed")).one() is None
    record_office_failures(runtime, "chase-replies", day="2026-11-27", failed={}, done=["A1", "B2"], at=now)
    with transaction(runtime.sessions) as s:
        assert s.scalars(select(Alert.resolved_at).where(Alert.kind == "flow-failed")).one() is not None


def test_batches_and_keys_name_the_flow_the_offices_and_the_moment():
    assert batches(["A1", "B2", "C3"], 2) == [("A1", "B2"), ("C3",)]
    moment = at("2026-11-27", "11:00")
    assert idempotency_key("chase-replies", ("A1",), moment) == "chase-replies:A1:2026-11-27T03:00:00+00:00"
    assert idempotency_key("cash-check", ("A1", "B2"), moment) == "cash-check:A1..B2:2026-11-27T03:00:00+00:00"
