"""The console's cash, reports and health pages: what each role and office sees, and each refusal."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import select

from console import accounts
from models.ledger.db import transaction
from models.ledger.tables import ReportRun, WorkOrder
from tests.builders import TZ, at, collect_fee, give_receipts, hand_over
from tests.consoles import NOW, PASSWORD, client, console_world, log_in  # noqa: F401  (fixture)
from tests.servers import free_port


@pytest.fixture
def world(settings, engine):
    w = console_world(settings, engine)
    with transaction(engine) as s:
        for login, name, role, offices in (("ma", "马经理", "cs-manager", ["A1"]),
                                           ("xing", "邢行政", "administration", [])):
            accounts.add_user(s, login=login, name=name, role=role, offices=offices, password=PASSWORD,
                              at=at("2026-11-01"))
    yield w
    w.rt.close()


def logged_in(client, login: str):
    assert log_in(client, login).status_code == 303
    return client


def refused(response, *absent: str) -> None:
    assert response.status_code == 403, response.status_code
    assert all(word not in response.text for word in absent)


# -- cash today -----------------------------------------------------------------------------------------------

@pytest.fixture
def cash(world, engine):
    """A1's plumber holds yesterday's fee past its 17:30 due time; B1's handed his over and finance counted 20
    short."""
    from tests.builders import OfficeCodes  # the offices as console_world set them up

    codes = {o: OfficeCodes.of(o) for o in ("A1", "B1")}
    with transaction(engine) as s:
        for office, order, first in (("A1", world.order_a, "000101"), ("B1", world.order_b, "000201")):
            numbers = give_receipts(s, codes[office], first=first, count=5)
            wo = s.scalar(select(WorkOrder).where(WorkOrder.number == order))
            collect_fee(s, codes[office], wo, receipt=numbers[0], at=at("2026-11-04", "10:00"))
            if office == "B1":
                hand_over(s, codes[office], receipts=[numbers[0]], at=at("2026-11-04", "16:00"),
                          counted=wo.fee - Decimal("20.00"))
    return codes


def test_finance_sees_its_offices_cash_held_past_due_and_not_another_offices(client, cash):
    page = logged_in(client, "feng").get("/cash")
    assert page.status_code == 200
    assert "A1-PL1" in page.text and "2026-11-04 17:30" in page.text and "overdue by" in page.text
    assert "B1-PL1" not in page.text


def test_a_supervisor_of_b_sees_the_shortfall_of_b_only(client, cash):
    page = logged_in(client, "zhou").get("/cash")
    assert page.status_code == 200
    assert "B1-PL1" in page.text and "short by 20.00" in page.text
    assert "A1-PL1" not in page.text


def test_a_clerk_may_not_open_cash_today(client, cash):
    refused(logged_in(client, "wang").get("/cash"), "A1-PL1", "held")


def test_cash_today_needs_a_login(client, cash):
    response = client.get("/cash", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/login")


# -- reports ----------------------------------------------------------------------------------------------------

@pytest.fixture
def reports(world, engine):
    """October's reports of A1 (sent) and B1 (not yet), each with its workbook and email body on disk."""
    root = world.rt.settings.effective_reports_dir
    ids = {}
    with transaction(engine) as s:
        for office, sent in (("A1", datetime(2026, 11, 1, 0, 5, tzinfo=timezone.utc)), ("B1", None)):
            folder = root / office / "2026-10" / "v1"
            folder.mkdir(parents=True)
            (folder / "workbook.xlsx").write_bytes(b"PK\x03\x04 workbook of " + office.encode())
            (folder / "email.html").write_text(f"<h1>Summary {office} 2026-10</h1>", encoding="utf-8")
            run = ReportRun(month="2026-10", office=office, version=1, content_hash="0" * 64,
                            file_path=str(folder / "workbook.xlsx"), created_at=datetime(2026, 11, 1, tzinfo=TZ),
                            sent_at=sent, summary={"send": True, "findings": 3, "revenue": "480.00"})
            s.add(run)
            s.flush()
            ids[office] = run.id
        stray = ReportRun(month="2026-09", office="A1", version=1, content_hash="1" * 64, file_path="/etc/passwd",
                          created_at=datetime(2026, 10, 1, tzinfo=TZ), sent_at=None, summary={})
        s.add(stray)
        s.flush()
        ids["stray"] = stray.id
    return ids


def test_a_manager_sees_the_versions_of_its_office_sent_or_not_and_opens_them(client, reports):
    c = logged_in(client, "ma")
    page = c.get("/reports")
    assert page.status_code == 200
    assert "2026-10 · A1" in page.text and "Sent to administration at 2026-11-01 08:05" in page.text
    assert "B1" not in page.text
    summary = c.get(f"/reports/{reports['A1']}/summary")
    assert summary.status_code == 200 and "Summary A1 2026-10" in summary.text
    assert "script-src" not in summary.headers["content-security-policy"]  # default-src 'none': no script
    workbook = c.get(f"/reports/{reports['A1']}/workbook")
    assert workbook.status_code == 200 and workbook.content == b"PK\x03\x04 workbook of A1"
    assert "bianmin-A1-2026-10-v1.xlsx" in workbook.headers["content-disposition"]


def test_administration_of_every_office_sees_both_and_the_unsent_one_says_so(client, reports):
    page = logged_in(client, "xing").get("/reports")
    assert "2026-10 · B1" in page.text and "Not sent (to: administration)" in page.text


def test_a_manager_may_not_open_another_offices_report(client, reports):
    c = logged_in(client, "ma")
    refused(c.get(f"/reports/{reports['B1']}/summary"), "Summary B1")
    refused(c.get(f"/reports/{reports['B1']}/workbook"), "workbook of B1")


def test_a_report_file_outside_the_reports_folder_is_never_served(client, reports):
    response = logged_in(client, "xing").get(f"/reports/{reports['stray']}/workbook")
    assert response.status_code == 404 and "root:" not in response.text


def test_a_supervisor_may_not_open_the_reports(client, reports):
    refused(logged_in(client, "li").get("/reports"), "2026-10")


# -- health -----------------------------------------------------------------------------------------------------

def test_health_shows_the_flows_last_runs_and_pending_deliveries_even_with_prefect_down(client, world, monkeypatch):
    monkeypatch.setenv("PREFECT_API_URL", f"http://127.0.0.1:{free_port()}/api")  # nothing listens there
    page = logged_in(client, "root").get("/health")
    assert page.status_code == 200
    assert "chase-callbacks" in page.text and "2026-11-05 10:00" in page.text  # its watermark, as of NOW
    assert "cs-supervisor" in page.text and "Pending 3" in page.text  # nothing dispatched yet
    assert "cannot be reached" in page.text and "127.0.0.1" in page.text  # the UI link, never an error trace


def test_health_without_prefect_says_next_runs_are_unknown(client, world, monkeypatch):
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.delenv("PREFECT_UI_URL", raising=False)
    page = logged_in(client, "ma").get("/health")
    assert page.status_code == 200 and "No Prefect server configured" in page.text
    assert "cs-supervisor" in page.text  # a CS manager's own alerts' deliveries


def test_health_shows_a_finance_manager_only_the_deliveries_of_its_alerts(client, world):
    page = logged_in(client, "feng").get("/health")
    assert page.status_code == 200 and "cs-supervisor" not in page.text


def test_a_supervisor_may_not_open_health(client, world):
    refused(logged_in(client, "li").get("/health"), "chase-callbacks")


# -- the alerts list at scale -------------------------------------------------------------------------------------

def test_the_alerts_list_shows_a_phone_screen_of_cards_and_the_rest_a_page_further(client, world, engine):
    from sqlalchemy import insert

    from console.alert_pages import PAGE_SIZE
    from models.ledger.tables import Alert

    first = NOW.astimezone(timezone.utc) - timedelta(days=1)
    with transaction(engine) as s:
        s.execute(insert(Alert), [{"dedupe_key": f"order-overdue:WO-X{n:03d}@cs-supervisor", "kind": "order-overdue",
                                   "office": "A1", "order_number": f"WO-X{n:03d}", "severity": 1, "level": 1,
                                   "tag": "cs-supervisor", "payload": {"facts": {}}, "first_seen": first,
                                   "last_seen": first, "attempts": 0} for n in range(PAGE_SIZE + 10)])
    c = logged_in(client, "li")  # A1's supervisor: these 60 and A1's two alerts
    one = c.get("/alerts")
    two = c.get("/alerts?view=open&page=2")
    shown = [n for page in (one, two) for n in re.findall(r"WO-X\d{3}|" + re.escape(world.order_a), page.text)]
    assert one.text.count('class="card sev') == PAGE_SIZE and "page=2" in one.text
    assert two.text.count('class="card sev') == 12 and "page=1" in two.text and "page=3" not in two.text
    assert len(set(shown)) == PAGE_SIZE + 11  # every alert once: 60 planted and order A's callback


def test_an_alert_shows_its_due_time_how_long_overdue_and_its_holder(client, world):
    c = logged_in(client, "li")
    one = c.get(f"/alerts/{world.alert_a}").text
    listed = c.get("/alerts").text
    for page in (one, listed):
        assert "2026-11-04 17:30" in page and "16h 30min" in page  # due Wed 17:30, seen Thu 10:00
    assert "Holder" in one


@pytest.fixture
def fake_prefect():
    """Prefect's REST API as far as the health page asks it: one flow with two scheduled runs."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    answers = {"/api/flow_runs/filter": [
        {"id": "run-1", "flow_id": "f-1", "expected_start_time": "2026-11-05T02:05:00Z"},
        {"id": "run-2", "flow_id": "f-1", "expected_start_time": "2026-11-05T03:05:00Z"}],
        "/api/flows/filter": [{"id": "f-1", "name": "chase-callbacks"}]}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's name
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = json.dumps(answers.get(self.path, [])).encode()
            self.send_response(200 if self.path in answers else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format, *args):  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_health_shows_each_flows_next_run_from_prefect_with_a_link_to_it(client, world, fake_prefect, monkeypatch):
    monkeypatch.setenv("PREFECT_API_URL", fake_prefect + "/api")
    monkeypatch.delenv("PREFECT_UI_URL", raising=False)
    page = logged_in(client, "root").get("/health")
    assert page.status_code == 200 and "cannot be reached" not in page.text
    assert f'<a href="{fake_prefect}/runs/flow-run/run-1">2026-11-05 10:05</a>' in page.text  # local time
    assert "run-2" not in page.text


def test_health_shows_a_failed_flow_to_the_roles_that_receive_ops_only(client, world, engine):
    from models.ledger.tables import Alert

    with transaction(engine) as s:
        s.add(Alert(dedupe_key="flow-failed:cash-check@ops", kind="flow-failed", office=None, severity=3, level=1,
                    tag="ops", payload={"facts": {"flow": "cash-check", "flow_run": "brave-otter",
                                                  "error": "OperationalError"}},
                    first_seen=NOW, last_seen=NOW, attempts=0))
    assert "failed (1 open)" in logged_in(client, "root").get("/health").text
    client.cookies.clear()
    manager = logged_in(client, "ma").get("/health").text
    assert "failed (1 open)" not in manager and "OperationalError" not in manager
