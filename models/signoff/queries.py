"""The sign-off in the ledger: read a month's status, open or advance its version, record answers and the final.

Keyword-only arguments, the session passed in; the caller owns the transaction.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models.ledger.tables import AuditEvent, Signoff, SignoffAnswer, SignoffView, Staff, User
from models.signoff.facts import Answer, SignoffStatus
from models.signoff.rules import dispute_lines, party_of_role, party_of_staff, party_states

AWAITING_SIGNOFF, SENT = "awaiting-signoff", "sent"


def signoff_row(s: Session, *, month: str, lock: bool = False) -> Signoff | None:
    """The month's sign-off row, locked for update when `lock` (PostgreSQL; SQLite serialises writers)."""
    query = select(Signoff).where(Signoff.month == month)
    return s.scalars(query.with_for_update() if lock else query).first()


def views(s: Session, *, month: str) -> dict[int, dict[str, str]]:
    """version -> party -> view hash, for every version of the month."""
    out: dict[int, dict[str, str]] = {}
    for v in s.scalars(select(SignoffView).where(SignoffView.month == month)):
        out.setdefault(v.version, {})[v.party] = v.view_hash
    return out


def answers(s: Session, *, month: str) -> list[Answer]:
    """Every answer given on the month, in the order given."""
    rows = s.scalars(select(SignoffAnswer).where(SignoffAnswer.month == month)
                     .order_by(SignoffAnswer.at, SignoffAnswer.id))
    return [Answer(r.party, r.version, r.answer, r.by_ref, r.by_name, r.by_role, r.at, r.note, r.order_number)
            for r in rows]


def status(s: Session, *, month: str) -> SignoffStatus | None:
    """The month's sign-off as it stands, or None if none was opened."""
    row = signoff_row(s, month=month)
    if row is None:
        return None
    seen, given = views(s, month=month), answers(s, month=month)
    return SignoffStatus(month=row.month, version=row.version, state=row.state, deadline_at=row.deadline_at,
                         parties=party_states(given, seen, row.version), disputes=dispute_lines(given, seen, row.version),
                         final_version=row.final_version, final_sent_at=row.final_sent_at,
                         final_marks=row.final_marks or None)


def months_awaiting(s: Session) -> list[str]:
    """Months whose sign-off has not ended with the final report, oldest first."""
    return list(s.scalars(select(Signoff.month).where(Signoff.state == AWAITING_SIGNOFF).order_by(Signoff.month)))


def months_with_signoff(s: Session) -> list[str]:
    """Every month that has a sign-off, newest first."""
    return list(s.scalars(select(Signoff.month).order_by(Signoff.month.desc())))


def open_version(s: Session, *, month: str, version: int, party_views: dict[str, str], as_of: datetime,
                 deadline_at: datetime) -> str:
    """Put `version` of the month before the parties: "opened" (the first), "new-version" (after a change),
    "same" (already before them) or "closed" (the final went out; later versions are not signed off again)."""
    row = signoff_row(s, month=month, lock=True)
    if row is not None and row.state == SENT:
        return "closed"
    if row is not None and row.version >= version:
        return "same"
    for party, digest in party_views.items():
        try:
            with s.begin_nested():
                s.add(SignoffView(month=month, version=version, party=party, view_hash=digest, created_at=as_of))
        except IntegrityError:  # a concurrent run recorded this version's views first
            pass
    if row is None:
        try:
            with s.begin_nested():
                s.add(Signoff(month=month, version=version, state=AWAITING_SIGNOFF, opened_at=as_of,
                              deadline_at=deadline_at, final_marks={}))
        except IntegrityError:
            return "same"
        return "opened"
    row.version = version
    return "new-version"


def opened_at(s: Session, *, month: str) -> datetime | None:
    """When the month's sign-off opened (its first draft)."""
    return s.scalar(select(Signoff.opened_at).where(Signoff.month == month))


def confirmer(s: Session, *, who: str) -> tuple[str | None, str, str] | None:
    """(party, name, role) of a staff code or console login, None if neither; party None if it answers for none."""
    staff = s.scalars(select(Staff).where(Staff.code == who, Staff.active.is_(True))).first()
    if staff is not None:
        return party_of_staff(staff.department, staff.role), staff.name, f"{staff.department}-{staff.role}"
    user = s.scalars(select(User).where(User.login == who, User.active.is_(True))).first()
    if user is not None:
        return party_of_role(user.role), user.name, user.role
    return None


def record_answer(s: Session, *, month: str, version: int, party: str, answer: str, by_ref: str, by_name: str,
                  by_role: str, at: datetime, recorded_at: datetime, note: str | None = None,
                  order_number: str | None = None) -> None:
    """Record a party's answer and its audit event, naming who gave it."""
    values: dict[str, Any] = dict(month=month, version=version, party=party, answer=answer, by_ref=by_ref,
                                  by_name=by_name, by_role=by_role, at=at, recorded_at=recorded_at, note=note,
                                  order_number=order_number)
    s.add(SignoffAnswer(**values))
    after = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in values.items()}
    s.add(AuditEvent(at=recorded_at, actor=by_name, action=f"signoff-{answer}", entity="signoff", entity_ref=month,
                     before=None, after=after))


def record_final(s: Session, *, month: str, version: int, marks: dict[str, Any]) -> bool:
    """Fix the version that goes to administration and what it is marked with; False if already fixed."""
    row = signoff_row(s, month=month, lock=True)
    if row is None or row.state == SENT or row.final_version is not None:
        return False
    row.final_version, row.final_marks = version, marks
    return True


def record_final_sent(s: Session, *, month: str, at: datetime) -> None:
    """The final report went to administration: the sign-off is over."""
    row = signoff_row(s, month=month, lock=True)
    if row is not None and row.state != SENT:
        row.state, row.final_sent_at = SENT, at


def give_answer(s: Session, *, month: str, party: str, who: str, answer: str, at: datetime, recorded_at: datetime,
                version: int | None = None, note: str | None = None, order_number: str | None = None) -> SignoffStatus:
    """Record `who`'s confirmation or dispute of the month for `party`, or refuse it; the status after it."""
    from models.errors import DomainError, NotFound
    from models.ledger.tables import WorkOrder
    from models.signoff.rules import decide_answer

    found = confirmer(s, who=who)
    if found is None:
        raise DomainError("signoff_unknown_person", who=who)
    by_party, by_name, by_role = found
    current = status(s, month=month)
    chosen = decide_answer(current, month=month, party=party, by_party=by_party, by=who, version=version,
                           answer=answer, note=note)
    if order_number is not None and s.scalar(select(WorkOrder.id).where(WorkOrder.number == order_number)) is None:
        raise NotFound("not_found", what="work_order", ref=order_number)
    record_answer(s, month=month, version=chosen, party=party, answer=answer, by_ref=who, by_name=by_name,
                  by_role=by_role, at=at, recorded_at=recorded_at, note=(note or "").strip() or None,
                  order_number=order_number)
    s.flush()
    return status(s, month=month)
