"""`bianmin deploy`: apply bianmin's deployments, work pool and ops automations to the server in PREFECT_API_URL.

The deployments themselves are declared in flows/deployments.py (no logic there); this module only makes the
server hold them, and says what it did. Applying twice changes nothing: the pool is created only when missing,
each deployment is updated in place by its name (its schedules by their slugs, so the runs they already
scheduled are kept), and each automation is found by its name and left alone when it already says the same.

Automations (Prefect's own, so they die with the server: `bianmin watch` is the watchdog outside it):
- one per deployment: a run of it that goes Late, Crashed or Failed calls the ops webhook;
- one for the whole pool: a run that stays Pending, or stops sending heartbeats, for `run_silent_seconds` (its
  worker or machine died) is marked Crashed, so its slot is freed, its parent sees it, and the automation above
  tells ops.
The ops webhook's URL (BIANMIN_OPS_WEBHOOK_URL) is kept in a Prefect Webhook block (`OPS_BLOCK`) as a secret and
never printed; with no URL set, a block of that name made by hand (UI or `prefect block create webhook`) is used.
"""
from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from flows.deployments import DEPLOYMENT_NAME, TAGS, build_deployments
from flows.settings import Settings
from models import texts
from notifications.masking import mask_url_password

OPS_BLOCK = "bianmin-ops"
_MADE_BY = "bianmin deploy:"  # how an automation says it is bianmin's (with the tag), so a later deploy may remove it
AUTOMATION_PREFIX = "bianmin"
WATCHED_STATES = ("Late", "Crashed", "Failed")
# a run handed to a worker (Pending) must start, and a running one keep sending heartbeats, or end: after one of
# the first, one of the second must follow in time. Pending counts too: a worker killed between taking a run and
# starting its process leaves it Pending for ever, without a single heartbeat
_STARTED_OR_BEATING = ("prefect.flow-run.Pending", "prefect.flow-run.heartbeat")
_ALIVE_OR_ENDED = ("prefect.flow-run.Running", "prefect.flow-run.heartbeat", "prefect.flow-run.Completed",
                   "prefect.flow-run.Failed", "prefect.flow-run.Cancelled", "prefect.flow-run.Crashed")


class DeployError(RuntimeError):
    """Deploying cannot go on; the message is one line in the configured locale, with no secret in it."""


@dataclass
class DeployReport:
    """What `bianmin deploy` found and did, one line each."""

    url: str
    pool: str
    lines: list[str] = field(default_factory=list)
    deployments: dict[str, str] = field(default_factory=dict)   # "<flow>/<name>" -> id
    automations: dict[str, str] = field(default_factory=dict)   # name -> created | updated | unchanged


def _t(settings: Settings, code: str, **values: Any) -> str:
    return texts.render(code, settings.locale, **values)


def api_url(settings: Settings) -> str:
    """PREFECT_API_URL, checked: set, and an http(s) URL; else a DeployError."""
    url = os.environ.get("PREFECT_API_URL", "").strip()
    if not url:
        raise DeployError(_t(settings, "deploy.no_api_url"))
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DeployError(_t(settings, "deploy.bad_api_url", url=mask_url_password(url)))
    return url


def deploy(settings: Settings, *, say: Callable[[str], None] = print) -> DeployReport:
    """Apply everything to PREFECT_API_URL; a server that does not answer, or refuses, is a DeployError."""
    url = api_url(settings)
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    report = DeployReport(url=mask_url_password(url), pool=settings.work_pool)
    try:
        # built here, outside the event loop: Prefect's to_deployment turns into a coroutine inside one
        deployments = build_deployments(settings, work_pool=settings.work_pool)
        asyncio.run(_deploy(settings, deployments, report, say))
    except DeployError:
        raise
    except Exception as exc:  # the server refused something: one line, never a traceback or a secret
        raise DeployError(_t(settings, "deploy.failed", url=report.url, error=_short(exc))) from None
    return report


def _short(exc: BaseException) -> str:
    return mask_url_password(f"{type(exc).__name__}: {exc}".splitlines()[0])[:300]


async def _deploy(settings: Settings, deployments: list, report: DeployReport, say: Callable[[str], None]) -> None:
    from prefect.client.orchestration import get_client

    def line(text: str) -> None:
        report.lines.append(text)
        say(text)

    async with get_client() as client:
        problem = await client.api_healthcheck()
        if problem is not None:
            raise DeployError(_t(settings, "deploy.unreachable", url=report.url, error=_short(problem)))
        await _ensure_pool(client, settings, line)
        for d in deployments:
            deployment_id = await d.aapply(work_pool_name=settings.work_pool)
            report.deployments[f"{d.flow_name}/{d.name}"] = str(deployment_id)
            crons = " | ".join(f"{s.schedule.cron} ({s.schedule.timezone})" for s in d.schedules)
            strategy = d.concurrency_options.collision_strategy.value if d.concurrency_options else "-"
            line(_t(settings, "deploy.deployment", name=f"{d.flow_name}/{d.name}",
                    schedules=crons or _t(settings, "deploy.no_schedule"), limit=d.concurrency_limit or "-",
                    strategy=strategy))
        block_id = await _ops_webhook_block(client, settings, line)
        wanted = automations(settings, report.deployments, block_id)
        for automation in wanted:
            action = await _apply_automation(client, automation)
            report.automations[automation.name] = action
            line(_t(settings, "deploy.automation", name=automation.name, action=_t(settings, f"deploy.{action}")))
        for name in await _remove_stale_automations(client, {a.name for a in wanted}):
            line(_t(settings, "deploy.automation", name=name, action=_t(settings, "deploy.removed")))
    line(_t(settings, "deploy.done", deployments=len(report.deployments), automations=len(report.automations),
            pool=report.pool, url=report.url))


async def _ensure_pool(client: Any, settings: Settings, line: Callable[[str], None]) -> None:
    """The process work pool, created with Prefect's default job template for that type when missing."""
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectNotFound
    from prefect.workers.utilities import get_default_base_job_template_for_infrastructure_type

    name = settings.work_pool
    try:
        pool = await client.read_work_pool(name)
    except ObjectNotFound:
        template = await get_default_base_job_template_for_infrastructure_type("process") or {}
        await client.create_work_pool(WorkPoolCreate(name=name, type="process", base_job_template=template))
        line(_t(settings, "deploy.pool_created", pool=name))
        return
    if pool.type != "process":
        raise DeployError(_t(settings, "deploy.pool_wrong_type", pool=name, type=pool.type))
    line(_t(settings, "deploy.pool_exists", pool=name, type=pool.type))


async def _ops_webhook_block(client: Any, settings: Settings, line: Callable[[str], None]) -> str | None:
    """The id of the Webhook block the automations call: saved from BIANMIN_OPS_WEBHOOK_URL (rewritten only when
    the URL changed), else one of that name made by hand, else None (no webhook automations)."""
    from prefect.blocks.webhook import Webhook
    from prefect.exceptions import ObjectNotFound
    from pydantic import SecretStr

    wanted = settings.ops_webhook_url.get_secret_value() if settings.ops_webhook_url else None
    try:
        existing = await Webhook.aload(OPS_BLOCK, client=client)
    except (ValueError, ObjectNotFound):
        existing = None
    if wanted and (existing is None or existing.url.get_secret_value() != wanted):
        block = Webhook(url=SecretStr(wanted), method="POST", headers={"Content-Type": "application/json"})
        await block.asave(OPS_BLOCK, overwrite=True, client=client)
        line(_t(settings, "deploy.webhook_saved", block=OPS_BLOCK))
    elif existing is None:
        line(_t(settings, "deploy.no_webhook", block=OPS_BLOCK))
        return None
    document = await client.read_block_document_by_name(OPS_BLOCK, block_type_slug="webhook")
    return str(document.id)


def webhook_payload(settings: Settings) -> str:
    """The JSON the ops webhook receives, as a Jinja template Prefect renders when it calls it: a text message
    in the shape WeCom and DingTalk robots take ({"msgtype": "text", "text": {"content": ...}}). It names the
    flow, the run and its state, never the state's message: an exception's text may quote a URL with its
    secret, and bianmin's own ops alert (flows/hooks.py) carries the message scrubbed."""
    run = '~ flow.name ~ " / " ~ flow_run.name ~ ": " ~ flow_run.state.name'

    head = _t(settings, "deploy.webhook_message", run="")
    return ('{"msgtype": "text", "text": {"content": {{ (' + json.dumps(head) + " " + run + ") | tojson }}}}")


def automations(settings: Settings, deployments: dict[str, str], block_id: str | None) -> list:
    """bianmin's automations: ops told of late, crashed and failed runs of each deployment (when there is a
    webhook block), and silent runs marked Crashed."""
    from prefect.client.schemas.objects import StateType
    from prefect.events.actions import CallWebhook, ChangeFlowRunState
    from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture

    out = []
    if block_id is not None:
        for full_name, deployment_id in sorted(deployments.items()):
            out.append(AutomationCore(
                name=f"{AUTOMATION_PREFIX} {full_name}: late, crashed or failed",
                description=f"{_MADE_BY} tell ops (webhook block {OPS_BLOCK}) when a run of {full_name} "
                            "is late, crashed or failed",
                tags=list(TAGS),
                trigger=EventTrigger(
                    match={"prefect.resource.id": "prefect.flow-run.*"},
                    match_related={"prefect.resource.role": "deployment",
                                   "prefect.resource.id": f"prefect.deployment.{deployment_id}"},
                    expect={f"prefect.flow-run.{state}" for state in WATCHED_STATES},
                    for_each={"prefect.resource.id"}, posture=Posture.Reactive, threshold=1,
                    within=timedelta(0)),
                actions=[CallWebhook(block_document_id=block_id, payload=webhook_payload(settings))],
            ))
    out.append(AutomationCore(
        name=f"{AUTOMATION_PREFIX} pool {settings.work_pool}: crash silent runs",
        description=f"{_MADE_BY} a run of a {DEPLOYMENT_NAME} deployment left Pending or with no heartbeat for "
                    f"{settings.run_silent_seconds} s lost its worker: mark it Crashed",
        tags=list(TAGS),
        trigger=EventTrigger(
            match={"prefect.resource.id": "prefect.flow-run.*"},
            match_related={"prefect.resource.role": "tag", "prefect.resource.id": f"prefect.tag.{TAGS[0]}"},
            after=set(_STARTED_OR_BEATING), expect=set(_ALIVE_OR_ENDED), for_each={"prefect.resource.id"},
            posture=Posture.Proactive, threshold=1, within=timedelta(seconds=settings.run_silent_seconds)),
        actions=[ChangeFlowRunState(state=StateType.CRASHED,
                                    message=f"not started or silent for {settings.run_silent_seconds} s: worker lost")],
    ))
    return out


def _comparable(automation: Any) -> dict:
    from prefect.events.schemas.automations import AutomationCore

    data = AutomationCore.model_validate(automation.model_dump()).model_dump(mode="json")
    data["trigger"].pop("id", None)  # made up anew each time an automation is built
    for name in ("after", "expect", "for_each"):  # sets: their JSON order changes with each process's hash seed
        data["trigger"][name] = sorted(data["trigger"].get(name) or [])
    return data


async def _remove_stale_automations(client: Any, wanted: set[str]) -> list[str]:
    """Automations an earlier `bianmin deploy` made that this one no longer wants (a renamed pool or deployment,
    a webhook block since removed): deleted, so no stale one keeps paging ops or crashing runs."""
    removed = []
    for automation in await client.read_automations():
        if (automation.description.startswith(_MADE_BY) and set(TAGS) <= set(automation.tags)
                and automation.name not in wanted):
            await client.delete_automation(automation.id)
            removed.append(automation.name)
    return sorted(removed)


async def _apply_automation(client: Any, automation: Any) -> str:
    """Create it, or update the one of that name when it differs; duplicates of the name (an older deploy raced)
    are removed. Returns created | updated | unchanged."""
    existing = await client.read_automations_by_name(automation.name)
    for extra in existing[1:]:
        await client.delete_automation(extra.id)
    if not existing:
        await client.create_automation(automation)
        return "created"
    if _comparable(existing[0]) == _comparable(automation) and len(existing) == 1:
        return "unchanged"
    await client.update_automation(existing[0].id, automation)
    return "updated"
