"""Running the console: in the foreground (`bianmin web`) or beside the flows in `bianmin serve` (a thread)."""
from __future__ import annotations

import logging
import threading

import uvicorn

from console.app import create_app
from console.secret import secret_key
from flows.runtime import Runtime

log = logging.getLogger("bianmin.console")


def _config(rt: Runtime, host: str, port: int) -> uvicorn.Config:
    secret_key(rt.settings)  # generated (0600) before the first request, not during it
    # access logs stay off: a request line carries /a/<token> (a link that opens an alert after a login)
    return uvicorn.Config(create_app(rt), host=host, port=port, log_level="warning", access_log=False,
                          proxy_headers=True, forwarded_allow_ips="127.0.0.1", server_header=False)


def run(rt: Runtime, *, host: str, port: int) -> None:
    """Serve until SIGINT/SIGTERM."""
    uvicorn.Server(_config(rt, host, port)).run()


class BackgroundConsole:
    """The console in a thread of `bianmin serve`; `stop()` ends it in order."""

    def __init__(self, rt: Runtime, *, host: str, port: int) -> None:
        self.server = uvicorn.Server(_config(rt, host, port))
        self.thread = threading.Thread(target=self.server.run, name="bianmin-console", daemon=True)

    def start(self, timeout: float = 30.0) -> bool:
        self.thread.start()
        for _ in range(int(timeout * 20)):
            if self.server.started or not self.thread.is_alive():
                break
            threading.Event().wait(0.05)
        return self.server.started

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)
