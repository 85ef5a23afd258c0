"""Delivery through real servers on 127.0.0.1 (aiosmtpd and an HTTP endpoint), apprise unpatched."""
from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from sqlalchemy import select

from models.ledger.db import session_factory
from models.ledger.tables import Alert
from notifications.delivery import deliver, send_message
from notifications.dispatcher import dispatch
from notifications.masking import has_unmasked_mobile
from tests.integration.test_outbox import T0, finding, listed_orders, record
from tests.servers import (  # noqa: F401 (fixtures)
    http_server,
    http_servers,
    smtp_server,
    smtps_server,
    write_apprise_config,
)

ALL_KINDS = {"callback-overdue", "cash-unhanded", "order-overdue"}


def send_digests(engine, config, as_of=T0, locale="zh_CN", **kwargs):
    return dispatch(session_factory(engine), apprise_config=config, outbox_dir=config.parent / "outbox",
                    locale=locale, as_of=as_of, **kwargs)


def alert_rows(engine) -> list[Alert]:
    with session_factory(engine)() as s:
        return list(s.scalars(select(Alert).order_by(Alert.dedupe_key)))


def fifty_findings_for_three_tags():
    """20 callbacks (cs-supervisor), 15 late engineering orders (engineering-supervisor), 15 cash (finance)."""
    callbacks = [finding(n) for n in range(1, 21)]
    orders = [finding(n, kind="order-overdue", department="engineering") for n in range(21, 36)]
    # cash routes to finance-manager and "{dept}-supervisor": no department here, so finance alone
    cash = [finding(n, kind="cash-unhanded", severity=3, amount="80.00", receipts=[f"R{n:05d}"])
            for n in range(36, 51)]
    return callbacks + orders + cash


def test_fifty_findings_for_three_tags_arrive_as_exactly_three_messages_each_listing_its_items(
        engine, tmp_path, smtp_server, http_servers):
    engineering, finance = http_servers(2)
    config = write_apprise_config(tmp_path / "apprise.yml", {
        "cs-supervisor": smtp_server.url(to="cs-supervisor@example.com"),
        "engineering-supervisor": engineering.url("/wecom"),
        "finance-manager": finance.url("/finance"),
    })
    record(engine, fifty_findings_for_three_tags(), kinds=ALL_KINDS)

    result = send_digests(engine, config)

    [mail] = smtp_server.messages
    [eng_post] = engineering.json_bodies()
    [fin_post] = finance.json_bodies()
    assert (result.messages_sent, result.alerts_sent, result.pending_left) == (3, 50, 0)
    mail_text = smtp_server.text(mail)
    assert "20 条待处理" in mail["Subject"]
    assert all(f"WO-{n:04d}" in mail_text for n in range(1, 21))
    assert all(f"WO-{n:04d}" in eng_post["message"] for n in range(21, 36))
    assert all(f"WO-{n:04d}" in fin_post["message"] and f"R{n:05d}" in fin_post["message"] for n in range(36, 51))
    assert "\n2. " in mail_text.replace("\r\n", "\n")  # one item per line block: the email kept its newlines


def test_dispatching_again_sends_no_new_message(engine, tmp_path, smtp_server, http_server):
    config = write_apprise_config(tmp_path / "apprise.yml", {
        "cs-supervisor": smtp_server.url(), "engineering-supervisor": http_server.url("/eng"),
        "finance-manager": http_server.url("/fin")})
    record(engine, fifty_findings_for_three_tags(), kinds=ALL_KINDS)
    send_digests(engine, config)
    record(engine, fifty_findings_for_three_tags(), kinds=ALL_KINDS, as_of=T0 + timedelta(minutes=1))

    again = send_digests(engine, config, as_of=T0 + timedelta(minutes=1))

    assert again.messages_sent == 0
    assert (len(smtp_server.messages), len(http_server.requests)) == (1, 2)


def test_smtp_down_then_up_delivers_every_alert_once_with_attempts_and_backoff_recorded(
        engine, tmp_path, smtp_server):
    config = write_apprise_config(tmp_path / "apprise.yml", {"cs-supervisor": smtp_server.url()})
    record(engine, [finding(n) for n in range(1, 6)])
    smtp_server.stop()

    first = send_digests(engine, config)
    second = send_digests(engine, config, as_of=T0 + timedelta(seconds=60))
    failing = alert_rows(engine)
    smtp_server.start()
    too_early = send_digests(engine, config, as_of=T0 + timedelta(seconds=179))
    on_time = send_digests(engine, config, as_of=T0 + timedelta(seconds=180))
    delivered = alert_rows(engine)

    assert (first.failed, second.failed, too_early.messages_sent, on_time.alerts_sent) == (5, 5, 0, 5)
    assert {(a.attempts, a.next_attempt_at, a.sent_at) for a in failing} == {
        (2, T0 + timedelta(seconds=60 + 120), None)}  # 60 s, then doubled
    assert all(a.last_error for a in failing)
    assert {(a.attempts, a.sent_at, a.last_error) for a in delivered} == {(3, T0 + timedelta(seconds=180), None)}
    [mail] = smtp_server.messages
    assert sorted(listed_orders(smtp_server.text(mail))) == [f"WO-{n:04d}" for n in range(1, 6)]


def test_backoff_is_capped(engine, tmp_path, http_server):
    http_server.respond(500)
    config = write_apprise_config(tmp_path / "apprise.yml", {"cs-supervisor": http_server.url("/hook")})
    record(engine, [finding(1)])
    moment = T0
    for _ in range(5):
        send_digests(engine, config, as_of=moment, backoff_base_seconds=60, backoff_max_seconds=200)
        [row] = alert_rows(engine)
        moment = row.next_attempt_at
    [row] = alert_rows(engine)
    assert (row.attempts, len(http_server.requests), row.sent_at) == (5, 5, None)
    # waits of 60, 120, then 240 capped to 200, three times
    assert row.next_attempt_at == T0 + timedelta(seconds=60 + 120 + 200 + 200 + 200)


def test_http_500_keeps_alerts_pending_then_200_delivers_them_once(engine, tmp_path, http_server):
    http_server.respond(500)
    config = write_apprise_config(tmp_path / "apprise.yml", {"cs-supervisor": http_server.url("/hook")})
    record(engine, [finding(1), finding(2)])

    failed = send_digests(engine, config)
    pending = alert_rows(engine)
    http_server.respond(200)
    delivered = send_digests(engine, config, as_of=T0 + timedelta(minutes=1))
    again = send_digests(engine, config, as_of=T0 + timedelta(minutes=2))

    assert (failed.alerts_sent, failed.failed, failed.pending_left) == (0, 2, 2)
    assert all(a.sent_at is None and a.attempts == 1 for a in pending)
    assert (delivered.alerts_sent, again.messages_sent) == (2, 0)
    assert [r.status for r in http_server.requests] == [500, 200]


def test_an_office_with_its_own_tag_gets_its_own_digest(engine, tmp_path, http_servers):
    group, office_a1 = http_servers(2)
    config = write_apprise_config(tmp_path / "apprise.yml", {
        "cs-supervisor": group.url("/group"), "cs-supervisor@A1": office_a1.url("/a1")})
    record(engine, [finding(1, office="A1"), finding(2, office="B2"), finding(3, office="C3")])

    result = send_digests(engine, config)

    [a1_post] = office_a1.json_bodies()
    [group_post] = group.json_bodies()
    assert result.messages_sent == 2
    assert "WO-0001" in a1_post["message"] and "WO-0002" not in a1_post["message"]
    assert "WO-0002" in group_post["message"] and "WO-0003" in group_post["message"]
    assert "WO-0001" not in group_post["message"]


def test_a_tag_without_url_keeps_its_alerts_pending_with_a_clear_error(engine, tmp_path, http_server):
    config = write_apprise_config(tmp_path / "apprise.yml", {"ops": http_server.url("/ops")})
    record(engine, [finding(1)])

    result = send_digests(engine, config)

    [row] = alert_rows(engine)
    assert (result.failed, row.sent_at) == (1, None)
    assert "cs-supervisor" in row.last_error and "no URL" in row.last_error
    assert http_server.requests == []


def test_no_apprise_config_writes_the_digest_to_the_outbox_folder(tmp_path):
    ok = send_message(tag="ops", title="bianmin 流程失败", body="电话 13812345678", apprise_config=None,
                      outbox_dir=tmp_path / "outbox")
    [file] = (tmp_path / "outbox").glob("*-ops-*.txt")
    assert ok
    assert "138****5678" in file.read_text(encoding="utf-8")


def test_send_message_goes_only_to_its_tag(tmp_path, http_servers):
    ops, other = http_servers(2)
    config = write_apprise_config(tmp_path / "apprise.yml", {"ops": ops.url("/ops"), "administration": other.url("/adm")})
    assert send_message(tag="ops", title="t", body="b", apprise_config=config, outbox_dir=tmp_path)
    assert (len(ops.requests), len(other.requests)) == (1, 0)


def test_an_email_attachment_arrives_intact(tmp_path, smtp_server):
    config = write_apprise_config(tmp_path / "apprise.yml", {"administration": smtp_server.url()})
    workbook = tmp_path / "tally.xlsx"
    workbook.write_bytes(bytes(range(256)) * 40)
    assert send_message(tag="administration", title="月度统计", body="见附件", apprise_config=config,
                        outbox_dir=tmp_path, attachments=[workbook])
    [mail] = smtp_server.messages
    assert smtp_server.attachments(mail) == {"tally.xlsx": workbook.read_bytes()}


def test_a_chinese_mail_body_travels_as_base64_and_reads_back_unchanged(tmp_path, smtp_server):
    config = write_apprise_config(tmp_path / "apprise.yml", {"cs-supervisor": smtp_server.url()})
    body = "\n".join(f"{n}. 电话登记未回复 3号小区{n}栋 业主 王芳 已逾期 25分钟" for n in range(1, 21))
    assert send_message(tag="cs-supervisor", title="【便民提醒】20 条待处理", body=body, apprise_config=config,
                        outbox_dir=tmp_path)
    [mail] = smtp_server.messages
    # apprise would send it quoted-printable, three characters for every byte of a Chinese character
    assert mail["Content-Transfer-Encoding"] == "base64"
    assert smtp_server.text(mail).strip() == body
    assert str(mail["Subject"]) == "【便民提醒】20 条待处理"


def test_no_unmasked_mobile_number_in_any_delivered_body(engine, tmp_path, smtp_server, http_server):
    config = write_apprise_config(tmp_path / "apprise.yml", {
        "cs-supervisor": [smtp_server.url(), http_server.url("/hook")]})
    notes = ["业主另留电话 139-1234-5678", "call +86 137 0000 1111 after 6pm", "邻居 15900001111 代收"]
    record(engine, [finding(n, note=note, resident=f"王先生 18611112222") for n, note in enumerate(notes, 1)])

    send_digests(engine, config, locale="en")

    bodies = smtp_server.texts() + [p["message"] + p["title"] for p in http_server.json_bodies()]
    assert len(bodies) == 2
    assert not any(has_unmasked_mobile(b) for b in bodies)
    assert all("139****5678" in b and "137****1111" in b and "138****5678" in b for b in bodies)


def test_a_canary_token_never_leaks_into_logs_output_errors_or_the_outbox(
        engine, tmp_path, http_server, smtp_server, caplog, capsys):
    canary = "CANARY7f3a9e"
    http_server.respond(500)
    config = write_apprise_config(tmp_path / "apprise.yml", {
        "cs-supervisor": f"json://127.0.0.1:{http_server.port}/{canary}/hook?-token={canary}&+X-Api-Key={canary}",
        # the SMTP sink offers no AUTH: apprise fails to log in with this password
        "finance-manager": smtp_server.url(**{"user": "bianmin", "pass": canary}),
    })
    logging.getLogger("apprise").setLevel(logging.DEBUG)  # someone turned apprise up: we must still not leak
    caplog.set_level(logging.DEBUG)
    record(engine, [finding(1), finding(2, kind="cash-unhanded", severity=3)],
           kinds={"callback-overdue", "cash-unhanded"})

    result = send_digests(engine, config)
    direct = deliver(tag="cs-supervisor", title="t", body="b", apprise_config=config, outbox_dir=tmp_path)

    captured = capsys.readouterr()
    rows = alert_rows(engine)
    assert result.failed == 2 and not direct.ok and direct.error
    assert http_server.requests, "the endpoint was really called"
    everything = [caplog.text, captured.out, captured.err, direct.error, *result.errors.values(),
                  *(r.last_error or "" for r in rows), *(m.as_string() for m in smtp_server.messages),
                  *(smtp_server.text(m) for m in smtp_server.messages),  # bodies are base64 on the wire
                  *(r.body.decode() + r.path for r in http_server.requests if not r.path.startswith(f"/{canary}"))]
    assert all(canary not in text for text in everything)


# -- many tags: parallel sends, one digest per tag, each tag's outcome its own -------------------------------

def office_tags_config(path, urls_by_office: dict[str, str]):
    """An apprise config with one `cs-supervisor@<office>` tag per office, as a property group writes it."""
    return write_apprise_config(path, {f"cs-supervisor@{office}": url for office, url in urls_by_office.items()})


def findings_for_offices(offices, per_office: int):
    n = 0
    out = []
    for office in offices:
        for _ in range(per_office):
            n += 1
            out.append(finding(n, office=office))
    return out


def test_more_alerts_than_one_claim_still_reach_each_tag_as_one_digest(engine, tmp_path, http_server):
    offices = [f"O{i:02d}" for i in range(1, 4)]
    config = office_tags_config(tmp_path / "apprise.yml", {o: http_server.url(f"/{o}") for o in offices})
    record(engine, findings_for_offices(offices, 10))

    result = send_digests(engine, config, claim_batch=7)  # 30 alerts: five claims of at most 7

    posts = {r.path.strip("/"): listed_orders(r.json()["message"]) for r in http_server.accepted()}
    assert (result.messages_sent, result.alerts_sent, result.pending_left) == (3, 30, 0)
    assert {o: len(numbers) for o, numbers in posts.items()} == {o: 10 for o in offices}
    assert sorted(n for numbers in posts.values() for n in numbers) == [f"WO-{n:04d}" for n in range(1, 31)]


def test_a_failing_tag_among_parallel_sends_keeps_only_its_own_alerts_pending(engine, tmp_path, http_servers):
    good, bad = http_servers(2)
    bad.respond(500)
    offices = [f"O{i:02d}" for i in range(1, 13)]
    config = office_tags_config(tmp_path / "apprise.yml", {
        o: (bad if o == "O07" else good).url(f"/{o}") for o in offices})
    record(engine, findings_for_offices(offices, 2))

    result = send_digests(engine, config, concurrency=4)

    rows = alert_rows(engine)
    unsent = sorted((a.office, a.attempts) for a in rows if a.sent_at is None)
    assert (result.messages_sent, result.alerts_sent, result.failed) == (11, 22, 2)
    assert unsent == [("O07", 1), ("O07", 1)]
    assert all(a.last_error for a in rows if a.sent_at is None)
    assert all(a.last_error is None and a.claimed_by is None for a in rows if a.sent_at is not None)
    assert sorted(r.path.strip("/") for r in good.accepted()) == [o for o in offices if o != "O07"]
    assert result.errors.keys() == {"cs-supervisor@o07"}


def test_parallel_failures_each_keep_their_own_error(engine, tmp_path, smtp_server, http_server):
    http_server.respond(500)
    smtp_server.stop()  # connection refused: an SMTP error, not an HTTP one
    config = office_tags_config(tmp_path / "apprise.yml", {
        **{f"H{i}": http_server.url(f"/h{i}") for i in range(1, 5)},
        **{f"M{i}": smtp_server.url(to=f"m{i}@example.com") for i in range(1, 5)}})
    record(engine, findings_for_offices([f"H{i}" for i in range(1, 5)] + [f"M{i}" for i in range(1, 5)], 1))

    result = send_digests(engine, config, concurrency=8)

    errors = {a.office: a.last_error for a in alert_rows(engine)}
    http_errors = {errors[f"H{i}"] for i in range(1, 5)}
    mail_errors = {errors[f"M{i}"] for i in range(1, 5)}
    assert result.failed == 8
    assert http_errors.isdisjoint(mail_errors)
    assert all("500" in e for e in http_errors) and not any("500" in e for e in mail_errors)


def test_an_edited_apprise_config_is_used_by_the_next_dispatch(engine, tmp_path, http_servers):
    before, after = http_servers(2)
    path = tmp_path / "apprise.yml"
    write_apprise_config(path, {"cs-supervisor": before.url("/cs")})
    record(engine, [finding(1)])
    send_digests(engine, path)
    write_apprise_config(path, {"cs-supervisor": after.url("/cs-moved")})
    record(engine, [finding(2)], as_of=T0 + timedelta(minutes=1))

    send_digests(engine, path, as_of=T0 + timedelta(minutes=1))

    assert [listed_orders(p["message"]) for p in before.json_bodies()] == [["WO-0001"]]
    assert [listed_orders(p["message"]) for p in after.json_bodies()] == [["WO-0002"]]


def test_a_url_tagged_always_still_receives_every_tags_message(tmp_path, http_servers):
    ops, watcher, other = http_servers(3)
    config = write_apprise_config(tmp_path / "apprise.yml", {
        "ops": ops.url("/ops"), "always": watcher.url("/all"), "administration": other.url("/adm")})

    assert send_message(tag="ops", title="t", body="b", apprise_config=config, outbox_dir=tmp_path)

    assert (len(ops.requests), len(watcher.requests), len(other.requests)) == (1, 1, 0)


# -- TLS: bianmin's mail channel makes one TLS context a run; the certificate checks are Python's own ---------

def test_mail_over_tls_to_a_server_no_authority_vouches_for_is_refused_and_stays_pending(engine, tmp_path,
                                                                                        smtps_server):
    config = write_apprise_config(tmp_path / "apprise.yml", {"cs-supervisor": smtps_server.url()})
    record(engine, [finding(1)])

    result = send_digests(engine, config)

    [row] = alert_rows(engine)
    assert (result.failed, row.sent_at, smtps_server.messages) == (1, None, [])


def test_mail_over_tls_is_delivered_when_the_url_itself_turns_verification_off(engine, tmp_path, smtps_server):
    config = write_apprise_config(tmp_path / "apprise.yml", {"cs-supervisor": smtps_server.url(verify="no")})
    record(engine, [finding(1)])

    result = send_digests(engine, config)

    [mail] = smtps_server.messages
    assert result.alerts_sent == 1
    assert listed_orders(smtps_server.text(mail)) == ["WO-0001"]


def test_mail_greets_the_server_with_the_name_smtplib_gives_this_host_in_plain_and_in_tls(engine, tmp_path,
                                                                                         smtp_server, smtps_server):
    import smtplib

    config = office_tags_config(tmp_path / "apprise.yml", {"A1": smtp_server.url(),
                                                           "B2": smtps_server.url(verify="no")})
    record(engine, [finding(1, office="A1"), finding(2, office="B2")])

    result = send_digests(engine, config)

    assert result.alerts_sent == 2
    assert smtp_server.greetings == smtps_server.greetings == [smtplib.SMTP().local_hostname]
