"""What the monthly report calls things, and where its files may go.

The labels (metrics, words, finding kinds, departments, offices) are shared by the workbook
(notifications.report_workbook), the HTML summary (notifications.report_summary) and the send
(notifications.report_send); an office's folder name is checked here before any path is built from it.
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from models import findings as catalogue
from models import texts
from models.ledger.codes import OFFICE_CODE_PATTERN, is_office_code
from models.tally.facts import GROUP
from models.ledger.tables import DEPARTMENT_NAMES

# -- labels --------------------------------------------------------------------------------------

KIND_LABELS = {k.name: k.report_label for k in catalogue.TALLY_KINDS if k.report_label}

# (key, zh, en, format): the words are the catalogue's "report.metric.<key>"; format is one of int, money, rate
METRICS = tuple((key, *texts.TEXTS[f"report.metric.{key}"], fmt) for key, fmt in (
    ("orders", "int"), ("completed", "int"), ("on_time_rate", "rate"), ("accepted", "int"), ("receipts", "int"),
    ("revenue_cash", "money"), ("revenue_electronic", "money"), ("revenue", "money"), ("average_fee", "money"),
    ("phone_requests", "int"), ("reply_rate", "rate"), ("callbacks_due", "int"), ("callback_on_time_rate", "rate"),
    ("satisfaction_rate", "rate"), ("rework", "int"), ("rework_rate", "rate"), ("findings", "int"),
))
# a report row's detail that is a code, not ledger text -> its words
DETAIL_LABELS = catalogue.detail_labels()


def word(key: str, locale: str, **params: Any) -> str:
    """The catalogue's "report.<key>" in `locale`."""
    return texts.render(f"report.{key}", locale, **params) if params else _word(key, locale)


@functools.cache
def _word(key: str, locale: str) -> str:
    # a callback line's outcome and on-time words, looked up for each of a month's lines
    return texts.render(f"report.{key}", locale)


def kind_label(kind: str, locale: str) -> str:
    return KIND_LABELS[kind](locale)


def department_label(code: str | None, locale: str) -> str:
    if code is None:
        return ""
    name = DEPARTMENT_NAMES.get(code)
    return name(locale) if name else code


def office_label(office: str, locale: str) -> str:
    return word("group", locale) if office == GROUP else office


class UnsafeReportPath(ValueError):
    """A report file would not land inside the reports folder: nothing of that report is written.

    Raised for an office code from before the code pattern (`models.ledger.codes`), still in an old ledger, and for
    any path that resolves outside the folder (a `..`, an absolute part, a symlink pointing away).
    """

    def __init__(self, office: str | None, path: Path | str, root: Path | str) -> None:
        self.office, self.path, self.root = office, str(path), str(root)
        super().__init__(self.message("en"))

    def message(self, locale: str) -> str:
        if self.office is not None:
            return texts.render("report.unsafe_office", locale, office=self.office, pattern=OFFICE_CODE_PATTERN)
        return texts.render("report.unsafe_path", locale, path=self.path, root=self.root)


def office_dir(office: str) -> str:
    """The folder name of an office's reports; the group's is `group` ("*" is no folder name).

    A code that is not a well-formed office code is refused here, before any path is built from it.
    """
    if office == GROUP:
        return "group"
    if not is_office_code(office):
        raise UnsafeReportPath(office, office, "")
    return office


def confined(root: Path, path: Path) -> Path:
    """`path`, once its resolved form is checked to be inside `root`'s; else UnsafeReportPath."""
    if not path.resolve().is_relative_to(root.resolve()):
        raise UnsafeReportPath(None, path, root)
    return path
