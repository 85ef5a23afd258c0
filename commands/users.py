"""`bianmin users add|list|disable`: who may log in to the web console. No Prefect here."""
from __future__ import annotations

import sys
from datetime import datetime

import typer
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from commands.common import command_group, console, emit, fail, locale, runtime, t
from console import accounts
from console.text import Refused
from models.ledger.db import transaction, unusable
from models.ledger.tables import USER_ROLES

users_app = command_group("Web console users: add, list, disable.")
JSON = typer.Option(False, "--json", help="One JSON object.")


def _call(op):
    rt = runtime()
    try:
        with transaction(rt.sessions) as s:
            return op(s)
    except Refused as exc:
        fail(exc.message(locale()))
    except SQLAlchemyError as exc:
        fail(unusable(exc, rt.settings.effective_database_url).message(locale()))


def _now() -> datetime:
    return datetime.now(runtime().calendar.tz)


def _row(a: accounts.Account) -> dict:
    return {"login": a.login, "name": a.name, "role": a.role, "offices": list(a.offices), "staff": a.staff_code,
            "active": a.active, "last_login_at": a.last_login_at, "failed_logins": a.failed_logins}


@users_app.command("add")
def add_cmd(login: str = typer.Argument(..., help="What the user types to log in."),
            name: str = typer.Option(..., "--name", help="Shown on every action the user takes."),
            role: str = typer.Option(..., "--role", help=", ".join(USER_ROLES)),
            office: list[str] = typer.Option([], "--office", help="An office the user may see (repeat); none: every office."),
            staff: str | None = typer.Option(None, "--staff", help="Staff code the desk records for this user's "
                                                                   "replies and callbacks (CS roles)."),
            password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from stdin's first line."),
            as_json: bool = JSON) -> None:
    """Add a console user; the password is read from standard input, never from the command line."""
    if not password_stdin:
        fail(t("cli.users.password_stdin"))
    password = sys.stdin.readline().rstrip("\r\n")
    account = _call(lambda s: accounts.add_user(s, login=login, name=name, role=role, offices=office,
                                                password=password, staff=staff, at=_now()))
    where = ", ".join(account.offices) or t("cli.users.every_office")
    emit(as_json, _row(account), lambda: console.print(
        t("cli.users.added", login=account.login, name=account.name, role=account.role, offices=where),
        markup=False, highlight=False))


@users_app.command("list")
def list_cmd(as_json: bool = JSON) -> None:
    """Every console user: login, name, role, offices, active."""
    rows = [_row(a) for a in _call(accounts.list_users)]

    def render() -> None:
        table = Table(title=t("cli.users.title", count=len(rows)))
        for field in ("login", "name", "role", "offices", "staff", "status"):
            table.add_column(t(f"cli.users.{field}"), overflow="fold")
        for r in rows:
            table.add_row(r["login"], r["name"], r["role"], ", ".join(r["offices"]) or "*", r["staff"] or "",
                          t("cli.users.active" if r["active"] else "cli.users.disabled"))
        console.print(table)

    emit(as_json, rows, render)


@users_app.command("disable")
def disable_cmd(login: str = typer.Argument(...), as_json: bool = JSON) -> None:
    """Disable a user: their open sessions end at their next click."""
    account = _call(lambda s: accounts.disable_user(s, login=login, at=_now()))
    emit(as_json, _row(account), lambda: console.print(t("cli.users.was_disabled", login=login),
                                                       markup=False, highlight=False))


def register(root: typer.Typer, run: typer.Typer) -> None:
    root.add_typer(users_app, name="users")
