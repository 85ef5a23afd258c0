"""The real `bianmin` program in its own process: exit codes, the calendar warning, no Prefect for the desk, and a
one-off flow run recorded in Prefect with no server running."""
from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import psutil
import pytest

from models import desk
from models.ledger.db import transaction
from tests.builders import at, order_for, request_for, setup_office

ROOT = Path(__file__).resolve().parents[2]
BIANMIN = ROOT / ".venv" / "bin" / "bianmin"
PYTHON = ROOT / ".venv" / "bin" / "python"


@pytest.fixture
def env(db_url, tmp_path) -> dict[str, str]:
    override = tmp_path / "company-calendar.toml"
    override.write_text('[days_off]\n"2026-12-31" = "year-end stocktaking"\n', encoding="utf-8")
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("BIANMIN_", "PREFECT_"))}
    return keep | {"BIANMIN_DATABASE_URL": db_url, "BIANMIN_DATA_DIR": str(tmp_path / "var"),
                   "BIANMIN_LOCALE": "en", "BIANMIN_CALENDAR_OVERRIDE": str(override),
                   "BIANMIN_CONFIG_FILE": str(tmp_path / "absent.toml")}


def bianmin(env, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIANMIN), *args], env=env, cwd=env["BIANMIN_DATA_DIR"].rsplit("/", 1)[0],
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def completed_orders(engine) -> dict[str, str]:
    """Two completed jobs, one to be accepted in 2026 and one in 2027."""
    numbers = {}
    with transaction(engine) as s:
        o = setup_office(s)
        for year in ("2026", "2027"):
            req = request_for(s, o, at=at(f"{year}-03-05", "09:00"))
            order = order_for(s, o, req, at=at(f"{year}-03-05", "09:10"), worker=o.plumber)
            desk.complete(s, order=order, by=o.plumber, at=at(f"{year}-03-05", "11:00"))
            numbers[year] = order.number
    return numbers


def test_accepting_in_2027_warns_once_naming_the_year_and_the_override_file(env, completed_orders):
    result = bianmin(env, "desk", "accept", completed_orders["2027"], "--signed-by", "刘女士",
                     "--at", "2027-03-05T15:00", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["state"] == "accepted"
    warnings = [line for line in result.stderr.splitlines() if "Calendar warning" in line]
    assert len(warnings) == 1
    assert "2027" in warnings[0] and env["BIANMIN_CALENDAR_OVERRIDE"] in warnings[0]


def test_accepting_in_2026_gives_no_calendar_warning(env, completed_orders):
    result = bianmin(env, "desk", "accept", completed_orders["2026"], "--signed-by", "刘女士",
                     "--at", "2026-03-05T15:00")
    assert result.returncode == 0, result.stderr
    assert "Calendar warning" not in result.stderr and completed_orders["2026"] in result.stdout


def test_a_refusal_in_a_real_process_is_one_line_on_stderr_with_exit_code_2(env, completed_orders):
    result = bianmin(env, "desk", "register", "--office", "A1", "--by", "A1-CS1", "--channel", "walk_in",
                     "--resident", "刘女士", "--address", "3栋501", "--phone", "13812345678",
                     "--category", "renovation", "--description", "重新装修厨房", "--fee", "5000")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "Refused: renovation. Household-appliance repair and house renovation are not offered as paid services "
        "(procedure, section 2)"]
    assert result.stdout == ""


def test_a_desk_command_does_not_import_prefect(env, completed_orders):
    probe = ("import sys\nfrom commands.cli import app\n"
             "try:\n    app(sys.argv[1:], standalone_mode=False)\n"
             "finally:\n    print('prefect loaded' if 'prefect' in sys.modules else 'prefect absent', file=sys.stderr)\n")
    result = subprocess.run([str(PYTHON), "-c", probe, "desk", "accept", completed_orders["2026"],
                             "--signed-by", "刘女士", "--at", "2026-03-05T15:00", "--json"],
                            env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert json.loads(result.stdout)["state"] == "accepted", result.stderr
    assert result.stderr.strip().splitlines()[-1] == "prefect absent"


def prefect_servers_for(prefect_home: Path) -> list[int]:
    """Pids of Prefect server processes keeping their state in `prefect_home`."""
    found = []
    for process in psutil.process_iter(["pid", "cmdline"]):
        if "prefect.server.api.server:create_app" not in " ".join(process.info["cmdline"] or ()):
            continue
        try:
            if process.environ().get("PREFECT_HOME") == str(prefect_home):
                found.append(process.info["pid"])
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def test_a_flow_run_with_no_prefect_server_is_recorded_in_prefect_and_leaves_no_server_behind(env):
    with socket.socket() as sock:  # nothing listens there: no `bianmin serve` to find
        sock.bind(("127.0.0.1", 0))
        env["BIANMIN_PREFECT_PORT"] = str(sock.getsockname()[1])
    prefect_home = Path(env["BIANMIN_DATA_DIR"]) / "prefect"

    result = bianmin(env, "run", "chase-replies", "--as-of", "2026-11-26T10:00", "--json")

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["recorded"] is True  # stdout holds the command's JSON and nothing else
    assert "(temporary)" in result.stderr.splitlines()[0]
    with closing(sqlite3.connect(prefect_home / "prefect.db")) as prefect_db:
        runs = prefect_db.execute(
            "SELECT flow.name, flow_run.state_name, (SELECT count(*) FROM task_run WHERE task_run.flow_run_id = "
            "flow_run.id AND task_run.state_name = 'Completed') FROM flow_run JOIN flow ON flow.id = flow_run.flow_id"
        ).fetchall()
    assert runs == [("chase-replies", "Completed", 1)]
    assert prefect_servers_for(prefect_home) == []


def test_a_temporary_prefect_server_that_cannot_start_is_a_clear_error_and_exit_code_1(env, tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        env["BIANMIN_PREFECT_PORT"] = str(sock.getsockname()[1])
    # Prefect's own database in a folder that does not exist: its server fails while starting
    env["PREFECT_API_DATABASE_CONNECTION_URL"] = f"sqlite+aiosqlite:///{tmp_path / 'missing' / 'prefect.db'}"

    result = bianmin(env, "run", "chase-replies", "--as-of", "2026-11-26T10:00", "--json")

    assert result.returncode == 1
    said = result.stderr.splitlines()
    assert said[1].startswith("chase-replies could not run: The temporary Prefect server exited during startup")
    assert str(Path(env["BIANMIN_DATA_DIR"]) / "prefect" / "temporary-server.log") in said[1]
    assert "unable to open database file" in result.stderr  # the server log's tail says why
    assert "/flows/" not in result.stderr  # no traceback of bianmin's own
    assert result.stdout == ""
