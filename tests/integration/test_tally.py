"""The monthly tally end to end: a month built through the desk operations, reconciled, reported and sent once."""
from __future__ import annotations

import json
import threading
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest
from sqlalchemy import select, text
from typer.testing import CliRunner

from flows.tally import run_monthly_tally
from models import desk
from models.ledger.db import transaction
from models.errors import DomainError
from models.tally.queries import reconcile_month
from models.ledger.tables import Callback, Receipt, ReportRun
from tests.builders import (OfficeCodes, accepted_job, at, collect_fee, give_receipts, hand_over, order_for,
                            request_for, setup_office)
from tests.servers import http_server, smtp_server  # noqa: F401  (fixtures)

AFTER_OCTOBER = at("2026-11-01", "08:00")


def build_october(engine, calendar) -> dict[str, tuple[str, str | None]]:
    """October 2026 at office A1 with one of each finding kind: {kind: (reference, order number)}.

    Two kinds cannot be made through the desk, which refuses them (a fee before completion, an unsatisfied
    callback without its rework): they are written as rows, the way an import of an old paper ledger would.
    """
    with transaction(engine) as s:
        o = setup_office(s)
        r = give_receipts(s, o, first="000101", count=10)
        fine = accepted_job(s, calendar, o, at=at("2026-10-12", "09:00"))
        collect_fee(s, o, fine, receipt=r[0], at=at("2026-10-12", "11:30"))
        hand_over(s, o, receipts=[r[0]], at=at("2026-10-12", "16:00"))
        desk.callback(s, order=fine, by=o.clerk, outcome="satisfied", at=at("2026-10-13", "10:00"), calendar=calendar)

        unpaid = accepted_job(s, calendar, o, at=at("2026-10-13", "09:00"))
        desk.callback(s, order=unpaid, by=o.clerk, outcome="satisfied", at=at("2026-10-14", "10:00"), calendar=calendar)

        differs = accepted_job(s, calendar, o, at=at("2026-10-14", "09:00"))
        collect_fee(s, o, differs, receipt=r[1], amount=Decimal("60.00"), method="wechat", reason="老人优惠",
                    at=at("2026-10-14", "11:30"))
        desk.callback(s, order=differs, by=o.clerk, outcome="satisfied", at=at("2026-10-15", "10:00"),
                      calendar=calendar)

        # receipt 000103 is skipped: 000104 is used next
        unhanded = accepted_job(s, calendar, o, at=at("2026-10-15", "09:00"))
        collect_fee(s, o, unhanded, receipt=r[3], at=at("2026-10-15", "11:30"))
        desk.callback(s, order=unhanded, by=o.clerk, outcome="satisfied", at=at("2026-10-16", "10:00"),
                      calendar=calendar)

        short = accepted_job(s, calendar, o, at=at("2026-10-16", "09:00"))
        collect_fee(s, o, short, receipt=r[4], at=at("2026-10-16", "11:30"))
        handover = hand_over(s, o, receipts=[r[4]], counted=Decimal("70.00"), at=at("2026-10-16", "16:00"))
        desk.callback(s, order=short, by=o.clerk, outcome="satisfied", at=at("2026-10-19", "10:00"),
                      calendar=calendar)

        private = desk.department_report(s, by=o.eng_supervisor, department="engineering", worker=o.plumber,
                                         address="5栋101", description="疏通下水道", fee=Decimal("50.00"),
                                         at=at("2026-10-20", "17:00"))
        desk.department_report(s, by=o.eng_supervisor, department="engineering", worker=o.plumber,
                               address="3栋2单元501", description="换水龙头时顺便修了空调", order=fine.number,
                               at=at("2026-10-20", "17:05"))

        no_callback = accepted_job(s, calendar, o, at=at("2026-10-19", "09:00"))
        collect_fee(s, o, no_callback, receipt=r[5], method="wechat", at=at("2026-10-19", "11:30"))

        unsatisfied = accepted_job(s, calendar, o, at=at("2026-10-20", "09:00"))
        collect_fee(s, o, unsatisfied, receipt=r[6], method="alipay", at=at("2026-10-20", "11:30"))
        owed = s.scalar(select(Callback).where(Callback.order_id == unsatisfied.id))
        owed.done_at, owed.outcome, owed.note = at("2026-10-21", "10:00"), "unsatisfied", "还在漏"

        unfinished = order_for(s, o, request_for(s, o, at=at("2026-10-22", "09:00"), channel="walk_in"),
                               at=at("2026-10-22", "09:10"))
        receipt = s.scalar(select(Receipt).where(Receipt.number == r[7]))
        receipt.state, receipt.order_id, receipt.amount, receipt.method = "used", unfinished.id, Decimal("80.00"), "card"
        receipt.collected_at = receipt.state_changed_at = at("2026-10-22", "09:30")
        receipt.collected_by_id = unfinished.worker_id
        s.flush()
        return {
            "unpaid": (unpaid.number, unpaid.number),
            "paid-without-completion": (unfinished.number, unfinished.number),
            "amount-differs": (differs.number, differs.number),
            "cash-unhanded": (unhanded.number, unhanded.number),
            "handover-shortfall": (handover.number, short.number),
            "receipt-gap": (r[2], None),
            "private-job": (private.reference, None),
            "callback-missing": (no_callback.number, no_callback.number),
            "rework-missing": (unsatisfied.number, unsatisfied.number),
            "out-of-scope": (fine.number, fine.number),
        }


@pytest.fixture
def october(engine, calendar):
    return build_october(engine, calendar)


def test_the_daily_cash_check_and_the_monthly_tally_report_the_same_shortfall_for_the_same_handover(
        engine, calendar, october):
    from models.cash.facts import HandoverShortfall
    from models.cash.queries import handover_mismatches
    from models.ledger.tables import CashHandover

    with transaction(engine) as s:  # a row not written by the desk: the collector declared what finance counted
        short = s.scalar(select(CashHandover).where(CashHandover.number == october["handover-shortfall"][0]))
        short.declared_amount, short.origin = short.counted_amount, None
    with transaction(engine) as s:
        daily = [f for f in handover_mismatches(s, as_of=AFTER_OCTOBER) if isinstance(f, HandoverShortfall)]
        tally = reconcile_month(s, month="2026-10", calendar=calendar)
    monthly = [d for d in tally.discrepancies if d.kind == "handover-shortfall"]

    assert [(f.handover, f.counted, f.covered) for f in daily] == \
        [(d.reference, d.amount, d.expected) for d in monthly] == \
        [(october["handover-shortfall"][0], Decimal("70.00"), Decimal("80.00"))]


def test_the_daily_cash_check_and_the_monthly_tally_report_the_same_receipt_gaps(engine, calendar, october):
    from models.cash.queries import receipt_custody

    with transaction(engine) as s:
        daily = receipt_custody(s, as_of=AFTER_OCTOBER, calendar=calendar).gaps
        tally = reconcile_month(s, month="2026-10", calendar=calendar)
    monthly = [d for d in tally.discrepancies if d.kind == "receipt-gap"]

    assert [(g.number, g.holder) for g in daily] == [(d.reference, d.worker) for d in monthly] == \
        [(october["receipt-gap"][0], "A1-PL1")]


def test_the_daily_cash_check_and_the_monthly_tally_report_the_same_unpaid_jobs(engine, calendar, october):
    from models.cash.queries import fees_not_collected

    with transaction(engine) as s:  # an imported rework order that carries a fee is still free (3.2.3)
        rework = order_for(s, _office(s), request_for(s, _office(s), at=at("2026-10-26", "09:00"), channel="walk_in"),
                           at=at("2026-10-26", "09:10"))
        rework.rework_of_id = s.scalar(select(Receipt.order_id).where(Receipt.number == "000105"))
        rework.completed_at = rework.accepted_at = at("2026-10-26", "15:00")
    with transaction(engine) as s:
        daily = fees_not_collected(s, as_of=AFTER_OCTOBER, calendar=calendar)
        tally = reconcile_month(s, month="2026-10", calendar=calendar)
    monthly = [d for d in tally.discrepancies if d.kind == "unpaid"]

    assert [(f.order, f.fee, f.worker) for f in daily] == \
        [(d.reference, d.expected, d.worker) for d in monthly] == [(october["unpaid"][0], Decimal("80.00"), "A1-PL1")]


@pytest.mark.parametrize("hours, reported", [(24, True), (24 * 45, False)])
def test_the_chase_and_the_monthly_tally_allow_the_same_hours_for_rework(engine, calendar, october, hours, reported):
    from models.chase import queries as chase

    with transaction(engine) as s:
        daily = chase.missing_reworks(s, as_of=AFTER_OCTOBER, calendar=calendar, rework_due_hours=hours)
        tally = reconcile_month(s, month="2026-10", calendar=calendar, rework_due_hours=hours)
    monthly = [d for d in tally.discrepancies if d.kind == "rework-missing"]

    expected = [october["rework-missing"][0]] if reported else []
    assert [m.order_number for m in daily] == [d.reference for d in monthly] == expected


def test_the_desk_and_the_monthly_tally_hold_the_same_work_out_of_scope(engine, calendar, october):
    from models import rules

    with transaction(engine) as s:
        o = _office(s)
        with pytest.raises(DomainError) as refused:
            request_for(s, o, at=at("2026-10-27", "09:00"), category="appliance", fee=Decimal("50.00"))
        tally = reconcile_month(s, month="2026-10", calendar=calendar)
    assert refused.value.code == "out_of_scope" and rules.scope_of("appliance") == "out"
    [found] = [d for d in tally.discrepancies if d.kind == "out-of-scope"]
    assert rules.mentions_out_of_scope(found.detail) and found.reference == october["out-of-scope"][0]


def _office(s) -> OfficeCodes:
    """The codes setup_office gave office A1."""
    return OfficeCodes("A1", "A1-C1", *(f"A1-{suffix}" for suffix in (
        "CS1", "CSS", "CSM", "ENS", "PL1", "EL1", "CLS", "CL1", "FC1", "FM1", "AD1")))


def test_every_finding_of_the_month_appears_once_with_its_order_number(engine, calendar, october):
    with transaction(engine) as s:
        tally = reconcile_month(s, month="2026-10", calendar=calendar)
    found = [(d.kind, d.reference, d.order_number) for d in tally.discrepancies]
    assert sorted(found) == sorted((kind, ref, order) for kind, (ref, order) in october.items())
    assert tally.findings_by_kind() == {kind: 1 for kind in october}


def _sheet_rows(path: Path, index: int) -> list[tuple]:
    book = openpyxl.load_workbook(path, read_only=True)
    try:
        return [tuple(row) for row in book.worksheets[index].iter_rows(values_only=True)]
    finally:
        book.close()


def test_workbook_totals_equal_an_independent_count_of_the_ledger(runtime, engine, october):
    result = run_monthly_tally(runtime, "2026-10", as_of=AFTER_OCTOBER)
    group = next(r for r in result.reports if r.office == "*")
    with engine.connect() as conn:  # plain SQL, not the reconciliation's code
        receipts = conn.execute(text("SELECT method, amount FROM receipts WHERE state = 'used'")).all()
        accepted = conn.execute(text("SELECT count(*) FROM work_orders WHERE accepted_at IS NOT NULL")).scalar()
    cash = sum((Decimal(str(a)) for m, a in receipts if m == "cash"), Decimal(0))
    electronic = sum((Decimal(str(a)) for m, a in receipts if m != "cash"), Decimal(0))

    departments = _sheet_rows(Path(group.path), 1)
    header, total = departments[0], departments[-1]
    column = {name: i for i, name in enumerate(header)}
    assert total[0] == "合计"
    assert Decimal(str(total[column["现金收入"]])).quantize(Decimal("0.01")) == cash == Decimal("240.00")
    assert Decimal(str(total[column["电子支付收入"]])).quantize(Decimal("0.01")) == electronic == Decimal("300.00")
    assert total[column["验收数"]] == accepted == 7
    assert total[column["问题数"]] == len(october)

    findings = _sheet_rows(Path(group.path), 3)[1:]
    assert sorted((row[3], row[2]) for row in findings) == sorted(october.values())


def test_same_data_twice_gives_identical_figures_the_same_hash_and_one_send(runtime, october):
    first = run_monthly_tally(runtime, "2026-10", as_of=AFTER_OCTOBER)
    second = run_monthly_tally(runtime, "2026-10", as_of=at("2026-11-02", "08:00"))

    assert [r.content_hash for r in first.reports] == [r.content_hash for r in second.reports]
    assert [(r.status, r.sent_before) for r in second.reports] == [("unchanged", True)] * 2
    assert (first.sent, second.sent) == (2, 0)  # office A1 and the group, once each
    assert len(list(runtime.settings.effective_outbox_dir.glob("*.txt"))) == 2
    for report in first.reports:
        folder = Path(report.path).parent
        assert json.loads((folder / "tally.json").read_text("utf-8"))["month"] == "2026-10"
    with transaction(runtime.sessions) as s:
        assert s.scalar(select(ReportRun.version).order_by(ReportRun.version.desc()).limit(1)) == 1


def test_the_same_figures_give_a_byte_identical_workbook(runtime, october, tmp_path):
    first = run_monthly_tally(runtime, "2026-10", as_of=AFTER_OCTOBER)
    kept = {r.office: Path(r.path).read_bytes() for r in first.reports}
    for r in first.reports:
        Path(r.path).unlink()
    with transaction(runtime.sessions) as s:  # forget the runs so the month is built again from scratch
        s.execute(ReportRun.__table__.delete())
    again = run_monthly_tally(runtime, "2026-10", as_of=AFTER_OCTOBER)
    assert {r.office: Path(r.path).read_bytes() for r in again.reports} == kept


def test_rows_beyond_a_sheets_limit_continue_on_the_next_sheet_and_none_is_lost(runtime, engine, calendar, october,
                                                                                tmp_path):
    from notifications.report_workbook import write_workbook

    with transaction(engine) as s:
        tally = reconcile_month(s, month="2026-10", calendar=calendar)
    assert len(tally.callbacks) > 3
    path = write_workbook(tally, tmp_path / "small-sheets.xlsx", locale="zh_CN", version=1, tz=calendar.tz,
                          sheet_rows=3)  # a header and two rows per sheet
    book = openpyxl.load_workbook(path, read_only=True)
    parts = [name for name in book.sheetnames if name.startswith("回访与返修")]
    assert parts[:2] == ["回访与返修", "回访与返修 (2)"]
    rows = [row for name in parts for row in list(book[name].iter_rows(values_only=True))[1:]]
    assert [row[1] for row in rows] == [line.order_number for line in tally.callbacks]
    assert all(book[name].max_row <= 3 for name in parts)


@pytest.mark.parametrize("locale", ["zh_CN", "en"])
def test_the_sent_workbooks_print_one_page_wide_with_title_and_page_numbers(settings, october, locale):
    from flows.runtime import Runtime
    from notifications.report_summary import title_for

    rt = Runtime(settings.model_copy(update={"locale": locale}))
    try:
        result = run_monthly_tally(rt, "2026-10", as_of=AFTER_OCTOBER)
    finally:
        rt.close()
    assert {r.office for r in result.reports} == {"A1", "*"}
    for report in result.reports:
        book = openpyxl.load_workbook(report.path)
        for ws in book.worksheets:
            setup = ws.page_setup
            assert (setup.orientation, int(setup.paperSize), setup.fitToWidth, int(setup.fitToHeight)) == (
                "landscape", 9, None, 0), ws.title  # fitToWidth absent: OOXML's default, 1
            assert ws.sheet_properties.pageSetUpPr.fitToPage and ws.print_title_rows == "$1:$1", ws.title
            assert ws.oddHeader.left.text == title_for("2026-10", report.office, 1, locale=locale)
            assert "&P" in ws.oddFooter.center.text and "&N" in ws.oddFooter.center.text


def test_events_after_the_month_do_not_change_its_report(runtime, engine, calendar, october):
    first = run_monthly_tally(runtime, "2026-10", as_of=AFTER_OCTOBER)
    with transaction(engine) as s:  # November: the callback finally done, the cash finally handed over
        desk.callback(s, order=october["callback-missing"][1], by="A1-CS1", outcome="satisfied",
                      at=at("2026-11-02", "10:00"), calendar=calendar)
        desk.handover(s, by="A1-PL1", cashier="A1-FC1", receipts=["000104"], counted=Decimal("80.00"),
                      at=at("2026-11-02", "09:00"))
    again = run_monthly_tally(runtime, "2026-10", as_of=at("2026-11-03", "08:00"))
    assert [r.content_hash for r in again.reports] == [r.content_hash for r in first.reports]
    assert again.sent == 0


def test_changed_data_makes_version_two_with_its_changes_sent_only_when_asked(runtime, engine, calendar, october):
    run_monthly_tally(runtime, "2026-10", as_of=AFTER_OCTOBER)
    with transaction(engine) as s:  # a late-entered collection, backdated into October
        desk.collect(s, order=october["unpaid"][0], by="A1-PL1", receipt="000109", amount=Decimal("80.00"),
                     method="wechat", at=at("2026-10-30", "15:00"))
    rebuilt = run_monthly_tally(runtime, "2026-10", as_of=at("2026-11-05", "08:00"))
    assert [(r.version, r.status, r.sent) for r in rebuilt.reports] == [(2, "new-version", False)] * 2

    sheets = openpyxl.load_workbook(rebuilt.reports[0].path, read_only=True).sheetnames
    assert sheets[-1] == "自v1以来的变化"
    changes = _sheet_rows(Path(rebuilt.reports[0].path), 5)
    assert any(row[0] == "findings" and row[1] == f"unpaid:{october['unpaid'][0]}" for row in changes)

    resent = run_monthly_tally(runtime, "2026-10", resend=True, as_of=at("2026-11-05", "09:00"))
    assert [(r.version, r.status, r.sent) for r in resent.reports] == [(2, "unchanged", True)] * 2
    assert run_monthly_tally(runtime, "2026-10", as_of=at("2026-11-05", "10:00")).sent == 0


def test_two_runs_at_once_send_the_month_once(runtime, october):
    results, errors = [], []
    barrier = threading.Barrier(2)

    def run():
        try:
            barrier.wait()
            results.append(run_monthly_tally(runtime, "2026-10", as_of=AFTER_OCTOBER))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sum(r.sent for r in results) == 2  # one send for A1, one for the group
    assert len(list(runtime.settings.effective_outbox_dir.glob("*.txt"))) == 2
    with transaction(runtime.sessions) as s:
        rows = s.execute(select(ReportRun.office, ReportRun.version, ReportRun.sent_at)).all()
    assert sorted((office, version) for office, version, _ in rows) == [("*", 1), ("A1", 1)]
    assert all(sent is not None for *_, sent in rows)


def _apprise_config(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "apprise.yml"
    path.write_text(f"urls:\n  - {url}:\n    - tag: administration\n", encoding="utf-8")
    return path


def test_the_report_arrives_by_email_with_the_workbook_attached(runtime, october, smtp_server, tmp_path):
    runtime.settings.apprise_config = _apprise_config(tmp_path, smtp_server.url(to="admin@example.com"))
    result = run_monthly_tally(runtime, "2026-10", as_of=AFTER_OCTOBER)
    assert result.sent == 2
    group = next(m for m in smtp_server.messages if "全集团" in m["Subject"])
    attached = smtp_server.attachments(group)
    [(name, data)] = [(n, d) for n, d in attached.items() if n.endswith(".xlsx")]
    assert name == "bianmin-group-2026-10-v1.xlsx"
    (tmp_path / name).write_bytes(data)
    book = openpyxl.load_workbook(tmp_path / name, read_only=True)
    assert book.sheetnames == ["汇总", "部门", "人员", "问题清单", "回访与返修"]
    body = smtp_server.text(group)
    assert "核对问题:10 项" in body and "收入合计" in body
    assert "13812345678" not in body
    html = group.get_body(preferencelist=("html",)).get_content()
    assert "data:image/png;base64," in html  # the chart, inline


def test_a_chat_channel_gets_the_summary_and_where_the_workbook_is(runtime, october, http_server, tmp_path):
    runtime.settings.apprise_config = _apprise_config(tmp_path, http_server.url("/hook"))
    result = run_monthly_tally(runtime, "2026-10", as_of=AFTER_OCTOBER)
    group = next(r for r in result.reports if r.office == "*")
    posted = next(b for b in http_server.json_bodies() if "全集团" in b["title"])
    assert "核对问题:10 项" in posted["message"]
    assert str(Path(group.path).resolve()) in posted["message"]
    assert "base64" not in posted["message"]
    assert sorted(a["filename"] for a in posted["attachments"]) == ["bianmin-group-2026-10-v1.xlsx", "chart.png"]


def test_a_failed_send_is_retried_by_the_next_run_and_then_not_again(runtime, october, smtp_server, tmp_path):
    runtime.settings.apprise_config = _apprise_config(tmp_path, smtp_server.url())
    smtp_server.stop()
    down = run_monthly_tally(runtime, "2026-10", as_of=AFTER_OCTOBER)
    assert down.sent == 0 and all(r.send_error for r in down.reports)
    smtp_server.start()
    up = run_monthly_tally(runtime, "2026-10", as_of=at("2026-11-01", "09:00"))
    assert up.sent == 2 and len(smtp_server.messages) == 2
    assert run_monthly_tally(runtime, "2026-10", as_of=at("2026-11-01", "10:00")).sent == 0


def test_after_downtime_the_scheduled_run_reports_every_missed_month_once(runtime, engine, calendar):
    with transaction(engine) as s:
        o = setup_office(s)
        for day in ("2026-08-12", "2026-09-15", "2026-10-13"):
            accepted_job(s, calendar, o, at=at(day, "09:00"))
    first = run_monthly_tally(runtime, as_of=at("2026-11-03", "08:00"))
    assert first.months == ("2026-08", "2026-09", "2026-10")
    assert first.sent == 6
    assert run_monthly_tally(runtime, as_of=at("2026-11-03", "09:00")).months == ()


def test_a_month_not_over_is_refused(runtime):
    with pytest.raises(DomainError) as refused:
        run_monthly_tally(runtime, "2026-11", as_of=at("2026-11-30", "23:00"))
    assert refused.value.code == "tally_month_not_over"


def test_english_headers_when_the_locale_is_english(runtime, october):
    runtime.settings.locale = "en"
    result = run_monthly_tally(runtime, "2026-10", as_of=AFTER_OCTOBER)
    book = openpyxl.load_workbook(result.reports[0].path, read_only=True)
    assert book.sheetnames == ["Summary", "Departments", "Workers", "Findings", "Callbacks & rework"]
    assert _sheet_rows(Path(result.reports[0].path), 1)[0][:3] == ("Department", "Orders", "Completed")


def test_the_flow_runs_under_prefect_and_the_cli_prints_json(runtime, october, prefect_harness):
    from commands import common as cli_common
    from commands.cli import app
    from flows.runtime import using_runtime
    from flows.tally import monthly_tally_flow

    with using_runtime(runtime):
        result = monthly_tally_flow(month="2026-10", as_of=AFTER_OCTOBER)
    assert result.sent == 2
    cli_common.set_runtime(runtime)
    try:
        out = CliRunner().invoke(app, ["run", "monthly-tally", "--month", "2026-10", "--json"])
    finally:
        cli_common.set_runtime(None)
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert [(r["office"], r["status"], r["sent"]) for r in data["reports"]] == [("A1", "unchanged", False),
                                                                              ("*", "unchanged", False)]


@pytest.mark.parametrize("streamed", [False, True], ids=["in-memory", "streamed"])
def test_the_workbook_keeps_frozen_headers_number_formats_and_column_widths(engine, calendar, october, tmp_path,
                                                                            streamed):
    from notifications.report_workbook import CONSTANT_MEMORY_ROWS, write_workbook

    with transaction(engine) as s:
        tally = reconcile_month(s, month="2026-10", calendar=calendar)
    # a month too big to hold in memory streams its rows to temporary files (constant_memory)
    path = write_workbook(tally, tmp_path / "october.xlsx", locale="zh_CN", version=1, tz=calendar.tz,
                          constant_memory_rows=0 if streamed else CONSTANT_MEMORY_ROWS)
    book = openpyxl.load_workbook(path)  # not read-only: panes, formats and widths are read too
    departments, findings = book["部门"], book["问题清单"]
    assert [book[name].freeze_panes for name in ("部门", "人员", "问题清单", "回访与返修")] == ["A2"] * 4
    header = [cell.value for cell in departments[1]]
    cash = departments.cell(row=2, column=header.index("现金收入") + 1)
    assert cash.number_format == "#,##0.00" and isinstance(cash.value, (int, float))
    rates = [row[header.index("满意率")] for row in departments.iter_rows(min_row=2)]
    assert {cell.number_format for cell in rates if cell.value is not None} == {"0.0%"}
    when = findings.cell(row=2, column=8)
    assert when.number_format == "yyyy-mm-dd hh:mm" and when.is_date
    detail_width = findings.column_dimensions["K"].width
    assert detail_width > findings.column_dimensions["B"].width  # widths follow the content, not one default


def test_offices_reconciled_apart_from_the_group_are_exactly_those_offices_of_the_group(runtime, engine, calendar, october):
    from commands.generator import Plan, generate_month

    generate_month(runtime.sessions, calendar=calendar, month="2026-10", offices=3, orders_per_office=25,
                   plan=Plan(unreplied=3, late_replies=3, overdue_callbacks=3, cash_held=3, shortfalls=3,
                             receipt_gaps=3, private_jobs=3))
    with transaction(engine) as s:
        for month in ("2026-10", "2026-11"):  # November: only its previous month has data
            group = reconcile_month(s, month=month, calendar=calendar)
            parts = group.split()
            assert sorted(parts) == (["A1", "D1", "D2", "D3"] if month == "2026-10" else ["D1", "D2", "D3"])
            for office, part in parts.items():
                assert reconcile_month(s, month=month, calendar=calendar, offices=(office,)).split() == {office: part}
            batch = tuple(sorted(parts))[::2]  # several offices at once: one pass, then split
            assert reconcile_month(s, month=month, calendar=calendar, offices=batch).split() == {
                office: parts[office] for office in batch}
        october_kinds = {d.kind for d in reconcile_month(s, month="2026-10", calendar=calendar).discrepancies}
    assert october_kinds >= set(october)  # every kind of finding took part in the comparison
