"""Bringing existing ledgers in: the clerks' Excel workbooks and CSV files, row by row, through the desk operations.

One table (`spec.KINDS`) says, per kind of sheet, which columns exist, how clerks head them (Chinese or English),
which are required and how each value is read (`cells`); `limits` refuses a file past what it may hold before any
row is read, and `readers` gives its sheets. Every row is read, checked and then written by the same `models.desk`
operation a clerk at the desk would use (`rows`; registrations and replies: the desk's decision for the row, with
the batch's decisions written together, a few statements per table: `writers`). A refused row changes nothing (the
desk refuses before it writes; a decided row refused half-way drops all its decisions; for the other kinds a row
refused half-way sends its batch back to be written row by row, each row in a savepoint: `batches`) and is
reported with sheet, line, column and a reason (`rejects`). Valid rows are committed in batches (one transaction
each), so a crash leaves whole batches and a rerun finishes the job: natural keys (request, order, handover and
department-report numbers, receipt numbers, staff codes, and an order's callback time) make a row that is already
in the ledger count as "already present", never twice.

On SQLite, a registrations sheet is decided one batch ahead of its writing (`pipeline`: a thread writes batch N
while batch N+1 is read and decided, against the ledger plus batch N); a change is written only to a row that
still holds what its batch saw, so what another writer did meanwhile is decided on again, never written over.

The desk operations of one transaction share a `models.desk.Batch` the import holds (in its row context, `rows`),
never the session. Nothing here reads the clock: the caller passes `now` (used only where a sheet carries no time).
"""
from models.imports.importer import import_ledger
from models.imports.results import ImportRefused, ImportResult, RejectedRow, SheetResult
from models.imports.spec import KINDS, ORDER, REJECTS_HEADER, write_template

__all__ = ["KINDS", "ORDER", "REJECTS_HEADER", "ImportRefused", "ImportResult", "RejectedRow", "SheetResult",
           "import_ledger", "write_template"]
