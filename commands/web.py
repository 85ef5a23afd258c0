"""`bianmin web`: the web console in the foreground (FastAPI is imported only when it runs)."""
from __future__ import annotations

import typer

from commands.common import console, fail, refusals, runtime, t


def web_cmd(host: str | None = typer.Option(None, "--host", help="Address to listen on (default BIANMIN_WEB_HOST, "
                                                                  "127.0.0.1)."),
            port: int | None = typer.Option(None, "--port", min=1, max=65535,
                                            help="Port (default BIANMIN_WEB_PORT, 8209).")) -> None:
    """Serve the web console: alerts to acknowledge or silence, orders to follow up."""
    rt = runtime()
    with refusals():  # a ledger that cannot be used refuses before the server starts
        rt.engine
    settings = rt.settings
    host, port = host or settings.web_host, port or settings.web_port
    from flows.serve import port_free

    if host in ("127.0.0.1", "localhost") and not port_free(port):
        fail(t("cli.web.port_in_use", port=port))
    from console import server

    console.print(t("cli.web.serving", host=host, port=port, public_url=settings.public_url), markup=False,
                  highlight=False)
    server.run(rt, host=host, port=port)


def register(root: typer.Typer, run: typer.Typer) -> None:
    root.command("web")(web_cmd)
