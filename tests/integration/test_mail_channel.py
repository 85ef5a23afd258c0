"""bianmin's own mail channel (notifications/channels.py) sends the mail apprise would, through shared sessions.

Each test sends the same message twice to one real SMTP sink: once with plain apprise (untouched), once with
`deliver`, and compares what arrived: headers, envelope, body, attachments, for every TLS mode of a URL.
"""
from __future__ import annotations

from collections.abc import Iterator

import apprise
import pytest

from notifications.delivery import deliver
from tests.servers import _self_signed_server_context  # our own test helper: a certificate for 127.0.0.1
from tests.servers import SmtpSink, smtp_server, smtps_server, write_apprise_config  # noqa: F401 (fixtures)

VARYING = {"message-id", "date"}  # made afresh for every mail, by apprise and by us alike
# how the bytes are written, not what they say: ours base64, apprise's quoted-printable; `shape` compares the
# decoded content, and the content types with their parameters
ENCODING = {"content-transfer-encoding"}


class StartTlsSink(SmtpSink):
    """The SMTP sink, offering STARTTLS with a self-signed certificate and refusing mail without it."""

    def start(self) -> StartTlsSink:
        from aiosmtpd.controller import Controller

        if self._controller is None:
            self._controller = Controller(self, hostname=self.host, port=self.port, ready_timeout=10,
                                          tls_context=_self_signed_server_context(self.host), require_starttls=True)
            self._controller.start()
        return self


@pytest.fixture
def starttls_server() -> Iterator[StartTlsSink]:
    sink = StartTlsSink().start()
    try:
        yield sink
    finally:
        sink.stop()


def by_apprise_and_by_us(sink: SmtpSink, url: str, tmp_path, *, title: str, body: str, body_format: str = "text",
                         attachments=()):
    """The mail plain apprise sends for `url`, and the one `deliver` sends, as the sink received them."""
    app = apprise.Apprise()
    assert app.add(url)
    assert app.notify(body=body, title=title, body_format=body_format,
                      attach=[str(a) for a in attachments] or None)
    config = write_apprise_config(tmp_path / "apprise.yml", {"administration": url})
    assert deliver(tag="administration", title=title, body=body, body_format=body_format, attachments=attachments,
                   apprise_config=config, outbox_dir=tmp_path / "outbox").ok
    theirs, ours = sink.messages
    return theirs, ours


def headers(mail) -> dict[str, str]:
    return {name.lower(): str(value) for name, value in mail.items()
            if name.lower() not in VARYING | ENCODING and name.lower() != "content-type"}


def shape(mail) -> list[tuple[str, str | None, str]]:
    """Each MIME part: its type, file name and decoded content."""
    out = []
    for part in mail.walk():
        if part.is_multipart():
            out.append((part.get_content_type(), None, ""))
            continue
        assert part.get_content_charset() in (None, "utf-8", "us-ascii")
        content = part.get_content()
        # quoted-printable ends a text with a line break base64 does not add: the text is the same
        out.append((part.get_content_type(), part.get_filename(),
                    content.replace("\r\n", "\n").rstrip("\n") if isinstance(content, str) else content))
    return out


DIGEST = "\n".join(f"{n}. [警告] 回访逾期 WO-{n:04d}\n   业主 王芳 138****5678" for n in range(1, 6))


@pytest.mark.parametrize("extra", [{}, {"cc": "cc@example.com", "bcc": "audit@example.com", "name": "便民 bianmin"}])
def test_a_digest_mail_has_apprises_headers_body_and_envelope(tmp_path, smtp_server, extra):
    url = smtp_server.url(to="boss@example.com", **extra)

    theirs, ours = by_apprise_and_by_us(smtp_server, url, tmp_path, title="【便民提醒】5 条待处理", body=DIGEST)

    assert headers(ours) == headers(theirs)
    assert shape(ours) == shape(theirs)
    assert smtp_server.envelopes[1] == smtp_server.envelopes[0]
    assert ours["Content-Transfer-Encoding"] == "base64"  # ours is smaller for Chinese text; both decode the same


def test_a_report_mail_in_html_with_a_workbook_matches_apprises(tmp_path, smtp_server):
    workbook = tmp_path / "月度统计-2026-11.xlsx"
    workbook.write_bytes(bytes(range(256)) * 64)
    html = "<h1>2026-11 月度统计</h1><p>工单 1,234 张,收费 ¥56,789.00</p>"

    theirs, ours = by_apprise_and_by_us(smtp_server, smtp_server.url(), tmp_path, title="月度统计 2026-11",
                                        body=html, body_format="html", attachments=[workbook])

    assert headers(ours) == headers(theirs)
    assert shape(ours) == shape(theirs)
    assert smtp_server.attachments(ours) == {workbook.name: workbook.read_bytes()}


def test_mail_over_implicit_tls_matches_apprises(tmp_path, smtps_server):
    theirs, ours = by_apprise_and_by_us(smtps_server, smtps_server.url(verify="no"), tmp_path, title="TLS",
                                        body=DIGEST)

    assert (headers(ours), shape(ours)) == (headers(theirs), shape(theirs))


def test_mail_over_starttls_matches_apprises_and_is_refused_when_the_certificate_is_not_vouched_for(
        tmp_path, starttls_server):
    url = starttls_server.url(verify="no", mode="starttls")

    theirs, ours = by_apprise_and_by_us(starttls_server, url, tmp_path, title="STARTTLS", body=DIGEST)
    config = write_apprise_config(tmp_path / "strict.yml", {"administration": starttls_server.url(mode="starttls")})
    strict = deliver(tag="administration", title="t", body="b", apprise_config=config, outbox_dir=tmp_path)

    assert (headers(ours), shape(ours)) == (headers(theirs), shape(theirs))
    assert not strict.ok and len(starttls_server.messages) == 2


def test_the_compared_headers_are_the_ones_a_reader_sees(tmp_path, smtp_server):
    url = smtp_server.url(to="boss@example.com", cc="cc@example.com", name="便民 bianmin")

    _theirs, ours = by_apprise_and_by_us(smtp_server, url, tmp_path, title="【便民提醒】5 条待处理", body=DIGEST)

    assert {"subject", "from", "to", "cc", "x-application", "mime-version"} <= headers(ours).keys()
    assert headers(ours)["subject"] == "【便民提醒】5 条待处理" and "便民 bianmin" in headers(ours)["from"]


def test_sending_mail_leaves_apprises_modules_and_pythons_email_charsets_as_they_were(tmp_path, smtp_server):
    import email.charset
    import smtplib
    import ssl

    from apprise.plugins.email import base, smtp

    controller, charsets = base.AppriseSMTPController, dict(email.charset.CHARSETS)
    config = write_apprise_config(tmp_path / "apprise.yml", {"administration": smtp_server.url()})

    assert deliver(tag="administration", title="月度统计", body="见附件", apprise_config=config,
                   outbox_dir=tmp_path / "outbox").ok

    assert (smtp.ssl, smtp.smtplib) == (ssl, smtplib)
    assert base.AppriseSMTPController is controller is smtp.AppriseSMTPController
    assert dict(email.charset.CHARSETS) == charsets
