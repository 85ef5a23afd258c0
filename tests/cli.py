"""The `bianmin` command in-process, against the test's database: `office_cli` sets up office A1 and yields
`invoke(*args)`, which runs the command with typer's CliRunner under a runtime built from the test's settings."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from typer.testing import CliRunner

from commands.cli import app
from commands.common import set_runtime
from flows.runtime import Runtime
from models.ledger.db import transaction
from tests.builders import setup_office


@contextmanager
def office_cli(settings, engine, **changes) -> Iterator[Callable[..., object]]:
    """Office A1 set up, then the CLI under settings with `changes` (e.g. locale="en")."""
    with transaction(engine) as s:
        setup_office(s, "A1")
    rt = Runtime(settings.model_copy(update=changes))
    set_runtime(rt)
    runner = CliRunner()
    try:
        yield lambda *args: runner.invoke(app, [str(a) for a in args])
    finally:
        set_runtime(None)
        rt.close()
