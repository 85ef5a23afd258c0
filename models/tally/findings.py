"""The monthly tally's findings for the outbox: a report of one (month, office) that could not be written or sent.

The tally's discrepancies go to administration in the report itself, not as alerts; what ops must hear about is
a report that failed.
"""
from __future__ import annotations

from datetime import datetime

from models import findings as catalogue
from models.findings import Finding
from models.tally.facts import GROUP


def report_failure_key(flow: str, month: str, office: str) -> str:
    """The ops alert of one (month, office) report that failed; a flow-failed alert of its own, so the flow's
    recovery does not resolve it, only that report's success does."""
    return catalogue.FLOW_FAILED.key(flow, month, office)


def report_failure(*, flow: str, month: str, office: str, office_label: str, written: bool, error: str,
                   at: datetime) -> Finding:
    """The finding of one report not written (`written` False) or written and not sent; `office_label` names the
    office for people ("the group" for "*")."""
    what = "not sent" if written else "not written"
    return Finding(
        key=report_failure_key(flow, month, office), kind=catalogue.FLOW_FAILED.name,
        office=None if office == GROUP else office, level=1, severity=catalogue.FLOW_FAILED.severity,
        subject=f"{month} {office_label}", occurred_at=at,
        facts={"flow": flow, "month": month, "office": office,
               "error": f"report of {office_label} for {month} {what}: {error}"})
