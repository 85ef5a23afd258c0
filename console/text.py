"""zh_CN or en, by the configured locale: the console's words live beside the page that uses them."""
from __future__ import annotations


class Refused(Exception):
    """An action the console refuses, with its words in both languages (never a secret or a full phone)."""

    def __init__(self, zh: str, en: str, *, status: int = 400) -> None:
        super().__init__(en)
        self.zh, self.en, self.status = zh, en, status

    def message(self, locale: str) -> str:
        return self.en if locale == "en" else self.zh


def pick(locale: str, zh: str, en: str) -> str:
    return en if locale == "en" else zh
