"""The console's words: codes of the one catalogue (models/texts.py, its console part models/texts_console.py),
rendered in the configured locale."""
from __future__ import annotations

from typing import Any

from models import texts
from models.errors import DomainError


class Refused(DomainError):
    """An action the console refuses: a catalogue code and its values (never a secret or a full phone), and the
    HTTP status its page answers with."""

    def __init__(self, code: str, *, status: int = 400, **params: Any) -> None:
        super().__init__(code, **params)
        self.status = status

    @classmethod
    def of(cls, exc: DomainError, *, status: int = 400) -> Refused:
        """A refusal of the desk or of a value check, shown as the console's own."""
        return cls(exc.code, status=status, **exc.params)


def text(locale: str, code: str, **values: Any) -> str:
    """The catalogue's `code` in `locale`; an unknown code shows as itself (tests/unit/test_texts.py)."""
    return texts.render(code, locale, **values)


def text_or(locale: str, code: str, fallback: str) -> str:
    """`code` when the catalogue has it, else `fallback` (a payload key or role bianmin has no words for)."""
    entry = texts.TEXTS.get(code)
    return entry(locale) if entry is not None else fallback
