"""Real servers on 127.0.0.1 for delivery tests: an SMTP sink (aiosmtpd) and an HTTP sink.

Nothing here patches apprise: apprise talks to these over real sockets, as it would to a
WeCom/DingTalk webhook or the office mail server. Use them as pytest fixtures:

    from tests.servers import smtp_server, http_server  # noqa: F401  (fixtures)

    def test_digest_arrives_by_mail(smtp_server):
        url = smtp_server.url(to="boss@example.com")          # mailto://127.0.0.1:PORT?...&mode=insecure
        ...  # deliver
        [mail] = smtp_server.messages                          # email.message.EmailMessage objects
        assert "WO-1" in smtp_server.text(mail)

    def test_webhook_retries(http_server):
        http_server.respond(500)                               # every request answered 500 until changed
        http_server.respond(500, 200)                          # first request 500, then 200 for good
        url = http_server.url("/hook")                         # json://127.0.0.1:PORT/hook
        ...
        [posted] = http_server.json_bodies()                   # what apprise posted, decoded

An SMTP server "down" is one that is stopped: `smtp_server.stop()` (connections refused),
`smtp_server.start()` brings it back on the same port, so the same apprise URL works again.
"""
from __future__ import annotations

import email
import email.policy
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote

import pytest


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---------------------------------------------------------------------------------------------- SMTP


class SmtpSink:
    """An aiosmtpd server on 127.0.0.1 that keeps every message it accepts.

    `raw` holds each mail's bytes, `messages` the same parsed; `carriers` says which connection carried each
    mail and `quits` how many the client ended with QUIT; `refused` recipients get 550 at RCPT, and with an
    `idle_timeout` the server drops a connection that stays silent that long.
    """

    def __init__(self, port: int | None = None, *, tls: bool = False, idle_timeout: float | None = None) -> None:
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self.tls = tls  # implicit TLS (SMTPS) with a self-signed certificate for 127.0.0.1: no CA trusts it
        self.idle_timeout = idle_timeout  # seconds a connection may sit silent before the server drops it
        self.carriers: list[int] = []  # per message, which connection (1, 2, ... in order of first use) carried it
        self.quits = 0  # connections the client ended with QUIT
        self.refused: set[str] = set()  # recipients answered 550 at RCPT
        self._connections = 0
        self.raw: list[bytes] = []  # each accepted message as it came off the wire
        self._parsed: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.greetings: list[str] = []  # the name each client gave in its HELO/EHLO, per message
        self._lock = threading.Lock()
        self._controller = None

    # aiosmtpd handler hook
    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 (aiosmtpd's name)
        # kept as bytes and parsed when read: parsing cost ~1.4 ms of CPU a mail on stop 7's bench machine, which a benchmark's sender
        # on the same two cores would otherwise pay for (a mail server queues a message, it does not parse it)
        with self._lock:
            self.raw.append(envelope.original_content or envelope.content)
            if getattr(session, "sink_number", None) is None:
                self._connections += 1
                session.sink_number = self._connections
            self.carriers.append(session.sink_number)
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
            self.greetings.append(session.host_name)
        return "250 Message accepted for delivery"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options) -> str:  # noqa: N802
        if address in self.refused:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_QUIT(self, server, session, envelope) -> str:  # noqa: N802
        with self._lock:
            self.quits += 1
        return "221 Bye"

    @property
    def messages(self) -> list[EmailMessage]:
        """Every accepted message, parsed (email.policy.default), in the order they arrived."""
        with self._lock:
            for data in self.raw[len(self._parsed):]:
                parsed = email.message_from_bytes(data, policy=email.policy.default)
                self._parsed.append(parsed)  # type: ignore[arg-type]
            return list(self._parsed)

    @property
    def running(self) -> bool:
        return self._controller is not None

    def start(self) -> SmtpSink:
        from aiosmtpd.controller import Controller

        if self._controller is None:
            extra = {"ssl_context": _self_signed_server_context(self.host)} if self.tls else {}
            if self.idle_timeout is not None:
                extra["timeout"] = self.idle_timeout
            controller = Controller(self, hostname=self.host, port=self.port, ready_timeout=10, **extra)
            controller.start()
            self._controller = controller
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def url(self, *, to: str = "office@example.com", from_: str = "bianmin@example.com", **extra: str) -> str:
        """An apprise URL delivering to this server: mailto:// in plain SMTP, mailtos://..mode=ssl with TLS."""
        query = {"from": from_, "to": to, "mode": "ssl" if self.tls else "insecure", **extra}
        qs = "&".join(f"{k}={quote(str(v), safe='@')}" for k, v in query.items())
        return f"{'mailtos' if self.tls else 'mailto'}://{self.host}:{self.port}?{qs}"

    @staticmethod
    def text(message: EmailMessage) -> str:
        """The message's readable body: the plain part if any, else the HTML part."""
        part = message.get_body(preferencelist=("plain", "html"))
        return part.get_content() if part is not None else ""

    @staticmethod
    def attachments(message: EmailMessage) -> dict[str, bytes]:
        """Attached files by name, with their exact bytes."""
        return {part.get_filename(): part.get_payload(decode=True)
                for part in message.iter_attachments() if part.get_filename()}

    def texts(self) -> list[str]:
        return [self.text(m) for m in self.messages]

    def clear(self) -> None:
        with self._lock:
            self.raw.clear()
            self._parsed.clear()
            self.envelopes.clear()
            self.carriers.clear()


def _self_signed_server_context(host: str):
    """A server TLS context with a fresh self-signed certificate for `host` (cryptography comes with prefect)."""
    import datetime as dt
    import ipaddress
    import ssl
    import tempfile

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]), critical=False)
            .sign(key, hashes.SHA256()))
    folder = tempfile.mkdtemp(prefix="smtp-sink-tls-")
    cert_path, key_path = f"{folder}/cert.pem", f"{folder}/key.pem"
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    return context


# ---------------------------------------------------------------------------------------------- HTTP


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    status: int

    def json(self):
        return json.loads(self.body.decode("utf-8"))


@dataclass
class HttpSink:
    """A threading HTTP server on 127.0.0.1 answering every request with the configured status."""

    port: int = 0
    requests: list[Received] = field(default_factory=list)
    _statuses: list[int] = field(default_factory=lambda: [200])
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    def respond(self, *statuses: int) -> None:
        """Answer the next requests with these statuses in order; the last one stays for good."""
        with self._lock:
            self._statuses = list(statuses) or [200]

    def _next_status(self) -> int:
        with self._lock:
            return self._statuses.pop(0) if len(self._statuses) > 1 else self._statuses[0]

    def _record(self, received: Received) -> None:
        with self._lock:
            self.requests.append(received)

    def start(self) -> HttpSink:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status = sink._next_status()
                sink._record(Received(self.command, self.path, dict(self.headers.items()), body, status))
                payload = b'{"ok": true}' if status < 400 else b'{"ok": false}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_POST = do_PUT = do_GET = _handle  # noqa: N815 (http.server's names)

            def log_message(self, format, *args) -> None:  # noqa: A002 - keep test output quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"http-sink-{self.port}",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def url(self, path: str = "/", scheme: str = "json") -> str:
        """An apprise URL (json://, form://, xml://) posting to this server."""
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    def accepted(self) -> list[Received]:
        """The requests answered with a 2xx status: what the far side really took."""
        with self._lock:
            return [r for r in self.requests if 200 <= r.status < 300]

    def json_bodies(self, *, accepted_only: bool = True) -> list[dict]:
        with self._lock:
            chosen = [r for r in self.requests if not accepted_only or 200 <= r.status < 300]
        return [r.json() for r in chosen]

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()


# ---------------------------------------------------------------------------------------------- fixtures


@pytest.fixture
def smtp_server() -> Iterator[SmtpSink]:
    """A running SMTP sink; `.stop()` / `.start()` to take it down and bring it back."""
    sink = SmtpSink().start()
    try:
        yield sink
    finally:
        sink.stop()


@pytest.fixture
def smtps_server() -> Iterator[SmtpSink]:
    """A running SMTP sink speaking implicit TLS with a certificate no CA vouches for."""
    sink = SmtpSink(tls=True).start()
    try:
        yield sink
    finally:
        sink.stop()


@pytest.fixture
def http_server() -> Iterator[HttpSink]:
    """A running HTTP sink answering 200 unless told otherwise with `.respond(...)`."""
    sink = HttpSink().start()
    try:
        yield sink
    finally:
        sink.stop()


@pytest.fixture
def http_servers() -> Iterator[callable]:
    """A factory for more than one HTTP sink in a test: `a, b = http_servers(2)`."""
    started: list[HttpSink] = []

    def make(count: int = 1) -> list[HttpSink]:
        sinks = [HttpSink().start() for _ in range(count)]
        started.extend(sinks)
        return sinks

    try:
        yield make
    finally:
        for sink in started:
            sink.stop()


# ---------------------------------------------------------------------------------------------- apprise config


def write_apprise_config(path, routes: dict[str, list[str] | str]):
    """An apprise YAML config at `path` giving each tag its URLs: {"cs-supervisor": [url, ...]}."""
    import yaml
    from pathlib import Path

    entries = []
    for tag, urls in routes.items():
        for url in [urls] if isinstance(urls, str) else urls:
            entries.append({url: {"tag": tag}})
    path = Path(path)
    path.write_text(yaml.safe_dump({"version": 1, "urls": entries}, allow_unicode=True), encoding="utf-8")
    return path
