"""`bianmin deploy`: the deployments, work pool and ops automations on the Prefect server in PREFECT_API_URL.

Group scale (docs/deploy.md). Prefect is imported only when the command runs; a missing or unreachable server
is one line and exit 2, like any refused input.
"""
from __future__ import annotations

import logging

import typer

from commands.common import console, fail, runtime


def deploy_cmd() -> None:
    """Apply every deployment (schedules in BIANMIN_TIMEZONE, one run at a time) to PREFECT_API_URL on the
    process work pool BIANMIN_WORK_POOL (created if missing), and the automations that tell ops of late,
    crashed and failed runs (BIANMIN_OPS_WEBHOOK_URL). Running it again changes nothing."""
    from flows.deploy import DeployError, api_url, deploy

    settings = runtime().settings
    try:
        api_url(settings)  # refused before Prefect is imported: an unset or malformed URL is one line
        for noisy in ("httpx", "prefect"):  # each API call is not news; what was done is said below
            logging.getLogger(noisy).setLevel(logging.WARNING)
        deploy(settings, say=lambda line: console.print(line, markup=False, highlight=False, soft_wrap=True))
    except DeployError as exc:
        fail(str(exc))


def register(root: typer.Typer, run: typer.Typer) -> None:
    root.command("deploy")(deploy_cmd)
