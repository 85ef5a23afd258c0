"""The console's sign-off page: a party sees its own view and confirms or disputes through the same operation as
the CLI; administration follows; nobody answers for another party; the forms need their CSRF token."""
from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from console import accounts
from console.app import create_app
from flows.tally import run_monthly_tally
from models.ledger.db import transaction
from models.signoff import queries
from tests.builders import TZ, at
from tests.consoles import PASSWORD, console_world, csrf_of, log_in

DRAFT_DAY = at("2026-12-01", "08:00")


@pytest.fixture
def world(settings, engine):
    w = console_world(settings, engine, signoff=True)
    with transaction(engine) as s:
        for login, role in (("eng", "engineering-supervisor"), ("xing", "administration")):
            accounts.add_user(s, login=login, name=f"{login} 名", role=role, offices=[], password=PASSWORD,
                              at=at("2026-11-01"))
    run_monthly_tally(w.rt, as_of=DRAFT_DAY)
    yield w
    w.rt.close()


@pytest.fixture
def client(world):
    with TestClient(create_app(world.rt, clock=lambda: DRAFT_DAY.astimezone(TZ)),
                    base_url="http://127.0.0.1:8209") as c:
        yield c


def status(world):
    with transaction(world.rt.sessions) as s:
        return queries.status(s, month="2026-11")


def test_finance_sees_its_own_view_and_confirms_the_current_version(client, world):
    assert log_in(client, "feng").status_code == 303
    page = client.get("/signoff", follow_redirects=True)
    assert page.status_code == 200 and "2026-11 report sign-off" in page.text
    assert "What Finance checks" in page.text and "Receipts" in page.text  # finance's figures, not the workers'
    answered = client.post("/signoff/2026-11/confirm", data={"csrf": csrf_of(page.text), "version": "1"},
                           follow_redirects=False)
    assert answered.status_code == 303 and answered.headers["location"] == "/signoff/2026-11"
    assert status(world).party("finance").by_name == "冯经理"


def test_engineering_disputes_with_a_note_and_the_ledger_is_not_touched(client, world):
    assert log_in(client, "eng").status_code == 303
    page = client.get("/signoff/2026-11")
    assert "What Engineering checks" in page.text
    no_note = client.post("/signoff/2026-11/dispute", data={"csrf": csrf_of(page.text), "version": "1", "note": ""})
    assert no_note.status_code == 409 and "needs a note" in no_note.text
    client.post("/signoff/2026-11/dispute", data={"csrf": csrf_of(page.text), "version": "1",
                                                   "note": "A1 的水管活少算一单", "order": world.order_a})
    [dispute] = status(world).disputes
    assert (dispute.party, dispute.order_number, dispute.ended) == ("engineering", world.order_a, "open")


def test_a_stale_version_a_missing_token_and_a_role_of_no_party_are_refused(client, world):
    assert log_in(client, "feng").status_code == 303
    page = client.get("/signoff/2026-11")
    stale = client.post("/signoff/2026-11/confirm", data={"csrf": csrf_of(page.text), "version": "2"})
    assert stale.status_code == 409 and "no longer the current version" in stale.text
    assert client.post("/signoff/2026-11/confirm", data={"version": "1"}).status_code == 403
    assert status(world).party("finance").state == "awaiting"
    client.cookies.clear()
    assert log_in(client, "xing").status_code == 303
    follows = client.get("/signoff/2026-11")
    assert follows.status_code == 200 and 'id="confirm"' not in follows.text
    assert client.post("/signoff/2026-11/confirm", data={"csrf": csrf_of(follows.text), "version": "1"}
                       ).status_code == 403


def test_a_cs_supervisor_may_not_open_the_sign_off(client):
    assert log_in(client, "li").status_code == 303
    assert client.get("/signoff/2026-11").status_code == 403
