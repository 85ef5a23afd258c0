"""The departments' sign-off of a month, run by monthly-tally after it has written the month's reports.

The recipe, for one month whose reports this run has just written (the group's version N in hand):
1. put version N before the parties (the first draft, or a new version after the ledger was corrected);
2. notices, each written once through the outbox: the draft of each version to every party, a reminder each
   working day to the parties that have not answered, the overdue notice to cs-manager the working day before
   the deadline; notices that no longer apply are closed without a "resolved" line;
3. when all four have confirmed, or the deadline has passed, the final: every report of the month rewritten with
   the sign-off sheet and sent to administration once (notifications.report_send's claims), the sign-off closed
   when every send went out.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update

from flows.runtime import Runtime
from models import findings as catalogue
from models import texts
from models.findings import Finding
from models.ledger.db import transaction
from models.ledger.tables import Alert, ReportRun
from models.signoff import findings as notices
from models.signoff import queries
from models.signoff.facts import PARTIES, SignoffStatus
from models.signoff.rules import deadline, final_due, overdue_notice_due, party_view, reminder_parties, views_of
from models.tally.facts import MonthTally
from notifications.outbox import alert_key, route_tags, sync_findings
from notifications.report import department_label
from notifications.report_send import ReportDesk, ReportOutcome, finalize, send
from notifications.report_signoff import SignoffSheet
from notifications.report_workbook import SheetRows


@dataclass(frozen=True)
class SignoffOutcome:
    """What one run did for one month's sign-off."""

    month: str
    version: int
    step: str  # "opened" | "new-version" | "same" | "closed"
    state: str  # "awaiting-signoff" | "sent"
    notices: int  # drafts, reminders and overdue notices written to the outbox
    final: str | None = None  # why the final went in this run: "confirmed" | "deadline"
    finals: tuple[ReportOutcome, ...] = ()


def hold_for_signoff(rt: Runtime, month: str) -> bool:
    """Whether the month's reports wait for the departments (a draft) instead of going to administration."""
    if not rt.settings.signoff:
        return False
    with transaction(rt.sessions) as session:
        row = queries.signoff_row(session, month=month)
        if row is not None:
            return row.state == queries.AWAITING_SIGNOFF
        # a month that went to administration before the sign-off existed is not reopened
        return session.scalar(select(ReportRun.id).where(ReportRun.month == month,
                                                         ReportRun.sent_at.is_not(None)).limit(1)) is None


def months_awaiting(rt: Runtime) -> list[str]:
    """Months whose sign-off has not ended: every daily run looks at them again."""
    if not rt.settings.signoff:
        return []
    with transaction(rt.sessions) as session:
        return queries.months_awaiting(session)


def run_signoff(rt: Runtime, desk: ReportDesk, group: MonthTally, offices: dict[str, MonthTally],
                outcomes: list[ReportOutcome], *, figures: dict, as_of: datetime) -> SignoffOutcome | None:
    """Advance the sign-off of `group.month`, whose reports `outcomes` this run has just written (`figures`: the
    group report's content without its callback lines, what the parties' views are made of)."""
    month = group.month
    if any(o.status == "failed" for o in outcomes) or not any(o.office == group.office for o in outcomes):
        return None  # a report this run could not write: its figures are not before anyone yet
    version = next(o.version for o in outcomes if o.office == group.office)
    s = rt.settings
    due = deadline(month, calendar=rt.calendar, workdays=s.signoff_workdays)
    with transaction(rt.sessions) as session:
        step = queries.open_version(session, month=month, version=version, party_views=views_of(figures),
                                    as_of=as_of, deadline_at=due)
        status = queries.status(session, month=month)
        opened = queries.opened_at(session, month=month)
        written = 0 if step == "closed" else _notify(rt, session, status, figures=figures, opened=opened,
                                                      as_of=as_of)
    final, finals = None, ()
    if step != "closed":
        final = final_due(status, as_of=as_of)
        if final is not None:
            finals = _send_final(rt, desk, status, final, group, offices)
    elif status.state == queries.AWAITING_SIGNOFF and status.final_version is not None:
        finals = _retry_final(rt, desk, month)
    with transaction(rt.sessions) as session:
        status = queries.status(session, month=month)
        if status.state == queries.SENT:
            _close_notices(session, month=month, keep=set(), at=as_of)
    return SignoffOutcome(month, status.version, step, status.state, written, final, finals)


# -- notices ------------------------------------------------------------------------------------------

def _notify(rt: Runtime, session, status: SignoffStatus, *, figures: dict, opened: datetime,
            as_of: datetime) -> int:
    """Write the notices due now (each once) and close those that no longer apply; how many were written."""
    routes, month, locale = rt.settings.alert_routes, status.month, rt.settings.locale
    wanted: list[Finding] = []
    for party in PARTIES:
        view = party_view(figures, party)
        note = texts.render("flow.signoff.draft", locale, rows=len(view["figures"]), findings=len(view["findings"]))
        wanted.append(notices.draft(month=month, version=status.version, party=party,
                                    party_label=department_label(party, locale), deadline_at=status.deadline_at,
                                    at=as_of, note=note))
    day = rt.calendar.local(as_of).date()
    for party in reminder_parties(status, as_of=as_of, opened_at=opened, calendar=rt.calendar):
        wanted.append(notices.reminder(month=month, version=status.version, party=party,
                                       party_label=department_label(party, locale), day=day,
                                       deadline_at=status.deadline_at, at=as_of))
    if overdue_notice_due(status, as_of=as_of, calendar=rt.calendar):
        missing = ", ".join(department_label(p, locale) for p in status.unconfirmed)
        wanted.append(notices.overdue(month=month, version=status.version, unconfirmed=missing,
                                      deadline_at=status.deadline_at, at=as_of))
    rows = {n.key: {alert_key(n.key, tag) for tag in route_tags(routes, kind=n.kind, department=n.department)}
            for n in wanted}
    keep = set().union(*rows.values())
    _close_notices(session, month=month, keep=keep, at=as_of)
    known = set(session.scalars(select(Alert.dedupe_key).where(Alert.dedupe_key.in_(sorted(keep)))))
    # each written once, never repeated whatever the repeat interval; kinds left empty: this resolves nothing else
    new = [n for n in wanted if not rows[n.key] <= known]
    if new:
        sync_findings(session, new, kinds=set(), as_of=as_of, routes=routes)
    return len(new)


def _close_notices(session, *, month: str, keep: set[str], at: datetime) -> None:
    """Close the month's notices not in `keep` (an older version's draft, yesterday's reminder) with no "resolved"
    line: they were information, not problems that went away."""
    for kind in catalogue.SIGNOFF_KINDS:
        prefix = kind.key(month)
        session.execute(update(Alert).where(
            Alert.kind == kind.name, Alert.resolved_at.is_(None),
            Alert.dedupe_key.startswith(prefix + ":", autoescape=True) | Alert.dedupe_key.startswith(
                prefix + "@", autoescape=True),
            Alert.dedupe_key.not_in(sorted(keep)) if keep else Alert.id.is_not(None))
            .values(resolved_at=at, resolved_notified_at=at).execution_options(synchronize_session=False))


# -- the final ----------------------------------------------------------------------------------------

def _latest_runs(session, month: str) -> list[ReportRun]:
    runs = session.scalars(select(ReportRun).where(ReportRun.month == month)
                           .order_by(ReportRun.office, ReportRun.version)).all()
    return list({r.office: r for r in runs}.values())


def _final_runs(session, month: str) -> list[ReportRun]:
    """The reports fixed as the month's final (a version built after the final is not one of them)."""
    runs = session.scalars(select(ReportRun).where(ReportRun.month == month).order_by(ReportRun.office)).all()
    return [r for r in runs if r.summary.get("final")]


def _send_final(rt: Runtime, desk: ReportDesk, status: SignoffStatus, reason: str, group: MonthTally,
                offices: dict[str, MonthTally]) -> tuple[ReportOutcome, ...]:
    """Rewrite every report of the month as final with the sign-off sheet, fix the final, send each once."""
    from notifications.report_content import content_texts

    s = rt.settings
    sheet = SignoffSheet(status, reason)
    contents = content_texts(group, offices)
    rows = SheetRows.split(group, offices, locale=s.locale, tz=rt.calendar.tz)
    tallies = {**offices, group.office: group}
    with transaction(rt.sessions) as session:
        runs = [r for r in _latest_runs(session, status.month) if r.office in tallies]
    if not all(finalize(desk, tallies[r.office], contents[r.office], rows[r.office], r, sheet) for r in runs):
        return ()  # the ledger moved since these versions: the next run builds the new version first
    marks = {"reason": reason, "unconfirmed": list(status.unconfirmed),
             "open_disputes": len(status.open_disputes)}
    with transaction(rt.sessions) as session:
        if not queries.record_final(session, month=status.month, version=status.version, marks=marks):
            return ()  # another run fixed the final first and sends it
        for run in session.scalars(select(ReportRun).where(ReportRun.id.in_([r.id for r in runs]))):
            run.summary = {**run.summary, "send": True, "final": reason}
    return _retry_final(rt, desk, status.month)


def _retry_final(rt: Runtime, desk: ReportDesk, month: str) -> tuple[ReportOutcome, ...]:
    """Send the final reports of the month not sent yet; close the sign-off when every one went."""
    with transaction(rt.sessions) as session:
        runs = _final_runs(session, month)
    out = []
    for run in runs:
        if run.sent_at is not None:
            continue
        attempt = send(desk, run)
        out.append(ReportOutcome(run.month, run.office, run.version, run.content_hash, "final", attempt.sent,
                                 run.file_path, int(run.summary.get("findings") or 0), attempt.error,
                                 send_busy=attempt.busy))
    with transaction(rt.sessions) as session:
        if all(r.sent_at is not None for r in _final_runs(session, month)):
            queries.record_final_sent(session, month=month, at=datetime.now(rt.calendar.tz))
    return tuple(out)

