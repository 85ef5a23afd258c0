"""A run's mails to one server share SMTP sessions: fewer handshakes, the same mails, nothing sent on a dead one."""
from __future__ import annotations

import time

import pytest

from notifications.delivery import Courier, SmtpSessions, deliver
from tests.integration.test_delivery import office_tags_config, send_digests
from tests.integration.test_outbox import finding, record
from tests.servers import SmtpSink, smtp_server, write_apprise_config  # noqa: F401 (fixtures)


def mail_to(tag: str, config, courier: Courier | None):
    # each mail of a test goes to a tag of its own: apprise spaces two mails to one URL by 5.5 s
    return deliver(tag=tag, title="回复超时 1 条", body=f"R-0001 给 {tag}", apprise_config=config,
                   outbox_dir=config.parent / "outbox", courier=courier)


def test_a_dispatch_sends_every_offices_digest_through_one_session_and_ends_it_with_quit(engine, tmp_path,
                                                                                         smtp_server):
    offices = ["A1", "B2", "C3", "D4", "E5"]
    config = office_tags_config(tmp_path / "apprise.yml",
                                {o: smtp_server.url(to=f"boss-{o.lower()}@example.com") for o in offices})
    record(engine, [finding(n, office=o) for n, o in enumerate(offices, 1)])

    result = send_digests(engine, config, concurrency=1)

    assert result.messages_sent == 5
    assert smtp_server.carriers == [1, 1, 1, 1, 1]
    assert sorted(rcpt for _sender, (rcpt,) in smtp_server.envelopes) == [
        f"boss-{o.lower()}@example.com" for o in offices]
    assert smtp_server.quits == 1


def test_parallel_senders_never_share_a_session_at_once_and_every_session_is_ended(engine, tmp_path, smtp_server):
    offices = [f"O{n:02d}" for n in range(1, 41)]
    config = office_tags_config(tmp_path / "apprise.yml", {o: smtp_server.url() for o in offices})
    record(engine, [finding(n, office=o) for n, o in enumerate(offices, 1)])

    result = send_digests(engine, config, concurrency=4)

    assert result.messages_sent == 40 and len(smtp_server.raw) == 40
    used = set(smtp_server.carriers)
    assert len(used) <= 4 < 40  # at most one session per sending thread
    assert smtp_server.quits == len(used)


def test_a_single_send_ends_its_own_session(tmp_path, smtp_server):
    config = write_apprise_config(tmp_path / "apprise.yml", {"cs-supervisor": smtp_server.url()})

    assert mail_to("cs-supervisor", config, None).ok

    assert (len(smtp_server.raw), smtp_server.quits) == (1, 1)


def five_tags(sink: SmtpSink, path):
    return write_apprise_config(path, {f"t{n}": sink.url(to=f"boss{n}@example.com") for n in range(5)})


def test_a_session_the_server_dropped_while_it_waited_is_replaced_before_the_next_mail(tmp_path):
    sink = SmtpSink(idle_timeout=0.3).start()
    try:
        config = five_tags(sink, tmp_path / "apprise.yml")
        with Courier() as courier:
            first = mail_to("t0", config, courier)
            time.sleep(0.8)  # the server times the parked session out
            second = mail_to("t1", config, courier)
            opened = courier.smtp.opened
    finally:
        sink.stop()

    assert first.ok and second.ok
    assert sink.carriers == [1, 2]
    assert opened == 2


def test_a_session_whose_mail_was_refused_is_not_used_again(tmp_path, smtp_server):
    smtp_server.refused.add("gone@example.com")
    config = write_apprise_config(tmp_path / "apprise.yml", {
        "gone": smtp_server.url(to="gone@example.com"), "boss": smtp_server.url(to="boss@example.com")})

    with Courier() as courier:
        refused = mail_to("gone", config, courier)
        delivered = mail_to("boss", config, courier)
        opened = courier.smtp.opened

    assert not refused.ok and delivered.ok
    assert opened == 2
    assert [rcpt for _sender, rcpt in smtp_server.envelopes] == [["boss@example.com"]]
    assert smtp_server.quits == 2  # the refused one at once, the other when the courier closed


def test_a_session_carries_at_most_its_share_of_mails(tmp_path, smtp_server):
    config = five_tags(smtp_server, tmp_path / "apprise.yml")

    with Courier(smtp=SmtpSessions(max_mails=2)) as courier:
        results = [mail_to(f"t{n}", config, courier) for n in range(5)]

    assert all(r.ok for r in results)
    assert smtp_server.carriers == [1, 1, 2, 2, 3]
    assert smtp_server.quits == 3


def test_a_session_left_idle_too_long_is_ended_not_used(tmp_path, smtp_server):
    config = five_tags(smtp_server, tmp_path / "apprise.yml")

    with Courier(smtp=SmtpSessions(max_idle=0.0)) as courier:
        first = mail_to("t0", config, courier)
        time.sleep(0.05)
        second = mail_to("t1", config, courier)

    assert first.ok and second.ok
    assert smtp_server.carriers == [1, 2]
    assert smtp_server.quits == 2


@pytest.mark.parametrize("other", [{"user": "other"}, {"port": "other"}])
def test_mails_for_another_account_or_server_never_take_a_parked_session(tmp_path, other):
    first, second = SmtpSink().start(), SmtpSink().start()
    try:
        # two accounts on one server differ in their URL's user; two servers differ in their port
        url_a = first.url(to="a@example.com", user="desk-a") if "user" in other else first.url(to="a@example.com")
        url_b = (first.url(to="b@example.com", user="desk-b") if "user" in other
                 else second.url(to="b@example.com"))
        url_c = url_a.replace("to=a%40", "to=c%40").replace("to=a@", "to=c@")
        config = write_apprise_config(tmp_path / "apprise.yml", {"a": url_a, "b": url_b, "c": url_c})
        with Courier() as courier:
            a = mail_to("a", config, courier)
            b = mail_to("b", config, courier)
            again = mail_to("c", config, courier)  # same server and account as "a", another mailbox
            opened = courier.smtp.opened
    finally:
        first.stop()
        second.stop()

    assert a.ok and b.ok and again.ok
    assert opened == 2
    sink_a_carriers = first.carriers
    if "user" in other:
        assert sink_a_carriers == [1, 2, 1]
    else:
        assert (sink_a_carriers, second.carriers) == ([1, 1], [1])
