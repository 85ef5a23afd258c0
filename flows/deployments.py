"""The schedules: one Prefect deployment per flow, cron in the configured timezone. No logic lives here.

Holidays are not in the cron expressions: the flows ask the business calendar (a cash check on a day
off does nothing; a chase outside working time defers level changes), so the schedules stay simple.

`bianmin serve` serves these deployments itself; `bianmin deploy` (flows/deploy.py) applies the same ones to a
shared Prefect server on a `process` work pool, and prefect.yaml writes them out (a test keeps the three equal).

Every periodic deployment runs one at a time, and a run that starts while another of the same deployment is
still running is cancelled (CANCEL_NEW), never queued (ENQUEUE): each flow judges the ledger "as of now" and
covers whatever fell due since its last run (watermarks, catch-up of missed months), so a cancelled run loses
nothing, whereas queued runs pile up behind a slow or stuck one (Prefect #15886, #19313) and then run back to
back, each paging ops as late. A slot held by a run whose worker died is a lease that expires (Prefect renews
it while the run lives), so neither strategy strands a schedule for good; CANCEL_NEW also keeps nothing waiting
meanwhile. Duplicate scheduled runs (#17508, #18894) are harmless either way: side effects are once by
bianmin's own database (outbox keys, report claims, dispatch claims), not by the scheduler.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta

from flows.settings import Settings

DEPLOYMENT_NAME = "bianmin"
TAGS = ("bianmin",)


@dataclass(frozen=True)
class Spec:
    """One deployment as bianmin declares it: the flow, where it is, what it does, how many at a time."""

    flow: str
    module: str
    function: str
    description: str
    concurrency: int | None = 1
    collision: str = "CANCEL_NEW"

    @property
    def entrypoint(self) -> str:
        """The module path a served or worker run imports (works from any directory where bianmin is installed)."""
        return f"{self.module}.{self.function}"

    @property
    def file_entrypoint(self) -> str:
        """The same as `prefect deploy` (prefect.yaml) writes it: a file path, relative to the working directory."""
        return f"{self.module.replace('.', '/')}.py:{self.function}"


SPECS: tuple[Spec, ...] = (
    Spec("chase-replies", "flows.callbacks", "chase_replies_flow",
         "Phone requests with no reply within the reply time (every 5 minutes)."),
    Spec("chase-callbacks", "flows.callbacks", "chase_callbacks_flow",
         "Overdue callbacks by level, missing rework, rework callbacks, late work orders (hourly)."),
    Spec("dispatch", "flows.dispatch", "dispatch_flow",
         "Deliver pending alerts as one digest per recipient tag (every minute)."),
    Spec("cash-check", "flows.cash", "cash_check_flow",
         "Cash not confirmed by finance by its due time (cut-off + grace, and the next morning)."),
    Spec("monthly-tally", "flows.tally", "monthly_tally_flow",
         "The previous month's draft to the departments on the 1st; their sign-off, then the final to "
         "administration (daily, 08:00)."),
    # no schedule and no limit: started by the checks above, one run per office batch, as many at once as the
    # workers take (flows/fanout.py; only with BIANMIN_FANOUT_BATCH set)
    Spec("office-check", "flows.fanout", "office_check_flow",
         "One batch of offices' part of a fanned-out check (started by chase-replies, chase-callbacks, cash-check).",
         concurrency=None),
)


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


def schedule_slug(flow: str, index: int) -> str:
    """A stable name per schedule: re-applying updates it in place instead of replacing it, so the runs it has
    already scheduled are kept, not deleted and made again (Prefect #17508, #18894)."""
    return f"{flow}-{index + 1}"


def describe(settings: Settings) -> list[str]:
    """One line per deployment, for the serve log."""
    return [f"  {name}/{DEPLOYMENT_NAME}: {' | '.join(crons)} ({settings.timezone})"
            for name, crons in schedules(settings).items()]


def _flows() -> dict:
    from flows.callbacks import chase_callbacks_flow, chase_replies_flow
    from flows.cash import cash_check_flow
    from flows.dispatch import dispatch_flow
    from flows.fanout import office_check_flow
    from flows.tally import monthly_tally_flow

    return {"chase-replies": chase_replies_flow, "chase-callbacks": chase_callbacks_flow, "dispatch": dispatch_flow,
            "cash-check": cash_check_flow, "monthly-tally": monthly_tally_flow, "office-check": office_check_flow}


def build_deployments(settings: Settings, *, work_pool: str | None = None) -> list:
    """The RunnerDeployments: every flow on its schedule; `bianmin serve` serves them, `bianmin deploy` applies
    them to `work_pool`."""
    from prefect.client.schemas.objects import ConcurrencyLimitConfig
    from prefect.deployments.runner import EntrypointType
    from prefect.schedules import Cron

    flows, crons = _flows(), schedules(settings)
    out = []
    for spec in SPECS:
        limit = (None if spec.concurrency is None else
                 ConcurrencyLimitConfig(limit=spec.concurrency, collision_strategy=spec.collision))
        # module paths, not file paths: the runs import the installed package wherever serve or the worker started
        out.append(flows[spec.flow].to_deployment(
            name=DEPLOYMENT_NAME,
            description=spec.description,
            schedules=[Cron(expr, timezone=settings.timezone, slug=schedule_slug(spec.flow, i))
                       for i, expr in enumerate(crons.get(spec.flow, []))],
            concurrency_limit=limit,
            entrypoint_type=EntrypointType.MODULE_PATH,
            tags=list(TAGS),
            work_pool_name=work_pool,
        ))
    return out
