"""One office's report failing: the other offices' reports and the group's still go out, ops is told which office
failed, a claim is never left behind, and the next run redoes the failed report once."""
from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from flows.tally import run_monthly_tally
from models.ledger.db import transaction
from models.ledger.tables import Alert, ReportRun
from tests.builders import accepted_job, at, setup_office
from tests.integration.test_tally import AFTER_OCTOBER, build_october


def _ops_key(month: str, office: str) -> str:
    """The outbox key of the ops alert for one (month, office) report that failed."""
    return f"flow-failed:monthly-tally:{month}:{office}@ops"


def _second_office(engine, calendar) -> None:
    with transaction(engine) as s:
        a2 = setup_office(s, "A2")
        accepted_job(s, calendar, a2, at=at("2026-10-21", "09:00"))


def _open_ops_alerts(runtime) -> dict[str, Alert]:
    with transaction(runtime.sessions) as s:
        return {a.dedupe_key: a for a in s.scalars(select(Alert).where(Alert.tag == "ops",
                                                                       Alert.resolved_at.is_(None)))}


def _runs(runtime) -> dict[str, ReportRun]:
    with transaction(runtime.sessions) as s:
        return {r.office: r for r in s.scalars(select(ReportRun))}


def _outbox(runtime) -> list[str]:
    return sorted(p.read_text("utf-8").split("\n")[1] for p in runtime.settings.effective_outbox_dir.glob("*.txt"))


def test_an_office_whose_reports_folder_cannot_be_written_fails_alone_and_ops_is_told(runtime, engine, calendar):
    build_october(engine, calendar)
    _second_office(engine, calendar)
    reports = runtime.settings.effective_reports_dir
    reports.mkdir(parents=True)
    (reports / "A1").write_text("a stray file where office A1's reports folder belongs", encoding="utf-8")

    result = run_monthly_tally(runtime, "2026-10", as_of=AFTER_OCTOBER)

    assert [(r.office, r.status, r.sent) for r in result.reports] == [
        ("A1", "failed", False), ("A2", "new", True), ("*", "new", True)]
    [failed] = result.failed
    assert "A1" in failed.error and "Error" in failed.error
    assert sorted(_runs(runtime)) == ["*", "A2"]
    assert len(_outbox(runtime)) == 2  # A2's report and the group's, each once
    [(key, alert)] = _open_ops_alerts(runtime).items()
    assert key == _ops_key("2026-10", "A1")
    assert alert.office == "A1" and alert.severity == 3
    assert "A1" in alert.payload["facts"]["error"] and "2026-10" in alert.payload["facts"]["error"]


def test_the_next_scheduled_run_redoes_the_failed_office_once_and_resolves_its_alert(runtime, engine, calendar):
    build_october(engine, calendar)
    _second_office(engine, calendar)
    reports = runtime.settings.effective_reports_dir
    reports.mkdir(parents=True)
    stray = reports / "A1"
    stray.write_text("stray", encoding="utf-8")
    run_monthly_tally(runtime, "2026-10", as_of=AFTER_OCTOBER)
    stray.unlink()  # the operator clears the way

    retried = run_monthly_tally(runtime, as_of=at("2026-11-02", "08:00"))  # what the schedule runs: no month

    assert retried.months == ("2026-10",)
    assert [(r.office, r.status, r.sent) for r in retried.reports] == [
        ("A1", "new", True), ("A2", "unchanged", False), ("*", "unchanged", False)]
    assert _open_ops_alerts(runtime) == {}
    assert len(_outbox(runtime)) == 3  # one report per office and the group's, none twice
    assert run_monthly_tally(runtime, as_of=at("2026-11-03", "08:00")).reports == ()


def test_a_send_that_raises_gives_its_claim_back_at_once_and_the_next_run_sends_it(runtime, engine, calendar):
    build_october(engine, calendar)
    outbox = runtime.settings.effective_outbox_dir
    outbox.parent.mkdir(parents=True, exist_ok=True)
    outbox.write_text("the outbox folder replaced by a file: every write into it raises", encoding="utf-8")

    failed = run_monthly_tally(runtime, "2026-10", as_of=AFTER_OCTOBER)

    assert [(r.office, r.status, r.sent) for r in failed.reports] == [("A1", "new", False), ("*", "new", False)]
    assert all("delivery raised" in r.send_error for r in failed.reports)
    runs = _runs(runtime)
    assert all(r.sent_at is None and r.send_claimed_by is None and r.send_claimed_until is None
               for r in runs.values())
    assert sorted(_open_ops_alerts(runtime)) == sorted(
        _ops_key("2026-10", office) for office in ("A1", "*"))

    outbox.unlink()
    retried = run_monthly_tally(runtime, as_of=at("2026-11-01", "09:00"))  # not "being sent by another run"
    assert [(r.office, r.status, r.sent, r.send_busy) for r in retried.reports] == [
        ("*", "pending", True, False), ("A1", "pending", True, False)]
    assert len(_outbox(runtime)) == 2
    assert _open_ops_alerts(runtime) == {}


def test_the_flow_ends_failed_naming_the_office_with_one_ops_alert(runtime, engine, calendar, prefect_harness):
    from flows.runtime import using_runtime
    from flows.tally import monthly_tally_flow

    build_october(engine, calendar)
    _second_office(engine, calendar)
    runtime.settings.locale = "en"
    reports = runtime.settings.effective_reports_dir
    reports.mkdir(parents=True)
    (reports / "A2").write_text("stray", encoding="utf-8")

    with using_runtime(runtime):
        state = monthly_tally_flow(month="2026-10", as_of=AFTER_OCTOBER, return_state=True)

    assert state.is_failed()
    assert state.message.startswith("1 of 3 report(s) failed (2026-10 A2: NotADirectoryError: ")
    assert "the other 2 were written and sent" in state.message
    assert list(_open_ops_alerts(runtime)) == [_ops_key("2026-10", "A2")]
    assert sorted(_runs(runtime)) == ["*", "A1"]
    assert Path(_runs(runtime)["A1"].file_path).exists()
