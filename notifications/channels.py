"""bianmin's own channels for three kinds of apprise URL: mail (mailto://, mailtos://) and generic webhooks
(json://, jsons://, form://, forms://).

apprise still reads the config and parses every URL; for these two kinds the send is ours, on public APIs only:
the plugin object's public attributes (host, port, secure_mode, user, targets, headers, request_timeout ...),
`resolve_format` and `apprise.conversion.convert_between`, `smtplib`, `email` and `requests`. Every other
service goes through apprise's notify as before.

- Mail: apprise opens an SMTP connection, and makes a TLS context (the CA bundle read again, ~40 ms of CPU),
  for every mail. Here a run's mails share SMTP sessions (`SmtpSessions`) and one TLS context per
  verification setting; the mail has apprise's headers, and its UTF-8 parts go base64 with a charset of its
  own (apprise sets quoted-printable for the whole process; nothing here changes that).
- Generic webhooks: apprise counts any 2xx as delivered, but DingTalk/WeCom-style gateways answer 200 with
  `{"errcode": 40001, "errmsg": ...}` when they refuse a message. A reply whose JSON object has a non-zero
  integer `errcode` is a failure here. (apprise 2.0's dingtalk:// and wecombot:// plugins check only the
  HTTP status, as does xml://: that gap is documented in docs/alerts.md, not closed.)
"""
from __future__ import annotations

import base64
import functools
import json
import logging
import mimetypes
import smtplib
import ssl
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from email.charset import BASE64, QP, Charset
from email.header import Header
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime, formataddr, make_msgid
from pathlib import Path
from typing import Any

log = logging.getLogger("bianmin.delivery")


@dataclass
class Sent:
    """How one channel's send went; `errors` are raw lines, scrubbed of secrets by the caller."""

    ok: bool
    errors: list[str] = field(default_factory=list)


# -- SMTP sessions ------------------------------------------------------------------------------------------

class SmtpSessions:
    """The SMTP sessions of one run, kept open between its mails to the same server and account.

    A dispatch sends hundreds of digests to one office mail server, so the session a mail leaves behind is
    parked here and the next mail to the same server, port, security mode and account goes through it, as a
    mail server's own client caches its connections. A parked session is used again only after it answers
    NOOP (a server that timed it out or went away is noticed there, before any mail is given to it), and only
    when its last mail went through; at most `max_mails` mails go through one session (servers may limit
    them) and none waits longer than `max_idle` seconds (servers drop silent clients after minutes).
    `close()` ends every parked session with QUIT. The run's TLS client contexts live here too: one per
    verification setting, so the CA bundle is read once a run, not once a mail.
    """

    def __init__(self, *, max_mails: int = 100, max_idle: float = 10.0) -> None:
        self.max_mails, self.max_idle = max_mails, max_idle
        self._idle: dict[tuple, list[tuple[Any, float, int]]] = {}
        self._guard = threading.Lock()
        self._contexts: dict[bool, ssl.SSLContext] = {}
        self.opened = 0  # sessions this run connected itself (for the tests and the bench)

    def tls_context(self, verify: bool) -> ssl.SSLContext:
        with self._guard:
            context = self._contexts.get(verify)
            if context is None:
                context = ssl.create_default_context()
                if not verify:  # the URL itself says verify=no
                    context.check_hostname = False
                    context.verify_mode = ssl.CERT_NONE
                self._contexts[verify] = context
            return context

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
            end_session(client)
        return found

    def count_opened(self) -> None:
        with self._guard:
            self.opened += 1

    def give(self, key: tuple, client, mails: int) -> None:
        """Park a session whose last mail went through, unless it has carried its share."""
        if mails >= self.max_mails:
            end_session(client)
            return
        with self._guard:
            self._idle.setdefault(key, []).append((client, time.monotonic(), mails))

    def close(self) -> None:
        """QUIT every parked session."""
        with self._guard:
            parked = [client for clients in self._idle.values() for client, _since, _mails in clients]
            self._idle.clear()
        for client in parked:
            end_session(client)


def end_session(client) -> None:
    try:
        client.quit()
    except (OSError, smtplib.SMTPException):
        try:
            client.close()
        except OSError:
            pass


@functools.cache
def _helo_name() -> str:
    # the name smtplib works out for this host (socket.getfqdn, a resolver call), looked up once per process
    # and passed as smtplib's own `local_hostname` argument (no host given: no connection is made)
    return smtplib.SMTP().local_hostname


# -- mail ---------------------------------------------------------------------------------------------------

def _utf8() -> Charset:
    # a charset of our own: base64 bodies (Python's default for UTF-8, smaller than quoted-printable for
    # Chinese text), quoted-printable headers as apprise writes them
    charset = Charset("utf-8")
    charset.header_encoding, charset.body_encoding, charset.output_charset = QP, BASE64, "utf-8"
    return charset


def _header_charset(text: str):
    return _utf8() if any(ord(c) > 127 for c in text) else None  # apprise's rule: ASCII stays plain


class MailChannel:
    """One mailto://-or-mailtos:// service of the config, sent through the run's SMTP sessions."""

    def __init__(self, service) -> None:
        self.service = service

    @staticmethod
    def takes(service) -> bool:
        from apprise.plugins.email import NotifyEmail

        # PGP and inline images stay with apprise (nothing of bianmin's uses them)
        return (type(service) is NotifyEmail and str(getattr(service, "pgp_mode", "no")).lower() in ("no", "none")
                and not getattr(service, "inline", False))

    def messages(self, *, title: str, body: str, body_format: str, attachments: list[Path]):
        """(recipient addresses, mail text) for each To address of the URL, as apprise builds them."""
        from apprise.conversion import convert_between
        from apprise.common import NotifyFormat

        s = self.service
        fmt = s.resolve_format(NotifyFormat(body_format))
        if fmt.value != body_format:
            body = convert_between(NotifyFormat(body_format), fmt, body)
        subject = " ".join(title.split())  # one header line (RFC 5322 2.2.3), as apprise does
        from_name, from_addr = s.from_addr
        domain = s.smtp_host or from_addr.split("@")[-1]
        names = s.names or {}
        files = [(Path(p).name, Path(p).read_bytes()) for p in attachments]
        for to_name, to_addr in s.targets:
            cc = s.cc - s.bcc - {to_addr}
            bcc = s.bcc - {to_addr}
            reply_to = s.reply_to - {to_addr}
            if fmt == NotifyFormat.HTML:
                mail = MIMEMultipart("alternative")
                mail.attach(MIMEText(convert_between(NotifyFormat.HTML, NotifyFormat.TEXT, body), "plain", _utf8()))
                mail.attach(MIMEText(body, "html", _utf8()))
            else:
                mail = MIMEText(body, "plain", _utf8())
            if files:
                mixed = MIMEMultipart("mixed")
                mixed.attach(mail)
                for name, data in files:
                    part = MIMEApplication(data)
                    part.set_type(mimetypes.guess_type(name)[0] or "application/octet-stream")
                    part.add_header("Content-Disposition", 'attachment; filename="{}"'.format(Header(name, "utf-8")))
                    mixed.attach(part)
                mail = mixed
            for key, value in {"X-Application": s.app_id, **s.headers}.items():
                mail[key] = Header(value, _header_charset(value))
            mail["Subject"] = Header(subject, _header_charset(subject))
            mail["From"] = formataddr((from_name, from_addr), charset="utf-8")
            mail["To"] = formataddr((to_name, to_addr), charset="utf-8")
            mail["Message-ID"] = make_msgid(domain=domain)
            mail["Date"] = format_datetime(datetime.now(tz=s.tzinfo))
            if cc:
                mail["Cc"] = ",".join(formataddr((names.get(a, False), a), charset="utf-8") for a in cc)
            if reply_to:
                mail["Reply-To"] = ",".join(formataddr((names.get(a, False), a), charset="utf-8") for a in reply_to)
            yield [to_addr, *cc, *bcc], mail.as_string()

    def send(self, *, title: str, body: str, body_format: str, attachments: list[Path],
             sessions: SmtpSessions) -> Sent:
        s = self.service
        if not s.targets:
            return Sent(False, ["there are no email recipients to notify"])
        try:
            mails = list(self.messages(title=title, body=body, body_format=body_format, attachments=attachments))
        except OSError as exc:
            return Sent(False, [f"cannot read an attachment: {exc.strerror or type(exc).__name__}"])
        # the password is part of the key: a session is only used again by the account that logged it in
        key = (s.smtp_host, s.port, s.secure_mode, s.user, s.password, s.verify_certificate)
        try:
            client, carried = self._session(key, sessions)
        except (OSError, smtplib.SMTPException) as exc:
            return Sent(False, [f"connection error while submitting email to {s.smtp_host}: {_why(exc)}"])
        errors = []
        for recipients, text in mails:
            try:
                refused = client.sendmail(s.from_addr[1], recipients, text)
            except (OSError, smtplib.SMTPException) as exc:
                errors.append(f"sending email failed: {_why(exc)}")
                break
            carried += 1
            errors.extend(f"SMTP recipient {addr} was refused: {code} {_text(answer)}"
                          for addr, (code, answer) in refused.items())
        if errors:
            end_session(client)
            return Sent(False, errors)
        sessions.give(key, client, carried)
        return Sent(True)

    def _session(self, key: tuple, sessions: SmtpSessions):
        while (found := sessions.take(key)) is not None:
            client, carried = found
            try:
                alive = client.noop()[0] == 250
            except (OSError, smtplib.SMTPException):
                alive = False
            if alive:
                return client, carried
            end_session(client)
        s = self.service
        context = sessions.tls_context(bool(s.verify_certificate))
        timeout = s.socket_connect_timeout
        if s.secure_mode == "ssl":
            client = smtplib.SMTP_SSL(s.smtp_host, s.port, _helo_name(), timeout=timeout, context=context)
        elif s.secure_mode in ("starttls", "insecure"):
            client = smtplib.SMTP(s.smtp_host, s.port, _helo_name(), timeout=timeout)
        else:
            raise smtplib.SMTPException(f"invalid SMTP secure mode {s.secure_mode!r}")
        try:
            if s.secure_mode == "starttls":
                client.starttls(context=context)
            if s.user and s.password:
                client.login(s.user, s.password)
        except (OSError, smtplib.SMTPException):
            end_session(client)
            raise
        sessions.count_opened()
        return client, 0


def _text(answer) -> str:
    return answer.decode("utf-8", "replace") if isinstance(answer, bytes) else str(answer)


def _why(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"{exc.smtp_code} {_text(exc.smtp_error)}"
    return f"{type(exc).__name__}: {exc}"


# -- JSON webhooks ------------------------------------------------------------------------------------------

class WebhookChannel:
    """A generic webhook service (json://, form://): apprise's request, posted here so the reply's `errcode` is read."""

    def __init__(self, service) -> None:
        self.service = service

    def body(self, *, body: str, body_format: str) -> str:
        from apprise.common import NotifyFormat
        from apprise.conversion import convert_between

        fmt = self.service.resolve_format(NotifyFormat(body_format))
        return body if fmt.value == body_format else convert_between(NotifyFormat(body_format), fmt, body)

    def url(self) -> str:
        s = self.service
        port = f":{s.port}" if isinstance(s.port, int) else ""
        return f"{'https' if s.secure else 'http'}://{s.host}{port}{s.fullpath}"

    def request(self, *, title: str, body: str, attachments: list[Path]) -> dict:
        """requests.request's arguments besides method, URL, auth, TLS and timeouts."""
        raise NotImplementedError

    def send(self, *, title: str, body: str, body_format: str, attachments: list[Path], **_) -> Sent:
        import requests

        s = self.service
        try:
            arguments = self.request(title=title, body=self.body(body=body, body_format=body_format),
                                     attachments=attachments)
        except OSError as exc:
            return Sent(False, [f"cannot read an attachment: {exc.strerror or type(exc).__name__}"])
        arguments["headers"] = {"User-Agent": s.app_id, **arguments.get("headers", {}), **s.headers}
        try:
            reply = requests.request(s.method, self.url(), auth=(s.user, s.password) if s.user else None,
                                     verify=s.verify_certificate, timeout=s.request_timeout,
                                     allow_redirects=s.redirects, **arguments)
        except requests.Timeout:
            # the far side may have taken the message and answered late: the retry can deliver it twice
            where = f"{s.host}{':' + str(s.port) if isinstance(s.port, int) else ''}"
            log.warning("webhook %s gave no answer within %s s (connect) / %s s (read); it is sent again later",
                        where, s.socket_connect_timeout, s.socket_read_timeout)
            return Sent(False, [f"webhook timed out (connect {s.socket_connect_timeout} s, read "
                                f"{s.socket_read_timeout} s)"])
        except requests.RequestException as exc:
            return Sent(False, [f"webhook connection error: {type(exc).__name__}"])
        if not 200 <= reply.status_code < 300:
            return Sent(False, [f"webhook answered HTTP {reply.status_code}"])
        refusal = _errcode(reply.content)
        if refusal:
            return Sent(False, [f"webhook answered HTTP {reply.status_code} but refused the message: {refusal}"])
        return Sent(True)


class JsonHookChannel(WebhookChannel):
    """json://, jsons://: apprise's JSON payload (version, title, message, attachments, type)."""

    @staticmethod
    def takes(service) -> bool:
        from apprise.plugins.custom_json import NotifyJSON

        return type(service) is NotifyJSON

    def payload(self, *, title: str, body: str, attachments: list[Path]) -> dict:
        from apprise.common import NotifyType

        s = self.service
        files = [{"filename": Path(p).name, "base64": base64.b64encode(Path(p).read_bytes()).decode("ascii"),
                  "mimetype": _mimetype(p)} for p in attachments]
        payload = {"version": s.json_version, "title": title, "message": body, "attachments": files,
                   "type": NotifyType.INFO.value}
        for key, value in s.payload_extras.items():  # the URL's :key=value entries rename, drop or add fields
            if key in payload:
                if value:
                    payload[value] = payload[key]
                del payload[key]
            else:
                payload[key] = value
        return payload

    def request(self, *, title: str, body: str, attachments: list[Path]) -> dict:
        payload = self.payload(title=title, body=body, attachments=attachments)
        return {"data": json.dumps(payload), "params": self.service.params,
                "headers": {"Content-Type": "application/json"}}


class FormHookChannel(WebhookChannel):
    """form://, forms://: apprise's form fields (version, title, message, type), files as multipart parts."""

    @staticmethod
    def takes(service) -> bool:
        from apprise.plugins.custom_form import NotifyForm

        return type(service) is NotifyForm

    def request(self, *, title: str, body: str, attachments: list[Path]) -> dict:
        from apprise.common import NotifyType

        s = self.service
        if len(attachments) > 1 and not s.attach_multi_support:
            raise OSError(0, "several attachments, and the form:// URL takes one (attach_as)")
        files = [(s.attach_as.format(no) if s.attach_multi_support else s.attach_as,
                  (Path(p).name, Path(p).read_bytes(), _mimetype(p))) for no, p in enumerate(attachments, 1)]
        payload = {}
        for key, value in (("version", s.form_version), ("title", title), ("message", body),
                           ("type", NotifyType.INFO.value)):
            if s.payload_map.get(key):  # the URL's :key= entries rename or drop fields
                payload[s.payload_map[key]] = value
        payload.update(s.payload_extras)
        if s.method == "GET":
            return {"params": {**payload, **s.params}}
        return {"data": payload, "params": s.params, "files": files or None}


def _mimetype(path) -> str:
    return mimetypes.guess_type(Path(path).name)[0] or "application/octet-stream"


def _errcode(content: bytes) -> str | None:
    """'errcode 40001: invalid credential' when a JSON reply carries a non-zero integer errcode, else None."""
    try:
        reply = json.loads(content[:65536]) if content else None
    except ValueError:
        return None
    if not isinstance(reply, dict):
        return None
    code = reply.get("errcode")
    if isinstance(code, bool) or not isinstance(code, int) or code == 0:
        return None
    return f"errcode {code}: {str(reply.get('errmsg') or '')[:200]}".rstrip(": ")


def own_channel(service):
    """bianmin's own channel for `service`, or None when apprise sends to it."""
    for kind in (MailChannel, JsonHookChannel, FormHookChannel):
        if kind.takes(service):
            return kind(service)
    return None
