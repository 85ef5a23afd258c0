"""Putting a message in front of people: apprise to one tag, or a local outbox file when no apprise config is set.

Secrets: apprise URLs carry tokens (WeCom keys, DingTalk access tokens, SMTP passwords). They are shown only
in apprise's privacy form; apprise's own log lines during a send are captured (never passed to our
loggers) and scrubbed of every URL and URL part before they are kept as `last_error`.
"""
from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path

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


def _quiet_apprise() -> None:
    # apprise plugins log tokens and payloads at DEBUG (STACK.md): never let those records be made; and
    # its warnings (which may quote a server's answer) reach people only through our scrubbed last_error
    logger = logging.getLogger("apprise")
    if logger.level == logging.NOTSET or logger.level < logging.INFO:
        logger.setLevel(logging.INFO)
    logger.propagate = False
    # urllib3 logs every request line at DEBUG, query string and path included: webhook tokens live there
    transport = logging.getLogger("urllib3")
    if transport.getEffectiveLevel() < logging.INFO:
        transport.setLevel(logging.INFO)


class AppriseConfigError(ValueError):
    """The apprise config cannot be read; the message never quotes a URL."""


@lru_cache(maxsize=8)
def _load(path_str: str, mtime: float):
    import apprise

    _quiet_apprise()
    config = apprise.AppriseConfig()
    if not config.add(path_str):
        raise AppriseConfigError(f"cannot read apprise config {path_str}")
    app = apprise.Apprise()
    app.add(config)
    with apprise.LogCapture(level=logging.WARNING, fmt="%(message)s") as captured:
        services = list(app)  # forces the config to be parsed now
        lines = captured.getvalue()
    if not services and Path(path_str).stat().st_size > 0:
        raise AppriseConfigError(f"no usable notification URL in {path_str}")
    return app, tuple(_load_problems(lines, Path(path_str)))


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
    path = Path(config)
    return list(_load(str(path.resolve()), path.stat().st_mtime)[1])


def load_apprise(config: Path | str):
    """An Apprise object holding every URL of the config (cached per file version)."""
    path = Path(config)
    if not path.exists():
        raise AppriseConfigError(f"apprise config not found: {path}")
    return _load(str(path.resolve()), path.stat().st_mtime)[0]


def services_for(app, tag: str) -> list:
    """The services of `app` that a notify(tag=tag) reaches (tagged exactly so; never the untagged ones)."""
    wanted = tag.lower()  # apprise lower-cases the tags it reads from a config
    return [s for s in app if wanted in {str(t).lower() for t in getattr(s, "tags", ())}]


def config_tags(config: Path | str) -> dict[str, TagInfo]:
    """Every tag of the apprise config with its services' privacy URLs and the tightest size limits."""
    import apprise

    app = load_apprise(config)
    tags: dict[str, list] = {}
    for service in app:
        for tag in sorted({str(t) for t in getattr(service, "tags", ())} or {"(untagged)"}):
            tags.setdefault(tag, []).append(service)
    out = {}
    for tag, services in sorted(tags.items()):
        out[tag] = TagInfo(
            tag=tag,
            urls=tuple(_service_privacy_url(s) for s in services),
            body_limit=min((s.body_maxlen or DEFAULT_BODY_LIMIT) for s in services),
            title_limit=min((s.title_maxlen or 0) for s in services),
            markdown=all(_native_format(s) == apprise.NotifyFormat.MARKDOWN for s in services),
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


def _secrets_of(app) -> list[str]:
    found: list[str] = []
    for service in app:
        try:
            found.extend(url_secrets(service.url(privacy=False)))
        except Exception:  # noqa: BLE001
            continue
    return found


def deliver(*, tag: str, title: str, body: str, apprise_config: Path | None, outbox_dir: Path,
            attachments: Sequence[Path] = (), body_format: str = "text", at: datetime | None = None) -> Delivery:
    """Send one message to `tag` only; with no apprise config, write it to outbox_dir so nothing is lost."""
    if body_format not in BODY_FORMATS:
        raise ValueError(f"body_format must be one of {BODY_FORMATS}")
    if not tag:
        raise ValueError("a tag is required: apprise without a tag notifies every URL")
    title, body = mask_text(title), mask_text(body)
    if apprise_config is None:
        return Delivery(ok=True, path=_write_outbox_file(outbox_dir, tag, title, body, attachments, at))
    import apprise

    try:
        app = load_apprise(apprise_config)
    except AppriseConfigError as exc:
        return Delivery(ok=False, error=str(exc))
    if not services_for(app, tag):
        return Delivery(ok=False, error=f"no URL for tag {tag!r} in the apprise config")
    attach = None
    if attachments:
        attach = apprise.AppriseAttachment()
        for item in attachments:
            attach.add(str(item))
    fmt = {"text": apprise.NotifyFormat.TEXT, "html": apprise.NotifyFormat.HTML,
           "markdown": apprise.NotifyFormat.MARKDOWN}[body_format]
    _quiet_apprise()
    with apprise.LogCapture(level=logging.WARNING, fmt="%(message)s") as captured:
        try:
            ok = bool(app.notify(body=body, title=title, tag=tag, body_format=fmt, attach=attach))
        except Exception as exc:  # noqa: BLE001 - apprise says it never raises; if it does, it is a failure
            ok = False
            captured.write(f"{type(exc).__name__}: {exc}\n")
        lines = captured.getvalue()
    if ok:
        return Delivery(ok=True)
    error = scrub(_last_lines(lines) or "delivery failed", _secrets_of(app))[:1000]
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


__all__ = ["Delivery", "TagInfo", "AppriseConfigError", "deliver", "send_message", "config_tags", "load_apprise",
           "services_for", "privacy_urls", "privacy_url"]
