"""`bianmin alerts list|ack|silence`: what the outbox holds and the operator's say over it. No Prefect here."""
from __future__ import annotations

from typing import Any

import typer
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from commands.common import (check_text, command_group, console, emit, fail, local_text, locale, parse_at,
                               runtime, t, to_jsonable)
from models import texts
from models.ledger import values
from models.ledger.db import transaction, unusable
from models.ledger.tables import Alert, AlertSilence
from notifications import outbox

alerts_app = command_group("The alert outbox: list, acknowledge, silence.")


def _db_error(exc: SQLAlchemyError) -> None:
    fail(unusable(exc, runtime().settings.effective_database_url).message(locale()))


@alerts_app.command("list")
def list_cmd(open_only: bool = typer.Option(False, "--open", help="Only alerts not resolved."),
             as_json: bool = typer.Option(False, "--json", help="A JSON list of alerts."),
             at: str | None = typer.Option(None, "--at", help="Judge silences as of this time; default now."),
             limit: int = typer.Option(1000, "--limit", min=1, max=100_000)) -> None:
    """List outbox alerts, newest first: key, kind, level, tag, office, order, status, attempts."""
    rt = runtime()
    as_of = parse_at(at)
    try:
        with rt.sessions() as s:
            views = outbox.list_alerts(s, as_of=as_of, open_only=open_only, limit=limit)
    except SQLAlchemyError as exc:
        _db_error(exc)
    data: list[dict[str, Any]] = [to_jsonable(v) for v in views]

    def render() -> None:
        # the columns an operator acts on; order, kind and errors are in --json
        table = Table(title=t("cli.alerts.alerts", count=len(views)))
        for header in (t("cli.alerts.key"), t("cli.alerts.lv"), t("cli.alerts.tag"), t("cli.office"),
                       t("cli.status"), t("cli.alerts.tries"), t("cli.alerts.last_seen")):
            # the key is what `alerts ack` takes: keep it on one line so it can be copied
            table.add_column(header, no_wrap=header == t("cli.alerts.key"), overflow="fold")
        for v in views:
            last_seen = runtime().calendar.local(v.last_seen).strftime("%m-%d %H:%M")
            table.add_row(v.key, str(v.level), v.tag, v.office or "", _status(v.status), str(v.attempts), last_seen)
        console.print(table)

    emit(as_json, data, render)


def _status(status: str) -> str:
    return t(f"cli.alerts.status.{status}") if f"cli.alerts.status.{status}" in texts.TEXTS else status


@alerts_app.command("ack")
def ack_cmd(key: str = typer.Argument(..., help="An alert key (as listed), or an alert key with @tag."),
            by: str = typer.Option(..., "--by", help="Who takes it."),
            at: str | None = typer.Option(None, "--at", help="ISO time; default now."),
            as_json: bool = typer.Option(False, "--json")) -> None:
    """Acknowledge an alert: no more reminders until its level changes."""
    rt = runtime()
    moment = parse_at(at)
    by = check_text(by, "--by", Alert.acked_by)
    try:
        with transaction(rt.sessions) as s:
            count = outbox.ack(s, key=key, by=by, at=moment)
    except SQLAlchemyError as exc:
        _db_error(exc)
    if not count:
        fail(t("cli.alerts.no_open_alert", key=values.shown(key)))
    emit(as_json, {"key": key, "acked": count, "by": by, "at": moment},
         lambda: console.print(t("cli.alerts.acknowledged", key=key, count=count, by=by),
                               markup=False, highlight=False))


@alerts_app.command("silence")
def silence_cmd(kind: str = typer.Option(..., "--kind", help="Alert kind, e.g. callback-overdue."),
                office: str | None = typer.Option(None, "--office", help="Only this office (default: all)."),
                until: str = typer.Option(..., "--until", help="ISO time the silence ends."),
                by: str = typer.Option(..., "--by"),
                reason: str = typer.Option(..., "--reason"),
                start: str | None = typer.Option(None, "--from", help="ISO time it starts; default now."),
                as_json: bool = typer.Option(False, "--json")) -> None:
    """Hold back delivery of one kind of alert (in one office) until a time; recorded with who and why."""
    rt = runtime()
    starts_at = parse_at(start, field="--from")
    ends = parse_at(until, field="--until")
    if ends <= starts_at:
        fail(t("cli.alerts.silence_ends_first"))
    if not reason.strip():
        fail(t("cli.alerts.silence_reason_needed"))
    kind, by = check_text(kind, "--kind", AlertSilence.kind), check_text(by, "--by", AlertSilence.created_by)
    office = check_text(office, "--office", AlertSilence.office)
    reason = check_text(reason, "--reason", AlertSilence.reason)
    try:
        with transaction(rt.sessions) as s:
            row = outbox.silence(s, kind=kind, office=office, starts_at=starts_at, until=ends, by=by,
                                 reason=reason.strip())
            row_id = row.id
    except SQLAlchemyError as exc:
        _db_error(exc)
    where = office or t("cli.alerts.all_offices")
    emit(as_json, {"id": row_id, "kind": kind, "office": office, "from": starts_at, "until": ends, "by": by,
                   "reason": reason},
         lambda: console.print(t("cli.alerts.silenced", kind=kind, where=where, ends=local_text(ends), by=by,
                                  reason=reason),
                               markup=False, highlight=False))


@alerts_app.command("silences")
def silences_cmd(as_json: bool = typer.Option(False, "--json"),
                 at: str | None = typer.Option(None, "--at", help="ISO time; default now.")) -> None:
    """Silences in force now."""
    rt = runtime()
    as_of = parse_at(at)
    with rt.sessions() as s:
        rows = [{"id": r.id, "kind": r.kind, "office": r.office, "from": r.starts_at, "until": r.until,
                 "by": r.created_by, "reason": r.reason} for r in outbox.active_silences(s, as_of=as_of)]

    def render() -> None:
        table = Table(title=t("cli.alerts.active_silences"))
        for header in ("id", t("cli.kind"), t("cli.office"), t("cli.alerts.until"), t("cli.alerts.by"),
                       t("cli.alerts.reason")):
            table.add_column(header)
        for r in rows:
            table.add_row(str(r["id"]), r["kind"], r["office"] or "*", local_text(r["until"]), r["by"], r["reason"])
        console.print(table)

    emit(as_json, rows, render)


def register(root: typer.Typer, run: typer.Typer) -> None:
    """Add this module's commands to the root app and the `run` group."""
    root.add_typer(alerts_app, name="alerts")
