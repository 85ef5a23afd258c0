"""`bianmin serve`: every flow on its schedule, in one long-running process; and where a one-off run records itself.

Prefect's ephemeral mode (no PREFECT_API_URL) never runs the scheduler, so with no server configured
we start a real local `prefect server` as a child process (state under the data directory), wait
until it is healthy, serve against it, and stop it on the way out. With PREFECT_API_URL set we only
serve against that server. A one-off `bianmin run` uses PREFECT_API_URL, else serve's server, else a
temporary server of its own (`prepare_for_run`). Prefect itself is imported only after its environment
is settled: its settings are read once, at import.
"""
from __future__ import annotations

import atexit
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flows.settings import Settings
from models import texts

log = logging.getLogger("bianmin.serve")


class ServeError(RuntimeError):
    """The local Prefect server could not be started; the message says why, in the configured locale."""


def _t(settings: Settings, code: str, **values: Any) -> str:
    """The catalogue's text `code` (models/texts.py) in the configured locale."""
    return texts.render(code, settings.locale, **values)


def api_url(port: int) -> str:
    return f"http://127.0.0.1:{port}/api"


def server_healthy(port: int, *, timeout: float = 1.0) -> bool:
    """Whether a Prefect server answers GET /api/health on 127.0.0.1:port."""
    try:
        with urllib.request.urlopen(f"{api_url(port)}/health", timeout=timeout) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def prefect_environment(settings: Settings) -> dict[str, str]:
    """What Prefect needs in the environment for bianmin: its state under the data dir, no analytics."""
    env = {"PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    if not os.environ.get("PREFECT_HOME"):
        env["PREFECT_HOME"] = str(settings.prefect_home.resolve())
    return env


def _die_with_parent() -> None:
    # if bianmin serve is killed outright (SIGKILL), the server must not outlive it
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _stop_group(process: subprocess.Popen | None, timeout: float) -> bool:
    """SIGTERM a server's process group (it shuts down in order: pending events are written), SIGKILL after
    `timeout`; returns whether there was anything to stop."""
    if process is None or process.poll() is not None:
        return False
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            process.wait(wait)
            break
        except subprocess.TimeoutExpired:
            continue
    return True


@dataclass
class LocalPrefectServer:
    """A `prefect server start` child process on 127.0.0.1, owned by this process."""

    settings: Settings
    startup_timeout: float = 120.0
    process: subprocess.Popen | None = None

    @property
    def port(self) -> int:
        return self.settings.prefect_port

    @property
    def log_path(self) -> Path:
        return self.settings.prefect_home / "server.log"

    @property
    def api_url(self) -> str:
        return api_url(self.port)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    def start(self) -> None:
        s = self.settings
        if not port_free(self.port):
            raise ServeError(_t(s, "flow.serve.port_in_use", port=self.port))
        s.prefect_home.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
        env.update(prefect_environment(s))
        prefect_cli = Path(sys.executable).with_name("prefect")
        command = ([str(prefect_cli)] if prefect_cli.exists() else [sys.executable, "-m", "prefect"])
        command += ["server", "start", "--host", "127.0.0.1", "--port", str(self.port), "--analytics-off"]
        with open(self.log_path, "ab") as out:
            # a session of its own: a Ctrl-C in the terminal reaches us, and we stop the server in order
            self.process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True,
                                            preexec_fn=_die_with_parent)
        log.info("starting a local Prefect server on %s (pid %s, log %s)", self.api_url, self.process.pid,
                 self.log_path)
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = self.log_tail()
                self.process = None
                raise ServeError(_t(s, "flow.serve.local_exited", log_path=self.log_path, tail=tail))
            if server_healthy(self.port):
                return
            time.sleep(0.5)
        tail = self.log_tail()
        self.stop()
        raise ServeError(_t(s, "flow.serve.local_not_ready", startup_timeout=self.startup_timeout,
                            log_path=self.log_path, tail=tail))

    def stop(self, timeout: float = 20.0) -> None:
        """Stop the server and everything it started; no orphan survives."""
        process, self.process = self.process, None
        if _stop_group(process, timeout):
            log.info("local Prefect server stopped")


# What Prefect's own ephemeral mode runs (prefect.server.api.server.SubprocessASGIServer): its API app with
# the UI off and only the services an ephemeral server needs (they record task runs, events and logs).
_TEMPORARY_SERVER_ENV = {"PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1", "PREFECT__SERVER_FINAL": "1"}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class TemporaryPrefectServer:
    """The server a one-off `bianmin run` records its flow run in when no server is running: the same app and
    services as Prefect's ephemeral mode, but started by us *before* Prefect is imported, so that its start
    (~5-10 s, mostly imports) overlaps ours instead of following them, and this process never imports the
    server's code (Prefect's ephemeral mode does, ~2-5 s, only to start it). Stopped when the process exits,
    after Prefect has flushed the run's events and logs to it."""

    settings: Settings
    startup_timeout: float = 120.0
    port: int = 0
    process: subprocess.Popen | None = None

    @property
    def api_url(self) -> str:
        return api_url(self.port)

    @property
    def log_path(self) -> Path:
        return self.settings.prefect_home / "temporary-server.log"

    def start(self) -> None:
        """Launch the server and return at once; `wait_ready` waits for it."""
        s = self.settings
        s.prefect_home.mkdir(parents=True, exist_ok=True)
        self.port = _free_port()
        env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
        env.update(prefect_environment(s))
        env.update(_TEMPORARY_SERVER_ENV)
        command = [sys.executable, "-m", "uvicorn", "--factory", "prefect.server.api.server:create_app",
                   "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "error", "--lifespan", "on"]
        with open(self.log_path, "ab") as out:
            # its own session and log: a Ctrl-C reaches us (we stop it in order), and our stdout stays the
            # command's output; if we are killed outright it gets SIGTERM from the kernel
            self.process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True,
                                            preexec_fn=_die_with_parent)
        atexit.register(self.stop)

    def wait_ready(self) -> None:
        """Block until the server answers; a server that exits or never answers is a ServeError with its log."""
        s = self.settings
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                code, self.process = (self.process.returncode if self.process else None), None
                raise ServeError(_t(s, "flow.serve.temporary_exited", exit_code=code, log_path=self.log_path,
                                    tail=_tail(self.log_path)))
            if server_healthy(self.port, timeout=2.0):
                return
            time.sleep(0.1)
        self.stop()
        raise ServeError(_t(s, "flow.serve.temporary_not_ready", startup_timeout=self.startup_timeout,
                            log_path=self.log_path, tail=_tail(self.log_path)))

    def stop(self, timeout: float = 10.0) -> None:
        process, self.process = self.process, None
        _stop_group(process, timeout)


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return ""


@dataclass
class RunTarget:
    """Where a one-off run records itself in Prefect."""

    where: str  # the API URL, for the operator
    temporary: TemporaryPrefectServer | None = None

    def wait_ready(self) -> None:
        if self.temporary is not None:
            self.temporary.wait_ready()


_temporary: TemporaryPrefectServer | None = None


def prepare_for_run(settings: Settings) -> RunTarget:
    """Before a one-off `bianmin run`, and before Prefect is imported (it reads its settings once, at import):
    PREFECT_API_URL if set, else `bianmin serve`'s local server when it answers, else a temporary server of
    this process's own, launched now so that it starts while the caller imports the flow.
    """
    global _temporary
    if "prefect" in sys.modules:
        # already imported (tests under Prefect's harness, an embedding program): its settings are fixed
        from prefect.settings import get_current_settings

        return RunTarget(get_current_settings().api.url or "ephemeral")
    for key, value in prefect_environment(settings).items():
        os.environ.setdefault(key, value)
    if os.environ.get("PREFECT_API_URL"):
        return RunTarget(os.environ["PREFECT_API_URL"])
    if server_healthy(settings.prefect_port):
        os.environ["PREFECT_API_URL"] = api_url(settings.prefect_port)
        return RunTarget(os.environ["PREFECT_API_URL"])
    if _temporary is None:
        _temporary = TemporaryPrefectServer(settings)
        _temporary.start()
    os.environ["PREFECT_API_URL"] = _temporary.api_url
    return RunTarget(f"{_temporary.api_url} (temporary)", _temporary)


def serve_all(settings: Settings, *, say: Callable[[str], None] = print) -> int:
    """Serve every deployment until SIGINT/SIGTERM; start and stop a local server when none is configured."""
    for key, value in prefect_environment(settings).items():
        os.environ.setdefault(key, value)
    from models.ledger.db import upgrade

    # a fresh install would otherwise fail every scheduled run on a missing table; safe to run again
    upgrade(settings.effective_database_url)
    server: LocalPrefectServer | None = None
    if not os.environ.get("PREFECT_API_URL"):
        server = LocalPrefectServer(settings)
        server.start()
        os.environ["PREFECT_API_URL"] = server.api_url
        say(_t(settings, "flow.serve.local_ready", api_url=server.api_url, port=server.port,
               prefect_home=settings.prefect_home))
    else:
        say(_t(settings, "flow.serve.using_server", url=os.environ["PREFECT_API_URL"]))
    # a serve started in the background inherits an ignored SIGINT; Ctrl-C must still stop it
    signal.signal(signal.SIGINT, signal.default_int_handler)
    web = _start_console(settings, say) if settings.web else None
    try:
        from prefect import serve

        from flows.deployments import build_deployments, describe

        deployments = build_deployments(settings)
        for line in describe(settings):
            say(line)
        serve(*deployments, print_starting_message=False)
    except KeyboardInterrupt:
        pass
    finally:
        if web is not None:
            web.stop()
        if server is not None:
            server.stop()
            say(_t(settings, "flow.serve.local_stopped"))
    return 0


def _start_console(settings: Settings, say: Callable[[str], None]):
    """The web console beside the flows (BIANMIN_WEB, default on); a console that cannot start is said, and the
    flows run anyway: the alerts still go out."""
    from console.server import BackgroundConsole
    from flows.runtime import Runtime

    host, port = settings.web_host, settings.web_port
    if not port_free(port):
        say(_t(settings, "flow.serve.console_port_in_use", port=port))
        return None
    web = BackgroundConsole(Runtime(settings), host=host, port=port)
    if not web.start():
        say(_t(settings, "flow.serve.console_not_started"))
        return None
    say(_t(settings, "cli.web.serving", host=host, port=port, public_url=settings.public_url))
    return web
