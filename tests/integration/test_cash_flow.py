"""The cash-check flow on a real ledger and outbox: which day it judges, what it records, what it resolves."""
from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from commands import common as cli_common
from flows.cash import cash_check_flow, run_cash_check
from flows.dispatch import run_dispatch
from flows.runtime import using_runtime
from models.ledger.db import transaction
from models.ledger.tables import Alert
from tests.integration.test_cash_queries import CashDesk, evening, local


@pytest.fixture
def office(engine, calendar) -> CashDesk:
    return CashDesk(engine, calendar)


def alerts(runtime) -> dict[str, tuple[str | None, bool]]:
    """Outbox rows: alert key -> (tag, resolved?)."""
    with transaction(runtime.sessions) as s:
        return {a.dedupe_key: (a.tag, a.resolved_at is not None) for a in s.scalars(select(Alert))}


def open_keys(runtime) -> set[str]:
    return {k for k, (_, resolved) in alerts(runtime).items() if not resolved}


def test_holiday_cash_is_alerted_on_october_8_and_the_holiday_runs_are_skipped(runtime, office):
    office.book("000101", 10, local(2026, 9, 30, 9, 0))
    office.paid_job("000101", local(2026, 9, 30, 18, 0))

    assert run_cash_check(runtime, date(2026, 9, 30)).new == 0
    for day in range(1, 8):
        result = run_cash_check(runtime, date(2026, 10, day))
        assert (result.skipped, result.reason, result.findings) == (True, "day-off", ())
    assert alerts(runtime) == {}

    result = run_cash_check(runtime, date(2026, 10, 8))

    assert result.as_of == local(2026, 10, 8, 18, 0)
    assert [f.key for f in result.findings] == ["cash-unhanded:W1:2026-10-08"]
    assert alerts(runtime) == {
        "cash-unhanded:W1:2026-10-08@finance-manager": ("finance-manager", False),
        "cash-unhanded:W1:2026-10-08@engineering-supervisor": ("engineering-supervisor", False)}


def test_rerunning_a_day_creates_nothing_new(runtime, office):
    office.book("000101", 10, local(2026, 10, 12, 8, 40))
    office.paid_job("000101", local(2026, 10, 12, 9, 0))
    office.paid_job("000102", local(2026, 10, 12, 9, 30), fee="0.20")
    office.handover(["000102"], "0.19", local(2026, 10, 12, 16, 0))
    office.job(local(2026, 10, 12, 11, 0), fee="50.00", worker="W2")

    first = run_cash_check(runtime, date(2026, 10, 12))
    before = alerts(runtime)
    again = run_cash_check(runtime, date(2026, 10, 12))

    assert (first.new, first.resolved) == (5, 0)  # unhanded x2 tags, shortfall x2 tags, fee x1 tag
    assert (again.new, again.seen_again, again.resolved) == (0, 5, 0)
    assert alerts(runtime) == before
    assert again.counts == first.counts


def test_a_late_handover_resolves_the_unhanded_alert_at_the_morning_check(runtime, office):
    office.book("000101", 10, local(2026, 10, 12, 8, 40))
    office.paid_job("000101", local(2026, 10, 12, 9, 0))
    run_cash_check(runtime, date(2026, 10, 12))
    office.handover(["000101"], "120.00", local(2026, 10, 13, 8, 50))

    morning = run_cash_check(runtime, None, now=local(2026, 10, 13, 9, 0))

    assert (morning.day, morning.as_of, morning.resolved, morning.findings) == (
        date(2026, 10, 12), local(2026, 10, 13, 9, 0), 2, ())
    assert open_keys(runtime) == set()
    # replaying the evening still sees the cash as held (the handover came later) but reopens nothing
    replay = run_cash_check(runtime, date(2026, 10, 12))
    assert [f.key for f in replay.findings] == ["cash-unhanded:W1:2026-10-12"]
    assert (replay.recorded, replay.new, open_keys(runtime)) == (False, 0, set())


def test_after_a_late_handover_the_next_digest_says_the_finding_is_resolved(runtime, office):
    office.book("000101", 10, local(2026, 10, 12, 8, 40))
    office.paid_job("000101", local(2026, 10, 12, 9, 0))
    run_cash_check(runtime, date(2026, 10, 12))
    assert run_dispatch(runtime, local(2026, 10, 12, 18, 1)).alerts_sent == 2
    office.handover(["000101"], "120.00", local(2026, 10, 13, 8, 50))
    run_cash_check(runtime, None, now=local(2026, 10, 13, 9, 0))
    outbox = runtime.settings.effective_outbox_dir
    already = set(outbox.iterdir())

    sent = run_dispatch(runtime, local(2026, 10, 13, 9, 1))

    assert sent.resolved_sent == 2
    digests = {p.read_text(encoding="utf-8") for p in set(outbox.iterdir()) - already}
    assert len(digests) == 2
    assert all("已解除:现金未交财务 王师傅(W1) 2026-10-12" in body for body in digests)


def test_a_day_off_leaves_open_alerts_open(runtime, office):
    office.book("000101", 10, local(2026, 10, 16, 8, 40))
    office.paid_job("000101", local(2026, 10, 16, 9, 0))
    run_cash_check(runtime, date(2026, 10, 16))

    saturday = run_cash_check(runtime, None, now=local(2026, 10, 17, 18, 0))

    assert (saturday.skipped, saturday.day) == (True, date(2026, 10, 17))
    assert open_keys(runtime) == {"cash-unhanded:W1:2026-10-16@finance-manager",
                                  "cash-unhanded:W1:2026-10-16@engineering-supervisor"}


def test_the_scheduled_evening_run_judges_today_and_the_morning_run_the_previous_working_day(runtime, office):
    evening_run = run_cash_check(runtime, None, now=local(2026, 10, 10, 18, 0, 5))
    morning_run = run_cash_check(runtime, None, now=local(2026, 10, 12, 9, 0))  # Monday after the make-up Saturday
    early = run_cash_check(runtime, date(2026, 10, 12), now=local(2026, 10, 12, 11, 0))

    assert (evening_run.day, evening_run.skipped) == (date(2026, 10, 10), False)
    assert (morning_run.day, morning_run.as_of) == (date(2026, 10, 10), local(2026, 10, 12, 9, 0))
    assert early.as_of == local(2026, 10, 12, 11, 0)  # a day's check is never judged in the future


def test_a_check_of_one_office_neither_sees_nor_resolves_another_offices_findings(runtime, office):
    office.second_office()
    office.book("000101", 10, local(2026, 10, 12, 8, 40), holder="W1")
    office.book("000901", 10, local(2026, 10, 12, 8, 40), holder="W3")
    office.paid_job("000101", local(2026, 10, 12, 9, 0))
    office.paid_job("000901", local(2026, 10, 12, 9, 0), by="W3")

    so1 = run_cash_check(runtime, date(2026, 10, 12), office="SO1")
    so2 = run_cash_check(runtime, date(2026, 10, 12), office="SO2")
    assert [f.key for f in so1.findings] == ["cash-unhanded:W1:2026-10-12"]
    assert [f.key for f in so2.findings] == ["cash-unhanded:W3:2026-10-12"]
    assert [o.office for o in so2.offices] == ["SO2"]

    office.handover(["000101"], "120.00", local(2026, 10, 13, 8, 50))
    assert run_cash_check(runtime, None, office="SO2", now=local(2026, 10, 13, 9, 0)).resolved == 0
    assert run_cash_check(runtime, None, office="SO1", now=local(2026, 10, 13, 9, 0)).resolved == 2
    assert open_keys(runtime) == {"cash-unhanded:W3:2026-10-12@finance-manager",
                                  "cash-unhanded:W3:2026-10-12@engineering-supervisor"}


def test_findings_carry_the_figures_and_route_to_finance_and_the_holders_supervisor(runtime, office):
    office.book("000101", 10, local(2026, 10, 12, 8, 40))
    office.paid_job("000101", local(2026, 10, 12, 9, 0), fee="80.00")
    office.paid_job("000102", local(2026, 10, 12, 9, 30), fee="40.00", method="alipay")
    unpaid = office.job(local(2026, 10, 12, 10, 0), fee="50.00", worker="W2")

    result = run_cash_check(runtime, date(2026, 10, 12))

    by_kind = {f.kind: f for f in result.findings}
    assert by_kind["cash-unhanded"].facts["figures"] == {
        "cash": "80.00", "electronic": "40.00", "handed_over": "0.00", "outstanding": "80.00"}
    assert str(by_kind["cash-unhanded"].amount) == "80.00"
    assert by_kind["fee-not-collected"].order_number == unpaid
    assert {tag for tag, _ in alerts(runtime).values()} == {"finance-manager", "engineering-supervisor",
                                                            "cs-supervisor"}


def test_the_cli_prints_the_figures_as_json_with_phones_masked(runtime, office, prefect_harness):
    office.book("000101", 10, local(2026, 10, 12, 8, 40))
    office.paid_job("000101", local(2026, 10, 12, 9, 0), fee="80.00")
    office.job(local(2026, 10, 12, 10, 0), fee="50.00", worker="W2")
    from commands.cli import app

    cli_common.set_runtime(runtime)
    try:
        out = CliRunner().invoke(app, ["run", "cash-check", "--day", "2026-10-12", "--json"])
    finally:
        cli_common.set_runtime(None)

    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout.strip().splitlines()[-1])
    assert data["day"] == "2026-10-12"
    assert [(c["collector"], c["cash"], c["outstanding"]) for c in data["collectors"]] == [("W1", "80.00", "80.00")]
    fee = next(f for f in data["findings"] if f["kind"] == "fee-not-collected")
    assert fee["facts"]["phone"] == "138****5678"
    assert "13812345678" not in out.stdout


def test_the_flow_runs_under_prefect(runtime, office, prefect_harness):
    office.book("000101", 10, local(2026, 10, 12, 8, 40))
    office.paid_job("000101", local(2026, 10, 12, 9, 0))

    with using_runtime(runtime):
        state = cash_check_flow(day=date(2026, 10, 12), return_state=True)

    assert state.is_completed()
    result = state.result()
    assert [f.key for f in result.findings] == ["cash-unhanded:W1:2026-10-12"]
    assert open_keys(runtime) == {"cash-unhanded:W1:2026-10-12@finance-manager",
                                  "cash-unhanded:W1:2026-10-12@engineering-supervisor"}
