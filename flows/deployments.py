"""The schedules: one Prefect deployment per flow, cron in the configured timezone. No logic lives here.

Holidays are not in the cron expressions: the flows ask the business calendar (a cash check on a day
off does nothing; a chase outside working time defers level changes), so the schedules stay simple.
"""
from __future__ import annotations

from datetime import datetime, time, timedelta

from flows.settings import Settings

DEPLOYMENT_NAME = "bianmin"


def daily_cron(at: time) -> str:
    return f"{at.minute} {at.hour} * * *"


def cash_check_times(settings: Settings) -> tuple[time, time]:
    """The evening check (cut-off + grace) and the next morning's."""
    evening = (datetime.combine(datetime(2000, 1, 1), settings.cash_cutoff)
               + timedelta(minutes=settings.cash_check_grace_minutes)).time()
    return evening, settings.cash_morning_check


def schedules(settings: Settings) -> dict[str, list[str]]:
    """Flow name -> its cron expressions, in settings.timezone."""
    evening, morning = cash_check_times(settings)
    return {
        "chase-replies": [settings.schedule_replies],
        "chase-callbacks": [settings.schedule_callbacks],
        "dispatch": [settings.schedule_dispatch],
        "cash-check": [daily_cron(evening), daily_cron(morning)],
        "monthly-tally": [settings.schedule_tally],
    }


def describe(settings: Settings) -> list[str]:
    """One line per deployment, for the serve log."""
    return [f"  {name}/{DEPLOYMENT_NAME}: {' | '.join(crons)} ({settings.timezone})"
            for name, crons in schedules(settings).items()]


def build_deployments(settings: Settings) -> list:
    """The RunnerDeployments `bianmin serve` serves: every flow on its schedule."""
    from prefect.deployments.runner import EntrypointType
    from prefect.schedules import Cron

    from flows.callbacks import chase_callbacks_flow, chase_replies_flow
    from flows.cash import cash_check_flow
    from flows.dispatch import dispatch_flow
    from flows.tally import monthly_tally_flow

    flows = {
        "chase-replies": chase_replies_flow,
        "chase-callbacks": chase_callbacks_flow,
        "dispatch": dispatch_flow,
        "cash-check": cash_check_flow,
        "monthly-tally": monthly_tally_flow,
    }
    out = []
    for name, crons in schedules(settings).items():
        # module paths, not file paths: the served runs import the installed package wherever serve started
        out.append(flows[name].to_deployment(
            name=DEPLOYMENT_NAME,
            schedules=[Cron(expr, timezone=settings.timezone) for expr in crons],
            entrypoint_type=EntrypointType.MODULE_PATH,
            tags=["bianmin"],
        ))
    return out
