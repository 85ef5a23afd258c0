"""A ledger database that cannot be used (missing, not migrated, an older schema, unreachable, a bad URL): every
command that touches it says so in ONE line naming the URL (password masked) and exits 2, never a traceback."""
from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from models.ledger.db import make_engine, upgrade
from tests.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
BIANMIN = ROOT / ".venv" / "bin" / "bianmin"
PG_URL = os.environ.get("BIANMIN_TEST_DATABASE_URL")
CANARY = "pw-canary-7f3a"

# every kind of command that opens the ledger: reference data, the desk, the outbox, the import, each flow
LEDGER_COMMANDS = [
    ["office", "add", "A1", "--name", "第一服务处"],
    ["orders", "show", "WO-1"],
    ["alerts", "list"],
    ["alerts", "ack", "reply-overdue:R1", "--by", "CS1"],
    ["import", "{csv}", "--kind", "requests", "--office", "A1"],
    ["run", "chase-replies"],
    ["run", "dispatch"],
    ["run", "cash-check"],
    ["run", "monthly-tally"],
]
# what cannot even connect also stops the commands that migrate first
CONNECTING_COMMANDS = LEDGER_COMMANDS[:3] + [["run", "dispatch"], ["db", "upgrade"], ["serve"]]


def bianmin(tmp_path: Path, url: str, *args: str, locale: str = "en") -> subprocess.CompletedProcess:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("BIANMIN_", "PREFECT_"))}
    env = keep | {"BIANMIN_DATABASE_URL": url, "BIANMIN_DATA_DIR": str(tmp_path / "var"), "BIANMIN_LOCALE": locale,
                  "BIANMIN_CONFIG_FILE": str(tmp_path / "absent.toml"),
                  "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    csv = tmp_path / "requests.csv"
    csv.write_text("number,office\nR1,A1\n", encoding="utf-8")
    args = tuple(str(csv) if a == "{csv}" else a for a in args)
    return subprocess.run([str(BIANMIN), *args], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)


def assert_one_line_refusal(result: subprocess.CompletedProcess, *expected: str) -> str:
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "Traceback" not in output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, output
    for part in expected:
        assert part in lines[0], output
    return lines[0]


@pytest.fixture
def unmigrated_url(backend, tmp_path):
    """An empty database (it exists, `db upgrade` was never run) on the test's backend."""
    if backend == "sqlite":
        path = tmp_path / "empty.db"
        path.touch()
        yield f"sqlite:///{path}"
        return
    admin_url = make_url(PG_URL)
    name = f"bianmin_empty_{uuid.uuid4().hex[:10]}"
    admin = make_engine(admin_url.render_as_string(hide_password=False), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.mark.parametrize("command", LEDGER_COMMANDS, ids=" ".join)
def test_a_command_on_an_unmigrated_database_names_db_upgrade_in_one_line(unmigrated_url, tmp_path, command):
    result = bianmin(tmp_path, unmigrated_url, *command)
    assert_one_line_refusal(result, "`bianmin db upgrade`", make_url(unmigrated_url).database)


@pytest.mark.parametrize("command", LEDGER_COMMANDS[:3] + [["run", "dispatch"]], ids=" ".join)
def test_a_command_on_a_missing_sqlite_file_names_db_upgrade_and_creates_nothing(tmp_path, command):
    missing = tmp_path / "nowhere" / "bianmin.db"
    result = bianmin(tmp_path, f"sqlite:///{missing}", *command)
    assert_one_line_refusal(result, "`bianmin db upgrade`", str(missing))
    assert not missing.exists() and not missing.parent.exists()


def test_a_database_at_an_older_schema_revision_names_db_upgrade(db_url, tmp_path):
    if make_url(db_url).get_backend_name() != "sqlite":
        pytest.skip("one backend is enough: the revision is read the same way")
    old = tmp_path / "old.db"
    upgrade(f"sqlite:///{old}", "0001")
    result = bianmin(tmp_path, f"sqlite:///{old}", "alerts", "list")
    assert_one_line_refusal(result, "revision 0001", "`bianmin db upgrade`")


def test_the_refusal_is_in_chinese_by_default(tmp_path):
    path = tmp_path / "empty.db"
    path.touch()
    result = bianmin(tmp_path, f"sqlite:///{path}", "office", "add", "A1", "--name", "x", locale="zh_CN")
    assert_one_line_refusal(result, "请先运行 bianmin db upgrade")


@pytest.mark.parametrize("command", CONNECTING_COMMANDS, ids=" ".join)
def test_a_server_that_does_not_answer_is_one_line_naming_the_url_with_the_password_masked(tmp_path, command):
    url = f"postgresql://bianmin:{CANARY}@127.0.0.1:{free_port()}/ledger"
    result = bianmin(tmp_path, url, *command)
    line = assert_one_line_refusal(result, "bianmin:***@127.0.0.1", "/ledger")
    assert CANARY not in result.stdout + result.stderr, line


@pytest.mark.parametrize("url", ["nosuchdialect://bianmin:{pw}@host/ledger", "not a url at all"])
@pytest.mark.parametrize("command", [["alerts", "list"], ["db", "upgrade"], ["run", "dispatch"]], ids=" ".join)
def test_a_bad_database_url_is_one_line_with_the_password_masked(tmp_path, url, command):
    result = bianmin(tmp_path, url.format(pw=CANARY), *command)
    assert_one_line_refusal(result, "BIANMIN_DATABASE_URL")
    assert CANARY not in result.stdout + result.stderr


@pytest.mark.skipif(not PG_URL, reason="needs BIANMIN_TEST_DATABASE_URL")
@pytest.mark.parametrize("command", [["alerts", "list"], ["db", "upgrade"]], ids=" ".join)
def test_a_postgresql_database_that_does_not_exist_says_create_it_then_db_upgrade(tmp_path, command):
    url = make_url(PG_URL).set(database=f"bianmin_absent_{uuid.uuid4().hex[:8]}")
    result = bianmin(tmp_path, url.render_as_string(hide_password=False), *command)
    assert_one_line_refusal(result, "createdb", "`bianmin db upgrade`", url.database)
