"""`bianmin tally status|confirm|dispute`: the departments' sign-off of a month's report (docs/report.md)."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Optional

import typer
from rich.table import Table

from commands.common import check_text, command_group, console, emit, local_text, parse_at, refusals, runtime, t
from models.errors import DomainError
from models.ledger.db import transaction
from models.ledger.tables import SignoffAnswer
from models.signoff import queries
from models.signoff.facts import PARTIES, SignoffStatus
from models.signoff.rules import check_party


def _month(value: str) -> str:
    from models.tally.rules import reportable_month

    rt = runtime()
    with refusals():
        return reportable_month(value, calendar=rt.calendar, as_of=datetime.now(rt.calendar.tz))


def status_data(status: SignoffStatus) -> dict[str, Any]:
    """The status as plain values (the JSON of `tally status --json`)."""
    return {
        "month": status.month, "version": status.version, "state": status.state, "deadline": status.deadline_at,
        "final_version": status.final_version, "final_sent_at": status.final_sent_at,
        "final_marks": status.final_marks,
        "parties": [{"party": p.party, "state": p.state, "version": p.answered_version, "by": p.by_name,
                     "role": p.by_role, "at": p.at, "carried": p.carried, "reset": p.reset} for p in status.parties],
        "disputes": [{"party": d.party, "version": d.version, "by": d.by_name, "at": d.at, "note": d.note,
                      "order": d.order_number, "ended": d.ended, "ended_in": d.ended_in} for d in status.disputes],
    }


def _render(data: dict[str, Any]) -> None:
    console.print(t("cli.signoff.heading", month=data["month"], version=data["version"],
                    state=t(f"cli.signoff.state.{data['state']}"), deadline=local_text(data["deadline"])))
    table = Table()
    for header in ("cli.signoff.party", "cli.status", "cli.tally.version", "cli.signoff.by", "cli.signoff.at"):
        table.add_column(t(header))
    for p in data["parties"]:
        table.add_row(t(f"cli.signoff.party.{p['party']}"), t(f"cli.signoff.party_state.{p['state']}"),
                      f"v{p['version']}" if p["version"] else "", p["by"] or "", local_text(p["at"]))
    console.print(table)
    for d in data["disputes"]:
        console.print(t("cli.signoff.dispute", party=t(f"cli.signoff.party.{d['party']}"), version=d["version"],
                        by=d["by"], note=d["note"], ended=t(f"cli.signoff.ended.{d['ended']}")))


def _answer(month: str, dept: str, by: str, at: Optional[str], answer: str, *, version: int | None = None,
            note: str | None = None, order: str | None = None) -> SignoffStatus:
    rt = runtime()
    month = _month(month)
    when = parse_at(at)
    who = check_text(by, "--by", SignoffAnswer.by_ref)
    note = check_text(note, "--note", SignoffAnswer.note, required=False) if note is not None else None
    order = check_text(order, "--order", SignoffAnswer.order_number) if order is not None else None
    with refusals():
        check_party(dept)
        with transaction(rt.sessions) as s:
            return queries.give_answer(s, month=month, party=dept, who=who, answer=answer, at=when,
                                       recorded_at=datetime.now(rt.calendar.tz), version=version, note=note,
                                       order_number=order)


def register(root: typer.Typer) -> None:
    """Add the `tally` group."""
    app = command_group("The departments' sign-off of a month's report: where it stands, confirm, dispute.")
    root.add_typer(app, name="tally")
    month_option = typer.Option(..., "--month", help="The month reported, YYYY-MM.")
    dept_option = typer.Option(..., "--dept", help="The party answering: " + "|".join(PARTIES) + ".")
    by_option = typer.Option(..., "--by", help="Who answers: a staff code or a console login (the party's manager "
                             "or supervisor).")
    at_option = typer.Option(None, "--at", help="ISO time of the answer; default now.")

    @app.command("status")
    def status(month: str = month_option,
               as_json: bool = typer.Option(False, "--json", help="Print one JSON object.")) -> None:
        """Version, state (awaiting-signoff|sent), each party's state, by whom and when, the disputes."""
        rt = runtime()
        month = _month(month)
        with transaction(rt.sessions) as s:
            found = queries.status(s, month=month)
        if found is None:
            with refusals():
                raise DomainError("signoff_none", month=month)
        data = status_data(found)
        emit(as_json, data, lambda: _render(data))

    @app.command("confirm")
    def confirm(month: str = month_option, dept: str = dept_option, by: str = by_option, at: Optional[str] = at_option,
                version: Optional[int] = typer.Option(None, "--version", help="The version confirmed; refused if it "
                                                      "is no longer the current one. Default: the current one.")
                ) -> None:
        """Confirm the party's view of the current version."""
        done = _answer(month, dept, by, at, "confirm", version=version)
        console.print(t("cli.signoff.confirmed", party=t(f"cli.signoff.party.{dept}"), month=done.month,
                        version=done.version, waiting=len(done.unconfirmed)))

    @app.command("dispute")
    def dispute(month: str = month_option, dept: str = dept_option, by: str = by_option,
                note: str = typer.Option(..., "--note", help="What is wrong."),
                order: Optional[str] = typer.Option(None, "--order", help="The order the dispute is about."),
                at: Optional[str] = at_option) -> None:
        """Dispute the party's view: the ledger is corrected through the desk, and the next run makes a new version."""
        done = _answer(month, dept, by, at, "dispute", note=note, order=order)
        console.print(t("cli.signoff.disputed", party=t(f"cli.signoff.party.{dept}"), month=done.month,
                        version=done.version))
