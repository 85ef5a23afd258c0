"""Residents' numbers reach administration and the outbox masked, free text included (issue 18, defects 3 and 4).

The ledger keeps what the clerk typed; the alerts table, the report's workbook, `tally.json` and the HTML
summary hold masked copies only.
"""
from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import openpyxl
from sqlalchemy import select

from flows.callbacks import run_chase_replies
from flows.tally import run_monthly_tally
from models import desk
from models.ledger.db import transaction
from models.ledger.tables import Alert, Callback, ServiceRequest, Staff
from notifications.masking import has_unmasked_mobile
from tests.builders import accepted_job, at, collect_fee, give_receipts, request_for, setup_office

MOBILE, DOTTED, FULL_WIDTH, ID_CARD = "13812345678", "139.8765.4321", "１３７１１１１２２２２", "11010519900307123X"
SPACED = "186  0000  9999"


def _report_folder(runtime, office: str) -> Path:
    [folder] = (runtime.settings.effective_reports_dir / office / "2026-10").glob("v*")
    return folder


def _workbook_texts(folder: Path) -> list[str]:
    [path] = folder.glob("*.xlsx")
    book = openpyxl.load_workbook(path, read_only=True)
    return [str(cell) for sheet in book for row in sheet.iter_rows(values_only=True) for cell in row if cell]


def test_a_collect_reason_a_department_report_and_a_callback_note_reach_the_report_masked(runtime, engine, calendar):
    with transaction(engine) as s:
        o = setup_office(s)
        s.scalar(select(Staff).where(Staff.code == o.plumber)).name = f"钱师傅 {SPACED}"  # on every callback line
        r = give_receipts(s, o, first="000101", count=5)
        differs = accepted_job(s, calendar, o, at=at("2026-10-14", "09:00"))
        collect_fee(s, o, differs, receipt=r[0], amount=Decimal("60.00"), reason=f"业主{MOBILE}说老人优惠",
                    at=at("2026-10-14", "11:30"))
        desk.department_report(s, by=o.eng_supervisor, department="engineering", worker=o.plumber,
                               address=f"5栋101 电话{DOTTED}", description=f"疏通下水道,身份证{ID_CARD}",
                               fee=Decimal("50.00"), at=at("2026-10-20", "17:00"))
        unsatisfied = accepted_job(s, calendar, o, at=at("2026-10-20", "09:00"))
        owed = s.scalar(select(Callback).where(Callback.order_id == unsatisfied.id))
        owed.done_at, owed.outcome, owed.note = at("2026-10-21", "10:00"), "unsatisfied", f"还在漏,回电{FULL_WIDTH}"

    run_monthly_tally(runtime, "2026-10", as_of=at("2026-11-01", "08:00"))

    for office in ("A1", "group"):
        folder = _report_folder(runtime, office)
        cells = _workbook_texts(folder)
        assert any("老人优惠" in c for c in cells) and any("疏通下水道" in c for c in cells)
        assert [c for c in cells if has_unmasked_mobile(c)] == []
        tally = (folder / "tally.json").read_text(encoding="utf-8")
        assert "老人优惠" in tally and "138****5678" in tally and "110***********123X" in tally
        assert "钱师傅 186****9999" in tally and any(c == "钱师傅 186****9999" for c in cells)
        assert not has_unmasked_mobile(tally)
        for body in ("email.html", "summary.html"):
            assert not has_unmasked_mobile((folder / body).read_text(encoding="utf-8"))
        json.loads(tally)  # still the JSON the next version compares against


def test_the_outbox_payload_keeps_no_full_number_of_a_resident(runtime, engine):
    with transaction(engine) as s:
        o = setup_office(s)
        request_for(s, o, at=at("2026-11-25", "10:00"), resident=f"刘女士{FULL_WIDTH}", phone=MOBILE,
                    address=f"3栋501(身份证{ID_CARD},备用{DOTTED})")

    run_chase_replies(runtime, at("2026-11-25", "11:00"))

    with runtime.sessions() as s:
        [payload] = s.scalars(select(Alert.payload)).all()
        ledger = s.scalar(select(ServiceRequest.phone))
    facts = payload["facts"]
    assert facts["phone"] == "138****5678" and facts["resident"] == "刘女士１３７****２２２２"
    assert facts["address"] == "3栋501(身份证110***********123X,备用139****4321)"
    assert not has_unmasked_mobile(json.dumps(payload, ensure_ascii=False))
    assert ledger == MOBILE  # the ledger itself keeps what the clerk typed


def test_config_show_hides_a_database_password_given_in_the_query(settings):
    from typer.testing import CliRunner

    from commands.cli import app
    from commands.common import set_runtime
    from flows.runtime import Runtime

    url = "postgresql://bianmin@127.0.0.1:5432/ledger?password=CANARYpg0query&sslmode=disable"
    rt = Runtime(settings.model_copy(update={"database_url": url}))
    set_runtime(rt)
    try:
        result = CliRunner().invoke(app, ["config", "show", "--json"])
    finally:
        set_runtime(None)
        rt.close()
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["database_url"] == \
        "postgresql://bianmin@127.0.0.1:5432/ledger?password=****&sslmode=disable"
    assert "CANARYpg0query" not in result.stdout + result.stderr


def test_db_upgrade_masks_the_numbers_an_older_version_left_in_stored_alerts_once(settings, engine):
    from typer.testing import CliRunner

    from commands.cli import app
    from commands.common import set_runtime
    from flows.runtime import Runtime

    seen = at("2026-10-12", "09:30")
    old = {"key": "reply-overdue:R-1", "department": "cs", "occurred_at": seen.isoformat(),
           "facts": {"request": "R-A1-20261012-001", "phone": "13812345678",
                     "note": "业主说打 139 1234 5678 或 １３７１２３４５６７８", "address": "3栋501"}}
    with transaction(engine) as s:
        s.add(Alert(dedupe_key="reply-overdue:R-1@cs-supervisor", kind="reply-overdue", office="A1",
                    tag="cs-supervisor", payload=old, first_seen=seen, last_seen=seen))
    rt = Runtime(settings.model_copy(update={"locale": "en"}))
    set_runtime(rt)
    try:
        runs = [CliRunner().invoke(app, ["db", "upgrade", "--json"]) for _ in range(2)]
    finally:
        set_runtime(None)
        rt.close()

    assert [r.exit_code for r in runs] == [0, 0]
    assert [json.loads(r.stdout)["alerts_masked"] for r in runs] == [1, 0]
    with transaction(engine) as s:
        payload = s.scalar(select(Alert.payload))
    assert payload["facts"]["phone"] == "138****5678"
    assert not has_unmasked_mobile(json.dumps(payload, ensure_ascii=False))
    assert payload["facts"]["request"] == "R-A1-20261012-001" and payload["facts"]["address"] == "3栋501"


def test_db_upgrade_gives_alerts_an_older_version_stored_their_common_fields_so_they_still_render(settings, engine):
    from zoneinfo import ZoneInfo

    from typer.testing import CliRunner

    from commands.cli import app
    from commands.common import set_runtime
    from flows.runtime import Runtime
    from notifications.digest import item_from

    seen = at("2026-10-12", "18:00")
    old = {  # as versions before the typed common fields stored them: everything among the facts
        "cash-unhanded:A1-PL1:2026-10-12@finance-manager": ("cash-unhanded", None, {
            "number": "钱师傅(A1-PL1) 2026-10-12", "holder": "钱师傅", "due_at": seen.isoformat(),
            "overdue_minutes": 30, "amount": "80.00", "phone": "13812345678"}),
        "fee-not-collected:WO-1@cs-supervisor": ("fee-not-collected", "WO-1", {
            "order_number": "WO-1", "holder": "钱师傅", "amount": "80.00"}),
        "reply-overdue:R-1@cs-supervisor": ("reply-overdue", None, {"request_number": "R-1", "holder": "王客服"}),
        "receipt-gap:000103@finance-manager": ("receipt-gap", None, {"receipt": "000103", "holder": "钱师傅"}),
    }
    with transaction(engine) as s:
        for key, (kind, order, facts) in old.items():
            s.add(Alert(dedupe_key=key, kind=kind, office="A1", tag=key.split("@")[1], order_number=order,
                        payload={"key": key.split("@")[0], "department": "engineering",
                                 "occurred_at": seen.isoformat(), "facts": facts},
                        first_seen=seen, last_seen=seen))
    rt = Runtime(settings.model_copy(update={"locale": "en"}))
    set_runtime(rt)
    try:
        runs = [CliRunner().invoke(app, ["db", "upgrade", "--json"]) for _ in range(2)]
    finally:
        set_runtime(None)
        rt.close()

    assert [r.exit_code for r in runs] == [0, 0]
    assert [json.loads(r.stdout)["alerts_filled"] for r in runs] == [4, 0]
    with transaction(engine) as s:
        items = {a.kind: item_from(a, as_of=seen, tz=ZoneInfo("Asia/Shanghai")) for a in s.scalars(select(Alert))}
        payloads = [a.payload for a in s.scalars(select(Alert))]
    assert {kind: (i.number, i.holder) for kind, i in items.items()} == {
        "cash-unhanded": ("钱师傅(A1-PL1) 2026-10-12", "钱师傅"), "fee-not-collected": ("WO-1", "钱师傅"),
        "reply-overdue": ("R-1", "王客服"), "receipt-gap": ("000103", "钱师傅")}
    assert (items["cash-unhanded"].amount, items["cash-unhanded"].overdue_minutes) == ("80.00", 30)
    assert not any(has_unmasked_mobile(json.dumps(p, ensure_ascii=False)) for p in payloads)
