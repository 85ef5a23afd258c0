"""The `bianmin` command. Each area's commands live in their own module and register here.

Nothing imported at module level pulls in Prefect: commands that run a flow import it themselves.
"""
from __future__ import annotations

import gc
import sys

# A command is a short process that builds ~80k long-lived objects while importing (SQLAlchemy, typer, rich;
# twice that with Prefect): the cyclic collector, run over and over meanwhile, finds nothing to free.
_gc_was_enabled = gc.isenabled()
gc.disable()

import typer
# typer 0.29 vendors click; its exceptions are what the parser raises
from typer._click import exceptions as click_errors

from flows import cli_alerts, cli_cash, cli_config, cli_desk, cli_import, cli_run, cli_setup, cli_tally
from flows.cli_common import err_console, locale, t, warn_calendar_gaps
from models.errors import DomainError

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="bianmin 便民: the paid convenience services ledger and its scheduled checks.")
run_app = typer.Typer(no_args_is_help=True, help="Run one flow once, now or as of a given moment.")
app.add_typer(run_app, name="run")

for module in (cli_setup, cli_config, cli_desk, cli_alerts, cli_run, cli_cash, cli_tally, cli_import):
    module.register(app, run_app)

if _gc_was_enabled:
    gc.enable()


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; a bad argument is one line on stderr and exit code 2, like a refused operation."""
    try:
        code = app(args=argv, prog_name="bianmin", standalone_mode=False)
    except DomainError as exc:  # a refusal no command caught itself, e.g. a ledger that cannot be used
        err_console.print(exc.message(locale()), style="red", markup=False, highlight=False, soft_wrap=True)
        code = 2
    except click_errors.NoArgsIsHelpError:
        code = 0  # the help is already on screen
    except click_errors.UsageError as exc:
        # click would draw a multi-line box; scripts and clerks get one line naming the problem
        where = f"bianmin {exc.ctx.command_path.partition(' ')[2]}".strip() if exc.ctx else "bianmin"
        err_console.print(t(f"{where}:参数错误:{exc.format_message()}(--help 查看用法)",
                            f"{where}: {exc.format_message()} (see --help)"),
                          style="red", markup=False, highlight=False, soft_wrap=True)
        code = 2
    except click_errors.Abort:
        err_console.print(t("已取消", "Aborted"), style="red")
        code = 1
    except click_errors.ClickException as exc:
        err_console.print(exc.format_message(), style="red", markup=False, highlight=False, soft_wrap=True)
        code = exc.exit_code
    finally:
        warn_calendar_gaps()
    code = code if isinstance(code, int) else 0
    # the command is done: the interpreter's last collections would walk every object only to find them all
    # reachable (~0.5 s once Prefect is loaded); exit handlers (Prefect's flushes, stopping a temporary server)
    # still run
    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":
    main()
