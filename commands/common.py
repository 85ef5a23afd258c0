"""What every CLI command shares: the runtime, locale, --at parsing, JSON or rich output, exit codes.

Kept free of Prefect so that a clerk's command starts instantly.
"""
from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal
from typing import Any, NoReturn

import typer
from rich.console import Console

from flows.runtime import current_runtime, installed_runtime, set_runtime  # noqa: F401 - set_runtime: for tests
from models import texts
from models.errors import DomainError
from models.ledger import values
from models.ledger.jsonable import to_jsonable

console = Console()
err_console = Console(stderr=True)

# the process's one runtime (flows/runtime.py), shared with the flows a command runs; tests install their own
# with `set_runtime`
runtime = current_runtime


def locale() -> str:
    return runtime().settings.locale


def t(code: str, **values: Any) -> str:
    """The catalogue's text `code` (models/texts.py) in the configured locale, filled from `values`."""
    return texts.render(code, locale(), **values)


def fail(message: str) -> NoReturn:
    """A refused operation or bad argument: one line on stderr, exit code 2, never a traceback."""
    say_error(message)
    raise typer.Exit(code=2)


def say_error(message: str) -> None:
    """One line on stderr: whatever a value echoed in it holds (a line break, an ANSI escape) is shown escaped."""
    err_console.print(values.shown(message, 4000), style="red", markup=False, highlight=False, soft_wrap=True)


def command_group(help: str, **options: Any) -> typer.Typer:
    """A group of commands that, called bare, shows its help and succeeds (typer's `no_args_is_help` raises a
    usage error instead, which `main` would report as a bad argument)."""
    return typer.Typer(help=help, invoke_without_command=True, callback=_help_when_bare, **options)


def _help_when_bare(ctx: typer.Context) -> None:
    if ctx.invoked_subcommand is None and not ctx.resilient_parsing:
        shown = ctx.get_help()  # rich prints it itself and returns nothing
        if shown:
            typer.echo(shown)
        raise typer.Exit()


def refused(error: DomainError) -> NoReturn:
    fail(error.message(locale()))


@contextmanager
def refusals() -> Iterator[None]:
    """Turn domain errors into the one-line exit-2 form in the configured locale."""
    try:
        yield
    except DomainError as exc:
        fail(exc.message(locale()))


def parse_at(value: str | None, *, default_now: bool = True, field: str = "--at") -> datetime | None:
    """An ISO time given on the command line: local time unless it carries an offset; default now.

    Refused: a time outside the years the ledger keeps, or further ahead of now than a booking can be
    (models.ledger.values.moment)."""
    rt = runtime()
    now = datetime.now(rt.calendar.tz)
    if value is None:
        return now if default_now else None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        fail(t("cli.bad_time", value=values.shown(value)))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=rt.calendar.tz)
    try:
        return values.moment(parsed, field=field, now=now)
    except DomainError as exc:
        refused(DomainError(exc.code, **(exc.params | {"value": value.strip()})))  # as typed, not as read


def parse_day(value: str | None, *, field: str = "--day") -> date | None:
    """A day `YYYY-MM-DD` given on the command line, within the same years as any time (parse_at)."""
    if value is None:
        return None
    try:
        day = date.fromisoformat(value.strip())
    except ValueError:
        fail(t("cli.bad_day", value=values.shown(value)))
    tz = runtime().calendar.tz
    try:
        values.moment(datetime(day.year, day.month, day.day, 12, tzinfo=tz), field=field, now=datetime.now(tz))
    except DomainError as exc:
        refused(exc)
    return day


def parse_amount(value: str | None, field: str = "--amount") -> Decimal | None:
    """An amount given on the command line (models.ledger.values.money: digits, at most 2 places, within the column)."""
    if value is None:
        return None
    try:
        return values.money(value, field=field)
    except DomainError as exc:
        refused(exc)


def check_text(value: str | None, field: str, column: object, *, required: bool = True) -> str | None:
    """A text argument the command stores or looks up itself (not through the desk): models.ledger.values.text's rule;
    given but empty is refused unless not `required`."""
    try:
        checked = values.text(value, field=field, column=column)
    except DomainError as exc:
        refused(exc)
    if checked == "" and required:
        refused(DomainError("missing", field=field))
    return checked


def local_text(value: str | datetime | None) -> str:
    """A stored moment (aware datetime or ISO text) as local `YYYY-MM-DD HH:MM`; empty for none."""
    if not value:
        return ""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return runtime().calendar.local(moment).strftime("%Y-%m-%d %H:%M")


def run_flow_once(name: str, load_flow: Callable[[], Any], *, announce: bool = False, **parameters: Any) -> Any:
    """Run one Prefect flow in this process and return its result; a failed run is one line and exit 1.

    Prefect is imported only here (by `load_flow`), after `prepare_for_run` has settled its environment:
    serve's local server when it answers, else a temporary server launched first, so that it starts while
    Prefect and the flow are imported.
    """
    from flows.serve import ServeError, prepare_for_run

    rt = runtime()
    with refusals():  # a ledger that cannot be used refuses the run before Prefect starts (exit 2, one line)
        rt.engine
    target = prepare_for_run(rt.settings)
    if announce:
        err_console.print(t("cli.prefect", where=target.where), style="dim", markup=False,
                          highlight=False)
    flow = load_flow()
    try:
        target.wait_ready()
    except ServeError as exc:  # no Prefect server to record the run in: the run cannot happen
        err_console.print(t("cli.could_not_run", name=name, error=exc), style="red", markup=False,
                          highlight=False, soft_wrap=True)
        raise typer.Exit(code=1) from None
    from prefect.context import SettingsContext, get_settings_context

    # heartbeats let a server mark a long run whose process died as crashed; a one-off run lasts seconds, and
    # ending the heartbeat thread would add up to a second to each. A copy of the settings, not
    # temporary_settings(), which re-reads every setting source
    ctx = get_settings_context()
    quiet = ctx.settings.model_copy(
        update={"flows": ctx.settings.flows.model_copy(update={"heartbeat_frequency": None})})
    with SettingsContext(profile=ctx.profile, settings=quiet):
        state = flow(**parameters, return_state=True)
    if not state.is_completed():
        err_console.print(t("cli.run_failed", name=name, message=state.message),
                          style="red", markup=False, highlight=False)
        raise typer.Exit(code=1)
    return state.result()


def emit(as_json: bool, data: Any, render: Callable[[], None]) -> None:
    """Print one JSON object (for scripts) or the rich rendering (for people)."""
    if as_json:
        sys.stdout.write(json.dumps(to_jsonable(data), ensure_ascii=False) + "\n")
    else:
        render()


def warn_calendar_gaps() -> None:
    """Say loudly, once per command, which years' make-up working days the calendar lacks."""
    rt = installed_runtime()
    if rt is None:
        return
    for message in rt.calendar_warnings():
        err_console.print(message, style="bold yellow", markup=False, highlight=False, soft_wrap=True)
