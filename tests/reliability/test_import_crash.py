"""import crash: a `bianmin import` of 100,000 registrations SIGKILLed mid-way, then run again.

Each batch is one transaction (docs/import.md "Batches, crashes and re-runs"): what the kill leaves is whole
batches, the file's first rows in file order; the rerun skips them by their numbers and finishes the rest, and the
ledger is then the one a clean import of the same file into an empty database gives.
"""
from __future__ import annotations

import csv
import json
import os
import random
import signal
import subprocess
import time
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import delete, func, select

from models.ledger.db import make_engine, transaction
from models.ledger.tables import AuditEvent, Base, ServiceRequest
from tests.builders import setup_office

ROOT = Path(__file__).resolve().parents[2]
BIANMIN = ROOT / ".venv" / "bin" / "bianmin"
ROWS = 100_000
BATCH = 1_000
HEADER = ["登记号", "服务处", "小区", "登记时间", "登记人", "接待方式", "业主姓名", "住址", "联系方式", "类别", "报修内容",
          "费用", "回复时间", "回复人"]
SEEDED = {"departments", "alembic_version"}


def registrations(path: Path, rows: int) -> list[str]:
    """`rows` registrations of office A1 as its desk would have them (the benchmark's file, bench/run.py), 60%
    by phone with their reply; their numbers in file order."""
    rng = random.Random(18)
    start = datetime(2026, 10, 8, 9, 0)
    jobs = [("水", "疏通下水道", "80"), ("电", "更换开关插座", "30"), ("保洁", "家庭保洁", "120"), ("绿化", "阳台绿植修剪", "40")]
    numbers = []
    with path.open("w", encoding="utf-8", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(HEADER)
        for n in range(rows):
            received = start + timedelta(minutes=n % 4000, seconds=n // 4000)
            phone = rng.random() < 0.6
            category, description, fee = rng.choice(jobs)
            number = f"R-A1-{n:07d}"
            numbers.append(number)
            out.writerow([number, "A1", "A1-C1", f"{received:%Y-%m-%d %H:%M:%S}", "A1-CS1", "来电" if phone else "来访",
                          "王芳", f"{rng.randrange(30) + 1}栋{rng.randrange(101, 2604)}", f"138{rng.randrange(10**8):08d}",
                          category, description, fee,
                          f"{received + timedelta(minutes=5):%Y-%m-%d %H:%M:%S}" if phone else "",
                          "A1-CS1" if phone else ""])
    return numbers


def environment(db_url: str, folder: Path) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("BIANMIN_", "PREFECT_"))}
    return keep | {"BIANMIN_DATABASE_URL": db_url, "BIANMIN_DATA_DIR": str(folder / "var"), "BIANMIN_LOCALE": "en",
                   "BIANMIN_CONFIG_FILE": str(folder / "absent.toml")}


def start_import(env: dict[str, str], path: Path) -> subprocess.Popen:
    return subprocess.Popen([str(BIANMIN), "import", str(path), "--batch-size", str(BATCH), "--json"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish_import(env: dict[str, str], path: Path) -> dict:
    proc = start_import(env, path)
    out, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, err
    return json.loads(out)


def requests_in(engine) -> int:
    with engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(ServiceRequest))


def ledger(engine) -> dict:
    """What the import wrote, without database ids: every table's row count, the registrations as stored, the
    audit trail (when, who, what, of which row), and how many numbers are there more than once."""
    with engine.connect() as conn:
        counts = {t.name: conn.scalar(select(func.count()).select_from(t))
                  for t in Base.metadata.sorted_tables if t.name not in SEEDED}
        r = ServiceRequest
        stored = sorted(tuple(row) for row in conn.execute(select(
            r.number, r.received_at, r.channel, r.resident_name, r.address, r.phone, r.category, r.description,
            r.replied_at)))
        a = AuditEvent
        audits = sorted(tuple(row) for row in conn.execute(select(a.at, a.actor, a.action, a.entity, a.entity_ref)))
        twice = conn.scalar(select(func.count()).select_from(
            select(r.number).group_by(r.number).having(func.count() > 1).subquery()))
    return {"counts": counts, "requests": stored, "audits": audits, "duplicates": twice}


def empty(engine) -> None:
    with transaction(engine) as s:
        for table in reversed(Base.metadata.sorted_tables):
            if table.name not in SEEDED:
                s.execute(delete(table))
        setup_office(s, "A1")


def test_a_killed_import_leaves_whole_batches_and_its_rerun_equals_a_clean_import(db_url, engine, tmp_path, figure):
    path = tmp_path / "登记表.csv"
    numbers = registrations(path, ROWS)
    env = environment(db_url, tmp_path)

    # the clean import, into an empty ledger
    empty(engine)
    clean_result = finish_import(env, path)
    clean = ledger(engine)
    assert (clean_result["kept"], clean_result["rejected"]) == (ROWS, 0)

    # the same file into an empty ledger again, killed once some batches (not all) are committed
    empty(engine)
    proc = start_import(env, path)
    watch = make_engine(db_url)
    try:
        seen = 0
        while proc.poll() is None and seen < ROWS // 5:
            time.sleep(0.02)
            seen = requests_in(watch)
        time.sleep(random.Random(seen).uniform(0, 0.3))  # then anywhere in a batch, not just after a commit
        assert proc.poll() is None, "the import ended before it could be killed: make ROWS larger"
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        after_kill = requests_in(watch)
    finally:
        watch.dispose()
    assert proc.returncode == -signal.SIGKILL

    with engine.connect() as conn:
        kept = set(conn.scalars(select(ServiceRequest.number)))
    partial_batches = after_kill % BATCH
    in_file_order = kept == set(numbers[:after_kill])

    rerun_result = finish_import(env, path)
    rerun = ledger(engine)

    rerun_equal = rerun == clean
    figure("import crash", rows=ROWS, batch=BATCH, kills=1, killed_after=after_kill,
           partial_batches=partial_batches, duplicates=rerun["duplicates"], rerun_equal=rerun_equal)
    assert 0 < after_kill < ROWS
    assert partial_batches == 0 and in_file_order
    assert (rerun_result["kept"], rerun_result["already_present"], rerun_result["rejected"]) == (
        ROWS - after_kill, after_kill, 0)
    assert rerun["duplicates"] == 0
    assert rerun_equal
