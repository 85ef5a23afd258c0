"""Overlapping runs and a scheduler that was off: side effects happen once.

"overlap": two triggers of the same flow and a manual run for the same window at once, as three real `bianmin run`
processes started together against the same database (SQLite file, and PostgreSQL when configured): one report
per office and month, one mail per report and per digest at a real SMTP sink, every alert recorded once.

"server off at schedule": `bianmin serve` down across a cash cut-off and the 1st of the month. When it comes back,
Prefect runs the schedules' late runs with no parameters (each judges as of the moment it runs); the catch-up is
those late runs, made here as the flows the deployments run, as of the restart. Each missed window
is evaluated once, the missed month gets one report per office, and a second pile of late runs changes nothing.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from datetime import date, time, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select

from flows.runtime import using_runtime
from flows.settings import Settings
from models.cash.rules import evaluation_time
from models.ledger.db import transaction
from models.ledger.tables import Alert, FlowWatermark, ReportRun
from notifications.outbox import alert_key, route_tags
from tests.builders import accepted_job, at, collect_fee, give_receipts, setup_office
from tests.integration.test_tally import build_october
from tests.servers import write_apprise_config

ROOT = Path(__file__).resolve().parents[2]
BIANMIN = Path(sys.executable).with_name("bianmin")
RUNS = 3  # two triggers of the schedule and one by hand
# every tag a report or a digest of this ledger goes to, each with an address of its own at the one SMTP sink
TAGS = ("administration", "finance-manager", "engineering-supervisor", "cleaning-supervisor", "cs-supervisor",
        "cs-manager", "ops")


def _ledger(engine, calendar) -> None:
    """October 2026 at A1 with every finding kind (build_october) and a plain month at A2; on Friday 30 October
    A2's plumber collects cash that is never handed over."""
    build_october(engine, calendar)
    with transaction(engine) as s:
        a2 = setup_office(s, "A2")
        receipts = give_receipts(s, a2, first="200101", count=5)
        job = accepted_job(s, calendar, a2, at=at("2026-10-30", "09:00"))
        collect_fee(s, a2, job, receipt=receipts[0], amount=Decimal("80.00"), at=at("2026-10-30", "11:30"))


def _apprise(tmp_path: Path, smtp_server) -> Path:
    return write_apprise_config(tmp_path / "apprise.yml",
                                {tag: smtp_server.url(to=f"{tag}@example.com") for tag in TAGS})


def _recipients(smtp_server) -> Counter:
    """Mails per (recipient, subject): a digest or report that arrived twice counts 2."""
    return Counter((str(m["To"]), str(m["Subject"])) for m in smtp_server.messages)


def _report_rows(engine) -> list[tuple[str, str, int, bool]]:
    with transaction(engine) as s:
        return sorted((r.month, r.office, r.version, r.sent_at is not None) for r in s.scalars(select(ReportRun)))


def _alert_keys(engine) -> list[str]:
    with transaction(engine) as s:
        return list(s.scalars(select(Alert.dedupe_key)))


# -- overlap -----------------------------------------------------------------------------------------------------

@pytest.fixture
def env(db_url, tmp_path, prefect_harness, smtp_server) -> dict[str, str]:
    """`bianmin`'s environment: the test's database and folders, the SMTP sink, the session's Prefect server."""
    from prefect.settings import get_current_settings

    keep = {k: v for k, v in os.environ.items() if not k.startswith(("BIANMIN_", "PREFECT_"))}
    return keep | {
        "BIANMIN_DATABASE_URL": db_url, "BIANMIN_DATA_DIR": str(tmp_path / "var"), "BIANMIN_LOCALE": "en",
        "BIANMIN_CONFIG_FILE": str(tmp_path / "absent.toml"),
        "BIANMIN_APPRISE_CONFIG": str(_apprise(tmp_path, smtp_server)),
        "PREFECT_API_URL": str(get_current_settings().api.url), "PREFECT_HOME": str(tmp_path / "prefect-client"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }


def _at_once(env: dict[str, str], commands: list[list[str]]) -> list[subprocess.CompletedProcess]:
    """Start every command before waiting for any: real processes racing for the same rows."""
    started = [(args, subprocess.Popen([str(BIANMIN), *args], env=env, cwd=ROOT, stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, text=True)) for args in commands]
    done = []
    for args, process in started:
        out, err = process.communicate(timeout=600)
        done.append(subprocess.CompletedProcess(args, process.returncode, out, err))
    return done


def test_three_runs_of_the_same_window_at_once_have_their_side_effects_once(env, engine, calendar, smtp_server,
                                                                            figure):
    _ledger(engine, calendar)
    env = env | {"BIANMIN_SIGNOFF": "false"}  # the reports go straight to administration: their send races

    # the cash check: two scheduled triggers (no day: the check due at that moment) and one by hand for the day
    flows = _at_once(env, [["run", "monthly-tally", "--month", "2026-10", "--json"]] * RUNS
                     + [["run", "cash-check", "--as-of", "2026-10-30T18:00", "--json"]] * (RUNS - 1)
                     + [["run", "cash-check", "--day", "2026-10-30", "--json"]])
    assert [(p.args[1], p.returncode) for p in flows] == [("monthly-tally", 0)] * RUNS + [("cash-check", 0)] * RUNS, \
        "\n".join(p.stderr[-2000:] for p in flows if p.returncode)
    alerts_after_checks = sorted(_alert_keys(engine))
    dispatches = _at_once(env, [["run", "dispatch", "--as-of", "2026-10-31T09:00", "--json"]] * RUNS)
    assert [p.returncode for p in dispatches] == [0] * RUNS, "\n".join(p.stderr[-2000:] for p in dispatches)

    reports = _report_rows(engine)
    tallies = [json.loads(p.stdout) for p in flows[:RUNS]]
    made = Counter((r["office"], r["status"]) for t in tallies for r in t["reports"])
    checks = [json.loads(p.stdout) for p in flows[RUNS:]]
    routes = Settings(_env_file=None).alert_routes  # the processes' routes: none configured, the defaults
    expected_alerts = sorted({alert_key(f["key"], tag) for f in checks[0]["findings"]
                              for tag in route_tags(routes, kind=f["kind"], level=f["level"],
                                                    department=f["department"])})
    mails = _recipients(smtp_server)
    digest_tags = {key.rsplit("@", 1)[1] for key in alerts_after_checks}
    duplicates = (sum(n - 1 for n in mails.values()) + len(reports) - len({r[:2] for r in reports})
                  + len(alerts_after_checks) - len(expected_alerts))
    figure("overlap", runs=RUNS, reports=len(reports), mails=sum(mails.values()), alerts=len(alerts_after_checks),
           duplicates=duplicates, backend=engine.dialect.name)

    assert reports == [("2026-10", "*", 1, True), ("2026-10", "A1", 1, True), ("2026-10", "A2", 1, True)]
    # each report was made by exactly one of the three runs; the others found it made or unchanged
    assert sum(n for (office, status), n in made.items() if status == "new") == 3
    assert {c["day"] for c in checks} == {"2026-10-30"} and all(c["recorded"] for c in checks)
    assert [c["findings"] for c in checks[1:]] == [checks[0]["findings"]] * (RUNS - 1)
    assert alerts_after_checks == expected_alerts and "cash-unhanded" in {f["kind"] for f in checks[0]["findings"]}
    report_mails = [key for key in mails if key[0] == "administration@example.com"]
    digest_mails = [key for key in mails if key[0] != "administration@example.com"]
    assert len(report_mails) == 3  # A1, A2 and the group
    assert {to.split("@")[0] for to, _subject in digest_mails} == digest_tags - {"administration"}
    assert duplicates == 0 and set(mails.values()) == {1}
    with transaction(engine) as s:
        assert s.scalar(select(func.count()).select_from(Alert).where(Alert.sent_at.is_(None))) == 0
        assert s.scalar(select(func.count()).select_from(Alert).where(Alert.kind == "flow-failed")) == 0


def test_three_tally_runs_at_once_put_the_month_before_the_departments_once(env, engine, calendar, smtp_server):
    _ledger(engine, calendar)
    runs = _at_once(env, [["run", "monthly-tally", "--month", "2026-10", "--as-of", "2026-11-02T08:00", "--json"]]
                    * RUNS)
    assert [p.returncode for p in runs] == [0] * RUNS, "\n".join(p.stderr[-2000:] for p in runs if p.returncode)
    dispatches = _at_once(env, [["run", "dispatch", "--as-of", "2026-11-02T08:01", "--json"]] * RUNS)
    assert [p.returncode for p in dispatches] == [0] * RUNS, "\n".join(p.stderr[-2000:] for p in dispatches)

    drafts = sorted(k for k in _alert_keys(engine) if k.startswith("signoff-draft:"))
    assert drafts == ["signoff-draft:2026-10:v1:cleaning@cleaning-supervisor", "signoff-draft:2026-10:v1:cs@cs-manager",
                      "signoff-draft:2026-10:v1:engineering@engineering-supervisor",
                      "signoff-draft:2026-10:v1:finance@finance-manager"]
    mails = _recipients(smtp_server)
    assert set(mails.values()) == {1} and not [to for to, _subject in mails if to.startswith("administration")]
    assert {to.split("@")[0] for to, _subject in mails} == {"cleaning-supervisor", "cs-manager",
                                                           "engineering-supervisor", "finance-manager"}
    assert [(r[0], r[1], r[2], r[3]) for r in _report_rows(engine)] == [
        ("2026-10", "*", 1, False), ("2026-10", "A1", 1, False), ("2026-10", "A2", 1, False)]
    opened = [o for p in runs for o in json.loads(p.stdout)["signoffs"]]
    steps = [o["step"] for o in opened]
    assert steps.count("opened") == 1 and set(steps) <= {"opened", "same"}  # one run opened it, none twice


# -- server off at schedule ---------------------------------------------------------------------------------------

DOWN_FROM, BACK_AT = at("2026-10-30", "12:00"), at("2026-11-02", "09:30")  # Friday noon to Monday morning


def _missed(runtime, calendar) -> tuple[list[date], list[str], int]:
    """What the scheduler did not run while serve was down: the working days whose cash cut-off passed, the months
    whose report fell due (the 1st, 08:00), and how many cash-check runs were scheduled (evening and morning)."""
    s = runtime.settings
    minute, hour = s.schedule_tally.split()[:2]  # "0 8 * * *": 08:00, the month due on the 1st
    tally_at = time(int(hour), int(minute))
    days, months, cash_runs = [], [], 0
    day = DOWN_FROM.date()
    while day <= BACK_AT.date():
        evening = evaluation_time(day, calendar, cutoff=s.cash_cutoff, grace_minutes=s.cash_check_grace_minutes)
        morning = calendar.at(day, s.cash_morning_check)
        cash_runs += sum(DOWN_FROM <= moment < BACK_AT for moment in (evening, morning))
        if calendar.is_working_day(day) and DOWN_FROM <= evening < BACK_AT:
            days.append(day)
        if day.day == 1 and DOWN_FROM <= calendar.at(day, tally_at) < BACK_AT:
            months.append(f"{(day - timedelta(days=1)):%Y-%m}")
        day += timedelta(days=1)
    return days, months, cash_runs


def _late_runs(runtime, cash_runs: int, moment) -> dict[str, int]:
    """Every late run of the schedules, as Prefect starts them when serve is back: no parameters, so each judges as
    of the moment it runs (back to back here; "overlap" runs the same window at the same moment). Returns the
    alerts they opened and the reports they made."""
    from flows.cash import cash_check_flow
    from flows.dispatch import dispatch_flow
    from flows.tally import monthly_tally_flow

    with using_runtime(runtime):
        checks = [cash_check_flow(as_of=moment) for _ in range(cash_runs)]
        tally = monthly_tally_flow(as_of=moment)
        dispatch_flow(as_of=moment + timedelta(minutes=1))
    assert all(c.recorded and not c.skipped for c in checks)
    return {"new_alerts": sum(c.new for c in checks),
            "new_reports": sum(r.status in ("new", "new-version") for r in tally.reports)}


def _outbox_state(engine) -> list[tuple]:
    with transaction(engine) as s:
        return sorted((a.dedupe_key, a.first_seen, a.sent_at, a.resolved_at) for a in s.scalars(select(Alert)))


def test_after_serve_was_off_each_missed_window_is_evaluated_once_and_late_runs_pile_up_harmlessly(
        runtime, engine, calendar, smtp_server, tmp_path, prefect_harness, figure):
    from flows.cash import cash_check_flow
    from flows.dispatch import dispatch_flow

    _ledger(engine, calendar)
    runtime.settings.apprise_config = _apprise(tmp_path, smtp_server)
    with using_runtime(runtime):  # Thursday evening: serve is up, the check and the dispatch run on time
        assert cash_check_flow(as_of=at("2026-10-29", "18:00")).recorded
        dispatch_flow(as_of=at("2026-10-29", "18:01"))
    thursday = _recipients(smtp_server)
    missed_days, missed_months, cash_runs = _missed(runtime, calendar)
    assert (missed_days, missed_months) == ([date(2026, 10, 30)], ["2026-10"])  # the weekend's checks are days off

    first = _late_runs(runtime, cash_runs, BACK_AT)
    # what the restart sent; a digest repeating Thursday's still-open alerts is a reminder due after the repeat
    # interval, not a duplicate
    outbox, reports, mails = _outbox_state(engine), _report_rows(engine), _recipients(smtp_server) - thursday
    with transaction(engine) as s:
        watermark = s.get(FlowWatermark, ("cash-check", "*")).window_end
        friday_cash = s.scalars(select(Alert).where(Alert.kind == "cash-unhanded", Alert.office == "A2")).all()
    s = runtime.settings
    evaluated = (sum(watermark >= evaluation_time(d, calendar, cutoff=s.cash_cutoff,
                                                  grace_minutes=s.cash_check_grace_minutes) for d in missed_days)
                 + sum((m, "*") in {r[:2] for r in reports} for m in missed_months))

    second = _late_runs(runtime, cash_runs, BACK_AT + timedelta(minutes=5))  # another pile of the same late runs
    with using_runtime(runtime):  # and an operator replaying the missed day by hand
        replay = cash_check_flow(day=missed_days[0])
    later = _recipients(smtp_server) - thursday - mails
    duplicates = (second["new_alerts"] + second["new_reports"] + sum(later.values())
                  + sum(n - 1 for n in mails.values())
                  + len(_report_rows(engine)) - len(reports) + len(_outbox_state(engine)) - len(outbox))
    figure("server off at schedule", missed_windows=len(missed_days) + len(missed_months), evaluated=evaluated,
           late_runs=cash_runs + 1, reports=len(reports), mails=sum(mails.values()),
           duplicates=duplicates, backend=engine.dialect.name)

    assert evaluated == len(missed_days) + len(missed_months) == 2
    # Friday's undelivered cash, found by the first late run only, once per recipient tag, each told once
    assert friday_cash and {a.first_seen for a in friday_cash} == {BACK_AT} and all(a.sent_at for a in friday_cash)
    assert first["new_alerts"] > 0 and first["new_reports"] == 3
    assert reports == [("2026-10", "*", 1, True), ("2026-10", "A1", 1, True), ("2026-10", "A2", 1, True)]
    assert sum(n for (to, _subject), n in mails.items() if to == "administration@example.com") == 3
    assert second == {"new_alerts": 0, "new_reports": 0}
    assert not replay.recorded  # the outbox holds a later check: the replay reports, it writes nothing
    assert _outbox_state(engine) == outbox and _report_rows(engine) == reports
    assert later == Counter() and set(mails.values()) == {1} and duplicates == 0
