"""The demo month: generated through the desk, every flow's logic run once as of its end, and the tally."""
from __future__ import annotations

from collections import Counter
from datetime import date
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import func, select

from flows.callbacks import run_chase_callbacks, run_chase_replies
from flows.cash import run_cash_check
from commands.demo import run_demo
from flows.runtime import Runtime
from flows.tally import run_monthly_tally
from models.ledger.db import session_factory, upgrade
from models.errors import DomainError
from commands.generator import Plan, generate_month
from models.ledger.tables import Alert, ServiceRequest, WorkOrder
from notifications.report import KIND_LABELS, METRICS

LABEL = {key: en for key, _zh, en, _fmt in METRICS}


@pytest.fixture
def rt(settings):
    rt = Runtime(settings.model_copy(update={"locale": "en"}))
    yield rt
    rt.close()


@pytest.fixture
def demo(rt):
    return run_demo(rt, month="2026-10", offices=2, seed=11, orders_per_office=120)


def test_the_demo_month_finds_each_planted_problem_exactly_once(demo):
    kinds = Counter(f.planted.kind for f in demo.found)
    assert kinds == {"reply-overdue": 2, "callback-overdue": 2, "cash-unhanded": 1, "cash-shortfall": 1,
                     "receipt-gap": 1, "private-job": 1}
    assert [(f.planted.reference, f.alerts, f.report_rows) for f in demo.found if not f.found_once] == []
    assert demo.unexpected_alerts == () and demo.unexpected_report_rows == ()
    assert demo.all_found


def test_the_group_workbook_states_the_generators_own_figures_and_findings(demo, rt):
    workbook = Path(next(p for p in demo.reports if "/group/" in p))
    summary = pd.read_excel(workbook, sheet_name="Summary", nrows=len(METRICS), engine="openpyxl")
    this_month = dict(zip(summary["Metric"], summary["This month"]))
    figures = demo.figures
    for key in ("orders", "completed", "accepted", "receipts", "phone_requests", "rework"):
        assert this_month[LABEL[key]] == int(figures[key]), key
    for key in ("revenue_cash", "revenue_electronic"):
        assert Decimal(str(this_month[LABEL[key]])).quantize(Decimal("0.01")) == Decimal(figures[key]), key
    replied = int(figures["phone_replied_in_time"]) / int(figures["phone_requests"])
    assert this_month[LABEL["reply_rate"]] == pytest.approx(replied, abs=1e-4)

    findings = pd.read_excel(workbook, sheet_name="Findings", engine="openpyxl")
    by_label = Counter(findings.iloc[:, 0])
    assert by_label == {KIND_LABELS["cash-unhanded"][1]: 1, KIND_LABELS["handover-shortfall"][1]: 1,
                        KIND_LABELS["receipt-gap"][1]: 1, KIND_LABELS["private-job"][1]: 1,
                        KIND_LABELS["callback-missing"][1]: 2}


def test_alerts_reach_the_outbox_folder_when_no_apprise_config_is_set(demo, rt):
    outbox = rt.settings.effective_outbox_dir
    assert demo.delivered_to == str(outbox) and demo.messages_sent >= 3
    text = "\n".join(p.read_text(encoding="utf-8") for p in outbox.glob("*.txt"))
    for found in demo.found:
        if found.planted.alert_key and found.planted.kind != "cash-unhanded":
            assert found.planted.reference in text, found.planted.reference


def test_running_every_check_again_for_the_month_changes_nothing(demo, rt):
    with rt.sessions() as s:
        before = s.execute(select(Alert.dedupe_key, Alert.last_seen, Alert.resolved_at, Alert.sent_at)
                           .order_by(Alert.dedupe_key)).all()

    run_chase_replies(rt, demo.as_of)
    run_chase_callbacks(rt, demo.as_of)
    run_cash_check(rt, date(2026, 10, 30), demo.as_of)
    again = run_monthly_tally(rt, "2026-10", as_of=demo.as_of)

    with rt.sessions() as s:
        after = s.execute(select(Alert.dedupe_key, Alert.last_seen, Alert.resolved_at, Alert.sent_at)
                          .order_by(Alert.dedupe_key)).all()
    assert [(k, r, t) for k, _, r, t in after] == [(k, r, t) for k, _, r, t in before]
    assert {r.status for r in again.reports} == {"unchanged"} and again.sent == 0


def test_a_second_demo_in_the_same_database_is_refused_and_adds_nothing(demo, rt):
    with rt.sessions() as s:
        requests = s.scalar(select(func.count()).select_from(ServiceRequest))

    with pytest.raises(DomainError) as refused:
        run_demo(rt, month="2026-10")

    assert refused.value.code == "demo_exists"
    with rt.sessions() as s:
        assert s.scalar(select(func.count()).select_from(ServiceRequest)) == requests


def ledger(tmp_path: Path, name: str):
    url = f"sqlite:///{tmp_path / name}"
    upgrade(url)
    from models.ledger.db import make_engine

    return make_engine(url)


def test_the_same_seed_builds_the_same_month_and_another_seed_another(tmp_path, calendar, backend):
    if backend != "sqlite":
        pytest.skip("determinism is a property of the generator, not of the backend")
    months = []
    for name, seed in (("a.db", 5), ("b.db", 5), ("c.db", 6)):
        engine = ledger(tmp_path, name)
        months.append(generate_month(session_factory(engine), calendar=calendar, month="2026-11", offices=1,
                                     orders_per_office=40, seed=seed, plan=Plan(unreplied=1, overdue_callbacks=1)))
        with engine.connect() as conn:
            months[-1] = (months[-1], conn.execute(select(WorkOrder.number, WorkOrder.fee, WorkOrder.completed_at)
                                                   .order_by(WorkOrder.number)).all())
        engine.dispose()
    (first, rows_a), (second, rows_b), (other, rows_c) = months
    assert (first.planted, first.figures, rows_a) == (second.planted, second.figures, rows_b)
    assert rows_c != rows_a
    assert first.last_working_day == date(2026, 11, 30)


def test_a_small_month_over_the_spring_festival_still_plants_and_finds_everything(rt, backend):
    if backend != "sqlite":
        pytest.skip("one backend is enough for the generator's edge of small months")

    result = run_demo(rt, month="2026-02", offices=1, seed=3, orders_per_office=30)

    assert Counter(f.planted.kind for f in result.found) == {
        "reply-overdue": 2, "callback-overdue": 2, "cash-unhanded": 1, "cash-shortfall": 1, "receipt-gap": 1,
        "private-job": 1}
    assert result.all_found, (result.found, result.unexpected_alerts, result.unexpected_report_rows)
