"""Hostile values typed into every desk, run, import, alerts and set-up command (but `office add`): each is refused with exit code 2 and one
line on stderr, never a traceback, and the ledger is left as it was.

The commands run through the real entry point (`commands.cli.main`) in a process of their own; one process takes the
whole list (a process per case would be ~600 interpreter starts), each case with its own stderr and exit code. NUL
cannot travel in a process's argv at all, so it is passed here the only way it can reach `main`.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import func, select

from models import desk
from models.ledger.db import transaction
from models.ledger.tables import Base
from tests.cli import run_in_one_process
from tests.builders import accepted_job, at, collect_fee, give_receipts, order_for, request_for, setup_office



TEN_K = "x" * 10_000
CONTROLS = {"ansi escape": "\x1b[31mred\x1b[0m", "bell": "a\x07b", "nul": "a\x00b", "bidi override": "\u202eevil",
            "carriage return": "a\rb", "C1 CSI": "a\x9b2J"}
NUMBERS = {"huge": "9" * 30, "exponent": "1e30", "nan": "NaN", "inf": "inf", "minus zero": "-0", "empty": ""}
BIG = {"10k characters": TEN_K, **CONTROLS}
# what each kind of slot must refuse (a name "NaN" or a note with two lines is a fine value, not a hostile one)
MONEY = {**NUMBERS, **BIG, "tiny exponent": "1e-30", "tenth of a cent": "0.001", "line break": "8\n0"}
TIME = {**NUMBERS, **BIG, "far future": "9999-12-31T23:59", "year one": "0001-01-01",
        "year one with offset": "0001-01-01T00:00+08:00", "before 2000": "1999-12-31T23:00",
        "two years ahead": "2029-01-01T10:00", "no such day": "2026-02-30T10:00"}
DAY = {**NUMBERS, **BIG, "far future": "9999-12-31", "year one": "0001-01-01", "no such day": "2026-02-30"}
MONTH = {**NUMBERS, **BIG, "far future": "9999-12", "year one": "0001-01", "no such month": "2026-13"}
INTEGER = {**NUMBERS, **BIG, "fraction": "2.5", "negative": "-5"}
CODE = {**NUMBERS, **BIG, "line break": "A1\nB"}  # a code that names nothing
NAME = {"empty": "", **BIG, "line break": "刘\n女士", "tab": "刘\t女士", "longer than its column": "刘" * 301}
FREE_TEXT = {"10k characters": TEN_K, "just over the limit": "x" * 2001, **CONTROLS}
NEW_CODE = {"empty": "", **BIG, "line break": "X\nY", "longer than its column": "C" * 33}  # a code being created
CHOICE = {**NUMBERS, **BIG, "line break": "cash\n"}
RECEIPT_FIRST = {**NUMBERS, **BIG, "superscript digit": "²", "arabic digits": "١٢٣", "too many digits": "9" * 41,
                 "past the serial column": "2147483647"}

AT = ["--at", "2026-09-30T10:00"]


@pytest.fixture
def scene(engine, calendar) -> dict[str, str]:
    """One office with a request, an issued order, a completed one, accepted ones and receipts to use."""
    with transaction(engine) as s:
        o = setup_office(s)
        give_receipts(s, o, first="000101", count=10)
        registered = request_for(s, o, at=at("2026-09-29", "09:00"))
        issued = order_for(s, o, request_for(s, o, at=at("2026-09-29", "09:10")), at=at("2026-09-29", "09:20"))
        completed = order_for(s, o, request_for(s, o, at=at("2026-09-29", "09:30")), at=at("2026-09-29", "09:40"))
        desk.complete(s, order=completed, by=o.plumber, at=at("2026-09-29", "11:00"))
        accepted = accepted_job(s, calendar, o, at=at("2026-09-29", "10:00"))
        to_call = accepted_job(s, calendar, o, at=at("2026-09-29", "10:30"))
        paid = accepted_job(s, calendar, o, at=at("2026-09-29", "11:00"))
        collect_fee(s, o, paid, receipt="000101", at=at("2026-09-29", "14:00"))
        return {"registered": registered.number, "issued": issued.number, "completed": completed.number,
                "accepted": accepted.number, "to_call": to_call.number}


def commands(n: dict[str, str], ledger_file: Path) -> dict[str, tuple[list[str], dict[str, dict[str, str]]]]:
    """Each command as a valid invocation on the scene, and its slots: option (or position) -> hostile values."""
    return {
        "desk register": (["desk", "register", "--office", "A1", "--by", "A1-CS1", "--channel", "phone",
                           "--resident", "刘女士", "--address", "3栋501", "--phone", "13812345678",
                           "--category", "plumbing", "--description", "漏水", "--fee", "80",
                           "--preferred", "2026-10-01T09:00", "--community", "A1-C1", *AT],
                          {"--office": CODE, "--by": CODE, "--channel": CHOICE, "--resident": NAME,
                           "--address": NAME, "--phone": NAME, "--category": CHOICE, "--description": FREE_TEXT,
                           "--price": CODE, "--fee": MONEY, "--preferred": TIME, "--community": CODE, "--at": TIME}),
        "desk reply": (["desk", "reply", n["registered"], "--by", "A1-CS1", *AT],
                       {2: CODE, "--by": CODE, "--at": TIME}),
        "desk issue": (["desk", "issue", n["registered"], "--by", "A1-CS1", "--worker", "A1-PL1",
                        "--scheduled", "2026-09-30T14:00", *AT],
                       {2: CODE, "--by": CODE, "--worker": CODE, "--scheduled": TIME, "--at": TIME}),
        "desk complete": (["desk", "complete", n["issued"], "--by", "A1-PL1", *AT],
                          {2: CODE, "--by": CODE, "--at": TIME}),
        "desk accept": (["desk", "accept", n["completed"], "--signed-by", "刘女士", *AT],
                        {2: CODE, "--signed-by": NAME, "--at": TIME}),
        "desk receipts issue": (["desk", "receipts", "issue", "--by", "A1-CS1", "--to", "A1-PL1", "--first", "000301",
                                 "--count", "5", *AT],
                                {"--by": CODE, "--to": CODE, "--first": RECEIPT_FIRST, "--count": INTEGER,
                                 "--at": TIME}),
        "desk receipts void": (["desk", "receipts", "void", "000105", "--by", "A1-CS1", "--reason", "写错", *AT],
                               {3: CODE, "--by": CODE, "--reason": FREE_TEXT, "--at": TIME}),
        "desk receipts return": (["desk", "receipts", "return", "000106", "--by", "A1-CS1", *AT],
                                 {3: CODE, "--by": CODE, "--reason": FREE_TEXT, "--at": TIME}),
        "desk collect": (["desk", "collect", n["accepted"], "--by", "A1-PL1", "--receipt", "000102", "--amount", "80",
                          "--method", "cash", *AT],
                         {2: CODE, "--by": CODE, "--receipt": CODE, "--amount": MONEY, "--method": CHOICE,
                          "--reason": FREE_TEXT, "--at": TIME}),
        "desk handover": (["desk", "handover", "--by", "A1-PL1", "--cashier", "A1-FC1", "--receipts", "000101",
                           "--counted", "80", *AT],
                          {"--by": CODE, "--cashier": CODE, "--receipts": CODE, "--counted": MONEY, "--at": TIME}),
        "desk callback": (["desk", "callback", n["to_call"], "--by", "A1-CS1", "--outcome", "satisfied",
                           "--note", "满意", "--at", "2026-10-08T10:00"],
                          {2: CODE, "--by": CODE, "--outcome": CHOICE, "--note": FREE_TEXT, "--at": TIME}),
        "desk report": (["desk", "report", "--by", "A1-ENS", "--dept", "engineering", "--worker", "A1-PL1",
                         "--address", "3栋501", "--description", "换龙头", "--order", n["accepted"], "--fee", "80",
                         *AT],
                        {"--by": CODE, "--dept": CHOICE, "--worker": CODE, "--address": NAME,
                         "--description": FREE_TEXT, "--order": CODE, "--fee": MONEY, "--at": TIME}),
        "orders show": (["orders", "show", n["accepted"]], {2: CODE}),
        "run chase-replies": (["run", "chase-replies"], {"--as-of": TIME}),
        "run chase-callbacks": (["run", "chase-callbacks"], {"--as-of": TIME}),
        "run dispatch": (["run", "dispatch"], {"--as-of": TIME}),
        "run cash-check": (["run", "cash-check"],
                           {"--day": DAY, "--as-of": TIME, "--office": {"empty": "", **BIG, "line break": "A\n1",
                                                                         "longer than its column": "A" * 33}}),
        "run monthly-tally": (["run", "monthly-tally"], {"--month": MONTH}),
        "watch": (["watch", "--json"], {"--as-of": TIME}),
        "import": (["import", str(ledger_file), "--dry-run"],
                   {1: {"empty": "", **BIG, "no such file": str(ledger_file.with_name("absent.csv"))},
                    "--office": {"empty": "", **BIG, "longer than its column": "A" * 33},
                    "--kind": CODE, "--batch-size": INTEGER}),
        "alerts list": (["alerts", "list", "--json"], {"--at": TIME, "--limit": {**INTEGER, "zero": "0"}}),
        "alerts ack": (["alerts", "ack", "no-such-alert", "--by", "A1-CSS", *AT], {2: CODE, "--at": TIME}),
        "alerts silence": (["alerts", "silence", "--kind", "callback-overdue", "--office", "A1",
                            "--until", "2026-12-31T18:00", "--from", "2026-12-01T09:00", "--by", "A1-CSM",
                            "--reason", "国庆"],
                           {"--kind": {"empty": "", **BIG, "longer than its column": "k" * 41},
                            "--office": {"empty": "", **BIG, "longer than its column": "A" * 33},
                            "--until": TIME, "--from": TIME,
                            "--by": {"empty": "", **BIG, "longer than its column": "b" * 101},
                            "--reason": {"empty": "", **FREE_TEXT}}),
        "alerts silences": (["alerts", "silences"], {"--at": TIME}),
        "staff add": (["staff", "add", "A1-NEW", "--name", "新人", "--office", "A1", "--dept", "cs", "--role", "clerk",
                       *AT],
                      {2: NEW_CODE, "--name": NAME, "--office": CODE, "--dept": CHOICE, "--role": CHOICE,
                       "--at": TIME}),
        "community add": (["community", "add", "A1-C9", "--office", "A1", "--name", "新小区", *AT],
                          {2: NEW_CODE, "--office": CODE, "--name": NAME, "--at": TIME}),
        "prices set": (["prices", "set", "VALVE", "--category", "plumbing", "--name", "换阀门", "--fee", "50", *AT],
                       {2: NEW_CODE, "--category": CHOICE, "--name": NAME, "--fee": MONEY, "--at": TIME}),
    }


def with_value(base: list[str], slot: str | int, value: str) -> list[str]:
    args = list(base)
    if isinstance(slot, int):
        args[slot] = value
    elif slot in args:
        args[args.index(slot) + 1] = value
    else:
        args += [slot, value]
    return args


def row_counts(engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {t.name: conn.scalar(select(func.count()).select_from(t)) for t in Base.metadata.sorted_tables}


@pytest.fixture
def env(db_url, tmp_path) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("BIANMIN_", "PREFECT_"))}
    return keep | {"BIANMIN_DATABASE_URL": db_url, "BIANMIN_DATA_DIR": str(tmp_path / "var"),
                   "BIANMIN_LOCALE": "en", "BIANMIN_CONFIG_FILE": str(tmp_path / "absent.toml"),
                   "COLUMNS": "200"}


def test_every_hostile_value_in_every_command_is_one_line_exit_2_and_changes_nothing(engine, scene, env, tmp_path):
    ledger = tmp_path / "登记表.csv"
    ledger.write_text("登记号,登记时间,登记人,接待方式,业主姓名,住址,联系方式,类别,报修内容,费用\n"
                      "R-X-1,2026-09-30 10:00,A1-CS1,来电,刘女士,3栋501,13812345678,水,漏水,80\n", encoding="utf-8")
    matrix = commands(scene, ledger)
    cases = [with_value(base, slot, value) for base, slots in matrix.values()
             for slot, hostile in slots.items() for value in hostile.values()]
    before = row_counts(engine)

    results = run_in_one_process(env, tmp_path, cases)

    wrong = [(r["args"], r["code"], r["stderr"][-400:]) for r in results
             if r["code"] != 2 or len(r["stderr"].strip().splitlines()) != 1 or "Traceback" in r["stderr"]]
    assert wrong == [], f"{len(wrong)} of {len(results)} cases: {wrong[:5]}"
    assert row_counts(engine) == before
    assert len(results) > 500


def test_each_commands_own_values_are_taken_so_the_refusals_above_are_the_hostile_values(engine, scene, env,
                                                                                        tmp_path):
    ledger = tmp_path / "登记表.csv"
    ledger.write_text("登记号,登记时间,登记人,接待方式,业主姓名,住址,联系方式,类别,报修内容,费用\n"
                      "R-X-1,2026-09-30 10:00,A1-CS1,来电,刘女士,3栋501,13812345678,水,漏水,80\n", encoding="utf-8")
    runs_a_flow = ("run ", "alerts ack")  # a flow needs Prefect (tests/e2e/test_cli_process.py); no alert to ack
    bases = [base for name, (base, _) in commands(scene, ledger).items() if not name.startswith(runs_a_flow)]

    results = run_in_one_process(env, tmp_path, bases)

    assert [(r["args"][:3], r["code"], r["stderr"][-300:]) for r in results if r["code"] != 0] == []
