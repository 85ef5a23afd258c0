"""Putting a message in front of people: apprise to one tag, or a local outbox file when no apprise config is set.

Secrets: apprise URLs carry tokens (WeCom keys, DingTalk access tokens, SMTP passwords). They are shown only
in apprise's privacy form; apprise's own log lines during a send are captured (never passed to our
loggers) and scrubbed of every URL and URL part before they are kept as `last_error`.
"""
from __future__ import annotations

import copy
import logging
import re
import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from notifications.channels import SmtpSessions, own_channel
from notifications.masking import harden_privacy_url, mask_text, privacy_url, scrub, url_secrets

log = logging.getLogger("bianmin.delivery")

BODY_FORMATS = ("text", "html", "markdown")
DEFAULT_BODY_LIMIT = 32768
# apprise declares 32768 for email too (its base class's default), but a mail carries far more: a generous
# fixed limit keeps a long digest in one mail (200k characters: under 1 MB on the wire even in Chinese)
EMAIL_BODY_LIMIT = 200_000


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
    # urllib3 logs every request line at DEBUG, query string and path included: webhook tokens live there
    transport = logging.getLogger("urllib3")
    if transport.getEffectiveLevel() < logging.INFO:
        transport.setLevel(logging.INFO)


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

    A tag's mail and JSON-webhook services are sent by bianmin's own channels (`notifications/channels.py`:
    SMTP sessions shared by a run's mails, a webhook's `errcode` reply read); the others by apprise.

    The parsed services themselves never send: apprise keeps its per-service throttle (5.5 s between two
    mails to one address) on the object, so copies per run space the parts of one digest as apprise would,
    while a run does not wait on what an earlier run in the same process sent a minute ago.
    """

    def __init__(self, *, smtp: SmtpSessions | None = None) -> None:
        self._apps: dict[tuple[int, str], tuple[Any, tuple, tuple]] = {}
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

    def app_for(self, version: _Version, tag: str) -> tuple[Any, tuple, tuple] | None:
        """The tag's apprise (None when our own channels send to all its services), its services, our channels."""
        members = version.members(tag)
        if members is None:
            return None
        key = (id(version), tag.lower())
        with self._guard:
            found = self._apps.get(key)
            if found is None:
                import apprise

                channels, rest = [], []
                for service in members:
                    channel = own_channel(service)
                    (channels if channel is not None else rest).append(channel or service)
                app = None
                if rest:
                    app = apprise.Apprise(asset=version.app.asset)
                    app.add([copy.copy(s) for s in rest])
                found = self._apps[key] = (app, members, tuple(channels))
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
            body_limit=min(_body_limit(s) for s in members),
            title_limit=min((s.title_maxlen or 0) for s in members),
            markdown=all(_native_format(s) == apprise.NotifyFormat.MARKDOWN for s in members),
        )
    return out


def _body_limit(service) -> int:
    """The body size the service takes: its plugin's public `body_maxlen`, or the fixed mail limit for email."""
    from apprise.plugins.email import NotifyEmail

    if isinstance(service, NotifyEmail):
        return EMAIL_BODY_LIMIT
    return service.body_maxlen or DEFAULT_BODY_LIMIT


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
    app, members, channels = found
    attach = None
    if attachments and app is not None:
        attach = apprise.AppriseAttachment()
        for item in attachments:
            attach.add(str(item))
    fmt = {"text": apprise.NotifyFormat.TEXT, "html": apprise.NotifyFormat.HTML,
           "markdown": apprise.NotifyFormat.MARKDOWN}[body_format]
    ok = True
    with _capture() as lines, version.locked(members):
        for channel in channels:
            try:
                sent = channel.send(title=title, body=body, body_format=body_format, attachments=list(attachments),
                                    sessions=courier.smtp)
            except Exception as exc:  # noqa: BLE001 - one channel's bug is that send's failure, not the run's
                ok = False
                lines.append(f"{type(exc).__name__}: {exc}")
                continue
            ok = ok and sent.ok
            lines.extend(sent.errors)
        if app is not None:
            try:
                ok = bool(app.notify(body=body, title=title, tag=tag, body_format=fmt, attach=attach)) and ok
            except Exception as exc:  # noqa: BLE001 - apprise says it never raises; if it does, it is a failure
                ok = False
                lines.append(f"{type(exc).__name__}: {exc}")
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
