"""The web console through FastAPI's TestClient: every refusal the issue lists, and the actions behind them.

The refusals first (no login, wrong password, CSRF, tampered and expired links, a role or office that may not),
then what a permitted user does: acknowledge, silence, record a callback or a reply through the desk.
"""
from __future__ import annotations

import json
import os
import stat
from datetime import datetime, timedelta

import time_machine
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from commands.cli import app as cli_app
from commands.common import set_runtime
from console.app import FAILED_LOGIN_PAUSE, create_app
from console.links import alert_link
from console.secret import key_path, secret_key
from models.ledger.tables import Alert, AlertSilence, AuditEvent, Callback, ServiceRequest, User, WorkOrder
from tests.consoles import NOW, PHONE_A, PHONE_B, client, console_world, csrf_of, log_in, world  # noqa: F401


def logged_in(client, login: str):
    response = log_in(client, login)
    assert response.status_code == 303, response.text
    return client


def alert_row(engine, alert_id: int) -> Alert:
    with engine.connect() as conn:
        return conn.execute(select(Alert).where(Alert.id == alert_id)).one()


# -- refusals ------------------------------------------------------------------------------------------------

def test_a_page_without_login_redirects_to_login_and_shows_no_data(client, world):
    for path in ("/alerts", f"/alerts/{world.alert_a}", f"/orders/{world.order_a}", "/alerts?view=history"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/login?next=")
        assert world.order_a not in response.text and "138" not in response.text
    login_page = client.get("/alerts")  # followed: the login form, nothing of the ledger
    assert 'name="login"' in login_page.text and 'name="password"' in login_page.text
    assert world.order_a not in login_page.text


def test_a_post_without_login_changes_nothing(client, world, engine):
    form = client.get("/login")
    response = client.post(f"/alerts/{world.alert_a}/ack", data={"csrf": csrf_of(form.text)}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/login")
    assert alert_row(engine, world.alert_a).acked_by is None


def test_a_wrong_password_is_refused_slowed_counted_and_audited(client, engine, caplog):
    started = datetime.now()
    response = log_in(client, "li", "not the password")
    assert (datetime.now() - started).total_seconds() >= FAILED_LOGIN_PAUSE
    assert response.status_code == 401 and "Wrong login or password" in response.text
    assert "not the password" not in response.text
    assert client.get("/alerts", follow_redirects=False).status_code == 303  # still not logged in
    with engine.connect() as conn:
        assert conn.scalar(select(User.failed_logins).where(User.login == "li")) == 1
        actions = conn.scalars(select(AuditEvent.action).where(AuditEvent.entity == "user",
                                                               AuditEvent.entity_ref == "li")).all()
    assert actions.count("login-failed") == 1
    # an unknown login: the same answer, and what was typed (often a password in the wrong field) is not kept
    typed = "my-Password-123"
    assert log_in(client, typed, "whatever1").status_code == 401
    with engine.connect() as conn:
        kept = conn.execute(select(AuditEvent.actor, AuditEvent.entity_ref, AuditEvent.after)).all()
    assert typed not in repr(kept) and typed not in caplog.text


def test_repeated_failures_make_the_next_attempt_wait_even_with_the_right_password(client, engine):
    for _ in range(4):
        assert log_in(client, "li", "wrong password").status_code == 401
    refused = log_in(client, "li")  # right password, but inside the wait
    assert refused.status_code == 401 and "Too many attempts" in refused.text
    with engine.begin() as conn:  # the wait has passed
        conn.execute(User.__table__.update().where(User.login == "li")
                     .values(last_failed_at=NOW - timedelta(hours=1)))
    assert log_in(client, "li").status_code == 303


def test_a_post_without_or_with_a_wrong_csrf_token_is_refused(client, world, engine):
    logged_in(client, "li")
    no_token = client.post(f"/alerts/{world.alert_a}/ack", data={}, follow_redirects=False)
    wrong = client.post(f"/alerts/{world.alert_a}/ack", data={"csrf": "forged"}, follow_redirects=False)
    assert no_token.status_code == 403 and wrong.status_code == 403
    assert "reload the page" in wrong.text
    assert alert_row(engine, world.alert_a).acked_by is None
    # the login form carries one too: a page elsewhere cannot log a victim in to the attacker's account
    client.cookies.clear()
    assert client.post("/login", data={"login": "li", "password": "x" * 10}).status_code == 403


def test_a_tampered_link_is_a_clear_page(client, world):
    link = alert_link(world.rt.settings, world.alert_a)
    path = link.removeprefix("http://127.0.0.1:8209")
    tampered = path[:-3] + ("AAA" if not path.endswith("AAA") else "BBB")
    for bad in (tampered, "/a/not-a-token", path.replace(".", "", 1)):
        response = client.get(bad, follow_redirects=False)
        assert response.status_code == 400, bad
        assert "Invalid link" in response.text and "Traceback" not in response.text
        assert world.order_a not in response.text


def test_an_expired_link_is_a_clear_page(client, world):
    with time_machine.travel(datetime.now().astimezone() - timedelta(hours=73)):
        old = alert_link(world.rt.settings, world.alert_a)
    response = client.get(old.removeprefix("http://127.0.0.1:8209"), follow_redirects=False)
    assert response.status_code == 410 and "Link expired" in response.text and "72 hours" in response.text
    assert world.order_a not in response.text


def test_a_finance_user_may_not_see_cs_alerts_nor_record_a_callback(client, world, engine):
    logged_in(client, "feng")
    listed = client.get("/alerts")
    assert world.order_a not in listed.text
    assert client.get(f"/alerts/{world.alert_a}").status_code == 403
    page = client.get(f"/orders/{world.order_a}")  # same office: the story, phone masked, no follow-up form
    assert page.status_code == 200 and PHONE_A not in page.text and "138****5678" in page.text
    assert "/callback" not in page.text
    response = client.post(f"/orders/{world.order_a}/callback", follow_redirects=False,
                           data={"csrf": csrf_of(page.text), "order": world.order_a, "outcome": "satisfied"})
    assert response.status_code == 403 and "Only customer service" in response.text
    with engine.connect() as conn:
        assert conn.scalar(select(Callback.done_at).join(WorkOrder, WorkOrder.id == Callback.order_id)
                           .where(WorkOrder.number == world.order_a)) is None


def test_a_supervisor_of_office_a_may_not_open_or_ack_office_b_alerts(client, world, engine):
    logged_in(client, "li")
    listed = client.get("/alerts")
    assert world.order_a in listed.text and world.order_b not in listed.text
    page = client.get(f"/alerts/{world.alert_b}")
    assert page.status_code == 403 and world.order_b not in page.text and PHONE_B not in page.text
    link = alert_link(world.rt.settings, world.alert_b).removeprefix("http://127.0.0.1:8209")
    assert client.get(link).status_code == 403  # the link of B's alert: the same refusal after the redirect
    ack = client.post(f"/alerts/{world.alert_b}/ack", data={"csrf": csrf_of(listed.text)}, follow_redirects=False)
    assert ack.status_code == 403
    assert alert_row(engine, world.alert_b).acked_by is None
    assert client.get(f"/orders/{world.order_b}").status_code == 403


# -- what a permitted user sees and does -------------------------------------------------------------------

def test_the_link_asks_for_a_login_then_opens_the_alert_and_get_changes_nothing(client, world, engine):
    path = alert_link(world.rt.settings, world.alert_a).removeprefix("http://127.0.0.1:8209")
    first = client.get(path, follow_redirects=False)
    assert first.status_code == 303 and first.headers["location"].startswith("/login?next=%2Fa%2F")
    back = log_in(client, "li", next=path)
    assert back.headers["location"] == path
    page = client.get(path)
    assert page.status_code == 200 and world.order_a in page.text and "Acknowledge" in page.text
    assert alert_row(engine, world.alert_a).acked_by is None  # opening it acted on nothing


def test_cs_of_the_office_sees_the_full_phone_others_a_masked_one(client, world):
    logged_in(client, "li")
    assert PHONE_A in client.get(f"/alerts/{world.alert_a}").text
    client.cookies.clear()
    logged_in(client, "root")  # the administrator sees every office, but is not CS
    page = client.get(f"/alerts/{world.alert_a}").text
    assert PHONE_A not in page and "138****5678" in page
    listed = client.get("/alerts").text
    assert world.order_a in listed and world.order_b in listed and PHONE_A not in listed and PHONE_B not in listed


def test_open_alerts_are_most_severe_and_oldest_first(client, world):
    logged_in(client, "root")
    text = client.get("/alerts").text
    # the two callbacks (severity 2, first seen at NOW) and the reply (severity 2): none is more severe; all shown
    assert all(ref in text for ref in (world.order_a, world.order_b, world.request_a))


def test_ack_is_recorded_with_the_users_name_through_the_clis_operation(client, world, engine, settings):
    page = logged_in(client, "li").get(f"/alerts/{world.alert_a}")
    response = client.post(f"/alerts/{world.alert_a}/ack", data={"csrf": csrf_of(page.text)},
                           follow_redirects=False)
    assert response.status_code == 303
    assert alert_row(engine, world.alert_a).acked_by == "李主管"
    set_runtime(world.rt)
    try:
        listed = json.loads(CliRunner().invoke(cli_app, ["alerts", "list", "--json", "--at", NOW.isoformat()]).stdout)
    finally:
        set_runtime(None)
    row = next(a for a in listed if a["alert_key"] == f"callback-overdue:{world.order_a}:1@cs-supervisor")
    assert (row["acked_by"], row["status"]) == ("李主管", "acked")
    with engine.connect() as conn:
        event = conn.execute(select(AuditEvent).where(AuditEvent.action == "ack")).one()
    assert event.actor == "李主管"
    assert world.order_a in client.get("/alerts?view=acked").text
    assert world.order_a not in client.get("/alerts?view=open").text


def test_silence_needs_a_time_and_a_reason_and_can_name_one_alert(client, world, engine):
    page = logged_in(client, "li").get(f"/alerts/{world.alert_a}")
    token = csrf_of(page.text)
    no_reason = client.post(f"/alerts/{world.alert_a}/silence",
                            data={"csrf": token, "scope": "key", "until": "2026-11-06T09:00", "reason": " "})
    no_time = client.post(f"/alerts/{world.alert_a}/silence",
                          data={"csrf": token, "scope": "key", "until": "", "reason": "resident travelling"})
    past = client.post(f"/alerts/{world.alert_a}/silence",
                       data={"csrf": token, "scope": "key", "until": "2026-11-01T09:00", "reason": "x"})
    assert [r.status_code for r in (no_reason, no_time, past)] == [400, 400, 400]
    assert "Give a reason" in no_reason.text
    with engine.connect() as conn:
        assert conn.scalar(select(AlertSilence.id)) is None
    done = client.post(f"/alerts/{world.alert_a}/silence", follow_redirects=False,
                       data={"csrf": token, "scope": "key", "until": "2026-11-06T09:00",
                             "reason": "resident travelling"})
    assert done.status_code == 303
    with engine.connect() as conn:
        silence = conn.execute(select(AlertSilence)).one()
    assert (silence.alert_key, silence.office, silence.created_by) == (
        f"callback-overdue:{world.order_a}:1@cs-supervisor", "A1", "李主管")
    silenced = client.get("/alerts?view=silenced").text
    assert world.order_a in silenced and world.request_a not in silenced  # one key: the reply alert stays open
    assert world.request_a in client.get("/alerts?view=open").text


def test_an_unsatisfied_callback_from_the_alert_page_opens_the_rework_order(client, world, engine):
    logged_in(client, "wang")  # the clerk of A1, staff A1-CS1
    alert = client.get(f"/alerts/{world.alert_a}")
    assert "Reply / callback" in alert.text
    page = client.get(f"/orders/{world.order_a}")
    assert PHONE_A in page.text and 'name="outcome"' in page.text
    response = client.post(f"/orders/{world.order_a}/callback", follow_redirects=True,
                           data={"csrf": csrf_of(page.text), "order": world.order_a, "outcome": "unsatisfied",
                                 "note": "still leaking"})
    assert response.status_code == 200
    assert f"Free rework order {world.order_a}-R1 issued" in response.text
    with engine.connect() as conn:
        rework = conn.scalar(select(WorkOrder.fee).where(WorkOrder.number == f"{world.order_a}-R1"))
        actors = conn.scalars(select(AuditEvent.actor).where(AuditEvent.action == "callback")).all()
    assert rework == 0 and "王客服" in actors  # the console's own event names the user
    again = client.post(f"/orders/{world.order_a}/callback",
                        data={"csrf": csrf_of(page.text), "order": world.order_a, "outcome": "satisfied"})
    assert again.status_code == 400  # the desk's refusal, in its words: no callback owed any more
    assert "callback" in again.text.lower()


def test_the_reply_to_a_phone_request_is_recorded_through_the_desk(client, world, engine):
    logged_in(client, "wang")
    page = client.get(f"/orders/{world.request_a}")
    assert "Record the reply" in page.text
    response = client.post(f"/orders/{world.request_a}/reply", data={"csrf": csrf_of(page.text)},
                           follow_redirects=False)
    assert response.status_code == 303
    with engine.connect() as conn:
        replied = conn.execute(select(ServiceRequest.replied_at, ServiceRequest.replied_by_id)
                               .where(ServiceRequest.number == world.request_a)).one()
    assert replied.replied_at is not None


def test_a_disabled_users_session_ends_at_the_next_click(client, world, engine):
    logged_in(client, "li")
    assert client.get("/alerts", follow_redirects=False).status_code == 200
    with engine.begin() as conn:
        conn.execute(User.__table__.update().where(User.login == "li").values(active=False))
    assert client.get("/alerts", follow_redirects=False).status_code == 303


def test_logout_needs_the_token_and_ends_the_session(client):
    page = logged_in(client, "li").get("/alerts")
    assert client.post("/logout", data={}, follow_redirects=False).status_code == 403
    assert client.post("/logout", data={"csrf": csrf_of(page.text)}, follow_redirects=False).status_code == 303
    assert client.get("/alerts", follow_redirects=False).status_code == 303


def test_the_session_cookie_is_httponly_lax_and_secure_behind_https(world):
    plain = TestClient(create_app(world.rt, clock=lambda: NOW), base_url="http://127.0.0.1:8209")
    cookie = log_in(plain, "li").headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "secure" not in cookie
    https_rt = type(world.rt)(world.rt.settings.model_copy(update={"public_url": "https://bianmin.example.com"}))
    secure = TestClient(create_app(https_rt, clock=lambda: NOW), base_url="https://bianmin.example.com")
    assert "secure" in log_in(secure, "li").headers["set-cookie"].lower()
    https_rt.close()


def test_the_chinese_pages(world, settings, engine):
    zh = type(world.rt)(world.rt.settings.model_copy(update={"locale": "zh_CN"}))
    with TestClient(create_app(zh, clock=lambda: NOW)) as c:
        assert "登录" in c.get("/login").text
        assert "登录名或密码不对" in log_in(c, "li", "wrong password").text
        logged_in(c, "li")
        assert "回访逾期" in c.get("/alerts").text
    zh.close()


def test_the_generated_secret_key_is_kept_owner_only(settings):
    assert settings.secret_key is None
    key = secret_key(settings)
    path = key_path(settings)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert secret_key(settings) == key and len(key) >= 32


def test_pages_refuse_framing_and_a_malformed_address_is_a_page(client):
    login = client.get("/login")
    assert login.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in login.headers["content-security-policy"]
    logged_in(client, "li")
    bad = client.get("/alerts/not-a-number")
    assert bad.status_code == 400 and "not-a-number" not in bad.text and "<html" in bad.text


def test_the_link_a_dispatched_digest_carries_opens_its_alert_after_a_login(world, client, engine):
    from flows.dispatch import run_dispatch

    assert run_dispatch(world.rt, NOW).alerts_sent >= 3  # no apprise config: digests land in the outbox folder
    digest = "".join(p.read_text(encoding="utf-8") for p in world.rt.settings.effective_outbox_dir.rglob("*")
                     if p.is_file())
    links = [line.strip() for line in digest.splitlines() if "/a/" in line]
    assert len(links) >= 3 and all(line.startswith("http://127.0.0.1:8209/a/") for line in links)
    opened = client.get(links[0].removeprefix("http://127.0.0.1:8209"), follow_redirects=False)
    assert opened.status_code == 303 and opened.headers["location"].startswith("/login?next=%2Fa%2F")
    logged_in(client, "root")
    shown = client.get(links[0].removeprefix("http://127.0.0.1:8209"), follow_redirects=False)
    assert shown.status_code == 303 and shown.headers["location"].startswith("/alerts/")
    assert alert_row(engine, int(shown.headers["location"].rsplit("/", 1)[1])).acked_by is None  # GET acts not
