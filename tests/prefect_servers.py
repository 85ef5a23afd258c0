"""A real `prefect server start` on 127.0.0.1 and real `prefect worker start` processes, for the group-scale tests.

Each runs in a session of its own so that a test can stop it, or kill it with everything it started (a worker
and the flow runs it spawned: a machine lost), by its process group.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.servers import free_port

PYTHON = sys.executable


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any BIANMIN_* or PREFECT_* setting, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BIANMIN_", "PREFECT_"))}
    env.update(PREFECT_SERVER_ANALYTICS_ENABLED="false", **extra)
    return env


def stop_group(process: subprocess.Popen, *, sig: int = signal.SIGTERM, timeout: float = 30.0) -> None:
    """Signal the process's group; SIGKILL it if it has not ended after `timeout`."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, sig)
        process.wait(timeout)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


class PrefectServer:
    """`prefect server start` with its state under `home` (and its database at `database_url` when given)."""

    def __init__(self, home: Path, *, database_url: str | None = None, startup_timeout: float = 240.0) -> None:
        self.home, self.database_url, self.startup_timeout = home, database_url, startup_timeout
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    @property
    def log_path(self) -> Path:
        return self.home / "server.log"

    def env(self) -> dict[str, str]:
        extra = {"PREFECT_HOME": str(self.home)}
        if self.database_url:
            extra["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = self.database_url
        return clean_env(**extra)

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.api_url}/health", timeout=2) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def start(self) -> PrefectServer:
        self.home.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as out:
            self.process = subprocess.Popen(
                [PYTHON, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(self.port),
                 "--analytics-off"], env=self.env(), stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"prefect server exited: {self.log_path.read_text()[-3000:]}")
            if self.healthy():
                return self
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"prefect server not healthy in time: {self.log_path.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process is not None:
            stop_group(self.process)
            self.process = None

    def __enter__(self) -> PrefectServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class PrefectWorker:
    """`prefect worker start --pool POOL --name NAME` against `server`, with bianmin's settings in `env`."""

    def __init__(self, server: PrefectServer, pool: str, name: str, env: dict[str, str], log_dir: Path,
                 cwd: Path, limit: int | None = None) -> None:
        self.server, self.pool, self.name, self.extra, self.cwd = server, pool, name, env, cwd
        self.limit = limit  # flow runs at once (`--limit`); None: as many as come
        self.log_path = log_dir / f"worker-{name}.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> PrefectWorker:
        env = clean_env(PREFECT_HOME=str(self.server.home / self.name), PREFECT_API_URL=self.server.api_url,
                        **self.extra)
        with open(self.log_path, "ab") as out:
            self.process = subprocess.Popen(
                [PYTHON, "-m", "prefect", "worker", "start", "--pool", self.pool, "--name", self.name,
                 "--type", "process", *([] if self.limit is None else ["--limit", str(self.limit)])], env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, cwd=self.cwd)
        return self

    def kill(self) -> None:
        """The machine is lost: the worker and every flow run it started die at once."""
        if self.process is not None:
            stop_group(self.process, sig=signal.SIGKILL)

    def stop(self) -> None:
        if self.process is not None:
            stop_group(self.process)
