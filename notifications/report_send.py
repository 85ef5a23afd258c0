"""The monthly report's exactly-once send: write a new version, claim its send, send once, record it.

Per (month, office) with office "*" for the group:
- the figures and rows of a report are hashed (`notifications.report_content`); a run whose hash equals
  the latest version's writes nothing and sends nothing;
- a new version is claimed by inserting its `report_runs` row (unique month, office, version): two runs at
  once compute the same version, one insert wins, the loser stops (on PostgreSQL it waits for the winner's
  commit and then fails the insert; on SQLite writers are serialised by BEGIN IMMEDIATE). The files are
  moved into `v<N>/` inside the winner's transaction, so a committed row always has its files;
- the send is claimed for a while, not marked done: `UPDATE report_runs SET send_claimed_by = :me,
  send_claimed_until = now + SEND_LEASE WHERE id = :id AND sent_at IS NULL AND (send_claimed_until IS NULL OR
  send_claimed_until < now)`. `sent_at` is set only after apprise reports success; a failed send clears the
  claim at once, and a run that died mid-send leaves a claim that expires, after which the next run sends it
  (once: the claim is a single conditional UPDATE). Claims use the wall clock, never `as_of` (a replay's time).
Version 1 of a month is always sent; a later version only with `resend=True` or `resend_on_change`.
`resend=True` on an unchanged month that went out already sends it again (administration lost the mail):
its claim also accepts `sent_at` older than this run's start, so two resends at once still send once.

Nothing here reads settings: the caller hands in a `ReportDesk` (flows/tally.py builds it from the runtime).
"""
from __future__ import annotations

import json
import shutil
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from models.ledger.db import transaction
from models.ledger.tables import ReportRun
from models.tally.facts import MonthTally
from notifications.delivery import AppriseConfigError, config_tags, send_message
from notifications.masking import mask_url_password, scrub
from notifications.report import confined, department_label, office_dir
from notifications.report_content import ContentText, diff_content
from notifications.report_signoff import SignoffSheet
from notifications.report_summary import email_html, title_for, write_chart
from notifications.report_workbook import SheetRows, write_workbook

# longer than any send takes (apprise gives up on a server well before), short enough that a send claimed by
# a run that died is retried by the next hourly/daily run
SEND_LEASE = timedelta(minutes=10)
CONTENT_FILE = "tally.json"
EMAIL_BODY = "email.html"  # the chart inline: for a tag whose every service is email
CHAT_BODY = "summary.html"  # the chart attached, not inlined: chat channels, webhooks, the outbox file


@dataclass(frozen=True)
class ReportDesk:
    """What writing and sending the reports needs, handed in by the caller."""

    sessions: sessionmaker[Session]
    reports_dir: Path
    locale: str
    tz: ZoneInfo
    apprise_config: Path | None
    outbox_dir: Path
    tags: tuple[str, ...]  # where a report goes: the monthly-report route's apprise tags
    resend_on_change: bool = False  # send a changed month's new version without being asked


@dataclass(frozen=True)
class ReportOutcome:
    """What one run did for one (month, office) report.

    status: "new" (version 1), "new-version" (N+1 after a change), "unchanged" (same hash as the latest
    version), "concurrent" (another run produced this version at the same moment; this one did nothing),
    "pending" (a scheduled run retrying a send that an earlier run failed or died in), "failed" (writing or
    recording the report raised: `error` says why; nothing of it was committed).
    send_busy: another live run holds the claim on this send, so this run left it alone.
    """

    month: str
    office: str
    version: int
    content_hash: str
    status: str
    sent: bool
    path: str
    findings: int
    send_error: str | None = None
    sent_before: bool = False  # this version went out in an earlier run
    send_busy: bool = False
    error: str | None = None  # why a "failed" report could not be written or recorded

    @property
    def failed(self) -> bool:
        """The report was not written, or its send failed: ops is told and a later run retries it."""
        return self.status == "failed" or self.send_error is not None


@dataclass(frozen=True)
class Attempt:
    """What one try at sending a report did."""

    sent: bool
    error: str | None
    busy: bool  # a live claim of another run


def _report_dir(desk: ReportDesk, office: str, month: str) -> Path:
    """The folder of one report, checked to be inside the reports folder (an old ledger may hold any code)."""
    root = desk.reports_dir
    return confined(root, root / office_dir(office) / month)


def _build(desk: ReportDesk, tally: MonthTally, content: ContentText, rows: SheetRows, folder: Path, *,
           version: int, previous: ReportRun | None, signoff: SignoffSheet | None = None) -> dict:
    """Write workbook, chart, email body and the tally's content (its canonical JSON) into `folder`; returns what
    the send needs. With `signoff`, the final report: the sign-off sheet, and the email says how it was checked."""
    changes = prev_version = None
    if previous is not None:
        prev_version = previous.version
        old_path = Path(previous.file_path).with_name(CONTENT_FILE)
        old = json.loads(old_path.read_text(encoding="utf-8")) if old_path.exists() else {}
        changes = diff_content(old, content.figures)
    name = f"bianmin-{office_dir(tally.office)}-{tally.month}-v{version}.xlsx"
    root = desk.reports_dir

    def inside(path: Path) -> Path:
        return confined(root, path)

    final_workbook = inside(folder.parent / f"v{version}" / name)
    inside(folder).mkdir(parents=True, exist_ok=True)
    write_workbook(tally, inside(folder / name), locale=desk.locale, version=version, tz=desk.tz,
                   changes=changes, previous_version=prev_version, rows=rows, signoff=signoff)
    chart = write_chart(tally, inside(folder / "chart.png"), locale=desk.locale)
    checked = {}
    if signoff is not None:
        checked = dict(signoff=signoff.reason, open_disputes=len(signoff.status.open_disputes),
                       unconfirmed=(", " if desk.locale == "en" else "、").join(
                           department_label(p, desk.locale) for p in signoff.status.unconfirmed))
    for body, inline in ((EMAIL_BODY, True), (CHAT_BODY, False)):
        html = email_html(tally, locale=desk.locale, version=version, workbook=final_workbook.resolve(),
                          chart=chart, inline_chart=inline, changes=changes, previous_version=prev_version, **checked)
        inside(folder / body).write_text(html, encoding="utf-8")
    content.write(inside(folder / CONTENT_FILE))
    return {"workbook": str(final_workbook), "changes": None if changes is None else len(changes)}


def publish(desk: ReportDesk, tally: MonthTally, content: ContentText, rows: SheetRows, *, resend: bool,
            as_of: datetime, started: datetime, hold: bool = False) -> ReportOutcome:
    """Write and record the report of `tally` (whose content is `content`, its long sheets' rows `rows`) if its
    content is new; send it, unless `hold` (a draft awaiting the departments' sign-off: the final goes later)."""
    content_hash = content.hash
    findings = len(tally.discrepancies)
    with transaction(desk.sessions) as session:
        latest = session.scalars(select(ReportRun).where(ReportRun.month == tally.month,
                                                         ReportRun.office == tally.office)
                                 .order_by(ReportRun.version.desc()).limit(1)).first()
    if latest is not None and latest.content_hash == content_hash:
        attempt = Attempt(False, None, False)
        if not hold and (resend or (latest.sent_at is None and latest.summary.get("send"))):
            attempt = send(desk, latest, again_since=started if resend else None)
        return ReportOutcome(tally.month, tally.office, latest.version, content_hash, "unchanged", attempt.sent,
                             latest.file_path, findings, attempt.error, sent_before=latest.sent_at is not None,
                             send_busy=attempt.busy)

    version = latest.version + 1 if latest else 1
    wanted = not hold and (latest is None or resend or desk.resend_on_change)
    base = _report_dir(desk, tally.office, tally.month)
    staging = confined(desk.reports_dir, base / f".v{version}-{uuid.uuid4().hex[:8]}")
    final = confined(desk.reports_dir, base / f"v{version}")
    try:
        built = _build(desk, tally, content, rows, staging, version=version, previous=latest)
        total = tally.total
        summary = {"send": wanted, "findings": findings, "accepted": total.accepted, "revenue": str(total.revenue),
                   "changes": built["changes"], "previous_version": latest.version if latest else None}
        try:
            with transaction(desk.sessions) as session:
                row = ReportRun(month=tally.month, office=tally.office, version=version, content_hash=content_hash,
                                file_path=built["workbook"], created_at=as_of, sent_at=None, summary=summary)
                session.add(row)
                session.flush()  # the unique (month, office, version) insert is the claim
                if final.exists():  # left by a run that died before its commit: its row never existed
                    shutil.rmtree(final)
                staging.rename(final)
        except IntegrityError:
            return ReportOutcome(tally.month, tally.office, version, content_hash, "concurrent", False,
                                 str(final), findings)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    attempt = send(desk, row) if wanted else Attempt(False, None, False)
    return ReportOutcome(tally.month, tally.office, version, content_hash, "new" if version == 1 else "new-version",
                         attempt.sent, row.file_path, findings, attempt.error, send_busy=attempt.busy)


def finalize(desk: ReportDesk, tally: MonthTally, content: ContentText, rows: SheetRows, run: ReportRun,
             signoff: SignoffSheet) -> bool:
    """Rewrite version `run.version` of the report in place as the final one: the sign-off sheet in its workbook,
    the email saying how the departments checked it. False (nothing written) when `content` is not that version's."""
    if content.hash != run.content_hash:
        return False
    base = _report_dir(desk, tally.office, tally.month)
    final = confined(desk.reports_dir, base / f"v{run.version}")
    staging = confined(desk.reports_dir, base / f".final-v{run.version}-{uuid.uuid4().hex[:8]}")
    with transaction(desk.sessions) as session:
        previous = session.scalars(select(ReportRun).where(
            ReportRun.month == run.month, ReportRun.office == run.office, ReportRun.version < run.version)
            .order_by(ReportRun.version.desc()).limit(1)).first()
    try:
        _build(desk, tally, content, rows, staging, version=run.version, previous=previous, signoff=signoff)
        final.mkdir(parents=True, exist_ok=True)
        for path in staging.iterdir():
            path.replace(final / path.name)  # one file at a time, each atomically: a reader never sees half
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return True


def send(desk: ReportDesk, run: ReportRun, *, again_since: datetime | None = None,
         lease: timedelta = SEND_LEASE) -> Attempt:
    """Claim the send of `run` for `lease`, send, then mark it sent, or give the claim back if delivery failed.

    With `again_since`, a report already sent before that moment is sent again (an explicit resend).
    """
    workbook = Path(run.file_path)
    if not workbook.exists():
        return Attempt(False, f"workbook missing: {workbook}", False)
    me = uuid.uuid4().hex
    now = datetime.now(timezone.utc)
    unsent = ReportRun.sent_at.is_(None)
    if again_since is not None:
        unsent = or_(unsent, ReportRun.sent_at < again_since)
    with transaction(desk.sessions) as session:
        won = session.execute(
            update(ReportRun)
            .where(ReportRun.id == run.id, unsent,
                   or_(ReportRun.send_claimed_until.is_(None), ReportRun.send_claimed_until < now))
            .values(send_claimed_by=me, send_claimed_until=now + lease)).rowcount == 1
        if not won:
            busy = session.scalar(select(ReportRun.id).where(ReportRun.id == run.id, unsent,
                                                             ReportRun.send_claimed_until >= now)) is not None
    if not won:
        return Attempt(False, None, busy)
    ok, error = False, "delivery failed; the next run retries it"
    try:
        ok = _deliver(desk, run, workbook)
    except DBAPIError:
        raise
    except Exception as exc:  # noqa: BLE001 - an unreadable body, an outbox that cannot be written: a failed send
        error = f"delivery raised {error_text(exc)}; the next run retries it"
    finally:
        # the claim goes back even when delivery raised, so the next run retries at once instead of waiting out
        # the lease; only a process that dies here leaves its claim to expire
        mine = (ReportRun.id == run.id, ReportRun.send_claimed_by == me)
        with transaction(desk.sessions) as session:
            done = {"sent_at": datetime.now(timezone.utc), "sent_to": recipients(desk)} if ok else {}
            # if this claim expired and another run took over, that run owns the row now: leave it alone
            session.execute(update(ReportRun).where(*mine)
                            .values(send_claimed_by=None, send_claimed_until=None, **done))
    return Attempt(True, None, False) if ok else Attempt(False, error, False)


def _deliver(desk: ReportDesk, run: ReportRun, workbook: Path) -> bool:
    """Send the report to every tag of the monthly-report route; True when apprise reported success for all."""
    folder = workbook.parent
    title = title_for(run.month, run.office, run.version, locale=desk.locale)
    results = []
    for tag in desk.tags:
        if _only_email(desk.apprise_config, tag):
            body, attachments = EMAIL_BODY, [workbook]
        else:
            body, attachments = CHAT_BODY, [workbook, folder / "chart.png"]
        results.append(send_message(tag=tag, title=title, body=(folder / body).read_text(encoding="utf-8"),
                                    apprise_config=desk.apprise_config, outbox_dir=desk.outbox_dir,
                                    attachments=attachments, body_format="html"))
    return all(results)


def recipients(desk: ReportDesk) -> list[dict]:
    """Where a report goes: each tag of the route with its services as apprise shows them in privacy mode (no
    password, token or secret path), or the outbox folder when no apprise config is set."""
    if desk.apprise_config is None:
        return [{"tag": tag, "services": ["outbox"]} for tag in desk.tags]
    try:
        infos = config_tags(desk.apprise_config)
    except AppriseConfigError:
        infos = {}
    return [{"tag": tag, "services": list(infos[tag].urls) if tag in infos else []} for tag in desk.tags]


def pending_sends(sessions: sessionmaker[Session], months: list[str]) -> list[ReportRun]:
    """Latest report versions of `months` that should have gone out and did not (a failed or dead run)."""
    with transaction(sessions) as session:
        runs = session.scalars(select(ReportRun).where(ReportRun.month.in_(months))
                               .order_by(ReportRun.month, ReportRun.office, ReportRun.version)).all()
    latest = {(r.month, r.office): r for r in runs}  # report_runs holds a few rows a month: no need for SQL here
    return [r for r in latest.values() if r.sent_at is None and r.summary.get("send")]


def _only_email(apprise_config: Path | None, tag: str) -> bool:
    """Whether every service of `tag` is email, which shows an inline chart (chat channels would get base64)."""
    if apprise_config is None:
        return False
    try:
        info = config_tags(apprise_config).get(tag)
    except AppriseConfigError:
        return False
    return bool(info and info.urls) and all(url.startswith(("mailto://", "mailtos://")) for url in info.urls)


def error_text(exc: BaseException) -> str:
    # an OSError names the file; a secret in a URL or a resident's mobile never reaches the alert
    return scrub(mask_url_password(f"{type(exc).__name__}: {exc}"))[:300]
