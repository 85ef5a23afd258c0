"""Domain errors: what a refused operation tells the clerk, in zh_CN and en."""
from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """An operation the procedure forbids; raised before anything is written, so nothing changes.

    `code` names the message in `models.messages`; `params` fill it in.
    """

    def __init__(self, code: str, **params: Any) -> None:
        self.code = code
        self.params = params
        super().__init__(self.message("en"))

    def message(self, locale: str) -> str:
        from models.messages import render

        return render(self.code, locale, **self.params)


class NotFound(DomainError):
    """A named office, staff member, request, order or receipt does not exist."""
