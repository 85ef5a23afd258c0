"""How a batch is written: one flush per batch, and a row that fails half-way undone by re-running its batch."""
from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from models.ledger.db import session_factory, transaction
from models.imports import import_ledger
from models.ledger.tables import AuditEvent, ServiceRequest
from tests.builders import TZ, setup_office

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=TZ)
HEADER = ["登记号", "登记时间", "登记人", "接待方式", "业主姓名", "住址", "联系方式", "类别", "报修内容", "费用",
          "回复时间"]


@pytest.fixture
def office(engine):
    with transaction(engine) as s:
        return setup_office(s, "A1")


def request_row(n: int, *, phone: bool = True, replied: str | None = "2026/10/12 9:05") -> list[str]:
    return [f"R-{n:03d}", "2026/10/12 9:00", "王客服", "来电" if phone else "来访", f"业主{n}", f"{n}栋101",
            f"138{n:08d}", "水", "漏水", "80", (replied or "") if phone else ""]


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    path.write_text("\n".join(",".join(r) for r in [HEADER, *rows]) + "\n", encoding="utf-8-sig")
    return path


def run_import(engine, calendar, path, **kwargs):
    return import_ledger(session_factory(engine), path, calendar=calendar, now=NOW, **kwargs)


def ledger(engine) -> tuple[list[str], dict[str, int]]:
    with engine.connect() as conn:
        numbers = list(conn.scalars(select(ServiceRequest.number).order_by(ServiceRequest.number)))
        audits = dict(conn.execute(select(AuditEvent.action, func.count()).where(AuditEvent.actor != "setup")
                                   .group_by(AuditEvent.action)).all())
    return numbers, audits


def test_a_reply_refused_after_its_registration_leaves_neither_and_the_rest_of_the_batch_is_kept(
        engine, calendar, office, tmp_path):
    # row 3 registers fine, then its reply (before the registration) is refused: the whole row must go
    rows = [request_row(n) for n in range(1, 7)]
    rows[2] = request_row(3, replied="2026/10/12 8:00")
    path = write_csv(tmp_path / "登记表.csv", rows)

    result = run_import(engine, calendar, path, batch_size=4)

    assert (result.kept, result.rejected) == (5, 1)
    assert [(r.line, r.column, r.code) for r in result.rejects] == [(4, "回复时间", "before_event")]
    numbers, audits = ledger(engine)
    assert numbers == ["R-001", "R-002", "R-004", "R-005", "R-006"]
    assert audits == {"register": 5, "reply": 5}


def test_every_imported_registration_and_reply_writes_its_audit_event(engine, calendar, office, tmp_path):
    rows = [request_row(n, phone=n % 2 == 0) for n in range(1, 12)]
    path = write_csv(tmp_path / "登记表.csv", rows)

    result = run_import(engine, calendar, path, batch_size=4)

    assert (result.kept, result.rejected) == (11, 0)
    numbers, audits = ledger(engine)
    assert len(numbers) == 11
    assert audits == {"register": 11, "reply": 5}


def test_a_number_twice_in_one_batch_is_registered_once_and_then_present(engine, calendar, office, tmp_path):
    path = write_csv(tmp_path / "登记表.csv", [request_row(1), request_row(2), request_row(1, replied=None)])

    result = run_import(engine, calendar, path, batch_size=10)

    assert (result.kept, result.present, result.rejected) == (2, 1, 0)
    assert ledger(engine) == (["R-001", "R-002"], {"register": 2, "reply": 2})


def test_a_refused_row_beside_good_ones_in_a_dry_run_writes_nothing(engine, calendar, office, tmp_path):
    rows = [request_row(n) for n in range(1, 6)]
    rows[1] = request_row(2, replied="2026/10/12 8:00")
    path = write_csv(tmp_path / "登记表.csv", rows)
    before = ledger(engine)

    result = run_import(engine, calendar, path, batch_size=2, dry_run=True)

    assert (result.kept, result.rejected) == (4, 1)
    assert ledger(engine) == before


def write_rows(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    path.write_text("\n".join(",".join(r) for r in [header, *rows]) + "\n", encoding="utf-8-sig")
    return path


ORDER_HEADER = ["通知单号", "登记号", "施工人员", "开单时间", "约定时间", "完工时间", "验收时间"]


def order_row(number: str, request: str) -> list[str]:
    return [number, request, "钱师傅", "2026/10/12 9:10", "2026/10/12 10:00", "2026/10/12 10:40", "2026/10/12 10:50"]


def test_a_second_order_for_one_request_in_the_same_batch_is_refused_as_already_issued(
        engine, calendar, office, tmp_path):
    run_import(engine, calendar, write_csv(tmp_path / "登记表.csv", [request_row(1), request_row(2)]))
    orders = write_rows(tmp_path / "通知单.csv", ORDER_HEADER,
                        [order_row("WO-1", "R-001"), order_row("WO-2", "R-002"), order_row("WO-3", "R-001")])

    result = run_import(engine, calendar, orders, batch_size=10)

    assert (result.kept, result.rejected) == (2, 1)
    assert [(r.line, r.column, r.code, r.params["order"]) for r in result.rejects] == [
        (4, "登记号", "already_issued", "WO-1")]


def test_a_second_receipt_for_one_order_in_the_same_batch_is_refused_as_already_collected(
        engine, calendar, office, tmp_path):
    run_import(engine, calendar, write_csv(tmp_path / "登记表.csv", [request_row(1), request_row(2)]))
    run_import(engine, calendar, write_rows(tmp_path / "通知单.csv", ORDER_HEADER,
                                            [order_row("WO-1", "R-001"), order_row("WO-2", "R-002")]))
    receipts = write_rows(tmp_path / "收费.csv", ["收据号", "通知单号", "金额", "收款方式", "收款时间", "收款人"],
                          [["000101", "WO-1", "80", "现金", "2026/10/12 11:00", "钱师傅"],
                           ["000102", "WO-2", "80", "现金", "2026/10/12 11:05", "钱师傅"],
                           ["000103", "WO-1", "80", "现金", "2026/10/12 11:10", "钱师傅"]])

    result = run_import(engine, calendar, receipts, batch_size=10)

    assert (result.kept, result.rejected) == (2, 1)
    assert [(r.line, r.code, r.params["receipt"]) for r in result.rejects] == [(4, "already_collected", "000101")]


@pytest.mark.parametrize("kind", ["requests", "staff"])
def test_a_row_too_long_for_its_column_is_reported_and_the_rest_of_its_batch_is_kept(
        engine, calendar, office, tmp_path, kind):
    # the desk's column rule refuses it on every backend, before PostgreSQL would (SQLite never would)
    too_long = "长" * 101  # the name columns hold 100 characters
    if kind == "requests":
        rows = [request_row(n) for n in range(1, 5)]
        rows[1][4] = too_long
        path = write_csv(tmp_path / "登记表.csv", rows)
    else:
        path = tmp_path / "员工.csv"
        path.write_text("工号,姓名,服务处,部门,岗位\n" + "".join(
            f"A1-W{n},{too_long if n == 2 else f'师傅{n}'},A1,工程部,师傅\n" for n in range(1, 5)), encoding="utf-8")

    result = run_import(engine, calendar, path, batch_size=10)

    assert (result.kept, result.rejected) == (3, 1)
    assert [(r.line, r.code) for r in result.rejects] == [(3, "text_too_long")]
    assert "at most 100" in result.rejects[0].reason("en")
