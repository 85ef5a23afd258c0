"""`bianmin web` as an operator starts it: a real uvicorn process, users added with `bianmin users add`, and the
key it generates kept owner-only."""
from __future__ import annotations

import os
import re
import socket
import stat
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from models.ledger.db import transaction
from tests.builders import setup_office

ROOT = Path(__file__).resolve().parents[2]
BIANMIN = ROOT / ".venv" / "bin" / "bianmin"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def env(db_url, tmp_path, engine) -> dict[str, str]:
    with transaction(engine) as s:
        setup_office(s, "A1")
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("BIANMIN_", "PREFECT_"))}
    return keep | {"BIANMIN_DATABASE_URL": db_url, "BIANMIN_DATA_DIR": str(tmp_path / "var"),
                   "BIANMIN_LOCALE": "en", "BIANMIN_CONFIG_FILE": str(tmp_path / "absent.toml")}


def test_bianmin_web_serves_the_login_and_keeps_its_generated_key_private(env, tmp_path):
    added = subprocess.run([str(BIANMIN), "users", "add", "li", "--name", "李主管", "--role", "cs-supervisor",
                            "--office", "A1", "--password-stdin"], env=env, input="correct horse battery\n",
                           capture_output=True, text=True, timeout=60)
    assert added.returncode == 0, added.stderr
    port = _free_port()
    server = subprocess.Popen([str(BIANMIN), "web", "--port", str(port)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            pytest.fail("bianmin web did not answer")
        with httpx.Client(base_url=base) as client:
            assert client.get("/alerts").status_code == 303
            form = client.get("/login")
            csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
            logged = client.post("/login", data={"login": "li", "password": "correct horse battery", "csrf": csrf,
                                                 "next": "/alerts"})
            assert logged.status_code == 303
            assert client.get("/alerts").status_code == 200
        key = tmp_path / "var" / "console-secret.key"
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    finally:
        server.terminate()
        out, err = server.communicate(timeout=20)
    assert "correct horse battery" not in out + err


def test_bianmin_web_refuses_a_busy_port_in_one_line(env):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        result = subprocess.run([str(BIANMIN), "web", "--port", str(port)], env=env, capture_output=True,
                                text=True, timeout=60)
    assert result.returncode == 2 and "already in use" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
