"""The departments' sign-off of the monthly report: drafts, a dispute corrected through the desk, version 2
resetting only the party whose figures changed, the final to administration once, and the deadline."""
from __future__ import annotations

from datetime import date, timedelta

import openpyxl
import pytest
from sqlalchemy import select

from console.accounts import add_user
from flows.dispatch import run_dispatch
from flows.tally import run_monthly_tally
from models.ledger.db import transaction
from models.ledger.tables import Alert, ReportRun, WorkOrder
from models.signoff import queries
from models.signoff.rules import deadline
from tests.builders import OfficeCodes, accepted_job, at, collect_fee, setup_office
from tests.integration.test_tally import build_october
from tests.servers import smtp_server  # noqa: F401  (fixture)

PARTY_LOGINS = {"cs": ("cs-boss", "cs-manager"), "finance": ("fin-boss", "finance-manager"),
                "engineering": ("eng-boss", "engineering-supervisor"),
                "cleaning": ("clean-boss", "cleaning-supervisor")}
TAGS = ("administration", "cs-manager", "finance-manager", "engineering-supervisor", "cleaning-supervisor", "ops")


@pytest.fixture
def signing(runtime, engine, smtp_server, tmp_path):
    """The sign-off on, every party a console user, each tag a mailbox at a real SMTP server."""
    runtime.settings.signoff = True
    config = tmp_path / "apprise.yml"
    config.write_text("urls:\n" + "".join(f"  - {smtp_server.url(to=f'{tag}@example.com')}:\n    - tag: {tag}\n"
                                          for tag in TAGS), encoding="utf-8")
    runtime.settings.apprise_config = config
    with transaction(engine) as s:
        for login, role in PARTY_LOGINS.values():
            add_user(s, login=login, name=f"{login} name", role=role, offices=[], password="correct horse 1",
                     at=at("2026-10-01", "08:00"))
    return runtime


def mail_to(smtp_server, tag: str) -> list:
    return [m for m in smtp_server.messages if f"{tag}@example.com" in str(m["To"])]


def answer(runtime, party: str, kind: str = "confirm", *, when, **more):
    with transaction(runtime.sessions) as s:
        return queries.give_answer(s, month=more.pop("month", "2026-10"), party=party, who=PARTY_LOGINS[party][0],
                                   answer=kind, at=when, recorded_at=when, **more)


def alerts_of(runtime, kind: str) -> list[Alert]:
    with transaction(runtime.sessions) as s:
        return list(s.scalars(select(Alert).where(Alert.kind == kind)))


def test_a_month_goes_from_draft_through_a_corrected_dispute_to_one_final_report(signing, engine, calendar,
                                                                                 smtp_server, tmp_path):
    rt = signing
    october = build_october(engine, calendar)

    first = run_monthly_tally(rt, as_of=at("2026-11-02", "08:00"))
    [opened] = first.signoffs
    assert (opened.month, opened.version, opened.step, opened.state) == ("2026-10", 1, "opened", "awaiting-signoff")
    assert first.sent == 0 and not mail_to(smtp_server, "administration")
    run_dispatch(rt, at("2026-11-02", "08:01"))
    for tag in TAGS[1:5]:
        assert len(mail_to(smtp_server, tag)) == 1, tag
    [finance_draft] = mail_to(smtp_server, "finance-manager")
    draft_text = smtp_server.text(finance_draft)
    assert "2026-10 v1 · 财务部" in draft_text and "相关问题 6 项" in draft_text and "/a/" in draft_text

    for party in ("cs", "engineering", "cleaning"):
        answer(rt, party, when=at("2026-11-02", "10:00"))
    unpaid = october["unpaid"][1]
    disputed = answer(rt, "finance", "dispute", when=at("2026-11-02", "11:00"), order_number=unpaid,
                      note=f"{unpaid} 已收现金 80 元,台账未记")
    assert disputed.party("finance").state == "disputed"

    # the clerk records the fee that was collected in October: the ledger changes through the desk, not the dispute
    with transaction(engine) as s:
        order = s.scalar(select(WorkOrder).where(WorkOrder.number == unpaid))
        collect_fee(s, OfficeCodes.of("A1"), order, receipt="000109", at=at("2026-10-13", "11:30"))

    second = run_monthly_tally(rt, as_of=at("2026-11-03", "08:00"))
    [advanced] = second.signoffs
    assert (advanced.version, advanced.step) == (2, "new-version")
    with transaction(rt.sessions) as s:
        status = queries.status(s, month="2026-10")
    assert {p.party: p.state for p in status.parties} == {
        "cs": "confirmed", "finance": "awaiting", "engineering": "confirmed", "cleaning": "confirmed"}
    assert status.party("finance").reset and status.party("cs").carried
    assert [(d.party, d.ended, d.ended_in) for d in status.disputes] == [("finance", "corrected", 2)]
    assert not mail_to(smtp_server, "administration")

    answer(rt, "finance", when=at("2026-11-03", "09:30"), version=2)
    third = run_monthly_tally(rt, as_of=at("2026-11-03", "10:00"))
    [final] = third.signoffs
    assert (final.final, final.state) == ("confirmed", "sent")
    [group_mail] = [m for m in mail_to(smtp_server, "administration") if "全集团" in m["Subject"]]
    assert len(mail_to(smtp_server, "administration")) == 2  # the office's report and the group's
    assert "已经客服部、财务部、工程部、保洁部(环境部)核对并签字确认" in smtp_server.text(group_mail)
    [(name, data)] = [(n, d) for n, d in smtp_server.attachments(group_mail).items() if n.endswith(".xlsx")]
    assert name == "bianmin-group-2026-10-v2.xlsx"
    (tmp_path / name).write_bytes(data)
    sheet = openpyxl.load_workbook(tmp_path / name)["签字确认"]
    rows = [[c.value for c in row] for row in sheet.iter_rows()]
    signed = {r[0]: r for r in rows[1:5]}
    assert set(signed) == {"客服部", "财务部", "工程部", "保洁部(环境部)"}
    assert signed["财务部"][2] == "fin-boss name" and signed["财务部"][4] == "v2" and signed["财务部"][3] == "已确认"
    assert signed["工程部"][4] == "v1"  # its confirmation of v1 stood: its figures did not change
    assert all(r[5] is not None and r[6] is None for r in signed.values())  # confirmed at; a blank line to sign
    dispute = next(r for r in rows if r[0] == "财务部" and r[1] == "v1")
    assert unpaid in dispute[5] and dispute[6] == "已更正(第2版)"
    assert sheet.page_setup.orientation == "landscape"

    # nothing is sent twice: not the final, not the drafts
    before = len(smtp_server.messages)
    again = run_monthly_tally(rt, as_of=at("2026-11-04", "08:00"))
    run_dispatch(rt, at("2026-11-04", "08:01"))
    assert again.sent == 0 and len(smtp_server.messages) == before
    with transaction(rt.sessions) as s:
        assert all(r.sent_at is not None and r.sent_to[0]["tag"] == "administration"
                   for r in s.scalars(select(ReportRun).where(ReportRun.version == 2)))


def test_at_the_deadline_the_report_goes_marked_with_who_did_not_confirm(signing, engine, calendar, smtp_server,
                                                                        tmp_path):
    rt = signing
    with transaction(engine) as s:
        accepted_job(s, calendar, setup_office(s), at=at("2026-09-15", "09:00"))
    due = deadline("2026-09", calendar=calendar, workdays=3)
    # the 3rd working day of October comes after the National Day holiday, from the calendar
    last_day = calendar.local(due).date() - timedelta(days=1)
    assert last_day > date(2026, 10, 8) and calendar.is_working_day(last_day)

    run_monthly_tally(rt, as_of=at("2026-10-01", "08:00"))  # on a holiday: the draft, no reminder
    run_dispatch(rt, at("2026-10-01", "08:01"))
    for party in ("cs", "engineering", "cleaning"):
        answer(rt, party, month="2026-09", when=at("2026-10-02", "10:00"))
    day_before = calendar.previous_working_day(last_day)
    for clock in ("08:00", "12:00"):  # twice the same day: the reminder and the notice once each
        run_monthly_tally(rt, as_of=at(day_before.isoformat(), clock))
    run_dispatch(rt, at(day_before.isoformat(), "12:01"))
    assert len(alerts_of(rt, "signoff-reminder")) == 1 and alerts_of(rt, "signoff-reminder")[0].tag == "finance-manager"
    assert len(alerts_of(rt, "signoff-overdue")) == 1 and alerts_of(rt, "signoff-overdue")[0].tag == "cs-manager"
    assert len(mail_to(smtp_server, "cs-manager")) == 2  # the draft, then the overdue notice
    assert len(mail_to(smtp_server, "finance-manager")) == 2  # the draft, then one reminder
    assert not mail_to(smtp_server, "administration")

    late = run_monthly_tally(rt, as_of=due.replace(hour=8))
    [final] = late.signoffs
    assert (final.final, final.state) == ("deadline", "sent")
    group_mail = next(m for m in mail_to(smtp_server, "administration") if "全集团" in m["Subject"])
    assert "以下部门未确认:财务部" in smtp_server.text(group_mail)
    [(name, data)] = [(n, d) for n, d in smtp_server.attachments(group_mail).items() if n.endswith(".xlsx")]
    (tmp_path / name).write_bytes(data)
    rows = [[c.value for c in row] for row in openpyxl.load_workbook(tmp_path / name)["签字确认"].iter_rows()]
    assert any(r[0] and "未确认的部门:财务部" in str(r[0]) for r in rows)
    assert run_monthly_tally(rt, as_of=due.replace(hour=9)).sent == 0



def test_the_commands_take_answers_from_the_party_confirmers_only_and_say_where_it_stands(signing, engine,
                                                                                           calendar):
    import json

    from typer.testing import CliRunner

    from commands.cli import app
    from commands.common import set_runtime

    rt = signing
    with transaction(engine) as s:
        accepted_job(s, calendar, setup_office(s), at=at("2026-10-15", "09:00"))
    run_monthly_tally(rt, as_of=at("2026-11-02", "08:00"))
    set_runtime(rt)
    try:
        runner = CliRunner()

        def bianmin(*args):
            return runner.invoke(app, list(args))

        confirmed = bianmin("tally", "confirm", "--month", "2026-10", "--dept", "finance", "--by", "A1-FM1",
                            "--at", "2026-11-02T10:00")
        assert confirmed.exit_code == 0 and "财务部已确认 2026-10 第1版" in confirmed.output
        for args, words in (
                (("--dept", "finance", "--by", "A1-FC1"), "不是财务部的确认人"),  # a cashier is not finance's confirmer
                (("--dept", "cs", "--by", "A1-CSS"), "不是客服部的确认人"),  # a CS supervisor is not its manager
                (("--dept", "engineering", "--by", "A1-ENS", "--version", "2"), "第2版已不是当前版本"),
                (("--dept", "legal", "--by", "A1-ENS"), "不参与月报确认")):
            refused = bianmin("tally", "confirm", "--month", "2026-10", *args)
            assert refused.exit_code == 2 and words in refused.output and len(refused.output.splitlines()) == 1
        no_note = bianmin("tally", "dispute", "--month", "2026-10", "--dept", "cleaning", "--by", "A1-CLS",
                          "--note", " ")
        assert no_note.exit_code == 2 and "异议须写明问题" in no_note.output
        for party, who in (("cs", "A1-CSM"), ("engineering", "eng-boss"), ("cleaning", "A1-CLS")):
            assert bianmin("tally", "confirm", "--month", "2026-10", "--dept", party, "--by", who).exit_code == 0
        shown = json.loads(bianmin("tally", "status", "--month", "2026-10", "--json").output)
        assert shown["state"] == "awaiting-signoff"
        assert {p["party"]: (p["state"], p["by"]) for p in shown["parties"]} == {
            "cs": ("confirmed", "张经理"), "finance": ("confirmed", "冯经理"),
            "engineering": ("confirmed", "eng-boss name"), "cleaning": ("confirmed", "周主管")}
        run_monthly_tally(rt, as_of=at("2026-11-02", "12:00"))
        late = bianmin("tally", "confirm", "--month", "2026-10", "--dept", "finance", "--by", "A1-FM1")
        assert late.exit_code == 2 and "已报行政部" in late.output
    finally:
        set_runtime(None)
