"""`bianmin config show` (and `config check`, which loads the apprise config)."""
from __future__ import annotations

import typer
from rich.table import Table

from flows.cli_common import console, emit, runtime, t

config_app = typer.Typer(no_args_is_help=True, help="Show and check the configuration.")


@config_app.command("show")
def show(as_json: bool = typer.Option(False, "--json", help="One JSON object.")) -> None:
    """Print the effective settings, secrets masked."""
    values = runtime().settings.masked()

    def render() -> None:
        table = Table(t("生效配置", "Effective settings"))
        table.add_column(t("值", "value"))
        for key, value in values.items():
            table.add_row(key, str(value))
        console.print(table)

    emit(as_json, values, render)


def register(root: typer.Typer, run: typer.Typer) -> None:
    root.add_typer(config_app, name="config")
