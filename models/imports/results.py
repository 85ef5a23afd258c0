"""What an import reports: per sheet counts, the rejected rows, and the refusal of a whole file."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models import texts
from models.errors import DomainError

@dataclass(frozen=True)
class RejectedRow:
    """A row not taken: where it is, which column, and why (render with .reason(locale))."""

    sheet: str
    line: int
    column: str | None
    code: str
    params: dict[str, Any]
    cells: tuple

    def reason(self, locale: str) -> str:
        return DomainError(self.code, **self.params).message(locale)

    def where(self, locale: str) -> str:
        column = f" [{self.column}]" if self.column else ""
        return texts.render("import_where", locale, sheet=self.sheet, line=self.line, column=column)


@dataclass(frozen=True)
class SheetResult:
    """One sheet's (or CSV file's) counts: rows read, added to the ledger, already there, rejected."""

    sheet: str
    kind: str
    rows: int
    added: int
    present: int
    rejected: int


@dataclass(frozen=True)
class ImportResult:
    """What an import did: per sheet counts, every rejected row, and where the rejects file went."""

    file: Path
    dry_run: bool
    sheets: tuple[SheetResult, ...]
    rejects: tuple[RejectedRow, ...]
    rejects_file: Path | None
    ignored_sheets: tuple[str, ...] = ()

    @property
    def rows(self) -> int:
        return sum(s.rows for s in self.sheets)

    @property
    def kept(self) -> int:
        return sum(s.added for s in self.sheets)

    @property
    def present(self) -> int:
        return sum(s.present for s in self.sheets)

    @property
    def rejected(self) -> int:
        return len(self.rejects)


class ImportRefused(DomainError):
    """The file as a whole cannot be imported (unreadable, unknown kind, a required column missing): 0 rows kept."""
