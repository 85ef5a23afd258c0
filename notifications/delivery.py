"""Putting a message in front of people: apprise to one tag, or a local outbox file when no apprise config is set.

Secrets: apprise URLs carry tokens (WeCom keys, DingTalk access tokens, SMTP passwords). They are shown only
in apprise's privacy form; apprise's own log lines during a send are captured (never passed to our
loggers) and scrubbed of every URL and URL part before they are kept as `last_error`.
"""
from __future__ import annotations

import copy
import functools
import logging
import os
import re
import ssl
import sys
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from notifications.masking import harden_privacy_url, mask_text, privacy_url, scrub, url_secrets

log = logging.getLogger("bianmin.delivery")

BODY_FORMATS = ("text", "html", "markdown")
DEFAULT_BODY_LIMIT = 32768


@dataclass(frozen=True)
class Delivery:
    """How one send went: ok only when apprise reported every service for the tag as successful."""

    ok: bool
    error: str | None = None
    path: Path | None = None  # the outbox file, when written locally


@dataclass(frozen=True)
class TagInfo:
    """What the apprise config holds for one tag: its services in privacy form and their limits."""

    tag: str
    urls: tuple[str, ...]
    body_limit: int
    title_limit: int
    markdown: bool  # every service's native format is Markdown


# apprise's WARNING lines of the send (or config load) in progress, routed by context rather than by a
# handler added per call: sends run in parallel threads, and apprise hands its own worker threads a copy of
# the caller's context, so each send sees exactly its own lines and nobody else's
_captured: ContextVar[list[str] | None] = ContextVar("bianmin_apprise_lines", default=None)


class _RoutedCapture(logging.Handler):
    """The one handler on the apprise logger: a record goes to the capture of the send that made it, or nowhere."""

    def emit(self, record: logging.LogRecord) -> None:
        lines = _captured.get()
        if lines is None or not getattr(record, "apprise_capture", True):  # apprise marks local secrets so
            return
        try:
            lines.append(record.getMessage())
        except Exception:  # noqa: BLE001 - a malformed record must not fail a send
            lines.append(str(record.msg))


_ROUTED = _RoutedCapture(level=logging.WARNING)


def _quiet_apprise() -> None:
    # apprise plugins log tokens and payloads at DEBUG (STACK.md): never let those records be made; and
    # its warnings (which may quote a server's answer) reach people only through our scrubbed last_error.
    # Its INFO lines ("Sent Email to ...") would reach nobody either (the one handler keeps WARNING and up),
    # so they are not made: a record per send is CPU a dispatch of hundreds of digests can use better.
    logger = logging.getLogger("apprise")
    if logger.level == logging.NOTSET or logger.level < logging.WARNING:
        logger.setLevel(logging.WARNING)
    logger.propagate = False
    if _ROUTED not in logger.handlers:  # also keeps logging's last-resort stderr handler away from them
        logger.addHandler(_ROUTED)
        _lighten_smtp()
    # urllib3 logs every request line at DEBUG, query string and path included: webhook tokens live there
    transport = logging.getLogger("urllib3")
    if transport.getEffectiveLevel() < logging.INFO:
        transport.setLevel(logging.INFO)


class _LazyCaContext(ssl.SSLContext):
    """A TLS client context that reads the system CA bundle at its first handshake, not when it is made."""

    def _load_ca(self) -> None:
        if not self.__dict__.get("_ca_loaded"):
            self.__dict__["_ca_loaded"] = True
            if self.verify_mode != ssl.CERT_NONE:
                self.load_default_certs(ssl.Purpose.SERVER_AUTH)

    def wrap_socket(self, *args, **kwargs):
        self._load_ca()
        return super().wrap_socket(*args, **kwargs)

    def wrap_bio(self, *args, **kwargs):
        self._load_ca()
        return super().wrap_bio(*args, **kwargs)


class _DeferredContext:
    """The TLS client context apprise's SMTP controller asks for, made when it is first used.

    Making an `SSLContext` costs ~0.3 ms of CPU with the GIL held (OpenSSL 3), and a plain-SMTP send never
    uses the one the controller makes for every connection. Whatever is read from or set on this object
    (`verify_mode`, `check_hostname`, `wrap_socket` ...) goes to the real context, made then.
    """

    __slots__ = ("_context",)

    def __init__(self) -> None:
        object.__setattr__(self, "_context", None)

    def _real(self) -> ssl.SSLContext:
        context = object.__getattribute__(self, "_context")
        if context is None:
            context = _LazyCaContext(ssl.PROTOCOL_TLS_CLIENT)  # check_hostname and CERT_REQUIRED, as the default
            keylog = os.environ.get("SSLKEYLOGFILE")
            if keylog and not sys.flags.ignore_environment:
                context.keylog_filename = keylog
            object.__setattr__(self, "_context", context)
        return context

    def __getattr__(self, name: str):
        return getattr(self._real(), name)

    def __setattr__(self, name: str, value) -> None:
        setattr(self._real(), name, value)


class _SmtpSsl:
    """The `ssl` module as apprise's SMTP controller sees it.

    The controller calls ssl.create_default_context() for every connection, plain SMTP included, and with
    OpenSSL 3 loading the CA bundle costs ~40 ms of CPU with the GIL held: that alone capped dispatch at
    ~25 mails a second however many threads send. The context it gets here is made on first use and loads
    the same CA bundle on its first TLS handshake, so certificate checks are what they were and plain SMTP
    skips the cost.
    """

    def __getattr__(self, name: str):
        return getattr(ssl, name)

    @staticmethod
    def create_default_context(purpose=ssl.Purpose.SERVER_AUTH, *, cafile=None, capath=None, cadata=None):
        if purpose != ssl.Purpose.SERVER_AUTH or cafile or capath or cadata:
            return ssl.create_default_context(purpose, cafile=cafile, capath=capath, cadata=cadata)
        return _DeferredContext()


@functools.cache
def _helo_name() -> str:
    import smtplib

    return smtplib.SMTP().local_hostname  # what smtplib works out for each connection (no host: no connection)


class _SmtpLib:
    """The `smtplib` module as apprise's SMTP controller sees it: the name this host greets a server with is
    looked up once per process, not once per mail (socket.getfqdn, a resolver call, on every connection)."""

    def __init__(self) -> None:
        import smtplib

        def greeting_once(base: type) -> type:
            class Client(base):
                def __init__(self, host="", port=0, local_hostname=None, *args, **kwargs):
                    super().__init__(host, port, local_hostname or _helo_name(), *args, **kwargs)

            Client.__name__ = Client.__qualname__ = base.__name__
            return Client

        self.SMTP, self.SMTP_SSL = greeting_once(smtplib.SMTP), greeting_once(smtplib.SMTP_SSL)
        self._module = smtplib

    def __getattr__(self, name: str):
        return getattr(self._module, name)


class SmtpSessions:
    """The SMTP sessions of one run, kept open between its mails to the same server and account.

    apprise opens a connection per mail: TCP, the server's greeting, EHLO, STARTTLS or TLS and AUTH where the
    URL asks for them, one mail, QUIT. A dispatch sends hundreds of digests to one office mail server, so the
    sessions a run's mails leave behind are parked here and the next mail to the same server, port, security
    mode and account goes through one of them, as a mail server's own client caches its connections. A parked
    session is used again only after it answers NOOP (a server that timed it out or went away is noticed
    there, before any mail is given to it), and only when its last mail went through; at most `max_mails`
    mails go through one session (servers may limit them) and none waits longer than `max_idle` seconds
    (servers drop silent clients after minutes). `close()` ends every parked session with QUIT; a run's
    Courier closes it when the run's sends are over.
    """

    def __init__(self, *, max_mails: int = 100, max_idle: float = 10.0) -> None:
        self.max_mails, self.max_idle = max_mails, max_idle
        self._idle: dict[tuple, list[tuple[Any, float, int]]] = {}
        self._guard = threading.Lock()
        self.opened = 0  # sessions this run connected itself (for the tests and the bench)

    def take(self, key: tuple) -> tuple[Any, int] | None:
        """A parked session for `key` and the mails it has carried, newest first; None when there is none."""
        stale = []
        found = None
        now = time.monotonic()
        with self._guard:
            parked = self._idle.get(key, [])
            while parked:
                client, since, mails = parked.pop()
                if now - since <= self.max_idle:
                    found = (client, mails)
                    break
                stale.append(client)
        for client in stale:
            _end_session(client)
        return found

    def count_opened(self) -> None:
        with self._guard:
            self.opened += 1

    def give(self, key: tuple, client, mails: int) -> None:
        """Park a session whose last mail went through, unless it has carried its share."""
        if mails >= self.max_mails:
            _end_session(client)
            return
        with self._guard:
            self._idle.setdefault(key, []).append((client, time.monotonic(), mails))

    def close(self) -> None:
        """QUIT every parked session."""
        with self._guard:
            parked = [client for clients in self._idle.values() for client, _since, _mails in clients]
            self._idle.clear()
        for client in parked:
            _end_session(client)


def _end_session(client) -> None:
    import smtplib

    try:
        client.quit()
    except (OSError, smtplib.SMTPException):
        try:
            client.close()
        except OSError:
            pass


# the sessions of the run whose send is in progress: apprise gives its worker threads a copy of the caller's
# context, so its SMTP controller finds them wherever it runs
_smtp_sessions: ContextVar[SmtpSessions | None] = ContextVar("bianmin_smtp_sessions", default=None)


def _session_reusing(controller: type) -> type:
    """apprise's SMTP controller, taking its session from the run's `SmtpSessions` and leaving it there."""
    import smtplib

    class Controller(controller):
        def __enter__(self):
            sessions = _smtp_sessions.get()
            # the password is part of the key: a session is only used again by the account that logged it in
            self._bianmin_key = (self.host, self.port, self.secure_mode, self.user, self.password,
                                 self.verify_certificate)
            self._bianmin_mails, self._bianmin_clean = 0, True
            while sessions is not None and (found := sessions.take(self._bianmin_key)) is not None:
                client, mails = found
                try:
                    alive = client.noop()[0] == 250
                except (OSError, smtplib.SMTPException):
                    alive = False
                if alive:
                    self._socket, self._bianmin_mails = client, mails
                    return self
                _end_session(client)
            entered = super().__enter__()
            if sessions is not None:
                sessions.count_opened()
            return entered

        def sendmail(self, from_addr, to_addrs, message) -> bool:
            ok = super().sendmail(from_addr, to_addrs, message)
            self._bianmin_mails += 1
            self._bianmin_clean = self._bianmin_clean and ok
            return ok

        def __exit__(self, exc_type, exc_val, exc_tb) -> None:
            sessions = _smtp_sessions.get()
            client = self._socket
            if sessions is not None and client is not None and exc_type is None and self._bianmin_clean:
                self._socket = None
                sessions.give(self._bianmin_key, client, self._bianmin_mails)
                return
            super().__exit__(exc_type, exc_val, exc_tb)

    Controller.__name__ = Controller.__qualname__ = controller.__name__
    Controller._bianmin_reuses = True
    return Controller


def _utf8_bodies_in_base64() -> None:
    """Undo apprise's quoted-printable for UTF-8 mail bodies (it sets it for the whole process when imported).

    Quoted-printable writes each byte of a Chinese character as `=E7` (9 characters a character): a 3.7k
    character digest became a 10.9 kB mail, encoded in pure Python. Base64, Python's own default for UTF-8
    and what Chinese mail clients send, makes it 7.6 kB, encoded in C, and halves the CPU of building a mail.
    Readers decode either; headers keep apprise's encoding.
    """
    from email import charset

    header_encoding, body_encoding, output = charset.CHARSETS.get("utf-8", (None, None, None))
    if body_encoding == charset.QP:
        charset.add_charset("utf-8", header_encoding, charset.BASE64, output)


def _lighten_smtp() -> None:
    try:
        from apprise.plugins.email import base, smtp
    except ImportError:  # another apprise layout: nothing to lighten, it still works
        return
    controller = getattr(base, "AppriseSMTPController", None)
    if controller is not None and not getattr(controller, "_bianmin_reuses", False):
        base.AppriseSMTPController = _session_reusing(controller)
    _utf8_bodies_in_base64()
    if getattr(smtp, "ssl", None) is ssl:
        smtp.ssl = _SmtpSsl()
    if getattr(smtp, "smtplib", None) is not None and not isinstance(smtp.smtplib, _SmtpLib):
        smtp.smtplib = _SmtpLib()


@contextmanager
def _capture() -> Iterator[list[str]]:
    _quiet_apprise()
    lines: list[str] = []
    token = _captured.set(lines)
    try:
        yield lines
    finally:
        _captured.reset(token)


def quiet_apprise():
    """A block in which apprise's log lines are kept from every handler (they may quote a URL whole)."""
    return _capture()


class AppriseConfigError(ValueError):
    """The apprise config cannot be read; the message never quotes a URL."""


class _Version:
    """One version of the apprise config, parsed once: its services indexed by tag, for sends in parallel.

    apprise's notify(tag=...) walks every service of the config and re-parses its tags (22 ms a message with
    500 office tags), so each tag gets a small Apprise of its own candidates (its services and those tagged
    "always", see Courier) and apprise still does the matching among them. A service shared by two tags has
    one lock, taken in config order, so two parallel sends never drive the same endpoint at once.
    """

    def __init__(self, app, problems: tuple[str, ...]) -> None:
        import apprise

        self.app = app
        self.problems = problems
        self.services = list(app)
        position = {id(s): n for n, s in enumerate(self.services)}
        self.by_tag: dict[str, list] = {}
        always: list = []
        for service in self.services:
            tags = {str(t).lower() for t in getattr(service, "tags", ())}
            for tag in tags:
                self.by_tag.setdefault(tag, []).append(service)
            if apprise.common.MATCH_ALWAYS_TAG in tags:
                always.append(service)
        self._always = always
        self._position = position
        self._locks = {id(s): threading.Lock() for s in self.services}
        self._members: dict[str, tuple] = {}
        self._guard = threading.Lock()
        self._secrets: tuple[str, ...] | None = None
        self._tags: dict[str, TagInfo] | None = None

    def members(self, tag: str) -> tuple | None:
        """The services a notify(tag=tag) of the whole config could reach, in config order; None if no URL has it."""
        wanted = tag.lower()
        if wanted not in self.by_tag:
            return None
        with self._guard:
            members = self._members.get(wanted)
            if members is None:
                ids = {id(s) for s in self.by_tag[wanted]} | {id(s) for s in self._always}
                members = self._members[wanted] = tuple(s for s in self.services if id(s) in ids)
        return members

    @contextmanager
    def locked(self, members) -> Iterator[None]:
        with ExitStack() as stack:
            for service in sorted(members, key=lambda s: self._position.get(id(s), -1)):
                lock = self._locks.get(id(service))
                if lock is not None:
                    stack.enter_context(lock)
            yield

    def secrets(self) -> tuple[str, ...]:
        # every URL's secrets, not only the failing tag's: a scrub that knows too much costs nothing
        with self._guard:
            if self._secrets is None:
                self._secrets = tuple(_secrets_of(self.services))
            return self._secrets

    def tags(self) -> dict[str, TagInfo]:
        with self._guard:
            if self._tags is None:
                self._tags = _tag_infos(self.services)
            return dict(self._tags)


class Courier:
    """The sends of one run (a dispatch): the config read once, each tag's services copied once from it, and
    the SMTP sessions its mails share (`SmtpSessions`), ended by `close()` or leaving a `with` block.

    The parsed services themselves never send: apprise keeps its per-service throttle (5.5 s between two
    mails to one address) on the object, so copies per run space the parts of one digest as apprise would,
    while a run does not wait on what an earlier run in the same process sent a minute ago.
    """

    def __init__(self, *, smtp: SmtpSessions | None = None) -> None:
        self._apps: dict[tuple[int, str], tuple[Any, tuple]] = {}
        self._versions: dict[str, _Version] = {}
        self._guard = threading.Lock()
        self.smtp = smtp or SmtpSessions()

    def close(self) -> None:
        """End the SMTP sessions the run's mails left open."""
        self.smtp.close()

    def __enter__(self) -> Courier:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def version(self, config: Path | str) -> _Version:
        """The apprise config as this run first read it: a run's sends use one version (and skip a stat each)."""
        key = str(config)
        with self._guard:
            found = self._versions.get(key)
        if found is None:
            found = _version(config)
            with self._guard:
                found = self._versions.setdefault(key, found)
        return found

    def app_for(self, version: _Version, tag: str) -> tuple[Any, tuple] | None:
        members = version.members(tag)
        if members is None:
            return None
        key = (id(version), tag.lower())
        with self._guard:
            found = self._apps.get(key)
            if found is None:
                import apprise

                app = apprise.Apprise(asset=version.app.asset)
                app.add([copy.copy(s) for s in members])
                found = self._apps[key] = (app, members)
        return found


_VERSIONS: OrderedDict[tuple[str, int, int], _Version] = OrderedDict()
_VERSIONS_LOCK = threading.Lock()


def _version(config: Path | str) -> _Version:
    """The parsed config, cached while the file's mtime and size stay the same (an edit is picked up at once)."""
    path = Path(config)
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise AppriseConfigError(f"apprise config not found: {path}") from None
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    with _VERSIONS_LOCK:  # held while parsing: parallel senders must share one version and its locks
        version = _VERSIONS.get(key)
        if version is None:
            version = _Version(*_parse(key[0]))
            _VERSIONS[key] = version
            while len(_VERSIONS) > 8:
                _VERSIONS.popitem(last=False)
        else:
            _VERSIONS.move_to_end(key)
        return version


def _parse(path_str: str):
    import apprise

    with _capture() as lines:
        config = apprise.AppriseConfig()
        if not config.add(path_str):
            raise AppriseConfigError(f"cannot read apprise config {path_str}")
        app = apprise.Apprise()
        app.add(config)
        services = list(app)  # forces the config to be parsed now
    if not services and Path(path_str).stat().st_size > 0:
        raise AppriseConfigError(f"no usable notification URL in {path_str}")
    return app, tuple(_load_problems("\n".join(lines), Path(path_str)))


def _load_problems(lines: str, path: Path) -> list[str]:
    """What apprise could not load from the config, with every URL of the file scrubbed out."""
    if not lines.strip():
        return []
    from notifications.masking import _URL

    secrets: list[str] = []
    for url in _URL.findall(path.read_text(encoding="utf-8", errors="replace")):
        secrets.extend(url_secrets(url.rstrip(":")))
    return [scrub(line, secrets) for line in lines.splitlines() if line.strip()]


def config_problems(config: Path | str) -> list[str]:
    """Entries of the apprise config that apprise skipped (a bad URL is dropped, not fatal, in apprise)."""
    return list(_version(config).problems)


def load_apprise(config: Path | str):
    """An Apprise object holding every URL of the config (cached per file version)."""
    return _version(config).app


def services_for(app, tag: str) -> list:
    """The services of `app` that a notify(tag=tag) reaches (tagged exactly so; never the untagged ones)."""
    wanted = tag.lower()  # apprise lower-cases the tags it reads from a config
    return [s for s in app if wanted in {str(t).lower() for t in getattr(s, "tags", ())}]


def config_tags(config: Path | str) -> dict[str, TagInfo]:
    """Every tag of the apprise config with its services' privacy URLs and the tightest size limits."""
    return _version(config).tags()


def _tag_infos(services: list) -> dict[str, TagInfo]:
    import apprise

    tags: dict[str, list] = {}
    for service in services:
        for tag in sorted({str(t) for t in getattr(service, "tags", ())} or {"(untagged)"}):
            tags.setdefault(tag, []).append(service)
    out = {}
    for tag, members in sorted(tags.items()):
        out[tag] = TagInfo(
            tag=tag,
            urls=tuple(_service_privacy_url(s) for s in members),
            body_limit=min((s.body_maxlen or DEFAULT_BODY_LIMIT) for s in members),
            title_limit=min((s.title_maxlen or 0) for s in members),
            markdown=all(_native_format(s) == apprise.NotifyFormat.MARKDOWN for s in members),
        )
    return out


def _native_format(service):
    fmt = service.notify_format
    return fmt[0] if isinstance(fmt, (tuple, list)) else fmt


def _service_privacy_url(service) -> str:
    try:
        return harden_privacy_url(service.url(privacy=True))
    except Exception:  # noqa: BLE001 - the raw URL must never be the fallback
        return f"{getattr(service, 'secure_protocol', None) or 'url'}://****"


def _secrets_of(services) -> list[str]:
    found: list[str] = []
    for service in services:
        try:
            found.extend(url_secrets(service.url(privacy=False)))
        except Exception:  # noqa: BLE001
            continue
    return found


def deliver(*, tag: str, title: str, body: str, apprise_config: Path | None, outbox_dir: Path,
            attachments: Sequence[Path] = (), body_format: str = "text", at: datetime | None = None,
            courier: Courier | None = None) -> Delivery:
    """Send one message to `tag` only; with no apprise config, write it to outbox_dir so nothing is lost.

    Sends of one run share a `courier` (a fresh one otherwise); deliver is safe to call from several threads.
    """
    if body_format not in BODY_FORMATS:
        raise ValueError(f"body_format must be one of {BODY_FORMATS}")
    if not tag:
        raise ValueError("a tag is required: apprise without a tag notifies every URL")
    title, body = mask_text(title), mask_text(body)
    if apprise_config is None:
        return Delivery(ok=True, path=_write_outbox_file(outbox_dir, tag, title, body, attachments, at))
    if courier is None:
        with Courier() as own:  # a send of its own ends its SMTP session at once
            return _deliver(tag, title, body, apprise_config, attachments, body_format, own)
    return _deliver(tag, title, body, apprise_config, attachments, body_format, courier)


def _deliver(tag: str, title: str, body: str, apprise_config: Path, attachments: Sequence[Path], body_format: str,
             courier: Courier) -> Delivery:
    import apprise

    try:
        version = courier.version(apprise_config)
    except AppriseConfigError as exc:
        return Delivery(ok=False, error=str(exc))
    found = courier.app_for(version, tag)
    if found is None:
        return Delivery(ok=False, error=f"no URL for tag {tag!r} in the apprise config")
    app, members = found
    attach = None
    if attachments:
        attach = apprise.AppriseAttachment()
        for item in attachments:
            attach.add(str(item))
    fmt = {"text": apprise.NotifyFormat.TEXT, "html": apprise.NotifyFormat.HTML,
           "markdown": apprise.NotifyFormat.MARKDOWN}[body_format]
    sessions = _smtp_sessions.set(courier.smtp)
    try:
        with _capture() as lines, version.locked(members):
            try:
                ok = bool(app.notify(body=body, title=title, tag=tag, body_format=fmt, attach=attach))
            except Exception as exc:  # noqa: BLE001 - apprise says it never raises; if it does, it is a failure
                ok = False
                lines.append(f"{type(exc).__name__}: {exc}")
    finally:
        _smtp_sessions.reset(sessions)
    if ok:
        return Delivery(ok=True)
    error = scrub(_last_lines("\n".join(lines)) or "delivery failed", list(version.secrets()))[:1000]
    log.warning("delivery to tag %s failed: %s", tag, error)
    return Delivery(ok=False, error=error)


def send_message(*, tag: str, title: str, body: str, apprise_config: Path | None, outbox_dir: Path,
                 attachments: Sequence[Path] = (), body_format: str = "text") -> bool:
    """Send one message to `tag` only (or to outbox_dir/*.txt without an apprise config); True when fully sent."""
    return deliver(tag=tag, title=title, body=body, apprise_config=apprise_config, outbox_dir=outbox_dir,
                   attachments=attachments, body_format=body_format).ok


def _last_lines(text: str, keep: int = 3) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return " | ".join(lines[-keep:])


_UNSAFE = re.compile(r"[^A-Za-z0-9@._-]+")


def _write_outbox_file(outbox_dir: Path, tag: str, title: str, body: str, attachments: Sequence[Path],
                       at: datetime | None) -> Path:
    outbox_dir.mkdir(parents=True, exist_ok=True)
    moment = (at or datetime.now(timezone.utc)).astimezone(timezone.utc)
    name = f"{moment:%Y%m%dT%H%M%S}-{_UNSAFE.sub('_', tag)}-{uuid.uuid4().hex[:6]}.txt"
    path = outbox_dir / name
    extra = "".join(f"\n[attachment] {Path(a).resolve()}" for a in attachments)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(f"To: {tag}\nSubject: {title}\n\n{body}\n{extra}", encoding="utf-8")
    tmp.replace(path)  # a reader never sees half a message
    return path


def privacy_urls(config: Path | str) -> list[str]:
    """Every URL of the apprise config in privacy form."""
    return [_service_privacy_url(s) for s in load_apprise(config)]


__all__ = ["Delivery", "TagInfo", "AppriseConfigError", "Courier", "SmtpSessions", "deliver", "send_message",
           "config_tags", "load_apprise", "services_for", "privacy_urls", "privacy_url"]
