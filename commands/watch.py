"""`bianmin watch [--json] [--as-of ISO]`: is bianmin itself well? For the machine's cron or a systemd timer.

Exit code 0 when all is well, 1 when something is wrong (or ops could not be told), 2 for a bad argument. The
checks, the thresholds and the state it keeps: docs/watch.md; the logic: flows/watch.py. No Prefect import.
"""
from __future__ import annotations

from typing import Any, Optional

import typer
from rich.table import Table

from commands.common import console, emit, err_console, parse_at, runtime, t


def watch_data(result: Any) -> dict[str, Any]:
    """The watch's state as plain values: each check, the problems, what was sent."""
    return {
        "as_of": result.as_of,
        "ok": result.ok,
        "checks": [{"check": c.check, "name": c.name, "status": c.status, "detail": c.detail, "key": c.key}
                   for c in result.checks],
        "problems": result.problems,
        "sent": {"problems": result.told, "resolved": result.resolved, "failed": result.failed},
        "state_file": str(result.state_file),
    }


def _render(data: dict[str, Any], when: str) -> None:
    table = Table(title=t("cli.watch.title", as_of=when))
    for header in (t("cli.watch.check"), t("cli.watch.state"), t("cli.watch.detail")):
        table.add_column(header, overflow="fold")
    for c in data["checks"]:
        name = c["check"] if c["name"] in ("*", c["check"]) else f"{c['check']} {c['name']}"
        style = {"problem": "red", "skipped": "dim"}.get(c["status"])
        table.add_row(name, t(f"cli.watch.status.{c['status']}"), c["detail"], style=style)
    console.print(table)
    console.print(t("cli.watch.problems", count=len(data["problems"])) if data["problems"] else t("cli.watch.all_well"))
    sent = data["sent"]
    if sent["problems"] or sent["resolved"]:
        console.print(t("cli.watch.sent", problems=len(sent["problems"]), resolved=len(sent["resolved"])))
    if sent["failed"]:
        err_console.print(t("cli.watch.send_failed", keys=", ".join(sent["failed"])), style="red", markup=False,
                          highlight=False)


def register(root: typer.Typer, run: typer.Typer) -> None:
    """Add `watch` to the root group."""

    @root.command("watch")
    def watch(
        as_json: bool = typer.Option(False, "--json", help="Print the state as one JSON object."),
        as_of: Optional[str] = typer.Option(None, "--as-of", help="Judge as of this moment (ISO, local time unless "
                                            "an offset is given; default now)."),
    ) -> None:
        """Check that the flows run on schedule, deliveries go out and Prefect answers; tell ops once per problem."""
        from flows import watch as watching

        moment = parse_at(as_of, field="--as-of")  # default now: an entry layer may read the clock
        result = watching.watch(runtime(), as_of=moment)
        emit(as_json, watch_data(result), lambda: _render(watch_data(result), moment.strftime("%Y-%m-%d %H:%M")))
        raise typer.Exit(code=0 if result.ok else 1)
