"""What every CLI command shares: the runtime, locale, --at parsing, JSON or rich output, exit codes.

Kept free of Prefect so that a clerk's command starts instantly.
"""
from __future__ import annotations

import gc
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, NoReturn

import typer
from rich.console import Console

from flows.runtime import Runtime, using_runtime
from flows.settings import Settings
from models.errors import DomainError

console = Console()
err_console = Console(stderr=True)

_runtime: Runtime | None = None


def runtime() -> Runtime:
    """The process's runtime, built from settings on first use."""
    global _runtime
    if _runtime is None:
        _runtime = Runtime(Settings())
    return _runtime


def set_runtime(value: Runtime | None) -> None:
    """Tests hand the CLI a runtime built from their own settings."""
    global _runtime
    _runtime = value


def locale() -> str:
    return runtime().settings.locale


def t(zh: str, en: str) -> str:
    """Text in the configured locale."""
    return en if locale() == "en" else zh


def fail(message: str) -> NoReturn:
    """A refused operation or bad argument: one line on stderr, exit code 2, never a traceback."""
    err_console.print(message, style="red", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(code=2)


@contextmanager
def refusals() -> Iterator[None]:
    """Turn domain errors into the one-line exit-2 form in the configured locale."""
    try:
        yield
    except DomainError as exc:
        fail(exc.message(locale()))


def parse_at(value: str | None, *, default_now: bool = True) -> datetime | None:
    """An ISO time given on the command line: local time unless it carries an offset; default now."""
    rt = runtime()
    if value is None:
        return datetime.now(rt.calendar.tz) if default_now else None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        fail(t(f"时间格式不对:{value!r}(应为 ISO 格式,如 2026-10-03T14:05)",
               f"Malformed time {value!r}: use ISO format, e.g. 2026-10-03T14:05"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=rt.calendar.tz)
    return parsed


def parse_amount(value: str | None) -> Decimal | None:
    if value is None:
        return None
    cleaned = value.strip().replace("¥", "").replace("￥", "").replace("元", "").replace(",", "")
    try:
        amount = Decimal(cleaned)
    except InvalidOperation:
        fail(t(f"金额格式不对:{value!r}", f"Malformed amount {value!r}"))
    if not amount.is_finite():
        fail(t(f"金额格式不对:{value!r}", f"Malformed amount {value!r}"))
    return amount.quantize(Decimal("0.01"))


def local_text(value: str | datetime | None) -> str:
    """A stored moment (aware datetime or ISO text) as local `YYYY-MM-DD HH:MM`; empty for none."""
    if not value:
        return ""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return runtime().calendar.local(moment).strftime("%Y-%m-%d %H:%M")


@contextmanager
def collector_paused() -> Iterator[None]:
    """No cyclic garbage collection inside the block (imports: everything they build is kept)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


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
        err_console.print(t(f"Prefect:{target.where}", f"Prefect: {target.where}"), style="dim", markup=False,
                          highlight=False)
    with collector_paused():  # importing Prefect keeps all it builds (~80k objects): nothing to collect
        flow = load_flow()
    try:
        target.wait_ready()
    except ServeError as exc:  # no Prefect server to record the run in: the run cannot happen
        err_console.print(t(f"{name} 无法运行:{exc}", f"{name} could not run: {exc}"), style="red", markup=False,
                          highlight=False, soft_wrap=True)
        raise typer.Exit(code=1) from None
    from prefect.context import SettingsContext, get_settings_context

    # heartbeats let a server mark a long run whose process died as crashed; a one-off run lasts seconds, and
    # ending the heartbeat thread costs up to a second (it sleeps in 1 s steps) on every run. A copy of the
    # settings, not temporary_settings(): that re-reads every setting source (0.03-0.3 s)
    ctx = get_settings_context()
    quiet = ctx.settings.model_copy(
        update={"flows": ctx.settings.flows.model_copy(update={"heartbeat_frequency": None})})
    with using_runtime(rt), SettingsContext(profile=ctx.profile, settings=quiet):
        state = flow(**parameters, return_state=True)
    if not state.is_completed():
        err_console.print(t(f"{name} 运行失败:{state.message}", f"{name} failed: {state.message}"),
                          style="red", markup=False, highlight=False)
        raise typer.Exit(code=1)
    return state.result()


def to_jsonable(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {k: to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in value]
    if hasattr(value, "__dataclass_fields__"):
        return {k: to_jsonable(getattr(value, k)) for k in value.__dataclass_fields__}
    return value


def emit(as_json: bool, data: Any, render: Callable[[], None]) -> None:
    """Print one JSON object (for scripts) or the rich rendering (for people)."""
    if as_json:
        sys.stdout.write(json.dumps(to_jsonable(data), ensure_ascii=False) + "\n")
    else:
        render()


def warn_calendar_gaps() -> None:
    """Say loudly, once per command, which years' make-up working days the calendar lacks."""
    if _runtime is None:
        return
    for message in _runtime.calendar_warnings():
        err_console.print(message, style="bold yellow", markup=False, highlight=False, soft_wrap=True)
