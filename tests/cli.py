"""The `bianmin` command in-process, against the test's database: `office_cli` sets up office A1 and yields
`invoke(*args)`, which runs the command with typer's CliRunner under a runtime built from the test's settings.
`run_in_one_process` runs many commands through the real entry point in one process of their own."""
from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

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


# each case through `commands.cli.main` as the installed `bianmin` calls it, with its own stdout, stderr and exit code
DRIVER = """
import contextlib, io, json, sys, traceback
from commands.cli import main

results = []
for args in json.load(open(sys.argv[1], encoding="utf-8")):
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            main(args)
            code = 0
        except SystemExit as exit:
            code = exit.code
        except BaseException:
            code = "crashed"
            traceback.print_exc()
    results.append({"args": args, "code": code, "stderr": err.getvalue(), "stdout": out.getvalue()})
json.dump(results, open(sys.argv[2], "w", encoding="utf-8"), ensure_ascii=False)
"""


def run_in_one_process(env: dict[str, str], workdir: Path, cases: list[list[str]], *,
                       cwd: Path | None = None) -> list[dict]:
    """Run every case (a command's arguments) through the real entry point in one Python process (a process per
    case is an interpreter start per case); returns {args, code, stderr, stdout} per case. The driver's files go
    in `workdir`; the process runs in `cwd` (default `workdir`) with umask 022, as from a login shell."""
    script, listing, answers = workdir / "driver.py", workdir / "cases.json", workdir / "results.json"
    script.write_text(DRIVER, encoding="utf-8")
    listing.write_text(json.dumps(cases, ensure_ascii=False), encoding="utf-8")
    done = subprocess.run([sys.executable, str(script), str(listing), str(answers)], env=env, cwd=cwd or workdir,
                          capture_output=True, text=True, timeout=600, umask=0o022)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(answers.read_text(encoding="utf-8"))
