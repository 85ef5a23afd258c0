"""The sign-off's rules, pure: the deadline, whose answer stands on which version, who may answer, what each
party checks. Plain values in, facts out; time is an argument.

A version's parties are reset only where their view changed: each party's view of a version is hashed
(`view_hash`), and a confirmation of version v still counts on version c when the party's hash is the same in
both. A dispute never changes the ledger; it ends when a later version changes that party's view (corrected)
or when the party confirms afterwards (withdrawn).
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from datetime import date, datetime, time, timedelta

from models import findings as catalogue
from models.calendar import BusinessCalendar
from models.errors import DomainError
from models.signoff.facts import (
    AWAITING,
    CONFIRMED,
    CONFIRMER_ROLES,
    CORRECTED,
    DISPUTED,
    OPEN,
    PARTIES,
    ROLE_PARTIES,
    WITHDRAWN,
    Answer,
    DisputeLine,
    PartyState,
    SignoffStatus,
)
from models.tally.facts import shift_month

#: the findings finance answers for: money collected, handed over, receipts
FINANCE_KINDS = frozenset(k.name for k in (catalogue.UNPAID, catalogue.PAID_WITHOUT_COMPLETION,
                                            catalogue.AMOUNT_DIFFERS, catalogue.CASH_UNHANDED,
                                            catalogue.HANDOVER_SHORTFALL, catalogue.RECEIPT_GAP))
#: a department's own figures: its jobs and their completion, acceptance and rework
DEPARTMENT_FIGURES = ("orders", "completed", "completed_on_time", "accepted", "accepted_jobs", "rework")
FINANCE_FIGURES = ("accepted", "receipts", "revenue_cash", "revenue_electronic")
#: customer service's own records: what it registered, replied to and called back
CS_FIGURES = ("orders", "accepted", "phone_requests", "phone_replied_in_time", "callbacks_due", "callbacks_on_time",
              "callbacks_answered", "satisfied", "rework")


# -- when ---------------------------------------------------------------------------------------------

def deadline(month: str, *, calendar: BusinessCalendar, workdays: int) -> datetime:
    """The end of the `workdays`-th working day of the month after `month` (the month being reported)."""
    year, mon = (int(x) for x in shift_month(month, 1).split("-"))
    first_day = calendar.working_day_on_or_after(date(year, mon, 1))
    last_day = calendar.add_working_days(first_day, workdays - 1)
    return calendar.at(last_day + timedelta(days=1), time(0))


def overdue_notice_day(deadline_at: datetime, *, calendar: BusinessCalendar) -> date:
    """The working day before the deadline's last working day: the day cs-manager is told the sign-off is late."""
    last_day = calendar.local(deadline_at - timedelta(microseconds=1)).date()
    return calendar.previous_working_day(last_day)


def final_due(status: SignoffStatus, *, as_of: datetime) -> str | None:
    """Why the final report goes now: "confirmed" (all four), "deadline" (it passed first), or None (not yet)."""
    if status.state != "awaiting-signoff":
        return None
    if status.all_confirmed:
        return "confirmed"
    return "deadline" if as_of >= status.deadline_at else None


def reminder_parties(status: SignoffStatus, *, as_of: datetime, opened_at: datetime,
                     calendar: BusinessCalendar) -> tuple[str, ...]:
    """Parties that have not answered the current version, to remind on `as_of`'s day: a working day after the
    day the sign-off opened, before the deadline."""
    day = calendar.local(as_of).date()
    if status.state != "awaiting-signoff" or as_of >= status.deadline_at:
        return ()
    if not calendar.is_working_day(day) or day <= calendar.local(opened_at).date():
        return ()
    return tuple(p.party for p in status.parties if p.state == AWAITING)


def overdue_notice_due(status: SignoffStatus, *, as_of: datetime, calendar: BusinessCalendar) -> bool:
    """Whether cs-manager is told today that the sign-off will miss its deadline."""
    if status.state != "awaiting-signoff" or status.all_confirmed or as_of >= status.deadline_at:
        return False
    return calendar.local(as_of).date() >= overdue_notice_day(status.deadline_at, calendar=calendar)


# -- who ----------------------------------------------------------------------------------------------

def party_of_staff(department: str, role: str) -> str | None:
    """The party a staff member confirms for: its department's, if its role is that party's confirmer's."""
    return department if role in CONFIRMER_ROLES.get(department, ()) else None


def party_of_role(console_role: str) -> str | None:
    """The party a console user answers for, by role (cs-manager, finance-manager, ...)."""
    return ROLE_PARTIES.get(console_role)


def check_party(party: str) -> str:
    if party not in PARTIES:
        raise DomainError("signoff_bad_party", value=party, parties=", ".join(PARTIES))
    return party


def decide_answer(status: SignoffStatus | None, *, month: str, party: str, by_party: str | None, by: str,
                  version: int | None, answer: str, note: str | None) -> int:
    """The version an answer is recorded for; refuses an answer the procedure does not allow."""
    check_party(party)
    if status is None:
        raise DomainError("signoff_none", month=month)
    if status.state != "awaiting-signoff":
        raise DomainError("signoff_closed", month=month, version=status.final_version or status.version)
    if by_party != party:
        raise DomainError("signoff_wrong_party", by=by, party=party)
    if version is not None and version != status.version:
        raise DomainError("signoff_not_current", month=month, version=version, current=status.version)
    if answer == "dispute" and not (note or "").strip():
        raise DomainError("signoff_note_required")
    return status.version


# -- where each party stands ----------------------------------------------------------------------------

def party_states(answers: Iterable[Answer], views: Mapping[int, Mapping[str, str]],
                 version: int) -> tuple[PartyState, ...]:
    """Each party's standing on `version`: its latest answer, if that answer's view is still the current one."""
    latest: dict[str, Answer] = {}
    for a in sorted(answers, key=lambda a: (a.at, a.version)):
        latest[a.party] = a
    current = views.get(version, {})
    out = []
    for party in PARTIES:
        a = latest.get(party)
        if a is None:
            out.append(PartyState(party, AWAITING))
            continue
        same_view = a.version == version or (current.get(party) is not None
                                             and views.get(a.version, {}).get(party) == current.get(party))
        if not same_view:
            out.append(PartyState(party, AWAITING, answered_version=a.version, reset=True))
            continue
        out.append(PartyState(party, CONFIRMED if a.answer == "confirm" else DISPUTED, answered_version=a.version,
                              by_name=a.by_name, by_role=a.by_role, at=a.at, carried=a.version != version))
    return tuple(out)


def dispute_lines(answers: Iterable[Answer], views: Mapping[int, Mapping[str, str]],
                  version: int) -> tuple[DisputeLine, ...]:
    """Every dispute and how it ended, oldest first."""
    ordered = sorted(answers, key=lambda a: (a.at, a.version))
    out = []
    for i, a in enumerate(ordered):
        if a.answer != "dispute":
            continue
        ended, ended_in = OPEN, None
        seen = views.get(a.version, {}).get(a.party)
        for later in range(a.version + 1, version + 1):
            if later in views and views[later].get(a.party) != seen:
                ended, ended_in = CORRECTED, later
                break
        if ended == OPEN and any(b.party == a.party and b.answer == "confirm" for b in ordered[i + 1:]):
            ended = WITHDRAWN
        out.append(DisputeLine(a.party, a.version, a.by_name, a.at, a.note or "", a.order_number, ended, ended_in))
    return tuple(out)


# -- what each party checks -------------------------------------------------------------------------------

def party_view(content: dict, party: str) -> dict:
    """What `party` checks of the group's month (`MonthTally.content()`, as the report keeps it in tally.json): its
    own figures against the orders and the findings that concern it (finance: money, receipts and handovers; a
    department: its workers' jobs; customer service: its registrations, replies and callbacks, and every finding
    that is not about money)."""
    check_party(party)
    if party == "cs":
        figures = [_pick(f, ("office",) + CS_FIGURES) for f in content["offices"]]
        found = [d for d in content["findings"] if d["kind"] not in FINANCE_KINDS]
    elif party == "finance":
        figures = [_pick(f, ("office",) + FINANCE_FIGURES) for f in content["offices"]]
        found = [d for d in content["findings"] if d["kind"] in FINANCE_KINDS]
    else:
        figures = [_pick(f, ("office", "worker", "worker_name") + DEPARTMENT_FIGURES)
                   for f in content["workers"] if f["department"] == party]
        found = [d for d in content["findings"] if d["department"] == party and d["kind"] not in FINANCE_KINDS]
    findings = sorted(found, key=lambda d: (d["kind"], d["reference"]))
    return {"party": party, "month": content["month"], "figures": figures, "findings": findings}


def view_hash(view: dict) -> str:
    """The hash of a party's view: equal views, equal hashes, whatever the order rows came in."""
    text = json.dumps(view, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def views_of(content: dict) -> dict[str, str]:
    """party -> its view's hash, for one version of the month (`MonthTally.content()`)."""
    return {party: view_hash(party_view(content, party)) for party in PARTIES}


def _pick(values: dict, keys: tuple[str, ...]) -> dict:
    return {k: values[k] for k in keys if k in values}


def states_summary(status: SignoffStatus) -> dict[str, str]:
    """party -> state, for logs and marks."""
    return {p.party: p.state for p in status.parties}


