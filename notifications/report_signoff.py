"""The sign-off sheet of the final monthly report: a signature page for the appraisal meeting.

Each party's name, role, the version it confirmed and when, and a blank line to sign; below, every dispute with
its note and how it ended; and, when the report went at the deadline, the parties that had not confirmed.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from models.signoff.facts import PARTY_TAGS, SignoffStatus
from notifications.masking import mask_text
from notifications.report import department_label, word


@dataclass(frozen=True)
class SignoffSheet:
    """What the sign-off sheet shows: the status as the final went, and why it went."""

    status: SignoffStatus
    reason: str  # "confirmed" | "deadline"


def _local(moment: datetime | None, tz) -> datetime | None:
    return moment.astimezone(tz).replace(tzinfo=None) if moment is not None else None


def write_signoff_sheet(book, formats, printing, sheet_type, signoff: SignoffSheet, *, locale: str, tz) -> None:
    """Add the sign-off sheet to an open xlsxwriter workbook (`sheet_type` is report_workbook.Sheet)."""
    w = lambda key, **p: word(key, locale, **p)  # noqa: E731
    status = signoff.status
    sheet = sheet_type(book, formats, w("signoff.sheet"), printing, gridlines=False)
    ws = sheet.ws
    sign_line = book.add_format({"bottom": 1})
    mark = book.add_format({"bold": True, "font_color": "#C00000", "text_wrap": True})
    headers = [w("signoff.party"), w("signoff.role"), w("signoff.name"), w("signoff.state"), w("signoff.version"),
               w("signoff.confirmed_at"), w("signoff.signature")]
    sheet.header(headers)
    for party in status.parties:
        sheet.row += 1
        row = sheet.row
        ws.set_row(row, 36)  # room for a handwritten signature
        values = [department_label(party.party, locale), party.by_role or PARTY_TAGS[party.party], party.by_name or "",
                  w(f"signoff.state.{party.state}"), f"v{party.answered_version}" if party.answered_version else ""]
        for col, value in enumerate(values):
            ws.write_string(row, col, value)
        confirmed_at = _local(party.at, tz) if party.state == "confirmed" else None
        if confirmed_at is not None:
            ws.write_datetime(row, 5, confirmed_at, formats["datetime"])
        ws.write_blank(row, 6, None, sign_line)
    for col, width in enumerate((14, 22, 16, 12, 8, 18, 28)):
        ws.set_column(col, col, width)
    sheet.row += 2
    if signoff.reason == "deadline":
        missing = ", ".join(department_label(p, locale) for p in status.unconfirmed)
        ws.merge_range(sheet.row, 0, sheet.row, 6,
                       w("signoff.sent_at_deadline", parties=missing, disputes=len(status.open_disputes)), mark)
        sheet.row += 2
    ws.write_string(sheet.row, 0, w("signoff.disputes"), formats["header"])
    sheet.row += 1
    lines = [[department_label(d.party, locale), f"v{d.version}", d.by_name, _local(d.at, tz), d.order_number or "",
              mask_text(d.note), w(f"signoff.ended.{d.ended}", version=d.ended_in or "")] for d in status.disputes]
    sheet.table([w("signoff.party"), w("signoff.version"), w("signoff.name"), w("signoff.at"), w("order"),
                 w("signoff.note"), w("signoff.ended")], ["text", "text", "text", "datetime", "text", "text", "text"],
                lines or [[w("signoff.no_disputes"), "", "", None, "", "", ""]], freeze=False)
