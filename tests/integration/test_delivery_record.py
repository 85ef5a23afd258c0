"""When a dispatch records what it sent, and what it does about a channel that keeps failing.

A HoldingSink is an HTTP receiver on 127.0.0.1 that can keep one request waiting: it has the message, it has not
answered, so the sender cannot know yet. That is the moment a slow channel, or a crash, hits a dispatch.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import select

from flows.settings import DEFAULT_ROUTES
from models.ledger.db import session_factory
from models.ledger.tables import Alert
from notifications.dispatcher import CHANNEL_FAILING, channel_alert_tags, dispatch
from tests.integration.test_outbox import T0, finding, record
from tests.servers import http_servers, write_apprise_config  # noqa: F401 (fixtures)

KINDS = {"callback-overdue", "order-overdue"}
HOLD_LIMIT = 120  # seconds a held request waits for the test at most, so that a failing test cannot hang


class HoldingSink:
    """An HTTP receiver that keeps every body it gets and answers 200 (or `status`), except the next request to a
    path given to `hold()`: that one is kept (recorded, unanswered) until `release()`; `arrived` is set then."""

    def __init__(self) -> None:
        self.bodies: list[tuple[str, bytes]] = []
        self.status = 200
        self.arrived = threading.Event()
        self._held: list[threading.Event] = []  # the gates of requests kept waiting now
        self._hold_path: str | None = None
        self._lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                gate = None
                with sink._lock:
                    sink.bodies.append((self.path, body))
                    if sink._hold_path == self.path:
                        sink._hold_path, gate = None, threading.Event()
                        sink._held.append(gate)
                        sink.arrived.set()
                if gate is not None:
                    gate.wait(HOLD_LIMIT)
                payload = b'{"ok": true}'
                self.send_response(sink.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                try:
                    self.wfile.write(payload)
                except OSError:  # the sender is gone (killed): nobody to answer
                    pass

            def log_message(self, format, *args) -> None:  # noqa: A002
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def hold(self, path: str) -> None:
        """Keep the next request to `path` waiting (the ones already waiting stay so until `release`)."""
        with self._lock:
            self._hold_path = path
            self.arrived.clear()

    def release(self) -> None:
        """Answer every request kept waiting so far."""
        with self._lock:
            gates, self._held = self._held, []
        for gate in gates:
            gate.set()

    def url(self, path: str) -> str:
        # apprise waits for the answer as long as the test may hold it (its default read timeout is 4 s)
        return f"json://127.0.0.1:{self.port}{path}?rto={HOLD_LIMIT}"

    def posts(self, path: str) -> list[str]:
        import json

        with self._lock:
            return [json.loads(body)["message"] for p, body in self.bodies if p == path]

    def stop(self) -> None:
        self.release()
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def holding_sink() -> Iterator[HoldingSink]:
    sink = HoldingSink()
    try:
        yield sink
    finally:
        sink.stop()


def eventually(check: Callable[[], bool], *, within: float = 30.0) -> bool:
    """Whether `check` becomes true before `within` seconds pass (a bound on waiting, not a measured time)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


def sent_keys(engine) -> set[str]:
    with session_factory(engine)() as s:
        return set(s.scalars(select(Alert.dedupe_key).where(Alert.sent_at.is_not(None))))


def untried(engine) -> set[str]:
    """Rows no send outcome was recorded for yet."""
    with session_factory(engine)() as s:
        return set(s.scalars(select(Alert.dedupe_key).where(Alert.sent_at.is_(None), Alert.attempts == 0)))


def rows(engine) -> list[Alert]:
    with session_factory(engine)() as s:
        return list(s.scalars(select(Alert).order_by(Alert.dedupe_key)))


def send(engine, config, *, as_of=T0, **kwargs):
    return dispatch(session_factory(engine), apprise_config=config, outbox_dir=config.parent / "outbox",
                    locale="en", as_of=as_of, **kwargs)


# -- defect 5: each tag's delivery is committed as soon as it is accepted ---------------------------------------

def test_a_digest_accepted_is_recorded_while_another_tags_send_still_hangs(engine, tmp_path, holding_sink):
    config = write_apprise_config(tmp_path / "apprise.yml", {
        "cs-supervisor": holding_sink.url("/cs"), "engineering-supervisor": holding_sink.url("/eng")})
    record(engine, [finding(1), finding(2, kind="order-overdue", department="engineering")], kinds=KINDS)
    holding_sink.hold("/eng")
    results = []
    running = threading.Thread(target=lambda: results.append(send(engine, config)))
    running.start()

    assert holding_sink.arrived.wait(HOLD_LIMIT)
    recorded_while_hanging = eventually(lambda: sent_keys(engine) == {"callback-overdue:WO-0001:1@cs-supervisor"}
                                        and untried(engine) == {"order-overdue:WO-0002@engineering-supervisor"})
    holding_sink.release()
    running.join(HOLD_LIMIT)

    assert recorded_while_hanging
    assert sent_keys(engine) == {"callback-overdue:WO-0001:1@cs-supervisor", "order-overdue:WO-0002@engineering-supervisor"}
    assert (results[0].messages_sent, results[0].messages_failed) == (2, 0)


def test_each_part_of_a_long_digest_is_recorded_before_the_next_part_goes(engine, tmp_path, holding_sink):
    config = write_apprise_config(tmp_path / "apprise.yml", {"cs-supervisor": holding_sink.url("/cs")})
    record(engine, [finding(n) for n in range(1, 9)])
    holding_sink.hold("/cs")  # the first part is kept waiting; the test answers it, then sees it recorded
    running = threading.Thread(target=lambda: send(engine, config, body_limit=900, concurrency=1))
    running.start()

    assert holding_sink.arrived.wait(HOLD_LIMIT)
    nothing_yet = sent_keys(engine)
    holding_sink.hold("/cs")  # arm again: the second part waits in its turn
    holding_sink.release()
    assert holding_sink.arrived.wait(HOLD_LIMIT)
    after_first_part = sent_keys(engine)
    holding_sink.release()
    running.join(HOLD_LIMIT)

    first_post = holding_sink.posts("/cs")[0]
    assert nothing_yet == set()
    assert after_first_part and after_first_part == {f"callback-overdue:{n}:1@cs-supervisor"
                                                     for n in _orders_in(first_post)}
    assert len(sent_keys(engine)) == 8


def _orders_in(body: str) -> list[str]:
    import re

    return re.findall(r"key callback-overdue:(WO-\d{4}):1", body)


# -- defect 13: a channel failing too long is told to ops through another channel; the run says what failed ------

def test_a_failed_dispatch_says_how_many_digests_failed(engine, tmp_path, http_servers):
    good, bad = http_servers(2)
    bad.respond(500)
    config = write_apprise_config(tmp_path / "apprise.yml", {
        "cs-supervisor": bad.url("/cs"), "engineering-supervisor": good.url("/eng")})
    record(engine, [finding(1), finding(2, kind="order-overdue", department="engineering")], kinds=KINDS)

    result = send(engine, config)

    assert (result.messages_sent, result.messages_failed, result.alerts_sent, result.failed) == (1, 1, 1, 1)
    assert list(result.errors) == ["cs-supervisor"]


def retry_until(engine, config, moment, until, **kwargs):
    """Dispatch at each moment a row is next due, up to `until`, as the every-minute schedule would."""
    while moment <= until:
        send(engine, config, as_of=moment, **kwargs)
        due = [r.next_attempt_at for r in rows(engine) if r.sent_at is None and r.resolved_at is None
               and r.next_attempt_at is not None and r.next_attempt_at > moment]
        moment = min(due) if due else moment + timedelta(minutes=1)
    return moment


def test_a_channel_failing_longer_than_the_limit_raises_an_ops_alert_once_and_resolves_when_it_mends(
        engine, tmp_path, http_servers):
    cs, ops = http_servers(2)
    cs.respond(500)
    config = write_apprise_config(tmp_path / "apprise.yml", {"cs-supervisor": cs.url("/cs"), "ops": ops.url("/ops")})
    record(engine, [finding(1)])
    options = dict(channel_alert_after=timedelta(minutes=30), ops_routes=DEFAULT_ROUTES)

    retry_until(engine, config, T0, T0 + timedelta(minutes=29), **options)
    ops_before_the_limit = len(ops.requests)
    retry_until(engine, config, T0 + timedelta(minutes=30), T0 + timedelta(minutes=90), **options)
    told = [p["message"] for p in ops.json_bodies()]
    cs.respond(200)
    retry_until(engine, config, T0 + timedelta(minutes=91), T0 + timedelta(minutes=200), **options)
    [alert] = [r for r in rows(engine) if r.kind == CHANNEL_FAILING]

    assert ops_before_the_limit == 0
    assert len(told) == 1 and f"key {CHANNEL_FAILING}:cs-supervisor" in told[0] and "500" in told[0]
    assert alert.dedupe_key == f"{CHANNEL_FAILING}:cs-supervisor@ops" and alert.resolved_at is not None
    assert "resolved" in ops.json_bodies()[-1]["message"] and len(ops.json_bodies()) == 2
    assert [r.sent_at is not None for r in rows(engine) if r.kind == "callback-overdue"] == [True]


def test_a_channel_that_mends_before_the_limit_never_reaches_ops(engine, tmp_path, http_servers):
    cs, ops = http_servers(2)
    cs.respond(500, 500, 200)
    config = write_apprise_config(tmp_path / "apprise.yml", {"cs-supervisor": cs.url("/cs"), "ops": ops.url("/ops")})
    record(engine, [finding(1)])

    retry_until(engine, config, T0, T0 + timedelta(minutes=120), channel_alert_after=timedelta(minutes=30),
                ops_routes=DEFAULT_ROUTES)

    [alert] = [r for r in rows(engine) if r.kind == CHANNEL_FAILING]
    assert ops.requests == []
    assert alert.resolved_at is not None and alert.sent_at is None


def test_when_ops_itself_fails_the_alert_about_it_goes_to_every_other_channel(engine, tmp_path, http_servers):
    cs, finance, ops = http_servers(3)
    ops.respond(500)
    config = write_apprise_config(tmp_path / "apprise.yml", {
        "cs-supervisor": cs.url("/cs"), "finance-manager": finance.url("/fin"), "ops": ops.url("/ops")})
    record(engine, [finding(1, kind="something-new")], kinds={"something-new"})  # routed to nobody: ops

    retry_until(engine, config, T0, T0 + timedelta(minutes=40), channel_alert_after=timedelta(minutes=30),
                ops_routes=DEFAULT_ROUTES)

    for sink in (cs, finance):
        [post] = sink.json_bodies()
        assert f"key {CHANNEL_FAILING}:ops" in post["message"]
    assert all(r.status == 500 for r in ops.requests)


def test_the_channel_alert_is_never_routed_to_the_failing_channel():
    tags = {"ops", "cs-supervisor", "always"}
    assert channel_alert_tags("cs-supervisor", routes=DEFAULT_ROUTES, config_tags=tags) == ["ops"]
    assert channel_alert_tags("ops", routes=DEFAULT_ROUTES, config_tags=tags) == ["cs-supervisor"]
    assert channel_alert_tags("cs-supervisor", routes=DEFAULT_ROUTES, config_tags={"cs-supervisor", "x"}) == ["x"]


def test_run_dispatch_takes_the_channel_alert_limit_from_settings(settings, engine, tmp_path, http_servers):
    from flows.dispatch import run_dispatch
    from flows.runtime import Runtime

    cs, ops = http_servers(2)
    cs.respond(500)
    config = write_apprise_config(tmp_path / "apprise.yml", {"cs-supervisor": cs.url("/cs"), "ops": ops.url("/ops")})
    rt = Runtime(settings.model_copy(update={"apprise_config": config, "locale": "en", "channel_alert_minutes": 5}))
    record(engine, [finding(1)])
    try:
        for minutes in (0, 1, 3):  # the backoff's tries: nothing for ops yet
            run_dispatch(rt, T0 + timedelta(minutes=minutes))
        quiet = len(ops.requests)
        run_dispatch(rt, T0 + timedelta(minutes=7))
    finally:
        rt.close()

    [post] = ops.json_bodies()
    assert quiet == 0
    assert f"key {CHANNEL_FAILING}:cs-supervisor" in post["message"]


def test_the_channel_alert_limit_defaults_to_30_minutes_and_refuses_nonsense():
    from pydantic import ValidationError

    from flows.settings import Settings

    assert Settings(_env_file=None).channel_alert_minutes == 30
    for absurd in (0, -5, 10**9):
        with pytest.raises(ValidationError):
            Settings(_env_file=None, channel_alert_minutes=absurd)
