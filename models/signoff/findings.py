"""The sign-off's notices for the outbox: a draft to each party, a daily reminder, the overdue notice.

Each is written once (its key names the version or the day) and never repeated; the sign-off closes the ones
that no longer apply without a "resolved" line (flows/signoff.py).
"""
from __future__ import annotations

from datetime import date, datetime

from models import findings as catalogue
from models.findings import Finding


def draft(*, month: str, version: int, party: str, party_label: str, deadline_at: datetime, at: datetime,
          note: str = "") -> Finding:
    """Version `version` of the month, for `party` to check and confirm or dispute by the deadline; `note` says
    what its view holds."""
    kind = catalogue.SIGNOFF_DRAFT
    return Finding(key=kind.key(month, f"v{version}", party), kind=kind.name, office=None, severity=kind.severity,
                   department=party, subject=f"{month} v{version} · {party_label}", due_at=deadline_at,
                   occurred_at=at, facts={"month": month, "version": version, "party": party, "note": note})


def reminder(*, month: str, version: int, party: str, party_label: str, day: date, deadline_at: datetime,
             at: datetime) -> Finding:
    """`party` has not answered version `version` yet: once a working day."""
    kind = catalogue.SIGNOFF_REMINDER
    return Finding(key=kind.key(month, party, day.isoformat()), kind=kind.name, office=None, severity=kind.severity,
                   department=party, subject=f"{month} v{version} · {party_label}", due_at=deadline_at,
                   occurred_at=at, facts={"month": month, "version": version, "party": party})


def overdue(*, month: str, version: int, unconfirmed: str, deadline_at: datetime, at: datetime) -> Finding:
    """The sign-off will miss its deadline: cs-manager is told the working day before, naming who is missing."""
    kind = catalogue.SIGNOFF_OVERDUE
    return Finding(key=kind.key(month), kind=kind.name, office=None, severity=kind.severity,
                   subject=f"{month} v{version}", due_at=deadline_at, occurred_at=at,
                   facts={"month": month, "version": version, "reason": unconfirmed})
