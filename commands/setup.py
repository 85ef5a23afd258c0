"""Setting up: `db upgrade`, and the reference data (offices, communities, staff, price list)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import typer

from commands.common import command_group, console, emit, parse_amount, parse_at, runtime, t
from commands.desk import desk_call
from models import desk
from models.ledger.db import shown_url, transaction, upgrade

db_app = command_group("The ledger database.")
office_app = command_group("Service offices (服务处).")
community_app = command_group("Communities (小区) of an office.")
staff_app = command_group("Staff members.")
prices_app = command_group("The price list.")

JSON = typer.Option(False, "--json", help="One JSON object.")
AT = typer.Option(None, "--at", help="ISO time (local unless an offset is given); default now.")


@db_app.command("upgrade")
def db_upgrade(as_json: bool = JSON) -> None:
    """Create the database or migrate it to the current schema; safe to run again."""
    url = runtime().settings.effective_database_url
    revision = upgrade(url)
    shown = shown_url(url, mask="****")
    from notifications.outbox import fill_common_fields, mask_stored_payloads

    with transaction(runtime().sessions) as session:  # alerts kept by an older version: no unmasked copy
        masked = mask_stored_payloads(session)
        filled = fill_common_fields(session)  # and the common fields the digest reads, so they still render
    emit(as_json, {"database": shown, "revision": revision, "alerts_masked": masked, "alerts_filled": filled},
         lambda: console.print(t("cli.setup.db_current", revision=revision, shown=shown)))


def _setup(as_json: bool, op: Callable[[Any], dict[str, Any]], said: Callable[[dict[str, Any]], str]) -> None:
    data = desk_call(op)
    emit(as_json, data, lambda: console.print(said(data), markup=False, soft_wrap=True))


@office_app.command("add")
def office_add(code: str = typer.Argument(..., help="Office code, e.g. A1."),
               name: str = typer.Option(..., "--name"), at: str | None = AT, as_json: bool = JSON) -> None:
    """Add a service office."""
    when = parse_at(at)
    _setup(as_json, lambda s: {"office": desk.add_office(s, code=code, name=name, at=when).code, "name": name,
                               "state": "added"},
           lambda d: t("cli.setup.office_added", office=d['office']))


@community_app.command("add")
def community_add(code: str = typer.Argument(...), office: str = typer.Option(..., "--office"),
                  name: str = typer.Option(..., "--name"), at: str | None = AT, as_json: bool = JSON) -> None:
    """Add a community managed by an office."""
    when = parse_at(at)
    _setup(as_json, lambda s: {"community": desk.add_community(s, office=office, code=code, name=name, at=when).code,
                               "office": office, "state": "added"},
           lambda d: t("cli.setup.community_added", community=d['community']))


@staff_app.command("add")
def staff_add(code: str = typer.Argument(...), name: str = typer.Option(..., "--name"),
              office: str = typer.Option(..., "--office"),
              dept: str = typer.Option(..., "--dept", help="cs|engineering|cleaning|finance|administration"),
              role: str = typer.Option(..., "--role", help="clerk|supervisor|manager|worker|cashier"),
              at: str | None = AT, as_json: bool = JSON) -> None:
    """Add a staff member to an office's department."""
    when = parse_at(at)
    _setup(as_json, lambda s: {"staff": desk.add_staff(s, code=code, name=name, office=office, department=dept,
                                                       role=role, at=when).code,
                               "office": office, "department": dept, "role": role, "state": "added"},
           lambda d: t("cli.setup.staff_member_added", staff=d['staff'], dept=dept, role=role))


@prices_app.command("set")
def prices_set(code: str = typer.Argument(...),
               category: str = typer.Option(..., "--category", help="plumbing|electrical|cleaning|greening"),
               name: str = typer.Option(..., "--name"), fee: str = typer.Option(..., "--fee"),
               at: str | None = AT, as_json: bool = JSON) -> None:
    """Set (create or change) a price-list item."""
    when, amount = parse_at(at), parse_amount(fee, "--fee")
    _setup(as_json, lambda s: {"price": desk.set_price(s, code=code, category=category, name=name, fee=amount,
                                                       at=when).code,
                               "category": category, "fee": amount, "state": "set"},
           lambda d: t("cli.setup.price", price=d['price'], category=category, fee=d['fee']))


def register(root: typer.Typer, run: typer.Typer) -> None:
    root.add_typer(db_app, name="db")
    root.add_typer(office_app, name="office")
    root.add_typer(community_app, name="community")
    root.add_typer(staff_app, name="staff")
    root.add_typer(prices_app, name="prices")
