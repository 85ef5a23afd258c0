"""The `bianmin` command. Each area's commands live in their own module and register here.

Nothing imported at module level pulls in Prefect: commands that run a flow import it themselves.
"""
from __future__ import annotations

import typer

from flows import cli_alerts, cli_cash, cli_config, cli_desk, cli_import, cli_run, cli_setup, cli_tally
from flows.cli_common import warn_calendar_gaps

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="bianmin 便民: the paid convenience services ledger and its scheduled checks.")
run_app = typer.Typer(no_args_is_help=True, help="Run one flow once, now or as of a given moment.")
app.add_typer(run_app, name="run")

for module in (cli_setup, cli_config, cli_desk, cli_alerts, cli_run, cli_cash, cli_tally, cli_import):
    module.register(app, run_app)


def main() -> None:
    try:
        app()
    finally:
        warn_calendar_gaps()


if __name__ == "__main__":
    main()
