"""`import_ledger`: one file into the ledger, sheet by sheet in dependency order, batch by batch."""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from models import desk
from models.calendar import BusinessCalendar
from models.imports.batches import _no_counts, _unit_of_work, _write_batch
from models.imports.cells import _text
from models.imports.pipeline import _can_overlap, _Pipeline
from models.imports.readers import open_sheets
from models.imports.rejects import RejectedRow, write_rejects
from models.imports.results import ImportRefused, ImportResult, SheetResult
from models.imports.rows import _Context
from models.ledger.codes import OFFICE_CODE_PATTERN, is_office_code

def import_ledger(sessions: sessionmaker[Session], path: Path | str, *, calendar: BusinessCalendar, now: datetime,
                  office: str | None = None, kind: str | None = None, dry_run: bool = False,
                  batch_size: int = 1000, callback_workdays: int = 2,
                  rework_within: timedelta = desk.DEFAULT_REWORK_WITHIN,
                  on_start: Callable[[str, int | None], None] | None = None,
                  on_row: Callable[[], None] | None = None, overlap: bool = True) -> ImportResult:
    """Import one workbook or CSV file into the ledger through the desk operations; see the module docstring.

    Each batch of `batch_size` rows is one transaction; a dry run does everything in one transaction and rolls
    it back. Raises ImportRefused (nothing written) when the file as a whole cannot be taken. `overlap`: on SQLite,
    registrations are decided while the batch before them is written (`_Pipeline`); False writes each batch
    before deciding the next (the same rows, counts and rejects).
    """
    path = Path(path)
    sheets, ignored = open_sheets(path, kind)
    ctx = _Context(calendar=calendar, now=now, office=office, callback_workdays=callback_workdays,
                   rework_within=rework_within)
    results: list[SheetResult] = []
    rejects: list[RejectedRow] = []
    headers_of: dict[str, list[Any]] = {}
    with _unit_of_work(sessions, dry_run) as batch:
        with batch() as s:
            ctx.load(s)
            if office is not None and office not in ctx.offices:
                if not is_office_code(office):
                    raise ImportRefused("import_bad_office", value=office, pattern=OFFICE_CODE_PATTERN)
                raise ImportRefused("import_unknown_office", value=office)
            if office is not None and not is_office_code(ctx.offices[office]):
                raise ImportRefused("bad_office_code", value=ctx.offices[office], pattern=OFFICE_CODE_PATTERN)
        for sheet in sheets:
            headers_of[sheet.name] = sheet.headers
            if on_start:
                on_start(sheet.name, sheet.total)
            counts = _no_counts()
            pipeline = (_Pipeline(sessions, batch, ctx, sheet, counts, rejects)
                        if overlap and not dry_run and _can_overlap(sessions, sheet) else None)
            send = pipeline.put if pipeline else partial(_write_batch, batch, ctx, sheet, counts=counts,
                                                         rejects=rejects)
            try:
                pending: list[tuple[int, tuple]] = []
                for line, cells in sheet.rows():
                    if on_row:
                        on_row()
                    if all(_text(c) == "" for c in cells):
                        continue
                    pending.append((line, cells))
                    if len(pending) >= batch_size:
                        send(pending)
                        pending = []
                if pending:
                    send(pending)
                if pipeline:
                    pipeline.finish()
            finally:
                if pipeline:
                    pipeline.close()
            results.append(SheetResult(sheet.name, sheet.kind.name, **counts))
    rejects_file = None
    if rejects and not dry_run:
        rejects_file = write_rejects(path, rejects, headers_of)
    return ImportResult(path, dry_run, tuple(results), tuple(rejects), rejects_file, tuple(ignored))
