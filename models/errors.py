"""Domain errors: what a refused operation tells the clerk, in zh_CN and en."""
from __future__ import annotations

from typing import Any

from models import texts


class DomainError(Exception):
    """An operation the procedure forbids; raised before anything is written, so nothing changes.

    `code` names the message in the catalogue `models.texts`; `params` fill it in.
    """

    def __init__(self, code: str, **params: Any) -> None:
        self.code = code
        self.params = params
        super().__init__(self.message("en"))

    def message(self, locale: str) -> str:
        return render(self.code, locale, **self.params)


class NotFound(DomainError):
    """A named office, staff member, request, order or receipt does not exist."""


class _Shown(str):
    """A value already escaped for one line: `{value!r}` quotes it without escaping its backslashes again."""

    def __repr__(self) -> str:
        return f"'{self}'"


def render(code: str, locale: str, **params: Any) -> str:
    """A refusal's message in `locale`, on one line: a value echoed back has its control characters escaped and
    is cut short (a clerk's typo may be 10,000 characters or carry an ANSI escape)."""
    from models.ledger.values import shown  # values raises DomainErrors: imported late

    params = {k: _Shown(shown(v, 200)) if isinstance(v, str) else v for k, v in params.items()}
    return texts.render(code, locale, **params)
