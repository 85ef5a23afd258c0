"""The console in a real browser: Debian's chromium driven by Playwright against `bianmin web`'s own server
(uvicorn on a free port), in zh_CN as the managers use it.

The overdue callbacks are dispatched through apprise to a real SMTP server (aiosmtpd); a manager takes the link
from the mail as delivered, opens it, logs in, acknowledges; `alerts list --json` shows who, and the next dispatch
inside the repeat interval sends nothing for it. A CS clerk records
an unsatisfied callback from the alert page and sees the rework order. Screenshots at 375x812 and 1280x800 are
written to $BIANMIN_TEST_ARTIFACTS (else the test's tmp folder), and the phone-sized pages must not scroll sideways.
"""
from __future__ import annotations

import json
import os
import re
import socket
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from commands.cli import app as cli_app
from commands.common import set_runtime
from console.links import alert_link
from models.ledger.tables import Alert
from tests.consoles import NOW, PASSWORD, PHONE_A, console_world
from tests.servers import smtp_server, write_apprise_config  # noqa: F401 (fixture)

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(),
                       reason="Debian's chromium is not installed (make browser / apt-get install chromium)"),
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def artifacts(tmp_path) -> Path:
    folder = Path(os.environ.get("BIANMIN_TEST_ARTIFACTS") or tmp_path / "artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def served(settings, engine, smtp_server, tmp_path):
    """The two-office world, its CS supervisors' digests going by mail to `smtp_server`, and the console serving
    it on a free port (as `bianmin serve` runs it: a thread)."""
    from console.server import BackgroundConsole

    port = _free_port()
    config = write_apprise_config(tmp_path / "apprise.yml", {"cs-supervisor": smtp_server.url()})
    world = console_world(settings, engine, locale="zh_CN", public_url=f"http://127.0.0.1:{port}", web_port=port,
                          apprise_config=config, signoff=True)
    web = BackgroundConsole(world.rt, host="127.0.0.1", port=port)
    assert web.start(), "the console did not start"
    yield world, f"http://127.0.0.1:{port}"
    web.stop()
    world.rt.close()


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        # Debian's build, never a downloaded one; --no-sandbox: the tests may run as root in a container
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"], headless=True)
        yield chromium
        chromium.close()


def _no_sideways_scroll(page) -> None:
    width = page.evaluate("() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert width[0] <= width[1], f"{page.url} scrolls sideways at {width[1]} px: content {width[0]} px wide"


def _log_in(page, login: str) -> None:
    page.fill('input[name="login"]', login)
    page.fill('input[name="password"]', PASSWORD)
    page.get_by_role("button", name="登录").click()


def _last_notified(engine, alert_id: int):
    with engine.connect() as conn:
        return conn.scalar(select(Alert.last_notified_at).where(Alert.id == alert_id))


def _link_in_mail(mail_text: str, order: str) -> str:
    """The console link of `order`'s item in a delivered digest: the URL on a line of its own below its heading."""
    lines = mail_text.replace("\r\n", "\n").split("\n")
    start = next(i for i, line in enumerate(lines) if re.match(rf"\d+\. .*{re.escape(order)}", line))
    return next(line.strip() for line in lines[start + 1:] if "/a/" in line)


def test_a_manager_opens_the_link_logs_in_and_acknowledges(served, browser, artifacts, engine, smtp_server):
    from flows.callbacks import run_chase_callbacks
    from flows.dispatch import run_dispatch

    world, base = served
    # the overdue callbacks are delivered through apprise's mailto to a real SMTP server
    assert run_dispatch(world.rt, NOW).alerts_sent >= 2
    sent_a, sent_b = _last_notified(engine, world.alert_a), _last_notified(engine, world.alert_b)
    assert sent_a is not None and sent_b is not None
    [mail] = smtp_server.messages
    link = _link_in_mail(smtp_server.text(mail), world.order_a)
    assert link.startswith(base + "/a/") and link != alert_link(world.rt.settings, world.alert_b)
    page = browser.new_page(viewport={"width": 375, "height": 812})
    page.goto(link)
    assert "/login" in page.url  # the link alone shows nothing
    assert world.order_a not in page.content()
    _log_in(page, "li")
    page.wait_for_url(f"**/alerts/{world.alert_a}")
    assert world.order_a in page.content() and PHONE_A in page.content()  # CS of A1: the full number
    _no_sideways_scroll(page)
    page.screenshot(path=artifacts / "alert-375x812.png", full_page=True)

    page.get_by_role("button", name="确认(我来处理)").click()
    page.wait_for_url("**done=ack")
    assert "李主管" in page.locator(".acked-by").inner_text()

    set_runtime(world.rt)
    try:
        listed = json.loads(CliRunner().invoke(cli_app, ["alerts", "list", "--json", "--at", NOW.isoformat()]).stdout)
    finally:
        set_runtime(None)
    acked = {a["alert_key"]: a["acked_by"] for a in listed}
    assert acked[f"callback-overdue:{world.order_a}:1@cs-supervisor"] == "李主管"
    # half an hour on, inside the repeat interval: the next dispatch sends nothing for it (nor anything else)
    smtp_server.clear()
    run_chase_callbacks(world.rt, NOW + timedelta(minutes=30))
    run_dispatch(world.rt, NOW + timedelta(minutes=30))
    assert world.order_a not in "".join(smtp_server.texts())
    assert _last_notified(engine, world.alert_a) == sent_a
    # five hours on, past the 4-hour repeat and still level 1: B's alert is sent again, the acked one is not
    later = NOW + timedelta(hours=5)
    run_chase_callbacks(world.rt, later)
    run_dispatch(world.rt, later)
    assert _last_notified(engine, world.alert_a) == sent_a
    assert _last_notified(engine, world.alert_b) > sent_b
    later_mail = "".join(smtp_server.texts())
    assert world.order_b in later_mail and world.order_a not in later_mail

    page.goto(base + "/alerts")
    _no_sideways_scroll(page)
    page.screenshot(path=artifacts / "alerts-375x812.png", full_page=True)
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(base + "/alerts?view=acked")
    assert world.order_a in page.content()
    page.screenshot(path=artifacts / "alerts-1280x800.png", full_page=True)
    for name in ("alert-375x812.png", "alerts-375x812.png", "alerts-1280x800.png"):
        assert (artifacts / name).stat().st_size > 5_000


def test_a_clerk_records_an_unsatisfied_callback_from_the_alert_page(served, browser, artifacts):
    world, base = served
    page = browser.new_page(viewport={"width": 375, "height": 812})
    page.goto(alert_link(world.rt.settings, world.alert_a))
    _log_in(page, "wang")
    page.wait_for_url(f"**/alerts/{world.alert_a}")
    page.get_by_role("link", name="回复 / 回访").click()
    page.wait_for_url(f"**/orders/{world.order_a}")
    _no_sideways_scroll(page)
    page.get_by_label("不满意(开返修单)").check()
    page.fill('input[name="note"]', "仍然漏水")
    page.get_by_role("button", name="记录回访").click()
    page.wait_for_url("**done=callback**")
    assert f"已开无偿返修单 {world.order_a}-R1" in page.content()
    _no_sideways_scroll(page)
    page.screenshot(path=artifacts / "order-375x812.png", full_page=True)


def test_cash_reports_and_health_fit_a_phone(served, browser, artifacts):
    world, base = served
    page = browser.new_page(viewport={"width": 375, "height": 812})
    for login, paths in (("feng", ("/cash",)), ("root", ("/cash", "/reports", "/health"))):
        page.goto(base + "/login")
        _log_in(page, login)
        page.wait_for_url("**/alerts")
        for path in paths:
            page.goto(base + path)
            assert page.locator("h1").count() == 1 and "不能办理" not in page.content()
            _no_sideways_scroll(page)
        page.screenshot(path=artifacts / f"{paths[-1].strip('/')}-375x812.png", full_page=True)
        page.context.clear_cookies()
    page.goto(base + "/login")
    _log_in(page, "wang")  # a clerk: no cash page, and the refusal page fits the phone too
    page.wait_for_url("**/alerts")
    page.goto(base + "/cash")
    assert "不能办理" in page.content() and "今日现金" not in page.content()
    _no_sideways_scroll(page)


def test_finance_checks_its_view_of_the_month_disputes_then_confirms(served, browser, artifacts):
    from flows.tally import run_monthly_tally
    from models.ledger.db import transaction
    from models.signoff import queries
    from tests.builders import at

    world, base = served
    [opened] = run_monthly_tally(world.rt, as_of=at("2026-12-01", "08:00")).signoffs
    assert opened.step == "opened"
    page = browser.new_page(viewport={"width": 375, "height": 812})
    page.goto(base + "/login")
    _log_in(page, "feng")
    page.wait_for_url("**/alerts")
    page.goto(base + "/signoff")
    page.wait_for_url("**/signoff/2026-11")
    assert "财务部的核对内容" in page.content() and "现金收入" in page.content()
    _no_sideways_scroll(page)
    page.fill('textarea[name="note"]', "A1 一笔现金未入账")
    page.locator("#dispute").click()
    page.wait_for_url("**/signoff/2026-11")
    assert page.locator('[data-party="finance"]').get_attribute("data-state") == "disputed"
    page.locator("#confirm").click()
    page.wait_for_url("**/signoff/2026-11")
    assert page.locator('[data-party="finance"]').get_attribute("data-state") == "confirmed"
    assert "已撤回" in page.content()  # the dispute, withdrawn by the confirmation after it
    _no_sideways_scroll(page)
    page.screenshot(path=artifacts / "signoff-375x812.png", full_page=True)
    with transaction(world.rt.sessions) as s:
        status = queries.status(s, month="2026-11")
    assert status.party("finance").by_name == "冯经理" and [d.ended for d in status.disputes] == ["withdrawn"]
