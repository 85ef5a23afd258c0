"""`bianmin run cash-check --day D [--as-of T] [--office O] [--json]`: replay or run the end-of-day cash check.

Prefect (and flows.cash, which imports it) is imported inside the command only.
"""
from __future__ import annotations

from typing import Any, Optional

import typer
from rich.table import Table

from commands.common import (check_text, console, emit, local_text, locale, parse_at, parse_day, run_flow_once, t,
                               to_jsonable)
from models import findings as catalogue
from models.ledger.tables import DEPARTMENT_NAMES, Office
from notifications.masking import mask_phone


def cash_data(result: Any) -> dict[str, Any]:
    """The result as plain values, residents' phone numbers masked."""
    data = to_jsonable(result)
    for finding in data.get("findings", []):
        facts = finding.get("facts") or {}
        if facts.get("phone"):
            facts["phone"] = mask_phone(facts["phone"])
    return data


_KIND_NAMES = {k.name: k.count_label for k in catalogue.CASH_KINDS if k.count_label}


def _what(finding: dict[str, Any]) -> str:
    facts = finding["facts"]
    kind = finding["kind"]
    if kind == catalogue.FEE_NOT_COLLECTED.name:
        return f"{finding.get('subject')} {facts.get('resident', '')} {facts.get('phone', '')}"
    if kind in (catalogue.CASH_SHORTFALL.name, catalogue.CASH_OVERCOUNT.name):
        return t("cli.cash.handover", handover=facts['handover'], covered=facts['covered'], counted=facts['counted'])
    receipts = facts.get("receipts") or []
    shown = ", ".join(receipts[:6]) + (" …" if len(receipts) > 6 else "")
    orders = facts.get("orders") or []
    return shown + (f" ({', '.join(orders[:3])}{' …' if len(orders) > 3 else ''})" if orders else "")


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _render(data: dict[str, Any]) -> None:
    day, when = data["day"], local_text(data["as_of"])
    if data["skipped"]:
        console.print(t("cli.cash.day_off", day=day))
        return
    findings = Table(title=t("cli.cash.title", day=day, when=when))
    for header in (t("cli.cash.finding"), t("cli.office"), t("cli.cash.holder"), t("cli.cash.receipts_orders"),
                   t("cli.cash.amount"), t("cli.due"), t("cli.overdue_min")):
        findings.add_column(header)
    for f in data["findings"]:
        name = _KIND_NAMES.get(f["kind"])
        findings.add_row(name(locale()) if name else f["kind"], f["office"] or "", f.get("holder") or "", _what(f),
                         _text(f.get("amount")), local_text(f.get("due_at")), _text(f.get("overdue_minutes")))
    if data["findings"]:
        console.print(findings)
    else:
        console.print(t("cli.cash.nothing_found", day=day, when=when))

    people = Table(title=t("cli.cash.money_by_collector", day=day))
    for header in (t("cli.office"), t("cli.cash.collector"), t("cli.cash.department"), t("cli.cash.cash"),
                   t("cli.cash.electronic"), t("cli.cash.handed_over"), t("cli.cash.outstanding")):
        people.add_column(header, justify="right" if header not in (t("cli.office"), t("cli.cash.collector"),
                                                                     t("cli.cash.department")) else "left")
    for c in data["collectors"]:
        department = DEPARTMENT_NAMES.get(c["department"])
        people.add_row(c["office"], f"{c['name']} ({c['collector']})",
                       department(locale()) if department else c["department"], c["cash"], c["electronic"],
                       c["handed_over"], c["outstanding"])
    for o in data["offices"]:
        people.add_row(o["office"], t("cli.cash.total", collectors=o['collectors']), "", o["cash"],
                       o["electronic"], o["handed_over"], o["outstanding"], style="bold")
    if data["collectors"]:
        console.print(people)
    if not data["recorded"]:
        console.print(t("cli.cash.replay"))
        return
    console.print(t("cli.alerts_summary", new=data['new'], seen_again=data['seen_again'], resolved=data['resolved']))


def register(root: typer.Typer, run: typer.Typer) -> None:
    """Add `run cash-check` to the `run` group."""

    @run.command("cash-check")
    def cash_check(
        day: Optional[str] = typer.Option(None, "--day", help="The working day to check (YYYY-MM-DD); "
                                          "default: the check due now (this evening's, or this morning's "
                                          "look at the previous working day)."),
        as_of: Optional[str] = typer.Option(None, "--as-of", help="Judge as of this moment instead of the "
                                            "day's cut-off + grace (ISO, local time unless an offset is given)."),
        office: Optional[str] = typer.Option(None, "--office", help="Only this office (code)."),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    ) -> None:
        """End-of-day cash check: cash not handed over, shortfalls, receipt custody, fees not collected."""
        the_day = parse_day(day)
        moment = parse_at(as_of, default_now=False, field="--as-of")
        office = check_text(office, "--office", Office.code)
        def load():
            from flows.cash import cash_check_flow
            return cash_check_flow

        result = run_flow_once("cash-check", load, day=the_day, as_of=moment, office=office)
        data = cash_data(result)
        emit(as_json, data, lambda: _render(data))
