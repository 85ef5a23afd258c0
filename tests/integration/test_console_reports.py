"""The reports page says to whom each version went: each tag and its services as the send recorded them
(report_runs.sent_to), never a password or token; the route's tags when a run recorded none."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from models.ledger.db import transaction
from models.ledger.tables import ReportRun
from tests.builders import TZ
from tests.consoles import NOW, console_client, log_in, world  # noqa: F401  (fixture)

SENT_AT = datetime(2026, 11, 1, 0, 5, tzinfo=timezone.utc)  # 08:05 in the office


@pytest.fixture
def client(world):
    with console_client(world) as c:
        assert log_in(c, "root").status_code == 303  # an admin of every office
        yield c


def report(engine, office: str, *, sent_to: list | None, sent_at: datetime | None = SENT_AT) -> None:
    """October's first version of `office`, sent at `sent_at` to `sent_to` as report_runs records it."""
    with transaction(engine) as s:
        s.add(ReportRun(month="2026-10", office=office, version=1, content_hash="0" * 64,
                        file_path=f"/nowhere/{office}/workbook.xlsx", created_at=datetime(2026, 11, 1, tzinfo=TZ),
                        sent_at=sent_at, summary={"send": True}, sent_to=sent_to))


def test_a_sent_version_names_each_tag_and_its_services_without_their_secrets(client, engine):
    report(engine, "A1", sent_to=[
        {"tag": "administration", "services": ["mailtos://user:s3cret@mail.example.com?to=boss@example.com"]},
        {"tag": "finance-manager", "services": ["wecombot://wEcOmKeY0123456789", "json://hooks.example.com/h/T0kEnPath"]},
    ])
    page = client.get("/reports")
    assert page.status_code == 200
    assert "Sent at 2026-11-01 08:05 to:" in page.text
    assert "<b>administration</b>: mailtos://user:****@mail.example.com" in page.text
    assert "<b>finance-manager</b>: wecombot://" in page.text and "json://hooks.example.com/" in page.text
    for secret in ("s3cret", "wEcOmKeY0123456789", "T0kEnPath"):
        assert secret not in page.text


def test_a_version_sent_to_the_outbox_folder_says_so(client, engine):
    report(engine, "A1", sent_to=[{"tag": "administration", "services": ["outbox"]}])
    page = client.get("/reports")
    assert "<b>administration</b>: the local outbox folder (no apprise config)" in page.text


def test_a_tag_with_no_service_says_so(client, engine):
    report(engine, "A1", sent_to=[{"tag": "administration", "services": []}])
    assert "<b>administration</b>: (no service under this tag)" in client.get("/reports").text


def test_a_version_sent_before_recipients_were_recorded_shows_the_route(client, engine):
    report(engine, "A1", sent_to=None)
    page = client.get("/reports")
    assert "Sent to administration at 2026-11-01 08:05" in page.text and "Sent at" not in page.text


def test_an_unsent_version_shows_no_recipients_whatever_the_row_holds(client, engine):
    report(engine, "B1", sent_to=[{"tag": "administration", "services": ["outbox"]}], sent_at=None)
    page = client.get("/reports")
    assert "Not sent (to: administration)" in page.text and "outbox folder" not in page.text
