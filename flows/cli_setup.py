"""Setting up: `db upgrade`, and the reference data (offices, staff, price list)."""
from __future__ import annotations

import typer

from flows.cli_common import console, emit, runtime, t
from flows.settings import mask_url_password
from models.db import upgrade

db_app = typer.Typer(no_args_is_help=True, help="The ledger database.")


@db_app.command("upgrade")
def db_upgrade(as_json: bool = typer.Option(False, "--json", help="One JSON object.")) -> None:
    """Create the database or migrate it to the current schema; safe to run again."""
    url = runtime().settings.effective_database_url
    revision = upgrade(url)
    shown = mask_url_password(url)
    emit(as_json, {"database": shown, "revision": revision},
         lambda: console.print(t(f"数据库已是最新结构(版本 {revision}):{shown}",
                                 f"Database at schema revision {revision}: {shown}")))


def register(root: typer.Typer, run: typer.Typer) -> None:
    root.add_typer(db_app, name="db")
