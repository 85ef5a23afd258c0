"""The `bianmin` command. Each area's commands live in their own module and register here.

Nothing imported at module level pulls in Prefect: commands that run a flow import it themselves.
"""
from __future__ import annotations

import sys

import typer

from commands import alerts, cash, config, deploy, desk, imports, run, setup, tally, users, watch, web
from commands.common import command_group, locale, say_error, t, warn_calendar_gaps
from flows.runtime import keep_files_private
from models.ledger import values
from models.errors import DomainError

app = command_group("bianmin 便民: the paid convenience services ledger and its scheduled checks.",
                    add_completion=False, pretty_exceptions_enable=False)
run_app = command_group("Run one flow once, now or as of a given moment.")
app.add_typer(run_app, name="run")

for module in (setup, config, desk, alerts, run, cash, tally, imports, users, web, watch, deploy):
    module.register(app, run_app)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; a bad argument is one line on stderr and exit code 2, like a refused operation."""
    keep_files_private()
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        code = 2 if _hostile_argument(args) else app(args=args, prog_name="bianmin", standalone_mode=False)
    except DomainError as exc:  # a refusal no command caught itself, e.g. a ledger that cannot be used
        say_error(exc.message(locale()))
        code = 2
    except typer.Abort:
        say_error(t("cli.usage.aborted"))
        code = 1
    except typer.TyperException as exc:
        # the parser's errors (typer's public base of its click exceptions); a usage error carries exit code 2
        # and the context of the command it concerns
        code = getattr(exc, "exit_code", 1)
        ctx = getattr(exc, "ctx", None)
        if code == 2:
            where = f"bianmin {ctx.command_path.partition(' ')[2]}".strip() if ctx is not None else "bianmin"
            say_error(t("cli.usage.bad_argument", where=where, problem=exc.format_message()))
        else:
            say_error(exc.format_message())
    finally:
        warn_calendar_gaps()
    sys.exit(code if isinstance(code, int) else 0)


def _hostile_argument(args: list[str]) -> bool:
    """Refuse, before any command sees it, an argument no field could take: longer than the longest text the
    ledger keeps, or holding a control character (line breaks and tabs aside: a note may have lines)."""
    for index, arg in enumerate(args):
        name = arg.partition("=")[0] if arg.startswith("--") and "=" in arg else \
            args[index - 1] if index and args[index - 1].startswith("-") else t("cli.usage.argument", number=index + 1)
        name = values.shown(name, 40)
        if len(arg) > values.FREE_TEXT_MAX:
            say_error(t("cli.usage.too_long", name=name, length=len(arg), limit=values.FREE_TEXT_MAX))
            return True
        char = values.control_in(arg)
        if char is not None:
            say_error(t("cli.usage.control_character", name=name, char=char))
            return True
    return False


if __name__ == "__main__":
    main()
