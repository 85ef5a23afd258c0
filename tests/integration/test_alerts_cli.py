"""`bianmin alerts list|ack|silence` and `bianmin config check` as an operator runs them."""
from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta

import pytest
from typer.testing import CliRunner

from commands.cli import app
from commands.common import set_runtime
from flows.runtime import Runtime
from flows.settings import DEFAULT_ROUTES
from models.ledger.db import transaction
from notifications.dispatcher import dispatch
from notifications.outbox import routed_tags
from tests.integration.test_outbox import T0, finding, record
from tests.servers import http_server, write_apprise_config  # noqa: F401 (fixture)

CANARY = "CANARYd41d8cd9"


@pytest.fixture
def cli(settings):
    made: list[Runtime] = []

    def invoke(*args: str, locale: str = "en", **overrides):
        rt = Runtime(settings.model_copy(update={"locale": locale, **overrides}))
        made.append(rt)
        set_runtime(rt)
        return CliRunner().invoke(app, [str(a) for a in args])

    yield invoke
    set_runtime(None)
    for rt in made:
        rt.close()


def as_json(result):
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return json.loads(result.stdout)


def test_alerts_list_json_gives_each_alert_with_its_key_tag_office_order_status_and_attempts(cli, engine):
    record(engine, [finding(1), finding(2, kind="cash-unhanded", department="engineering", severity=3)],
           kinds={"callback-overdue", "cash-unhanded"})

    listed = as_json(cli("alerts", "list", "--json", "--at", T0.isoformat()))

    assert sorted((a["key"], a["tag"], a["status"]) for a in listed) == [
        ("callback-overdue:WO-0001:1", "cs-supervisor", "pending"),
        ("cash-unhanded:WO-0002", "engineering-supervisor", "pending"),
        ("cash-unhanded:WO-0002", "finance-manager", "pending"),
    ]
    first = next(a for a in listed if a["kind"] == "callback-overdue")
    assert {k: first[k] for k in ("level", "office", "order", "attempts")} == {
        "level": 1, "office": "A1", "order": "WO-0001", "attempts": 0}


def test_alerts_list_open_leaves_out_resolved_alerts(cli, engine):
    record(engine, [finding(1), finding(2)])
    record(engine, [finding(2)], as_of=T0 + timedelta(minutes=5))
    everything = as_json(cli("alerts", "list", "--json"))
    still_open = as_json(cli("alerts", "list", "--open", "--json"))
    assert (len(everything), [a["order"] for a in still_open]) == (2, ["WO-0002"])


def test_alerts_list_renders_a_table_in_chinese(cli, engine):
    record(engine, [finding(1)])
    result = cli("alerts", "list", locale="zh_CN")
    assert result.exit_code == 0
    assert "待发送" in result.stdout and "callback-overdue:WO-0001:1" in result.stdout


def test_ack_by_finding_key_stops_repeats_and_shows_as_acked(cli, engine, settings):
    record(engine, [finding(1)])
    dispatch(Runtime(settings).sessions, apprise_config=None, outbox_dir=settings.effective_outbox_dir,
             locale="en", as_of=T0)

    acked = as_json(cli("alerts", "ack", "callback-overdue:WO-0001:1", "--by", "王主管", "--json",
                        "--at", (T0 + timedelta(minutes=5)).isoformat()))
    record(engine, [finding(1)], as_of=T0 + timedelta(hours=6))
    [alert] = as_json(cli("alerts", "list", "--json"))

    assert acked["acked"] == 1
    assert alert["status"] == "acked"


def test_ack_of_an_unknown_key_is_refused_with_exit_2(cli, engine):
    result = cli("alerts", "ack", "callback-overdue:WO-9999:1", "--by", "王主管")
    assert result.exit_code == 2
    assert "No open alert" in result.stderr


def test_silence_is_recorded_and_the_alerts_it_covers_list_as_silenced(cli, engine):
    record(engine, [finding(1, office="A1"), finding(2, office="B2")])
    silenced = as_json(cli("alerts", "silence", "--kind", "callback-overdue", "--office", "A1",
                           "--from", T0.isoformat(), "--until", (T0 + timedelta(hours=3)).isoformat(),
                           "--by", "王经理", "--reason", "小区停水抢修", "--json"))
    listed = as_json(cli("alerts", "list", "--json", "--at", (T0 + timedelta(hours=1)).isoformat()))
    active = as_json(cli("alerts", "silences", "--json", "--at", (T0 + timedelta(hours=1)).isoformat()))

    assert silenced["reason"] == "小区停水抢修"
    assert {a["office"]: a["status"] for a in listed} == {"A1": "silenced", "B2": "pending"}
    assert [(s["kind"], s["office"], s["by"]) for s in active] == [("callback-overdue", "A1", "王经理")]


def test_a_silence_that_ends_before_it_starts_is_refused(cli, engine):
    result = cli("alerts", "silence", "--kind", "callback-overdue", "--from", T0.isoformat(),
                 "--until", (T0 - timedelta(hours=1)).isoformat(), "--by", "x", "--reason", "y")
    assert result.exit_code == 2


# -- config check ----------------------------------------------------------------------------------------

def full_config(tmp_path, http_server, *, leave_out: str | None = None, extra: tuple[str, ...] = ()):
    routes = {tag: [http_server.url(f"/{tag}") + f"?-token={CANARY}"]
              for tag in routed_tags(DEFAULT_ROUTES) if tag != leave_out}
    routes["ops"] = routes.get("ops", []) + list(extra)
    return write_apprise_config(tmp_path / "apprise.yml", routes)


def test_config_check_lists_every_tag_with_its_url_masked(cli, tmp_path, http_server):
    config = full_config(tmp_path, http_server)
    result = cli("config", "check", "--json", apprise_config=config)
    data = as_json(result)
    assert set(data["tags"]) == set(routed_tags(DEFAULT_ROUTES))
    assert data["missing"] == []
    assert all(url.startswith(f"json://127.0.0.1:{http_server.port}/") for urls in data["tags"].values()
               for url in urls)
    assert CANARY not in result.stdout + result.stderr


def test_config_check_reports_a_routed_tag_without_url_as_a_configuration_error(cli, tmp_path, http_server):
    config = full_config(tmp_path, http_server, leave_out="cs-manager")
    result = cli("config", "check", apprise_config=config)
    assert result.exit_code == 2
    assert "cs-manager" in result.stderr and "no URL" in result.stderr
    assert CANARY not in result.stdout + result.stderr


def test_config_check_send_test_reaches_only_that_tag(cli, tmp_path, http_server):
    config = full_config(tmp_path, http_server)
    result = cli("config", "check", "--send-test", "ops", apprise_config=config)
    assert result.exit_code == 0, result.stderr
    assert [r.path.split("?")[0] for r in http_server.requests] == ["/ops"]
    assert CANARY not in result.stdout + result.stderr


def test_config_check_send_test_failure_is_exit_2_without_the_secret(cli, tmp_path, http_server):
    http_server.respond(500)
    config = full_config(tmp_path, http_server)
    result = cli("config", "check", "--send-test", "ops", apprise_config=config)
    assert result.exit_code == 2
    assert "failed" in result.stderr and CANARY not in result.stdout + result.stderr


def test_config_check_without_apprise_config_says_where_alerts_go(cli):
    result = cli("config", "check", locale="zh_CN")
    assert result.exit_code == 0
    assert "outbox" in result.stdout


def test_alerts_list_never_shows_a_secret_stored_in_an_error(cli, engine, tmp_path, http_server, settings):
    http_server.respond(500)
    config = full_config(tmp_path, http_server)
    record(engine, [finding(1)])
    dispatch(Runtime(settings).sessions, apprise_config=config, outbox_dir=tmp_path, locale="en", as_of=T0)
    result = cli("alerts", "list", "--json")
    [alert] = as_json(result)
    assert alert["attempts"] == 1 and alert["last_error"]
    assert CANARY not in result.stdout


def test_the_alerts_commands_do_not_import_prefect(settings):
    code = ("import sys; from typer.testing import CliRunner; from commands.cli import app; "
            "CliRunner().invoke(app, ['alerts', 'list', '--json']); CliRunner().invoke(app, ['config', 'check']); "
            "print('prefect' in sys.modules)")
    env = {"BIANMIN_DATABASE_URL": settings.effective_database_url, "BIANMIN_DATA_DIR": str(settings.data_dir),
           "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True,
                         cwd=str(__import__("pathlib").Path(__file__).resolve().parents[2]))
    assert out.stdout.strip() == "False"


def test_config_check_reports_an_entry_apprise_could_not_load_without_quoting_it(cli, tmp_path, http_server):
    config = full_config(tmp_path, http_server, extra=(f"nosuchscheme://{CANARY}/x",))
    result = cli("config", "check", apprise_config=config)
    assert result.exit_code == 2
    assert "skipped" in result.stderr
    assert CANARY not in result.stdout + result.stderr
