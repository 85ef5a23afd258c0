"""`bianmin run dispatch` in its own process: a run whose digests could not be sent says so and exits 1."""
from __future__ import annotations

import json
import socket

from tests.e2e.test_cli_process import bianmin, env  # noqa: F401 (fixture)
from tests.integration.test_outbox import finding, record
from tests.servers import http_server, write_apprise_config  # noqa: F401 (fixture)


def test_a_dispatch_whose_every_delivery_fails_says_how_many_failed_and_exits_1(env, engine, tmp_path, http_server):
    http_server.respond(500)
    env["BIANMIN_APPRISE_CONFIG"] = str(write_apprise_config(tmp_path / "apprise.yml", {
        "cs-supervisor": http_server.url("/cs"), "finance-manager": http_server.url("/fin")}))
    with socket.socket() as sock:  # no `bianmin serve` there: a temporary Prefect server records the run
        sock.bind(("127.0.0.1", 0))
        env["BIANMIN_PREFECT_PORT"] = str(sock.getsockname()[1])
    record(engine, [finding(1), finding(2, kind="cash-unhanded", severity=3)], kinds={"callback-overdue", "cash-unhanded"})

    result = bianmin(env, "run", "dispatch", "--as-of", "2026-11-26T10:00", "--json")

    summary = json.loads(result.stdout)
    assert result.returncode == 1, result.stderr
    assert (summary["messages_sent"], summary["messages_failed"], summary["failed"]) == (0, 2, 2)
    assert result.stderr.strip().splitlines()[-1] == (
        "0 digest(s) sent, 2 failed (they are retried later): cs-supervisor, finance-manager")
    assert len(http_server.requests) == 2
