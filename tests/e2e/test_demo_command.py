"""`bianmin demo` as a newcomer runs it: a fresh folder, nothing configured, one command."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from openpyxl import load_workbook

BIANMIN = Path(sys.executable).with_name("bianmin")


def bianmin(folder: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BIANMIN_", "PREFECT_"))}
    env.update(PREFECT_HOME=str(folder / "prefect-home"), PREFECT_SERVER_ANALYTICS_ENABLED="false",
               BIANMIN_LOCALE="en")
    return subprocess.run([str(BIANMIN), *args], cwd=folder, env=env, capture_output=True, text=True, timeout=600)


def test_bianmin_demo_in_a_fresh_folder_finds_every_planted_problem_once_and_says_where_things_are(tmp_path, backend):
    if backend != "sqlite":
        pytest.skip("the newcomer's demo runs on the default SQLite database")

    done = bianmin(tmp_path, "demo", "--json")

    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["all_found"] and result["figures_match"]
    assert result["database"] == "sqlite:///var/bianmin.db" and (tmp_path / "var" / "bianmin.db").exists()
    assert {f["planted"]["kind"] for f in result["found"]} == {
        "reply-overdue", "callback-overdue", "cash-unhanded", "cash-shortfall", "receipt-gap", "private-job"}
    assert len(list((tmp_path / "var" / "outbox").glob("*.txt"))) >= result["messages_sent"] > 0
    for report in result["reports"]:
        assert load_workbook(tmp_path / report, read_only=True).sheetnames[0] == "Summary"

    again = bianmin(tmp_path, "demo")

    assert again.returncode == 2
    assert again.stderr.strip().splitlines() == [
        "The database sqlite:///var/bianmin.db already holds a ledger (perhaps an earlier demo): the demo builds "
        "into an empty database only. Remove the data folder (./var by default) or set BIANMIN_DATA_DIR to another "
        "folder, and run it again"]
