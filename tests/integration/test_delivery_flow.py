"""The dispatch flow under Prefect, wired from the runtime's settings, delivering to a real HTTP endpoint."""
from __future__ import annotations

from datetime import timedelta

import pytest

from flows.dispatch import DispatchResult, dispatch_flow, run_dispatch
from flows.runtime import Runtime, using_runtime
from tests.integration.test_outbox import T0, finding, record
from tests.servers import http_server, write_apprise_config  # noqa: F401 (fixture)


def test_run_dispatch_takes_everything_from_settings_and_needs_no_prefect_server(settings, engine, tmp_path,
                                                                                 http_server):
    config = write_apprise_config(tmp_path / "apprise.yml", {"cs-supervisor": http_server.url("/cs")})
    rt = Runtime(settings.model_copy(update={"apprise_config": config, "locale": "en"}))
    record(engine, [finding(1), finding(2)])
    try:
        result = run_dispatch(rt, T0)
    finally:
        rt.close()
    [post] = http_server.json_bodies()
    assert isinstance(result, DispatchResult)
    assert (result.messages_sent, result.alerts_sent, result.per_tag) == (1, 2, {"cs-supervisor": 2})
    assert post["title"].startswith("[bianmin] cs-supervisor: 2 open")


def test_without_apprise_config_run_dispatch_writes_to_the_settings_outbox_folder(settings, engine):
    record(engine, [finding(1)])
    rt = Runtime(settings)
    try:
        result = run_dispatch(rt, T0)
    finally:
        rt.close()
    assert [p.parent for p in map(__import__("pathlib").Path, result.files)] == [settings.effective_outbox_dir]


@pytest.mark.prefect
def test_the_dispatch_flow_delivers_once_and_a_rerun_sends_nothing(settings, engine, tmp_path, http_server,
                                                                   prefect_harness):
    config = write_apprise_config(tmp_path / "apprise.yml", {"cs-supervisor": http_server.url("/cs")})
    rt = Runtime(settings.model_copy(update={"apprise_config": config}))
    record(engine, [finding(n) for n in range(1, 4)])
    with using_runtime(rt):
        first = dispatch_flow(as_of=T0)
        again = dispatch_flow(as_of=T0 + timedelta(minutes=1))
    rt.close()
    assert (first.messages_sent, first.alerts_sent, again.messages_sent) == (1, 3, 0)
    assert len(http_server.accepted()) == 1
