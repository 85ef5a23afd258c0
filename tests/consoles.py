"""A ledger with two offices, overdue callbacks in both, and console users of every kind that matters, for the
console's tests: `console_world(settings, engine)` returns what the tests need to log in and look for; the fixtures
`world` and `client` (a test module imports them) give that world and the app's test client."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import select

from console import accounts
from console.app import create_app
from flows.runtime import Runtime
from models.ledger.db import transaction
from models.ledger.tables import Alert
from tests.builders import TZ, accepted_job, at, request_for, setup_office

PASSWORD = "correct horse battery"
# accepted Monday 2 Nov 12:10; the callback is due by the end of the second working day after (Wed 4 Nov
# 17:30); checked Thursday 10:00, before it escalates
ACCEPT_DAY = "2026-11-02"
NOW = datetime(2026, 11, 5, 10, 0, tzinfo=TZ)
PHONE_A, PHONE_B = "13812345678", "13987654321"
USERS = {  # login: (name, role, offices, staff field of the office)
    "li": ("李主管", "cs-supervisor", ["A1"], "cs_supervisor"),
    "wang": ("王客服", "cs-clerk", ["A1"], "clerk"),
    "feng": ("冯经理", "finance-manager", ["A1"], None),
    "zhou": ("周主管", "cs-supervisor", ["B1"], "cs_supervisor"),
    "root": ("陈管理", "admin", [], None),
}


@dataclass(frozen=True)
class World:
    rt: Runtime
    order_a: str
    order_b: str
    request_a: str  # a phone request of office A1 nobody replied to
    alert_a: int  # the cs-supervisor alert of order_a
    alert_b: int
    reply_alert_a: int


def console_world(settings, engine, **changes) -> World:
    """Offices A1 and B1, one overdue callback in each (alerts recorded by chase-callbacks as of NOW), an
    unreplied phone request in A1 (chase-replies), and USERS."""
    from flows.callbacks import run_chase_callbacks, run_chase_replies

    rt = Runtime(settings.model_copy(update={"locale": "en", "secret_key": SecretStr("k" * 48), **changes}))
    with transaction(engine) as s:
        a1, b1 = setup_office(s, "A1"), setup_office(s, "B1")
        order_a = accepted_job(s, rt.calendar, a1, at=at(ACCEPT_DAY, "10:00"), phone=PHONE_A).number
        order_b = accepted_job(s, rt.calendar, b1, at=at(ACCEPT_DAY, "10:00"), phone=PHONE_B,
                               resident="赵先生").number
        request_a = request_for(s, a1, at=at("2026-11-05", "09:30"), phone="13700001111", resident="孙女士").number
        for login, (name, role, offices, staff) in USERS.items():
            office = {"A1": a1, "B1": b1}[offices[0]] if offices else None
            accounts.add_user(s, login=login, name=name, role=role, offices=offices, password=PASSWORD,
                              staff=getattr(office, staff) if staff else None, at=at("2026-11-01"))
    run_chase_callbacks(rt, NOW)
    run_chase_replies(rt, NOW)
    with engine.connect() as conn:
        ids = dict(conn.execute(select(Alert.dedupe_key, Alert.id)).all())
    return World(rt, order_a, order_b, request_a, ids[f"callback-overdue:{order_a}:1@cs-supervisor"],
                 ids[f"callback-overdue:{order_b}:1@cs-supervisor"], ids[f"reply-overdue:{request_a}@cs-supervisor"])


CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "no CSRF field on the page"
    return found.group(1)


def log_in(client, login: str, password: str = PASSWORD, *, next: str = "/alerts"):
    """POST the login form as a browser would (CSRF from the form); the response, redirects not followed."""
    form = client.get("/login")
    return client.post("/login", data={"login": login, "password": password, "csrf": csrf_of(form.text),
                                       "next": next}, follow_redirects=False)


def console_client(world: World) -> TestClient:
    """The console app of `world` at its clock, NOW, as a browser at the default public URL would see it."""
    return TestClient(create_app(world.rt, clock=lambda: NOW), base_url="http://127.0.0.1:8209")


@pytest.fixture
def world(settings, engine):
    w = console_world(settings, engine)
    yield w
    w.rt.close()


@pytest.fixture
def client(world):
    with console_client(world) as c:
        yield c
