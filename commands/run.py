"""`bianmin run chase-replies|chase-callbacks|dispatch` and `bianmin serve`.

Prefect is imported inside the commands, after its environment is settled (flows.serve).
"""
from __future__ import annotations

import logging
from typing import Any

import typer
from rich.table import Table

from commands.common import (console, emit, err_console, fail, local_text, parse_at, run_flow_once, runtime, t,
                               to_jsonable)
from notifications.masking import mask_phone
from notifications.outbox import route_tags

def _load_flow(name: str):
    if name == "chase-replies":
        from flows.callbacks import chase_replies_flow as flow
    elif name == "chase-callbacks":
        from flows.callbacks import chase_callbacks_flow as flow
    else:
        from flows.dispatch import dispatch_flow as flow
    return flow


def _chase_data(result: Any) -> dict[str, Any]:
    routes = runtime().settings.alert_routes
    findings = []
    for f in result.findings:
        facts = dict(f.facts)
        facts["phone"] = mask_phone(facts.get("phone"))
        findings.append({"key": f.key, "kind": f.kind, "level": f.level, "office": f.office,
                         "order_number": f.order_number, "department": f.department, "subject": f.subject,
                         "holder": f.holder, "due_at": f.due_at, "overdue_minutes": f.overdue_minutes,
                         "tag": ",".join(route_tags(routes, kind=f.kind, level=f.level, department=f.department)),
                         "facts": facts})
    return {"flow": result.flow, "as_of": result.as_of, "judged_at": result.judged_at, "findings": findings,
            "new": result.new, "seen_again": result.seen_again, "resolved": result.resolved,
            "recorded": result.recorded}


def _render_chase(data: dict[str, Any]) -> None:
    table = Table(title=t("cli.run.title", flow=data["flow"], as_of=local_text(data["as_of"]),
                          judged_at=local_text(data["judged_at"])))
    for header in (t("cli.kind"), t("cli.run.level"), t("cli.run.order_request"), t("cli.office"),
                   t("cli.run.address"), t("cli.run.resident"), t("cli.run.phone"), t("cli.due"),
                   t("cli.overdue_min"), t("cli.run.holder"), t("cli.run.to")):
        table.add_column(header)
    for f in data["findings"]:
        facts = f["facts"]
        table.add_row(f["kind"], str(f["level"]), f["subject"] or "",
                      f["office"] or "", " ".join(x for x in (facts.get("community"), facts.get("address")) if x),
                      facts.get("resident", ""), facts.get("phone", ""), local_text(f["due_at"]),
                      "" if f["overdue_minutes"] is None else str(f["overdue_minutes"]), f["holder"] or "", f["tag"])
    console.print(table)
    if not data["recorded"]:
        console.print(t("cli.run.replay"))
        return
    console.print(t("cli.alerts_summary", new=data['new'], seen_again=data['seen_again'], resolved=data['resolved']))


def _render_fields(name: str, data: dict[str, Any]) -> None:
    table = Table(title=name)
    table.add_column(t("cli.run.field"))
    table.add_column(t("cli.run.value"))
    for key, value in data.items():
        table.add_row(key, str(value))
    console.print(table)


def run_and_print(name: str, as_of: str | None, as_json: bool) -> None:
    """Run one flow now (or as of a moment) through Prefect and print what it found; exit 1 when it failed."""
    result = run_flow_once(name, lambda: _load_flow(name), announce=True, as_of=parse_at(as_of, field="--as-of"))
    if hasattr(result, "findings") and hasattr(result, "judged_at"):
        data = _chase_data(result)
        emit(as_json, data, lambda: _render_chase(data))
    else:
        data = to_jsonable(result) if result is not None else {}
        data = data if isinstance(data, dict) else {"result": data}
        emit(as_json, data, lambda: _render_fields(name, data))
    if name == "dispatch":
        _dispatch_verdict(data, as_json)


def _dispatch_verdict(data: dict[str, Any], as_json: bool) -> None:
    """A dispatch whose digests did not all go out says so and exits 1 (they stay pending and are retried)."""
    sent, failed = int(data.get("messages_sent") or 0), int(data.get("messages_failed") or 0)
    line = t("cli.run.digests_sent", sent=sent, failed=failed)
    if not failed:
        if not as_json:
            console.print(line, markup=False, highlight=False)
        return
    tags = ", ".join(sorted(data.get("errors") or {}))
    err_console.print(line + (t("cli.run.tags_suffix", tags=tags) if tags else ""), style="red", markup=False,
                      highlight=False, soft_wrap=True)
    raise typer.Exit(code=1)


def register(root: typer.Typer, run: typer.Typer) -> None:
    """Add this module's commands to the root app and the `run` group."""
    as_of_option = typer.Option(None, "--as-of", help="ISO time (local unless it has an offset); default now.")
    json_option = typer.Option(False, "--json", help="Print JSON instead of a table.")

    @run.command("chase-replies")
    def chase_replies(as_of: str | None = as_of_option, as_json: bool = json_option) -> None:
        """Phone requests with no reply within the reply time."""
        run_and_print("chase-replies", as_of, as_json)

    @run.command("chase-callbacks")
    def chase_callbacks(as_of: str | None = as_of_option, as_json: bool = json_option) -> None:
        """Overdue callbacks by level, missing rework, rework callbacks, late work orders."""
        run_and_print("chase-callbacks", as_of, as_json)

    @run.command("dispatch")
    def dispatch(as_of: str | None = as_of_option, as_json: bool = json_option) -> None:
        """Deliver pending alerts as digests, one per recipient tag; exit 1 when a digest could not be sent."""
        run_and_print("dispatch", as_of, as_json)

    @root.command("serve")
    def serve() -> None:
        """Run every flow on its schedule until stopped (Ctrl-C or SIGTERM)."""
        from flows.serve import ServeError, serve_all

        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        for noisy in ("httpx", "alembic"):  # every poll and migration step is not news
            logging.getLogger(noisy).setLevel(logging.WARNING)
        try:
            serve_all(runtime().settings,
                      say=lambda line: console.print(line, markup=False, highlight=False, soft_wrap=True))
        except ServeError as exc:
            fail(str(exc))
