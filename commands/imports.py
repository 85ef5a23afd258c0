"""`bianmin import` (existing Excel/CSV ledgers in) and `bianmin demo` (a realistic month, every flow, one command).

`import` runs no flow and must start instantly: nothing here imports Prefect at module level; `demo` imports
commands.demo (which runs the flows' logic functions) inside its command.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from commands.common import console, emit, fail, locale, refusals, runtime, t, to_jsonable

REJECTS_SHOWN = 40


def register(root: typer.Typer, run: typer.Typer) -> None:
    """Add `import` and `demo` to the root app."""

    @root.command("import")
    def import_cmd(
        file: Path = typer.Argument(None, help="The .xlsx workbook (one sheet per kind) or .csv file (one kind)."),
        template: Path = typer.Option(None, "--template", help="Write the import template workbook to this path."),
        office: str = typer.Option(None, "--office", help="Office code for rows without an office column."),
        kind: str = typer.Option(None, "--kind", help="Kind of a CSV file: requests, orders, receipts, handovers, "
                                                     "callbacks, department_reports, staff (default: from the name)."),
        dry_run: bool = typer.Option(False, "--dry-run", help="Check every row and report; write nothing."),
        batch_size: int = typer.Option(1000, "--batch-size", min=1, max=100_000, help="Rows per transaction."),
        as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    ) -> None:
        """Bring an existing ledger in: every row checked by the desk's rules, rejects written next to the file.

        Exit code 0 when every row was taken (or already present), 1 when some rows were rejected,
        2 when the file as a whole was refused (nothing written).
        """
        from models.imports import import_ledger, write_template

        if template is not None:
            path = write_template(template)
            emit(as_json, {"template": str(path)},
                 lambda: console.print(t("cli.imports.template_written", path=path)))
            return
        if file is None:
            fail(t("cli.imports.file_needed"))
        # --office is checked by the import against the office-code pattern, stricter than any text rule
        rt = runtime()
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=console, transient=True, disable=as_json) as progress:
            task = None

            def on_start(sheet: str, total: int | None) -> None:
                nonlocal task
                if task is not None:
                    progress.update(task, visible=False)
                task = progress.add_task(sheet, total=total)

            def on_row() -> None:
                progress.advance(task)

            with refusals():
                result = import_ledger(rt.sessions, file, calendar=rt.calendar, now=datetime.now(rt.calendar.tz),
                                       office=office, kind=kind, dry_run=dry_run, batch_size=batch_size,
                                       callback_workdays=rt.settings.callback_workdays,
                                       rework_within=timedelta(hours=rt.settings.rework_due_hours),
                                       on_start=on_start, on_row=on_row)
        loc = locale()
        data = {
            "file": str(result.file), "dry_run": result.dry_run, "rows": result.rows, "kept": result.kept,
            "already_present": result.present, "rejected": result.rejected,
            "rejects_file": str(result.rejects_file) if result.rejects_file else None,
            "ignored_sheets": list(result.ignored_sheets),
            "sheets": [s.__dict__ for s in result.sheets],
            "rejects": [{"sheet": r.sheet, "line": r.line, "column": r.column, "code": r.code,
                         "reason": r.reason(loc)} for r in result.rejects],
        }
        emit(as_json, data, lambda: _render_import(result, loc))
        if result.rejected:
            raise typer.Exit(code=1)

    @root.command("demo")
    def demo_cmd(
        month: str = typer.Option("2026-10", "--month", help="The month to build, YYYY-MM."),
        offices: int = typer.Option(2, "--offices", min=1, max=20, help="How many service offices."),
        seed: int = typer.Option(7, "--seed", help="The same seed builds the same month."),
        orders: int = typer.Option(None, "--orders", min=10, max=10_000, help="Work orders per office (default ~150)."),
        as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    ) -> None:
        """Build a realistic month with known problems planted, run every check once as of its end, and the tally."""
        from commands.demo import render_demo, run_demo

        rt = runtime()
        with refusals():
            result = run_demo(rt, month=month, offices=offices, seed=seed, orders_per_office=orders)
        data = {**to_jsonable(result), "all_found": result.all_found, "figures_match": result.figures_match}
        emit(as_json, data, lambda: render_demo(result, console, locale()))
        if not result.all_found:
            raise typer.Exit(code=1)


def _render_import(result, loc: str) -> None:
    title = t("cli.imports.title", file=result.file.name) + (t("cli.imports.dry_run") if result.dry_run else "")
    table = Table(title=title)
    for head in ("sheet", "kind", "rows", "kept", "present", "rejected"):
        table.add_column(t(f"cli.imports.{head}"), justify="left" if head in ("sheet", "kind") else "right")
    for s in result.sheets:
        table.add_row(s.sheet, s.kind, str(s.rows), str(s.added), str(s.present), str(s.rejected))
    table.add_row("", "", str(result.rows), str(result.kept), str(result.present), str(result.rejected),
                  style="bold")
    console.print(table)
    if result.ignored_sheets:
        console.print(t("cli.imports.ignored_sheets")
                      + ", ".join(result.ignored_sheets))
    for r in result.rejects[:REJECTS_SHOWN]:
        console.print(f"  {r.where(loc)}: {r.reason(loc)}", markup=False, highlight=False)
    if result.rejected > REJECTS_SHOWN:
        console.print(t("cli.imports.more_rejects", count=result.rejected - REJECTS_SHOWN))
    if result.rejects_file:
        console.print(t("cli.imports.rejects_file", path=result.rejects_file),
                      markup=False, highlight=False)
