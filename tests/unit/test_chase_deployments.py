"""The schedules `bianmin serve` registers: every flow, cron in the configured timezone, no logic."""
import importlib
from datetime import time
from pathlib import Path

from flows.deployments import build_deployments, cash_check_times, schedules
from flows.settings import Settings


def test_every_flow_has_a_deployment_on_its_configured_cron_in_the_configured_timezone():
    settings = Settings(_env_file=None, timezone="Asia/Shanghai", schedule_replies="*/2 * * * *")
    deployments = {d.flow_name: d for d in build_deployments(settings)}
    assert set(deployments) == {"chase-replies", "chase-callbacks", "dispatch", "cash-check", "monthly-tally",
                                "office-check"}
    crons = {name: [(s.schedule.cron, s.schedule.timezone) for s in d.schedules] for name, d in deployments.items()
             if name != "office-check"}  # started per office batch by the checks, never on a schedule
    assert deployments["office-check"].schedules == [] and deployments["office-check"].concurrency_limit is None
    assert crons == {
        "chase-replies": [("*/2 * * * *", "Asia/Shanghai")],
        "chase-callbacks": [("0 * * * *", "Asia/Shanghai")],
        "dispatch": [("* * * * *", "Asia/Shanghai")],
        "cash-check": [("0 18 * * *", "Asia/Shanghai"), ("0 9 * * *", "Asia/Shanghai")],
        "monthly-tally": [("0 8 * * *", "Asia/Shanghai")],
    }


def test_served_runs_import_the_flows_by_module_path_wherever_serve_was_started():
    entrypoints = {d.flow_name: d.entrypoint for d in build_deployments(Settings(_env_file=None))}
    assert entrypoints["chase-callbacks"] == "flows.callbacks.chase_callbacks_flow"
    assert entrypoints["monthly-tally"] == "flows.tally.monthly_tally_flow"


def test_the_evening_cash_check_runs_at_cutoff_plus_grace_even_across_the_hour():
    settings = Settings(_env_file=None, cash_cutoff=time(17, 45), cash_check_grace_minutes=20,
                        cash_morning_check=time(8, 40))
    assert cash_check_times(settings) == (time(18, 5), time(8, 40))
    assert schedules(settings)["cash-check"] == ["5 18 * * *", "40 8 * * *"]


def test_prefect_yaml_is_what_bianmin_deploy_applies_with_the_default_settings():
    """Every field `bianmin deploy` sets on a deployment, as prefect.yaml writes it for `prefect deploy`."""
    import yaml

    from flows.deployments import DEPLOYMENT_NAME, SPECS

    spec = yaml.safe_load((Path(__file__).parents[2] / "prefect.yaml").read_text(encoding="utf-8"))
    applied = {d.flow_name: d for d in build_deployments(Settings(_env_file=None), work_pool="bianmin")}
    file_entrypoints = {s.flow: s.file_entrypoint for s in SPECS}
    written = {}
    for d in spec["deployments"]:
        module, function = d["entrypoint"].split(":")
        written[getattr(importlib.import_module(module.removesuffix(".py").replace("/", ".")), function).name] = d
    assert set(written) == set(applied)
    for name, d in written.items():
        a = applied[name]
        assert d["name"] == a.name == DEPLOYMENT_NAME
        assert d["entrypoint"] == file_entrypoints[name] and a.entrypoint == file_entrypoints[name].replace(
            "/", ".").replace(".py:", ".")
        assert d["description"] == a.description
        assert [(s["cron"], s["timezone"], s["slug"]) for s in d.get("schedules", [])] == [
            (s.schedule.cron, s.schedule.timezone, s.slug) for s in a.schedules]
        assert d["work_pool"]["name"] == a.work_pool_name == "bianmin"
        assert d["tags"] == a.tags
        limit = d.get("concurrency_limit")
        assert (limit or {}).get("limit") == a.concurrency_limit
        assert (limit or {}).get("collision_strategy") == (
            a.concurrency_options.collision_strategy.value if a.concurrency_options else None)
        assert d.get("parameters", {}) == a.parameters


def test_every_periodic_deployment_runs_one_at_a_time_and_cancels_a_run_that_would_pile_up():
    for d in build_deployments(Settings(_env_file=None)):
        if d.schedules:
            assert d.concurrency_limit == 1, d.flow_name
            assert d.concurrency_options.collision_strategy.value == "CANCEL_NEW", d.flow_name
