"""Batches decided while the batch before them is written: the same ledger as one batch at a time, and what
another writer did meanwhile is decided on again, never written over.

On SQLite the import decides batch N+1 while a thread writes batch N (models.imports.pipeline._Pipeline); on
PostgreSQL each batch is decided and written in turn. Another writer is played by a trigger that fires when the
import inserts one request, so it acts at a known point: between the look-up of a later row and its write.
"""
from __future__ import annotations

import gc
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import event, select

from models.ledger.db import session_factory, transaction
from models.imports import import_ledger
from models.ledger.tables import AuditEvent, ServiceRequest
from tests.builders import TZ, ledger_picture, request_for, setup_office

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=TZ)
HEADER = ["登记号", "登记时间", "登记人", "接待方式", "业主姓名", "住址", "联系方式", "类别", "报修内容", "费用",
          "回复时间", "回复人"]


@pytest.fixture
def office(engine):
    with transaction(engine) as s:
        return setup_office(s, "A1")


def row(number: str, *, minute: int = 0, phone: bool = True, replied: str = "", by: str = "王客服",
        replied_by: str = "") -> list[str]:
    return [number, f"2026/10/12 9:{minute:02d}", by, "来电" if phone else "来访", f"业主{number}", "3栋101",
            "13812345678", "水", "漏水", "80", replied, replied_by]


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    path.write_text("\n".join(",".join(r) for r in [HEADER, *rows]) + "\n", encoding="utf-8-sig")
    return path


def run_import(engine, calendar, path: Path, **kwargs):
    return import_ledger(session_factory(engine), path, calendar=calendar, now=NOW, **kwargs)


def outcome(result) -> tuple:
    return (result.kept, result.present, result.rejected,
            [(r.line, r.column, r.code) for r in result.rejects])


# rows that refer to rows of the batch just before them, whatever the batch size: a reply to a request registered
# unanswered a row or two earlier, a number again, refusals between them
CROSSING = [
    row("R-01", minute=0),
    row("R-01", minute=0, replied="2026/10/12 9:05"),
    row("R-02", minute=1, by="钱师傅"),  # a plumber cannot register
    row("R-03", minute=2, phone=False),
    row("R-04", minute=3),
    row("R-03", minute=2, phone=False),  # again: present
    row("R-04", minute=3, replied="2026/10/12 9:01"),  # a reply before its registration
    row("R-04", minute=3, replied="2026/10/12 9:07", replied_by="张经理"),
    row("R-05", minute=4, replied="2026/10/12 9:06"),
    row("R-05", minute=4, replied="2026/10/12 9:09"),  # replied already
    row("R-06", minute=5),
    row("R-07", minute=6, by="无此人"),
    row("R-06", minute=5, replied="2026/10/12 9:08"),
    row("R-08", minute=7),
]


@pytest.mark.parametrize("batch_size", [1, 2, 3, 5])
def test_batches_decided_while_the_one_before_is_written_give_the_ledger_of_one_batch_at_a_time(
        engine, calendar, office, tmp_path, backend, batch_size):
    if backend != "sqlite":
        pytest.skip("batches overlap on SQLite only")
    path = write_csv(tmp_path / "登记表.csv", CROSSING)
    one_at_a_time = outcome(run_import(engine, calendar, path, batch_size=batch_size, overlap=False))
    written = ledger_picture(engine)
    with engine.begin() as conn:
        conn.execute(AuditEvent.__table__.delete().where(AuditEvent.actor != "setup"))
        conn.execute(ServiceRequest.__table__.delete())

    overlapped = outcome(run_import(engine, calendar, path, batch_size=batch_size))

    assert overlapped == one_at_a_time
    assert ledger_picture(engine) == written
    requests, audits = written
    assert {r["number"]: r["replied_at"] is not None for r in requests} == {
        "R-01": True, "R-03": False, "R-04": True, "R-05": True, "R-06": True, "R-08": False}
    assert [(a["action"], a["entity_ref"]) for a in audits] == [
        ("register", "R-01"), ("reply", "R-01"), ("register", "R-03"), ("register", "R-04"), ("reply", "R-04"),
        ("register", "R-05"), ("reply", "R-05"), ("register", "R-06"), ("reply", "R-06"), ("register", "R-08")]
    assert one_at_a_time == (9, 2, 3, [(4, "登记人", "cs_only"), (8, "回复时间", "before_event"),
                                         (13, "登记人", "import_unknown_staff")])


def when_inserted(engine, backend: str, number: str, action: str) -> None:
    """Another writer's `action` (SQL), run by the database when the import inserts request `number`.

    On SQLite the insert then takes half a second more, so that the import decides the next batch (on what the
    ledger held before) while the batch holding `number` is still being written.
    """
    with engine.begin() as conn:
        if backend == "sqlite":
            event.listen(engine, "connect", lambda dbapi, _: dbapi.create_function("pause", 1, time.sleep))
            engine.dispose()  # connections made from here on know pause()
            conn.exec_driver_sql(f"CREATE TRIGGER other_writer AFTER INSERT ON service_requests "
                                 f"WHEN NEW.number = '{number}' BEGIN SELECT pause(0.5); {action}; END")
        else:
            conn.exec_driver_sql(f"CREATE OR REPLACE FUNCTION other_writer() RETURNS trigger AS $$ "
                                 f"BEGIN {action}; RETURN NEW; END $$ LANGUAGE plpgsql")
            conn.exec_driver_sql(f"CREATE TRIGGER other_writer AFTER INSERT ON service_requests FOR EACH ROW "
                                 f"WHEN (NEW.number = '{number}') EXECUTE FUNCTION other_writer()")


@pytest.fixture
def no_trigger_left(engine, backend):
    yield
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TRIGGER IF EXISTS other_writer" + (" ON service_requests" if backend != "sqlite"
                                                                       else ""))


@pytest.mark.parametrize("batch_size", [3, 5])  # R-OLD's reply in R-05's batch, or in the batch after it
def test_a_reply_to_a_request_another_writer_answered_meanwhile_is_decided_again_not_written_over(
        engine, calendar, office, tmp_path, backend, batch_size, no_trigger_left):
    with transaction(engine) as s:
        request_for(s, office, at=datetime(2026, 10, 12, 8, 0, tzinfo=TZ), number="R-OLD")
    # the desk answers R-OLD at 08:03 (00:03 UTC) just as the import writes R-05
    when_inserted(engine, backend, "R-05", "UPDATE service_requests SET replied_at = '2026-10-12 00:03:00', "
                  "replied_by_id = NEW.received_by_id WHERE number = 'R-OLD'")
    rows = [row(f"R-0{n}", minute=n) for n in range(1, 6)]
    rows.append(row("R-OLD", minute=0, replied="2026/10/12 9:30"))
    rows.append(row("R-06", minute=6))

    result = run_import(engine, calendar, write_csv(tmp_path / "登记表.csv", rows), batch_size=batch_size)

    assert (result.kept, result.present, result.rejected) == (6, 1, 0)
    with engine.connect() as conn:
        answered = conn.scalar(select(ServiceRequest.replied_at).where(ServiceRequest.number == "R-OLD"))
        replies = conn.scalars(select(AuditEvent.entity_ref).where(AuditEvent.action == "reply")).all()
    assert answered == datetime(2026, 10, 12, 8, 3, tzinfo=TZ)
    assert "R-OLD" not in replies


# the other writer registers R-07, a walk-in, as the import writes R-05
OTHER_WALK_IN_R07 = ("INSERT INTO service_requests (number, office_id, channel, received_at, received_by_id, "
                     "resident_name, address, phone, category, description, agreed_fee) SELECT 'R-07', office_id, "
                     "'walk_in', received_at, received_by_id, '另一位', '9栋901', '13900000000', 'plumbing', "
                     "'别处登记', 50 FROM service_requests WHERE number = 'R-05'")


@pytest.mark.parametrize("batch_size", [3, 5, 10])  # R-07 in R-05's batch, in the batch after it, or both in one
def test_a_request_another_writer_registered_meanwhile_counts_as_present_and_keeps_its_own_values(
        engine, calendar, office, tmp_path, backend, batch_size, no_trigger_left):
    when_inserted(engine, backend, "R-05", OTHER_WALK_IN_R07)
    rows = [row(f"R-0{n}", minute=n) for n in range(1, 10)]

    result = run_import(engine, calendar, write_csv(tmp_path / "登记表.csv", rows), batch_size=batch_size)

    assert (result.kept, result.present, result.rejected) == (8, 1, 0)
    requests, audits = ledger_picture(engine)
    assert [r["number"] for r in requests] == [f"R-0{n}" for n in range(1, 10)]
    assert next(r for r in requests if r["number"] == "R-07")["resident_name"] == "另一位"
    assert [a["entity_ref"] for a in audits] == [f"R-0{n}" for n in range(1, 10) if n != 7]


def test_a_batch_decided_beside_one_the_database_refused_is_decided_again(
        engine, calendar, office, tmp_path, backend, no_trigger_left):
    # batches of 3: R-05's batch brings the other writer's walk-in R-07; R-07's batch was decided before that
    # committed, so the database refuses it; the batch after it, which answers R-07, had been decided beside it,
    # as the answer to the import's own phone request R-07
    when_inserted(engine, backend, "R-05", OTHER_WALK_IN_R07)
    rows = [row(f"R-{n:02d}", minute=n) for n in range(1, 10)]
    rows += [row("R-07", minute=7, replied="2026/10/12 9:20"), row("R-10", minute=10)]

    result = run_import(engine, calendar, write_csv(tmp_path / "登记表.csv", rows), batch_size=3)

    assert outcome(result) == (9, 2, 0, [])  # R-07 as the other writer left it, and its answer: a walk-in's
    with engine.connect() as conn:
        r07 = conn.execute(select(ServiceRequest.channel, ServiceRequest.replied_at)
                           .where(ServiceRequest.number == "R-07")).one()
    assert tuple(r07) == ("walk_in", None)


def test_an_import_leaves_the_interpreters_collection_thresholds_and_switch_interval_as_it_found_them(
        engine, calendar, office, tmp_path):
    before = gc.get_threshold(), sys.getswitchinterval()
    path = write_csv(tmp_path / "登记表.csv", [row(f"R-{n:02d}", minute=n % 60) for n in range(30)])

    result = run_import(engine, calendar, path, batch_size=4)
    refused = run_import(engine, calendar, write_csv(tmp_path / "登记表 坏.csv", [["R-99", "不是时间"]]), batch_size=4)

    assert (result.kept, refused.rejected) == (30, 1)
    assert (gc.get_threshold(), sys.getswitchinterval()) == before

