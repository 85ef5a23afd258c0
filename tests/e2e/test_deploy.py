"""`bianmin deploy` against a real Prefect server: the pool, the five deployments with their schedules and
concurrency limits, the ops webhook block and the automations exist, read back through Prefect's client; a
second deploy changes nothing; bad input is one line and exit 2."""
from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from tests.prefect_servers import PrefectServer, clean_env
from tests.servers import free_port

BIANMIN = str(Path(sys.executable).with_name("bianmin"))
SECRET = "hook-secret-5f3a9c"
PERIODIC = {"chase-replies", "chase-callbacks", "dispatch", "cash-check", "monthly-tally"}
FLOWS = PERIODIC | {"office-check"}


def deploy(tmp_path: Path, api_url: str | None, **settings: str) -> subprocess.CompletedProcess:
    env = clean_env(BIANMIN_DATA_DIR=str(tmp_path / "var"), BIANMIN_LOCALE="en",
                    BIANMIN_CONFIG_FILE=str(tmp_path / "none.toml"), PREFECT_HOME=str(tmp_path / "client-home"),
                    **settings)
    if api_url:
        env["PREFECT_API_URL"] = api_url
    return subprocess.run([BIANMIN, "deploy"], env=env, capture_output=True, text=True, cwd=tmp_path, timeout=300)


async def server_state(api_url: str) -> dict:
    """What the server holds, through Prefect's client: everything `bianmin deploy` is meant to have made."""
    from prefect.client.orchestration import PrefectClient
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterTags

    async with PrefectClient(api_url) as client:
        pool = await client.read_work_pool("bianmin")
        deployments = await client.read_deployments(
            deployment_filter=DeploymentFilter(tags=DeploymentFilterTags(all_=["bianmin"])))
        flows = {f.id: f.name for f in await client.read_flows()}
        automations = [a for a in await client.read_automations() if "bianmin" in a.tags]
        block = await client.read_block_document_by_name("bianmin-ops", block_type_slug="webhook",
                                                         include_secrets=False)
        return {
            "pool": (pool.id, pool.type),
            "deployments": {flows[d.flow_id]: {
                "id": d.id, "entrypoint": d.entrypoint, "pool": d.work_pool_name, "paused": d.paused,
                "limit": d.global_concurrency_limit.limit if d.global_concurrency_limit else None,
                "strategy": d.concurrency_options.collision_strategy.value if d.concurrency_options else None,
                "schedules": sorted(((s.id, s.slug, s.schedule.cron, s.schedule.timezone, s.active)
                                     for s in d.schedules), key=lambda s: s[1])} for d in deployments},
            "automations": sorted((a.id, a.name, a.enabled, a.trigger.model_dump_json(exclude={"id"}),
                                   tuple(x.type for x in a.actions)) for a in automations),
            "block": (block.id, str(block.data)),
        }


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory):
    with PrefectServer(tmp_path_factory.mktemp("prefect-server")) as server:
        yield server


@pytest.mark.slow
def test_deploy_applies_pool_deployments_and_automations_and_a_second_deploy_changes_nothing(tmp_path,
                                                                                           prefect_server):
    webhook = f"http://127.0.0.1:{free_port()}/ops/{SECRET}"
    first = deploy(tmp_path, prefect_server.api_url, BIANMIN_OPS_WEBHOOK_URL=webhook,
                   BIANMIN_SCHEDULE_REPLIES="*/2 * * * *")
    assert first.returncode == 0, first.stdout + first.stderr
    state = asyncio.run(server_state(prefect_server.api_url))

    assert state["pool"][1] == "process"
    assert set(state["deployments"]) == FLOWS
    for name, d in state["deployments"].items():
        assert d["pool"] == "bianmin" and not d["paused"], name
        assert (d["limit"], d["strategy"]) == ((1, "CANCEL_NEW") if name in PERIODIC else (None, None)), name
        assert d["entrypoint"].startswith("flows."), name
    crons = {name: [(slug, cron, tz) for _id, slug, cron, tz, _active in d["schedules"]]
             for name, d in state["deployments"].items()}
    assert crons == {
        "chase-replies": [("chase-replies-1", "*/2 * * * *", "Asia/Shanghai")],
        "chase-callbacks": [("chase-callbacks-1", "0 * * * *", "Asia/Shanghai")],
        "dispatch": [("dispatch-1", "* * * * *", "Asia/Shanghai")],
        "cash-check": [("cash-check-1", "0 18 * * *", "Asia/Shanghai"), ("cash-check-2", "0 9 * * *", "Asia/Shanghai")],
        "monthly-tally": [("monthly-tally-1", "0 8 * * *", "Asia/Shanghai")],
        "office-check": [],
    }
    names = {name: actions for _id, name, enabled, _trigger, actions in state["automations"] if enabled}
    assert names == {**{f"bianmin {flow}/bianmin: late, crashed or failed": ("call-webhook",) for flow in FLOWS},
                     "bianmin pool bianmin: crash silent runs": ("change-flow-run-state",)}
    for _id, name, _enabled, trigger, _actions in state["automations"]:
        if "late, crashed or failed" in name:
            flow = name.split()[1].split("/")[0]
            assert f'prefect.deployment.{state["deployments"][flow]["id"]}' in trigger
            assert all(f"prefect.flow-run.{s}" in trigger for s in ("Late", "Crashed", "Failed"))
    assert SECRET not in state["block"][1]  # read without secrets: the block holds it, and shows it to nobody
    assert SECRET not in first.stdout + first.stderr

    second = deploy(tmp_path, prefect_server.api_url, BIANMIN_OPS_WEBHOOK_URL=webhook,
                    BIANMIN_SCHEDULE_REPLIES="*/2 * * * *")
    assert second.returncode == 0, second.stdout + second.stderr
    assert asyncio.run(server_state(prefect_server.api_url)) == state  # same ids, schedules, limits, automations
    assert second.stdout.count(": unchanged") == 7 and "created" not in second.stdout
    assert SECRET not in second.stdout + second.stderr

    # a changed schedule is updated in place (same schedule id), not a new one beside the old
    third = deploy(tmp_path, prefect_server.api_url, BIANMIN_OPS_WEBHOOK_URL=webhook)
    assert third.returncode == 0, third.stdout + third.stderr
    after = asyncio.run(server_state(prefect_server.api_url))
    [(schedule_id, _slug, cron, _tz, _active)] = after["deployments"]["chase-replies"]["schedules"]
    assert (schedule_id, cron) == (state["deployments"]["chase-replies"]["schedules"][0][0], "*/5 * * * *")
    assert after["automations"] == state["automations"]


@pytest.mark.parametrize("api_url, says", [
    (None, "PREFECT_API_URL is not set"),
    ("ftp://prefect.internal/api", "PREFECT_API_URL is not an http(s) URL"),
    ("http://127.0.0.1:{port}/api", "does not answer"),
])
def test_deploy_without_a_reachable_server_is_one_line_and_exit_2(tmp_path, api_url, says):
    result = deploy(tmp_path, api_url and api_url.format(port=free_port()))
    assert result.returncode == 2
    assert says in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
