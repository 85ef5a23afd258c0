"""The monthly tally fanned out per office, its parts on a real ledger (SQLite and PostgreSQL): an office's report
written by its child run is exactly the one the group's pass would write, sent once; the group's pass then finds
every office's report in, unchanged, and builds the group's; an office whose child failed is redone by that pass.
The parent with real workers is tests/e2e/test_group_workers.py."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from commands.generator import Plan, generate_month
from flows.fanout import office_check_flow, run_office_tallies
from flows.runtime import using_runtime
from flows.tally import run_monthly_tally
from models.ledger.db import transaction
from models.ledger.tables import ReportRun
from models.tally.facts import GROUP
from tests.builders import at
from tests.integration.test_tally import AFTER_OCTOBER, build_october

OFFICES = ["A1", "D1", "D2"]


@pytest.fixture
def group_october(runtime, engine, calendar):
    """October at A1 with every kind of finding, and at two generated offices with planted problems."""
    build_october(engine, calendar)
    generate_month(runtime.sessions, calendar=calendar, month="2026-10", offices=2, orders_per_office=15,
                   plan=Plan(unreplied=2, overdue_callbacks=2, cash_held=2, shortfalls=1, receipt_gaps=1))


def reports(runtime) -> dict[tuple[str, int], tuple[str, bool]]:
    with transaction(runtime.sessions) as s:
        return {(r.office, r.version): (r.content_hash, r.sent_at is not None)
                for r in s.scalars(select(ReportRun).where(ReportRun.month == "2026-10"))}


def test_the_offices_reports_written_alone_are_those_the_group_pass_finds_unchanged(runtime, group_october):
    parts, errors = run_office_tallies(runtime, "2026-10", ["A1"], AFTER_OCTOBER)  # a batch of one office
    more, more_errors = run_office_tallies(runtime, "2026-10", ["D1", "D2"], AFTER_OCTOBER)  # and of two
    assert errors == more_errors == {}
    assert [(p["office"], p["status"], p["version"], p["sent"]) for p in parts + more] == [
        (office, "new", 1, True) for office in OFFICES]
    written_alone = reports(runtime)
    asked: list = []
    result = run_monthly_tally(runtime, "2026-10", as_of=AFTER_OCTOBER,
                               prepare=lambda months, as_of: asked.append((months, as_of)))
    assert asked == [(["2026-10"], AFTER_OCTOBER)]
    by_office = {r.office: r for r in result.reports}
    assert sorted(by_office) == sorted([*OFFICES, GROUP])
    assert {o: (r.status, r.sent) for o, r in by_office.items() if o != GROUP} == {o: ("unchanged", False)
                                                                                  for o in OFFICES}
    assert (by_office[GROUP].status, by_office[GROUP].sent) == ("new", True)
    after = reports(runtime)
    assert {k: v for k, v in after.items() if k[0] != GROUP} == written_alone  # one version each, sent once
    assert after[(GROUP, 1)][1] and len(after) == len(OFFICES) + 1
    # each report reached the outbox folder once: three offices' and the group's
    assert len(list(runtime.settings.effective_outbox_dir.glob("*.txt"))) == len(OFFICES) + 1


def test_an_office_whose_part_did_not_run_is_redone_by_the_group_pass(runtime, group_october):
    run_office_tallies(runtime, "2026-10", ["A1"], AFTER_OCTOBER)  # D1's and D2's children failed or never ran
    result = run_monthly_tally(runtime, "2026-10", as_of=AFTER_OCTOBER, prepare=lambda months, as_of: None)
    statuses = {r.office: r.status for r in result.reports}
    assert statuses == {"A1": "unchanged", "D1": "new", "D2": "new", GROUP: "new"}
    assert all(sent for _, sent in reports(runtime).values()) and not result.failed


def test_an_office_with_nothing_in_the_month_has_no_report(runtime, group_october, engine):
    from models import desk

    with transaction(engine) as s:
        desk.add_office(s, code="E9", name="空服务处", at=at("2026-09-01", "08:00"))
    assert run_office_tallies(runtime, "2026-10", ["E9"], AFTER_OCTOBER) == (
        [{"office": "E9", "month": "2026-10", "status": "nothing"}], {})
    assert ("E9", 1) not in reports(runtime)


def test_a_resend_or_an_unreportable_month_asks_for_no_fan_out(runtime, group_october):
    asked: list = []
    run_monthly_tally(runtime, "2026-10", as_of=AFTER_OCTOBER, prepare=lambda m, a: asked.append(m))
    run_monthly_tally(runtime, "2026-10", resend=True, as_of=AFTER_OCTOBER, prepare=lambda m, a: asked.append(m))
    run_monthly_tally(runtime, as_of=at("2026-11-02", "08:00"), prepare=lambda m, a: asked.append(m))
    assert asked == [["2026-10"]]  # the resend sends in one run; the schedule finds October reported already


@pytest.mark.prefect
def test_a_tally_child_run_writes_its_offices_reports_under_prefect(runtime, group_october, prefect_harness):
    with using_runtime(runtime):
        parts = office_check_flow(flow="monthly-tally", month="2026-10", offices=["A1", "D1"], as_of=AFTER_OCTOBER)
        again = office_check_flow(flow="monthly-tally", month="2026-10", offices=["A1", "D1"], as_of=AFTER_OCTOBER)
    assert [(p["office"], p["status"]) for p in parts] == [("A1", "new"), ("D1", "new")]
    assert [p["status"] for p in again] == ["unchanged", "unchanged"]
    assert sorted(office for office, _ in reports(runtime)) == ["A1", "D1"]


def test_one_office_of_a_batch_failing_stops_no_other_and_the_group_pass_redoes_it(runtime, group_october):
    reports_dir = runtime.settings.effective_reports_dir
    reports_dir.mkdir(parents=True)
    stray = reports_dir / "D1"
    stray.write_text("a stray file where office D1's reports folder belongs", encoding="utf-8")
    parts, errors = run_office_tallies(runtime, "2026-10", OFFICES, AFTER_OCTOBER)
    assert [p["office"] for p in parts] == ["A1", "D2"] and list(errors) == ["D1"]
    assert sorted(office for office, _ in reports(runtime)) == ["A1", "D2"]

    stray.unlink()  # the folder mended: the group's pass writes D1 itself, then the group's report
    result = run_monthly_tally(runtime, "2026-10", as_of=AFTER_OCTOBER, prepare=lambda months, as_of: None)
    assert {r.office: r.status for r in result.reports} == {"A1": "unchanged", "D1": "new", "D2": "unchanged",
                                                            GROUP: "new"}
