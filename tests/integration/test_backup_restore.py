"""docs/deploy.md's backup and restore, done as written (sqlite3 .backup; pg_dump -Fc / pg_restore into a fresh
database): the next runs on the restored ledger find exactly what they find on the original."""
from __future__ import annotations

import shutil
import subprocess
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import make_url

from commands.generator import generate_month
from flows.callbacks import run_chase_callbacks, run_chase_replies
from flows.cash import run_cash_check
from flows.runtime import Runtime
from flows.settings import Settings
from models.ledger.db import make_engine, transaction, upgrade
from models.ledger.tables import Alert, FlowWatermark
from tests.builders import at


def checks(rt: Runtime, when) -> list[tuple]:
    """The three daily checks as of `when`: what each found and did to the outbox."""
    out = []
    for result in (run_chase_replies(rt, when), run_chase_callbacks(rt, when),
                   run_cash_check(rt, when.date() - timedelta(days=1), when)):
        out.append((len(result.findings), result.new, result.seen_again, result.resolved, result.recorded))
    return out


def ledger_state(rt: Runtime) -> tuple:
    with transaction(rt.sessions) as s:
        alerts = sorted((a.dedupe_key, a.level, a.tag, a.sent_at, a.resolved_at, a.last_seen)
                        for a in s.scalars(select(Alert)))
        marks = sorted((m.flow, m.scope, m.window_end) for m in s.scalars(select(FlowWatermark)))
    return alerts, marks


def restore_copy(db_url: str, tmp_path) -> tuple[str, callable]:
    """Back the ledger up and restore it into a fresh database, as docs/deploy.md says; (its URL, a cleanup)."""
    if db_url.startswith("sqlite"):
        source, backup = make_url(db_url).database, tmp_path / "backup.db"
        subprocess.run(["sqlite3", source, f".backup {backup}"], check=True, timeout=120)
        fresh = tmp_path / "restored.db"
        shutil.copy(backup, fresh)
        return f"sqlite:///{fresh}", lambda: None
    if not (shutil.which("pg_dump") and shutil.which("pg_restore")):
        pytest.skip("pg_dump / pg_restore are not installed")
    url = make_url(db_url)
    dump = tmp_path / "bianmin.dump"
    plain = url.set(drivername="postgresql").render_as_string(hide_password=False)
    subprocess.run(["pg_dump", "-Fc", "-f", str(dump), "-d", plain], check=True, timeout=300)
    name = f"bianmin_restored_{uuid.uuid4().hex[:8]}"
    admin = make_engine(url.set(database="postgres").render_as_string(hide_password=False),
                        isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    fresh = url.set(database=name)
    subprocess.run(["pg_restore", "--no-owner", "-d",
                    fresh.set(drivername="postgresql").render_as_string(hide_password=False), str(dump)],
                   check=True, timeout=300)

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    return fresh.render_as_string(hide_password=False), drop


def test_a_restored_backup_makes_the_next_runs_find_exactly_what_the_original_finds(db_url, settings, tmp_path):
    original = Runtime(settings)
    generate_month(original.sessions, calendar=original.calendar, month="2026-10", offices=2, orders_per_office=40)
    checks(original, at("2026-11-02", "10:00"))  # the state the backup keeps: alerts recorded, watermarks moved
    restored_url, cleanup = restore_copy(db_url, tmp_path)
    restored = Runtime(Settings(**{**settings.model_dump(), "database_url": restored_url}))
    try:
        assert upgrade(restored_url) == upgrade(db_url)  # docs: `bianmin db upgrade` after a restore is a no-op here
        assert ledger_state(restored) == ledger_state(original)
        later = at("2026-11-03", "10:00")
        found = checks(original, later)
        assert checks(restored, later) == found
        assert any(new or resolved for _n, new, _s, resolved, _r in found)  # the next runs did change something
        assert ledger_state(restored) == ledger_state(original)
    finally:
        restored.close()
        original.close()
        cleanup()
