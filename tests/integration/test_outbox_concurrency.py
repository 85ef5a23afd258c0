"""Two detectors and two dispatchers at once on one database: one row per key, each alert delivered once.

Each thread has its own engine and sessions, as separate processes would; they start together on a barrier.
"""
from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

from sqlalchemy import func, select

from flows.settings import DEFAULT_ROUTES
from models.ledger.db import make_engine, session_factory, transaction
from models.ledger.tables import Alert
from notifications.dispatcher import dispatch
from notifications.outbox import sync_findings
from tests.integration.test_outbox import T0, finding, listed_orders
from tests.servers import http_server, write_apprise_config  # noqa: F401 (fixture)

KINDS = {"callback-overdue", "order-overdue", "cash-unhanded"}
ROUNDS = 4


def findings():
    return ([finding(n) for n in range(1, 21)]
            + [finding(n, kind="order-overdue", department="engineering") for n in range(21, 31)]
            + [finding(n, kind="cash-unhanded", department="cleaning", severity=3) for n in range(31, 41)])


def run_together(*jobs) -> list[BaseException]:
    barrier = threading.Barrier(len(jobs))
    errors: list[BaseException] = []

    def wrap(job):
        try:
            barrier.wait(timeout=60)
            job()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=wrap, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    return errors


def test_two_detectors_and_two_dispatchers_at_once_write_one_row_per_key_and_deliver_each_alert_once(
        db_url, tmp_path, http_server):
    config = write_apprise_config(tmp_path / "apprise.yml", {
        tag: http_server.url(f"/{tag}")
        for tag in ("cs-supervisor", "engineering-supervisor", "cleaning-supervisor", "finance-manager")})

    def detector():
        engine = make_engine(db_url)
        try:
            for i in range(ROUNDS):
                with transaction(engine) as s:
                    sync_findings(s, findings(), kinds=KINDS, as_of=T0 + timedelta(seconds=i), routes=DEFAULT_ROUTES)
        finally:
            engine.dispose()

    def dispatcher():
        engine = make_engine(db_url)
        try:
            for i in range(ROUNDS):
                dispatch(session_factory(engine), apprise_config=config, outbox_dir=tmp_path / "outbox",
                         locale="en", as_of=T0 + timedelta(seconds=i))
        finally:
            engine.dispose()

    errors = run_together(detector, detector, dispatcher, dispatcher)
    # whatever the interleaving, a last dispatch after everyone finished picks up what arrived late
    engine = make_engine(db_url)
    try:
        dispatch(session_factory(engine), apprise_config=config, outbox_dir=tmp_path / "outbox", locale="en",
                 as_of=T0 + timedelta(seconds=ROUNDS))
        with session_factory(engine)() as s:
            total = s.scalar(select(func.count()).select_from(Alert))
            distinct = s.scalar(select(func.count(func.distinct(Alert.dedupe_key))))
            unsent = s.scalar(select(func.count()).select_from(Alert).where(Alert.sent_at.is_(None)))
    finally:
        engine.dispose()

    deliveries = Counter()
    for request in http_server.accepted():
        tag = request.path.strip("/")
        for number in listed_orders(request.json()["message"]):
            deliveries[(tag, number)] += 1
    assert errors == []
    assert (total, distinct, unsent) == (50, 50, 0)  # 20 + 10 + 10 cash to two tags each
    assert len(deliveries) == 50
    assert set(deliveries.values()) == {1}
