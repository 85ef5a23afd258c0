"""`bianmin run monthly-tally [--month YYYY-MM] [--resend] [--json]`: reconcile a month and report it to administration.

Prefect (and flows.tally, which imports it) and models.tally (pandas) are imported inside the command only.
"""
from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Optional

import typer
from rich.table import Table

from commands import signoff
from commands.common import console, emit, parse_at, refusals, run_flow_once, runtime, t, to_jsonable
from models import texts
from models.ledger import values
from models.errors import DomainError

def _render(data: dict[str, Any]) -> None:
    if not data["months"] and not data["reports"]:
        console.print(t("cli.tally.nothing_to_report"))
        return
    table = Table(title=t("cli.tally.monthly_tally"))
    for header in (t("cli.tally.month"), t("cli.office"), t("cli.tally.version"), t("cli.status"),
                   t("cli.tally.sent"), t("cli.tally.findings")):
        table.add_column(header)
    table.add_column(t("cli.tally.file"), overflow="fold")
    for r in data["reports"]:
        status = f"cli.tally.status.{r['status']}"
        if r["sent"]:
            sent = t("cli.yes")
        elif r["send_busy"]:
            sent = t("cli.tally.send_busy")
        elif r["send_error"]:
            sent = t("cli.tally.send_failed")
        else:
            sent = t("cli.tally.sent_before") if r["sent_before"] else t("cli.no")
        table.add_row(r["month"], t("cli.tally.group") if r["office"] == "*" else r["office"], f"v{r['version']}",
                      t(status) if status in texts.TEXTS else r["status"], sent, str(r["findings"]), r["path"])
    console.print(table)
    for o in data.get("signoffs") or []:
        console.print(t("cli.signoff.run", month=o["month"], version=o["version"],
                        state=t(f"cli.signoff.state.{o['state']}"), notices=o["notices"])
                      + (" " + t(f"cli.signoff.final.{o['final']}") if o["final"] else ""))


def register(root: typer.Typer, run: typer.Typer) -> None:
    """Add `run monthly-tally` to the `run` group."""

    @run.command("monthly-tally")
    def monthly_tally(
        month: Optional[str] = typer.Option(None, "--month", help="The month to (re)build, YYYY-MM; default: every "
                                            "month up to the previous one that has no report yet."),
        resend: bool = typer.Option(False, "--resend", help="Send the month: a new version if the figures "
                                    "changed, or the same version again if it was sent before (e.g. the mail was "
                                    "lost). Without it a month already sent is only rebuilt."),
        as_of: Optional[str] = typer.Option(None, "--as-of", help="ISO time the run is judged at (local unless "
                                            "it has an offset); default now: the sign-off's reminders, deadline "
                                            "and final are decided as of it."),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    ) -> None:
        """Reconcile a month across CS, finance, engineering and cleaning: the draft for the departments to sign off,
        or the final to administration when they have (or the deadline passed)."""
        rt = runtime()
        moment = parse_at(as_of, default_now=False, field="--as-of")
        if month is not None:
            from models.tally.rules import reportable_month  # it imports pandas: not on every command's start

            with refusals():
                year = re.match(r"\s*([0-9]+)-", month)
                if year and not values.EARLIEST_YEAR <= int(year[1]) <= values.LATEST_YEAR:
                    raise DomainError("time_out_of_range", field="--month", value=month,
                                      earliest=values.EARLIEST_YEAR, latest=values.LATEST_YEAR)
                month = reportable_month(month, calendar=rt.calendar, as_of=moment or datetime.now(rt.calendar.tz))
        def load():
            from flows.tally import monthly_tally_flow
            return monthly_tally_flow

        result = run_flow_once("monthly-tally", load, month=month, resend=resend, as_of=moment)
        data = to_jsonable(result)
        emit(as_json, data, lambda: _render(data))

    signoff.register(root)
