"""`bianmin watch` as cron or a systemd timer runs it: a process of its own, its exit code and its JSON."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from models.ledger.db import upgrade
from tests.servers import free_port

BIANMIN = str(Path(sys.executable).with_name("bianmin"))


def env_for(data_dir: Path, **extra: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("BIANMIN_", "PREFECT_"))}
    return keep | {"BIANMIN_DATA_DIR": str(data_dir), "BIANMIN_LOCALE": "en",
                   "BIANMIN_CONFIG_FILE": str(data_dir / "absent.toml"), **extra}


def test_a_prefect_server_that_does_not_answer_makes_watch_exit_1_with_the_problem_in_its_json(tmp_path):
    data_dir = tmp_path / "var"
    upgrade(f"sqlite:///{data_dir / 'bianmin.db'}")
    env = env_for(data_dir, PREFECT_API_URL=f"http://127.0.0.1:{free_port()}/api")

    done = subprocess.run([BIANMIN, "watch", "--json"], env=env, capture_output=True, text=True, timeout=120)

    assert done.returncode == 1, done.stderr
    data = json.loads(done.stdout)
    assert data["problems"] == ["prefect-down"] and data["sent"]["problems"] == ["prefect-down"]
    [digest] = (data_dir / "outbox").glob("*-ops-*.txt")  # no apprise config: ops' message is a file
    assert "The Prefect server does not answer" in digest.read_text(encoding="utf-8")
    assert oct(os.stat(digest).st_mode & 0o777) == "0o600"


def test_a_bad_as_of_is_one_line_and_exit_2(tmp_path):
    done = subprocess.run([BIANMIN, "watch", "--as-of", "next tuesday"], env=env_for(tmp_path / "var"),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
