"""The schedules `bianmin serve` registers: every flow, cron in the configured timezone, no logic."""
import importlib
from datetime import time
from pathlib import Path

from flows.deployments import build_deployments, cash_check_times, schedules
from flows.settings import Settings


def test_every_flow_has_a_deployment_on_its_configured_cron_in_the_configured_timezone():
    settings = Settings(_env_file=None, timezone="Asia/Shanghai", schedule_replies="*/2 * * * *")
    deployments = {d.flow_name: d for d in build_deployments(settings)}
    assert set(deployments) == {"chase-replies", "chase-callbacks", "dispatch", "cash-check", "monthly-tally"}
    crons = {name: [(s.schedule.cron, s.schedule.timezone) for s in d.schedules] for name, d in deployments.items()}
    assert crons == {
        "chase-replies": [("*/2 * * * *", "Asia/Shanghai")],
        "chase-callbacks": [("0 * * * *", "Asia/Shanghai")],
        "dispatch": [("* * * * *", "Asia/Shanghai")],
        "cash-check": [("0 18 * * *", "Asia/Shanghai"), ("0 9 * * *", "Asia/Shanghai")],
        "monthly-tally": [("0 8 1 * *", "Asia/Shanghai")],
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


def test_prefect_yaml_describes_the_same_deployments_as_serve_with_the_default_settings():
    import yaml

    from flows.deployments import DEPLOYMENT_NAME

    spec = yaml.safe_load((Path(__file__).parents[2] / "prefect.yaml").read_text(encoding="utf-8"))
    served = {d.flow_name: d for d in build_deployments(Settings(_env_file=None))}
    written = {}
    for d in spec["deployments"]:
        module, function = d["entrypoint"].split(":")
        written[getattr(importlib.import_module(module.removesuffix(".py").replace("/", ".")), function).name] = d
    assert set(written) == set(served)
    for name, d in written.items():
        assert d["name"] == DEPLOYMENT_NAME
        assert [(s["cron"], s["timezone"]) for s in d["schedules"]] == [
            (s.schedule.cron, s.schedule.timezone) for s in served[name].schedules]
        assert d["work_pool"]["name"] == "bianmin"
