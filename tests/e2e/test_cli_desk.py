"""The desk from the command line: the whole story, and every refusal as exit 2, one line, nothing written."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from commands.cli import app
from commands.common import set_runtime
from flows.runtime import Runtime
from models import desk
from models.ledger.db import transaction
from models.ledger.tables import Base
from tests.builders import accepted_job, at, collect_fee, give_receipts, hand_over, order_for, request_for, setup_office


def make_cli(settings, locale: str):
    rt = Runtime(settings.model_copy(update={"locale": locale}))
    set_runtime(rt)
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, [str(a) for a in args])

    invoke.rt = rt
    return invoke


@pytest.fixture
def cli(settings):
    invoke = make_cli(settings, "en")
    yield invoke
    set_runtime(None)
    invoke.rt.close()


@pytest.fixture
def cli_zh(settings):
    invoke = make_cli(settings, "zh_CN")
    yield invoke
    set_runtime(None)
    invoke.rt.close()


def ok(result) -> dict:
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return json.loads(result.stdout)


def row_counts(engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {t.name: conn.scalar(select(func.count()).select_from(t)) for t in Base.metadata.sorted_tables}


def test_the_whole_story_is_told_from_the_command_line(cli):
    for args in (["office", "add", "A1", "--name", "第一服务处"],
                 ["staff", "add", "CS1", "--name", "王客服", "--office", "A1", "--dept", "cs", "--role", "clerk"],
                 ["staff", "add", "PL1", "--name", "钱师傅", "--office", "A1", "--dept", "engineering",
                  "--role", "worker"],
                 ["staff", "add", "FC1", "--name", "郑出纳", "--office", "A1", "--dept", "finance",
                  "--role", "cashier"],
                 ["prices", "set", "TAP", "--category", "plumbing", "--name", "换龙头", "--fee", "80"],
                 ["desk", "receipts", "issue", "--by", "CS1", "--to", "PL1", "--first", "000101", "--count", "5",
                  "--at", "2026-09-29T08:30"]):
        ok(cli(*args, "--json"))

    request = ok(cli("desk", "register", "--office", "A1", "--by", "CS1", "--channel", "phone", "--resident", "刘女士",
                     "--address", "3栋501", "--phone", "13812345678", "--category", "plumbing",
                     "--description", "厨房水龙头漏水", "--price", "TAP", "--at", "2026-09-30T10:00", "--json"))
    assert request["state"] == "registered" and request["agreed_fee"] == "80.00"
    assert request["reply_due"] == "2026-09-30T10:10:00+08:00"
    number = request["request"]
    assert ok(cli("desk", "reply", number, "--by", "CS1", "--at", "2026-09-30T10:06", "--json"))["late"] is False
    order = ok(cli("desk", "issue", number, "--by", "CS1", "--worker", "PL1", "--scheduled", "2026-09-30T14:00",
                   "--at", "2026-09-30T10:08", "--json"))["order"]
    ok(cli("desk", "complete", order, "--by", "PL1", "--at", "2026-09-30T15:00", "--json"))
    accepted = ok(cli("desk", "accept", order, "--signed-by", "刘女士", "--at", "2026-09-30T15:10", "--json"))
    assert accepted["callback_due"] == "2026-10-09T17:30:00+08:00"
    paid = ok(cli("desk", "collect", order, "--by", "PL1", "--receipt", "000101", "--amount", "80",
                  "--method", "cash", "--at", "2026-09-30T18:00", "--json"))
    assert paid["cash_due"] == "2026-10-08T17:30:00+08:00"
    handed = ok(cli("desk", "handover", "--by", "PL1", "--cashier", "FC1", "--receipts", "000101", "--counted", "80",
                    "--at", "2026-10-08T09:00", "--json"))
    assert handed["shortfall"] == "0.00" and handed["state"] == "confirmed"
    rework = ok(cli("desk", "callback", order, "--by", "CS1", "--outcome", "unsatisfied", "--note", "还在滴水",
                    "--at", "2026-10-08T10:00", "--json"))["rework_order"]
    assert rework == f"{order}-R1"
    ok(cli("desk", "complete", rework, "--by", "PL1", "--at", "2026-10-08T16:00", "--json"))
    ok(cli("desk", "accept", rework, "--signed-by", "刘女士", "--at", "2026-10-08T16:05", "--json"))
    done = ok(cli("desk", "callback", rework, "--by", "CS1", "--outcome", "satisfied", "--at", "2026-10-09T10:00",
                  "--json"))
    assert done["rework_order"] is None

    story = ok(cli("orders", "show", order, "--json"))
    assert story["request"]["number"] == number and story["request"]["replied_by"] == "CS1"
    assert [(o["number"], o["fee"], o["rework_of"], o["accepted_by"]) for o in story["orders"]] == [
        (order, "80.00", None, "刘女士"), (rework, "0.00", order, "刘女士")]
    assert [(r["number"], r["amount"], r["method"], r["handover"]) for r in story["receipts"]] == [
        ("000101", "80.00", "cash", handed["handover"])]
    assert story["handovers"][0]["cashier"] == "FC1"
    assert [(c["order"], c["outcome"], c["rework_order"]) for c in story["callbacks"]] == [
        (order, "unsatisfied", rework), (rework, "satisfied", None)]
    assert [e["action"] for e in story["events"]] == [
        "register", "reply", "issue", "complete", "accept", "collect", "handover", "callback", "issue_rework",
        "complete", "accept", "callback"]

    text = cli("orders", "show", rework)
    assert text.exit_code == 0
    told = text.stdout
    assert f"Work order {order}: engineering, PL1, fee 80.00" in told
    assert f"Rework order (of {order}) {rework}: engineering, PL1, fee 0.00" in told
    assert f"Receipt 000101: {order} 80.00 (cash)" in told and f"handover {handed['handover']}" in told
    assert f"Callback {order}: 2026-10-08 10:00 CS1 unsatisfied (还在滴水), rework {rework}" in told
    assert f"Callback {rework}: 2026-10-09 10:00 CS1 satisfied" in told
    assert "Audit trail" in told


@pytest.fixture
def scene(cli, calendar):
    """One office with jobs at every stage, for the refusals to pick from."""
    with transaction(cli.rt.sessions) as s:
        o = setup_office(s)
        give_receipts(s, o, first="000101", count=10)
        give_receipts(s, o, to=o.electrician, first="000201", count=5)
        registered = request_for(s, o, at=at("2026-09-29", "09:00"))
        issued = order_for(s, o, request_for(s, o, at=at("2026-09-29", "09:10")), at=at("2026-09-29", "09:20"))
        accepted = accepted_job(s, calendar, o, at=at("2026-09-29", "10:00"))
        paid = accepted_job(s, calendar, o, at=at("2026-09-29", "11:00"))
        collect_fee(s, o, paid, receipt="000101", at=at("2026-09-29", "14:00"))
        handed = accepted_job(s, calendar, o, at=at("2026-09-29", "11:30"))
        collect_fee(s, o, handed, receipt="000102", at=at("2026-09-29", "14:30"))
        hand_over(s, o, receipts=["000102"], at=at("2026-09-29", "16:00"))
        by_wechat = accepted_job(s, calendar, o, at=at("2026-09-29", "12:00"))
        collect_fee(s, o, by_wechat, receipt="000103", method="wechat", at=at("2026-09-29", "15:00"))
        rework = desk.callback(s, order=paid, by=o.clerk, outcome="unsatisfied", at=at("2026-09-29", "16:30"),
                               calendar=calendar).rework_order
        desk.complete(s, order=rework, by=o.plumber, at=at("2026-09-29", "17:00"))
        desk.accept(s, order=rework, signed_by="刘女士", at=at("2026-09-29", "17:05"), calendar=calendar)
        return {"registered": registered.number, "issued": issued.number, "accepted": accepted.number,
                "rework": rework.number}


REGISTER = ["desk", "register", "--office", "A1", "--channel", "phone", "--resident", "刘女士", "--address", "3栋501",
            "--phone", "13812345678", "--description", "修理", "--fee", "80"]
AT = ["--at", "2026-09-30T10:00"]
REFUSALS = {
    "a non-CS staff member registering": (
        lambda n: REGISTER + ["--by", "A1-PL1", "--category", "plumbing"] + AT, "Only customer service may register"),
    "an appliance repair": (
        lambda n: REGISTER + ["--by", "A1-CS1", "--category", "appliance"] + AT, "Household-appliance repair"),
    "a renovation": (
        lambda n: REGISTER + ["--by", "A1-CS1", "--category", "renovation"] + AT, "house renovation are not offered"),
    "a worker from another department": (
        lambda n: ["desk", "issue", n["registered"], "--by", "A1-CS1", "--worker", "A1-CL1",
                   "--scheduled", "2026-09-30T14:00"] + AT, "plumbing work is done by engineering"),
    "accepting before completion": (
        lambda n: ["desk", "accept", n["issued"], "--signed-by", "刘女士"] + AT, "is not completed yet"),
    "collecting before acceptance": (
        lambda n: ["desk", "collect", n["issued"], "--by", "A1-PL1", "--receipt", "000104", "--amount", "80",
                   "--method", "cash"] + AT, "no fee before acceptance"),
    "reusing a receipt number": (
        lambda n: ["desk", "collect", n["accepted"], "--by", "A1-PL1", "--receipt", "000101", "--amount", "80",
                   "--method", "cash"] + AT, "Receipt 000101 cannot be used: it is used"),
    "a receipt issued to someone else": (
        lambda n: ["desk", "collect", n["accepted"], "--by", "A1-PL1", "--receipt", "000201", "--amount", "80",
                   "--method", "cash"] + AT, "was issued to A1-EL1"),
    "an amount other than the agreed fee without a reason": (
        lambda n: ["desk", "collect", n["accepted"], "--by", "A1-PL1", "--receipt", "000104", "--amount", "70",
                   "--method", "cash"] + AT, "differs from the agreed fee 80.00; give --reason"),
    "charging for a rework order": (
        lambda n: ["desk", "collect", n["rework"], "--by", "A1-PL1", "--receipt", "000104", "--amount", "80",
                   "--method", "cash", "--reason", "again"] + AT, "rework is free"),
    "a callback before acceptance": (
        lambda n: ["desk", "callback", n["issued"], "--by", "A1-CS1", "--outcome", "satisfied"] + AT,
        "no callback before acceptance"),
    "handing cash to someone not a cashier": (
        lambda n: ["desk", "handover", "--by", "A1-PL1", "--cashier", "A1-FM1", "--receipts", "000101",
                   "--counted", "80"] + AT, "A1-FM1 is not a finance cashier"),
    "handing over a non-cash receipt": (
        lambda n: ["desk", "handover", "--by", "A1-PL1", "--cashier", "A1-FC1", "--receipts", "000103",
                   "--counted", "80"] + AT, "Receipt 000103 is not a cash collection"),
    "handing over someone else's collection": (
        lambda n: ["desk", "handover", "--by", "A1-EL1", "--cashier", "A1-FC1", "--receipts", "000101",
                   "--counted", "80"] + AT, "Receipt 000101 was not collected by A1-EL1"),
    "handing the same cash over twice": (
        lambda n: ["desk", "handover", "--by", "A1-PL1", "--cashier", "A1-FC1", "--receipts", "000102",
                   "--counted", "80"] + AT, "has already been handed over"),
    "voiding a used receipt": (
        lambda n: ["desk", "receipts", "void", "000101", "--by", "A1-CS1"] + AT,
        "Receipt 000101 is used: only an unused receipt can be voided or returned"),
    "an unknown staff member": (
        lambda n: ["desk", "reply", n["registered"], "--by", "NOBODY"] + AT, "No staff member NOBODY"),
    "a malformed --at": (
        lambda n: ["desk", "complete", n["issued"], "--by", "A1-PL1", "--at", "2026-13-45T10:00"], "Malformed time"),
    "a malformed amount": (
        lambda n: ["desk", "collect", n["accepted"], "--by", "A1-PL1", "--receipt", "000104", "--amount", "eighty",
                   "--method", "cash"] + AT, "Malformed amount"),
    "an event dated before the one it depends on": (
        lambda n: ["desk", "complete", n["issued"], "--by", "A1-PL1", "--at", "2026-09-29T09:00"],
        "is before the issue it depends on"),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_a_refused_command_exits_2_with_one_line_and_writes_nothing(cli, scene, case):
    args, message = REFUSALS[case]
    before = row_counts(cli.rt.engine)
    result = cli(*args(scene))
    assert result.exit_code == 2, (result.stdout, result.stderr, result.exception)
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr + result.stdout
    assert row_counts(cli.rt.engine) == before


def test_an_appliance_repair_is_refused_in_chinese_with_the_procedures_reason(cli_zh):
    with transaction(cli_zh.rt.sessions) as s:
        setup_office(s)
    result = cli_zh(*REGISTER, "--by", "A1-CS1", "--category", "appliance", *AT)
    assert result.exit_code == 2
    assert "家电维修和房屋修缮暂不列入有偿服务范围" in result.stderr and "第二条" in result.stderr


def test_a_different_amount_with_a_reason_is_collected_and_the_reason_kept(cli, scene):
    paid = ok(cli("desk", "collect", scene["accepted"], "--by", "A1-PL1", "--receipt", "000104", "--amount", "70",
                  "--method", "wechat", "--reason", "老顾客优惠", *AT, "--json"))
    assert paid["amount"] == "70.00" and paid["cash_due"] is None
    story = ok(cli("orders", "show", scene["accepted"], "--json"))
    assert story["receipts"][0]["reason"] == "老顾客优惠"


def test_a_shortfall_is_recorded_not_refused(cli, scene):
    handed = ok(cli("desk", "handover", "--by", "A1-PL1", "--cashier", "A1-FC1", "--receipts", "000101",
                    "--counted", "75", *AT, "--json"))
    assert (handed["declared"], handed["counted"], handed["shortfall"]) == ("80.00", "75.00", "5.00")


def test_an_unreachable_resident_is_called_again_by_the_next_working_days_end(cli, scene):
    ok(cli("desk", "callback", scene["accepted"], "--by", "A1-CS1", "--outcome", "unreachable",
           "--at", "2026-10-08T10:00", "--json"))
    story = ok(cli("orders", "show", scene["accepted"], "--json"))
    # due times come back in UTC: 17:30 in Shanghai is 09:30Z
    assert [(c["outcome"], c["due_at"]) for c in story["callbacks"]] == [
        ("unreachable", "2026-10-08T09:30:00+00:00"), (None, "2026-10-09T09:30:00+00:00")]


def test_void_and_return_account_for_unused_receipts(cli, scene):
    assert ok(cli("desk", "receipts", "void", "000105", "--by", "A1-CS1", "--reason", "写错", *AT,
                  "--json"))["state"] == "voided"
    assert ok(cli("desk", "receipts", "return", "000106", "--by", "A1-CS1", *AT, "--json"))["state"] == "returned"
    assert cli("desk", "receipts", "return", "000106", "--by", "A1-CS1", *AT).exit_code == 2


def test_a_department_report_is_recorded_against_an_order(cli, scene):
    report = ok(cli("desk", "report", "--by", "A1-ENS", "--dept", "engineering", "--worker", "A1-PL1",
                    "--address", "3栋501", "--description", "换龙头", "--order", scene["accepted"], "--fee", "80",
                    *AT, "--json"))
    assert report["report"] == "DR-A1-20260930-001" and report["state"] == "recorded"
    refused = cli("desk", "report", "--by", "A1-CS1", "--dept", "engineering", "--worker", "A1-PL1",
                  "--address", "x", "--description", "y", *AT)
    assert refused.exit_code == 2 and "A1-CS1 is not in engineering" in refused.stderr


@pytest.mark.parametrize("fee, refusal", [
    ("1e-30", "Malformed amount '1e-30' for --fee"), ("0.001", "--fee '0.001' has more than 2 decimal places"),
    ("80e2", "Malformed amount '80e2' for --fee"),
    ("99999999999999999999", "--fee '99999999999999999999' is too large"),
    ("-0", "--fee must be a non-negative amount")])
def test_a_fee_that_is_not_plain_money_is_refused_naming_the_field_and_nothing_is_written(cli, scene, fee, refusal):
    before = row_counts(cli.rt.engine)
    result = cli(*REGISTER, "--by", "A1-CS1", "--category", "plumbing", *AT, "--fee", fee)
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert result.stderr.strip().splitlines() == [result.stderr.strip()] and refusal in result.stderr
    assert row_counts(cli.rt.engine) == before


@pytest.mark.parametrize("option, value, refusal", [
    ("--resident", "刘" * 101, "resident is too long: 101 characters, at most 100"),
    ("--address", "3栋" + "5" * 299, "address is too long: 301 characters, at most 300"),
    ("--address", "3栋\x1b[31m501", "address holds a control character U+001B"),
    ("--resident", "刘\n女士", "resident holds a control character U+000A"),
    ("--description", "漏水\x07", "description holds a control character U+0007"),
])
def test_a_name_too_long_for_its_column_or_with_a_control_character_is_refused(cli, scene, option, value, refusal):
    before = row_counts(cli.rt.engine)
    args = [*REGISTER, "--by", "A1-CS1", "--category", "plumbing", *AT]
    args[args.index(option) + 1] = value
    result = cli(*args)
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert len(result.stderr.strip().splitlines()) == 1 and refusal in result.stderr
    assert "\x1b" not in result.stderr
    assert row_counts(cli.rt.engine) == before


def test_a_callback_note_keeps_its_lines(cli, scene):
    ok(cli("desk", "callback", scene["accepted"], "--by", "A1-CS1", "--outcome", "satisfied",
           "--note", "很满意\r\n谢谢", "--at", "2026-10-08T10:00", "--json"))
    story = ok(cli("orders", "show", scene["accepted"], "--json"))
    assert story["callbacks"][0]["note"] == "很满意\n谢谢"
