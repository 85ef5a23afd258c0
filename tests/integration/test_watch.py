"""`bianmin watch` against a real ledger, a real SMTP server for `ops` and real HTTP servers: each problem is one
ops message, a second watch sends nothing, and the problem clearing sends exactly one resolved notice.

Heartbeats are written with the same queries the flows' hooks use (models/watch/heartbeats.py), at the moments
the story needs; the watch judges as of `--as-of`, like every other command.
"""
from __future__ import annotations

import json
import os
import stat
from datetime import timedelta

import chinese_calendar
import pytest
from typer.testing import CliRunner

from commands.cli import app
from commands.common import set_runtime
from flows.dispatch import run_dispatch
from flows.runtime import Runtime
from flows.callbacks import run_chase_replies
from models.ledger.db import transaction
from models.watch import heartbeats
from tests.builders import at, request_for, setup_office
from tests.servers import HttpSink, free_port, http_server, smtp_server, write_apprise_config  # noqa: F401

EVERY_FLOW = ("chase-replies", "chase-callbacks", "dispatch", "cash-check", "monthly-tally")
ALL_DAY = ("chase-replies", "chase-callbacks", "dispatch")  # the flows that run whatever the day


class Watcher:
    """`bianmin watch --json --as-of T` in-process under the test's runtime, and what reached ops' mailbox."""

    def __init__(self, rt: Runtime, smtp) -> None:
        self.rt, self.smtp, self.runner, self.seen = rt, smtp, CliRunner(), 0

    def __call__(self, when, *more: str) -> tuple[int, dict]:
        out = self.runner.invoke(app, ["watch", "--json", "--as-of", when.isoformat(), *more])
        assert out.exit_code in (0, 1), out.output
        return out.exit_code, json.loads(out.stdout.strip().splitlines()[-1])

    def new_mail(self) -> list[str]:
        """The subjects of the ops mails that arrived since the last call."""
        messages = self.smtp.messages
        subjects = [str(m["Subject"]) for m in messages[self.seen:]]
        self.seen = len(messages)
        return sorted(subjects)


@pytest.fixture
def routes(smtp_server) -> dict:
    return {"ops": smtp_server.url(to="ops@example.com")}


@pytest.fixture
def watcher(settings, tmp_path, smtp_server, routes, monkeypatch):
    monkeypatch.delenv("PREFECT_API_URL", raising=False)  # each test says which Prefect it means
    config = write_apprise_config(tmp_path / "apprise.yml", routes)
    rt = Runtime(settings.model_copy(update={"apprise_config": config, "locale": "en"}))
    set_runtime(rt)
    try:
        yield Watcher(rt, smtp_server)
    finally:
        set_runtime(None)
        rt.close()


def ran(rt: Runtime, when, *flows: str) -> None:
    """These flows completed a run that started at `when` (what their hooks record under Prefect)."""
    with transaction(rt.sessions) as s:
        for flow in flows:
            heartbeats.finish_run(s, flow=flow, scope="*", prefect_run_id=None, result="completed", started_at=when,
                                  finished_at=when + timedelta(seconds=20), window_end=when)


def statuses(data: dict) -> dict[str, str]:
    return {f"{c['check']}:{c['name']}": c["status"] for c in data["checks"]}


# -- flows ----------------------------------------------------------------------------------------------------

def test_flows_that_never_ran_are_one_ops_message_each_once_they_should_have_run(watcher):
    code, first = watcher(at("2026-11-23", "10:00"))
    assert (code, first["problems"], watcher.new_mail()) == (0, [], [])  # watching starts: nothing was due yet

    code, data = watcher(at("2026-11-23", "12:30"))
    assert code == 1
    assert sorted(data["problems"]) == ["stale:chase-callbacks", "stale:chase-replies", "stale:dispatch"]
    # two of each missed (hourly: 11:00 and 12:00); the cash check's first run, 18:00, is still ahead
    assert statuses(data)["flow:cash-check"] == "ok"
    assert watcher.new_mail() == [f"[bianmin watch] Flow {f} is not running on schedule"
                                  for f in ("chase-callbacks", "chase-replies", "dispatch")]

    assert watcher(at("2026-11-23", "12:35"))[0] == 1
    assert watcher.new_mail() == []  # still wrong, already told

    ran(watcher.rt, at("2026-11-23", "12:40"), *ALL_DAY)
    code, data = watcher(at("2026-11-23", "12:41"))
    assert (code, data["ok"], data["sent"]["resolved"]) == (0, True, sorted(f"stale:{f}" for f in ALL_DAY))
    assert watcher.new_mail() == [f"[bianmin watch] resolved: Flow {f} is not running on schedule"
                                  for f in ("chase-callbacks", "chase-replies", "dispatch")]


def test_a_cash_check_is_not_owed_across_the_october_holiday_and_is_stale_on_its_first_working_day(watcher):
    rt = watcher.rt
    ran(rt, at("2026-09-30", "18:00"), *EVERY_FLOW)
    assert watcher(at("2026-09-30", "18:00"))[0] == 0
    for day in range(1, 8):  # National Day: the cash check runs and skips, or does not run at all
        moment = at(f"2026-10-0{day}", "20:00")
        assert not chinese_calendar.is_workday(moment.date())  # the oracle agrees it is a day off
        ran(rt, moment - timedelta(minutes=1), *ALL_DAY, "monthly-tally")
        code, data = watcher(moment)
        assert (code, statuses(data)["flow:cash-check"]) == (0, "ok"), (day, data)
    assert watcher.new_mail() == []

    eighth = at("2026-10-08", "18:20")
    assert chinese_calendar.is_workday(eighth.date())
    ran(rt, eighth - timedelta(minutes=1), *ALL_DAY, "monthly-tally")
    code, data = watcher(eighth)
    assert (code, data["problems"]) == (1, ["stale:cash-check"])
    [check] = [c for c in data["checks"] if c["name"] == "cash-check"]
    assert "2026-09-30 18:00" in check["detail"] and "2026-10-08 09:00, 2026-10-08 18:00" in check["detail"]
    assert watcher.new_mail() == ["[bianmin watch] Flow cash-check is not running on schedule"]

    ran(rt, at("2026-10-08", "18:59"), *ALL_DAY, "monthly-tally")
    assert watcher(at("2026-10-08", "19:00"))[0] == 1
    assert watcher.new_mail() == []

    ran(rt, at("2026-10-09", "09:00"), "cash-check", *ALL_DAY, "monthly-tally")
    assert watcher(at("2026-10-09", "09:01"))[0] == 0
    assert watcher.new_mail() == ["[bianmin watch] resolved: Flow cash-check is not running on schedule"]


def test_the_make_up_saturday_owes_its_cash_checks(watcher):
    rt = watcher.rt
    ran(rt, at("2026-10-09", "18:00"), *EVERY_FLOW)
    watcher(at("2026-10-09", "18:00"))
    sunday = at("2026-10-11", "12:00")
    assert chinese_calendar.is_workday(at("2026-10-10").date())  # Saturday 10 October is worked (调休)
    ran(rt, sunday - timedelta(minutes=1), *ALL_DAY, "monthly-tally")
    code, data = watcher(sunday)
    assert (code, data["problems"]) == (1, ["stale:cash-check"])


def test_the_daily_tally_is_stale_when_two_of_its_runs_in_a_row_are_missed(watcher):
    rt = watcher.rt
    ran(rt, at("2026-10-30", "10:00"), *EVERY_FLOW)
    watcher(at("2026-10-30", "10:00"))
    # 31 October 08:00 missed, 1 November's 08:00 run may still be going
    ran(rt, at("2026-11-01", "08:09"), *ALL_DAY, "cash-check")
    assert watcher(at("2026-11-01", "08:10"))[1]["problems"] == []
    ran(rt, at("2026-11-01", "08:29"), *ALL_DAY)
    code, data = watcher(at("2026-11-01", "08:30"))
    assert (code, data["problems"]) == (1, ["stale:monthly-tally"])


# -- deliveries -------------------------------------------------------------------------------------------------

def test_a_failing_channel_is_one_ops_message_and_one_resolved_notice_when_it_delivers_again(
        settings, tmp_path, smtp_server, http_server, monkeypatch):
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    config = write_apprise_config(tmp_path / "apprise.yml", {"ops": smtp_server.url(to="ops@example.com"),
                                                             "cs-supervisor": http_server.url("/cs")})
    rt = Runtime(settings.model_copy(update={"apprise_config": config, "locale": "en"}))
    set_runtime(rt)
    watcher = Watcher(rt, smtp_server)
    try:
        with transaction(rt.sessions) as s:  # a phone call nobody answered: an alert for the CS supervisor
            request_for(s, setup_office(s), at=at("2026-11-23", "10:00"))
        run_chase_replies(rt, at("2026-11-23", "10:11"))
        http_server.respond(500)
        assert run_dispatch(rt, at("2026-11-23", "10:12")).messages_failed == 1

        ran(rt, at("2026-11-23", "10:12"), *EVERY_FLOW)
        code, data = watcher(at("2026-11-23", "10:13"))
        assert (code, data["problems"]) == (1, ["delivery-failing:cs-supervisor"])
        assert watcher.new_mail() == ["[bianmin watch] Deliveries to cs-supervisor are failing"]
        [body] = [smtp_server.text(m) for m in smtp_server.messages]
        assert "1 alert(s) not accepted" in body and str(http_server.port) not in body  # never the URL

        assert watcher(at("2026-11-23", "10:14"))[0] == 1
        assert watcher.new_mail() == []

        http_server.respond(200)
        assert run_dispatch(rt, at("2026-11-23", "10:20")).messages_failed == 0
        ran(rt, at("2026-11-23", "10:20"), *ALL_DAY)
        code, data = watcher(at("2026-11-23", "10:21"))
        assert (code, data["problems"]) == (0, [])
        assert watcher.new_mail() == ["[bianmin watch] resolved: Deliveries to cs-supervisor are failing"]
    finally:
        set_runtime(None)
        rt.close()


def test_alerts_nobody_dispatches_are_held_up_after_the_threshold(watcher):
    rt = watcher.rt
    with transaction(rt.sessions) as s:
        request_for(s, setup_office(s), at=at("2026-11-23", "10:00"))
    run_chase_replies(rt, at("2026-11-23", "10:11"))  # an alert for cs-supervisor, and no dispatch runs
    ran(rt, at("2026-11-23", "10:40"), *EVERY_FLOW)
    assert watcher(at("2026-11-23", "10:40"))[1]["problems"] == []  # due 29 minutes: not yet (threshold 30)
    code, data = watcher(at("2026-11-23", "10:42"))
    assert (code, data["problems"]) == (1, ["delivery-late:cs-supervisor"])
    assert watcher.new_mail() == ["[bianmin watch] Deliveries to cs-supervisor are held up"]


# -- Prefect, the ledger, and the state ----------------------------------------------------------------------------

def test_a_prefect_server_that_does_not_answer_is_one_message_and_its_return_one_resolved_notice(watcher, monkeypatch):
    port = free_port()  # nothing listens there
    monkeypatch.setenv("PREFECT_API_URL", f"http://127.0.0.1:{port}/api")
    ran(watcher.rt, at("2026-11-23", "10:00"), *EVERY_FLOW)
    code, data = watcher(at("2026-11-23", "10:01"))
    assert (code, data["problems"]) == (1, ["prefect-down"])
    assert watcher.new_mail() == ["[bianmin watch] The Prefect server does not answer"]
    assert watcher(at("2026-11-23", "10:02"))[0] == 1 and watcher.new_mail() == []

    ran(watcher.rt, at("2026-11-23", "10:02"), *ALL_DAY)
    prefect = HttpSink(port=port).start()  # a server answering GET /api/health with 200
    try:
        code, data = watcher(at("2026-11-23", "10:03"))
    finally:
        prefect.stop()
    assert (code, statuses(data)["prefect:prefect"]) == (0, "ok")
    assert [r.path for r in prefect.requests] == ["/api/health"]
    assert watcher.new_mail() == ["[bianmin watch] resolved: The Prefect server does not answer"]


def test_without_prefect_api_url_the_prefect_check_is_skipped_and_says_so(watcher):
    ran(watcher.rt, at("2026-11-23", "10:00"), *EVERY_FLOW)
    code, data = watcher(at("2026-11-23", "10:01"))
    assert code == 0
    [prefect] = [c for c in data["checks"] if c["check"] == "prefect"]
    assert (prefect["status"], prefect["detail"]) == ("skipped", "PREFECT_API_URL is not set: the Prefect server "
                                                                 "is not checked")


def test_the_json_names_every_check_and_the_state_file_is_private(watcher):
    ran(watcher.rt, at("2026-11-23", "10:00"), *EVERY_FLOW)
    code, data = watcher(at("2026-11-23", "10:01"))
    assert code == 0
    assert set(data) == {"as_of", "ok", "checks", "problems", "sent", "state_file"}
    assert data["as_of"] == "2026-11-23T10:01:00+08:00" and data["ok"] is True
    assert [(c["check"], c["name"]) for c in data["checks"]] == [
        ("flow", f) for f in ("chase-replies", "chase-callbacks", "dispatch", "cash-check", "monthly-tally")] + [
        ("deliveries", "*"), ("prefect", "prefect")]
    assert all(set(c) == {"check", "name", "status", "detail", "key"} for c in data["checks"])
    assert data["sent"] == {"problems": [], "resolved": [], "failed": []}
    assert stat.S_IMODE(os.stat(data["state_file"]).st_mode) == 0o600


def test_an_unreadable_state_file_starts_afresh(watcher):
    path = watcher.rt.settings.effective_watch_state_file
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{not json", encoding="utf-8")
    code, data = watcher(at("2026-11-23", "10:00"))
    assert code == 0 and json.loads(path.read_text(encoding="utf-8"))["problems"] == {}


def test_a_ledger_that_cannot_be_used_is_told_and_remembered_in_the_state_file(settings, tmp_path, smtp_server,
                                                                                monkeypatch):
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    config = write_apprise_config(tmp_path / "apprise.yml", {"ops": smtp_server.url(to="ops@example.com")})
    rt = Runtime(settings.model_copy(update={"apprise_config": config, "locale": "en",
                                             "database_url": f"sqlite:///{tmp_path / 'missing.db'}"}))
    set_runtime(rt)
    watcher = Watcher(rt, smtp_server)
    try:
        code, data = watcher(at("2026-11-23", "10:00"))
        assert (code, data["problems"]) == (1, ["ledger-unusable"])
        assert watcher.new_mail() == ["[bianmin watch] bianmin's database cannot be used"]
        assert watcher(at("2026-11-23", "10:05"))[0] == 1 and watcher.new_mail() == []
    finally:
        set_runtime(None)
        rt.close()


def test_ops_that_cannot_be_told_is_retried_at_the_next_watch(watcher, smtp_server):
    smtp_server.stop()
    watcher(at("2026-11-23", "10:00"))
    code, data = watcher(at("2026-11-23", "12:30"))
    assert (code, data["sent"]["problems"]) == (1, []) and len(data["sent"]["failed"]) == 3
    smtp_server.start()
    code, data = watcher(at("2026-11-23", "12:31"))
    assert len(data["sent"]["problems"]) == 3 and len(watcher.new_mail()) == 3
