"""Webhook faults against a real HTTP server on 127.0.0.1: a 200 that says "refused", a 500, a reply too late.

The receiver here answers from a script (status, JSON body, delay) and keeps every request with the answer it
gave, so the test counts what the far side really took: a post answered 2xx, even one whose answer came after
the client stopped waiting, is a message the receiver has.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest
from sqlalchemy import select

from models.ledger.db import session_factory
from models.ledger.tables import Alert
from tests.integration.test_delivery import send_digests
from tests.integration.test_outbox import T0, finding, listed_orders, record
from tests.servers import smtp_server, write_apprise_config  # noqa: F401 (fixtures)

KINDS = {"callback-overdue", "cash-unhanded"}


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: dict = field(default_factory=lambda: {"errcode": 0, "errmsg": "ok"})
    delay: float = 0.0  # seconds before answering


@dataclass
class Post:
    message: str
    reply: Reply

    @property
    def taken(self) -> bool:
        """The receiver took it: it answered 2xx without refusing (late or not)."""
        return 200 <= self.reply.status < 300 and not self.reply.body.get("errcode")


def message_of(content_type: str, body: bytes) -> str:
    """The digest text of a json:// or form:// post."""
    if content_type.startswith("application/json"):
        return json.loads(body)["message"]
    return parse_qs(body.decode("ascii"))["message"][0]


class ScriptedHook:
    """An HTTP receiver answering its posts with `replies` in order, the last one for good."""

    def __init__(self, *replies: Reply) -> None:
        self.replies = list(replies) or [Reply()]
        self.posts: list[Post] = []
        self._lock = threading.Lock()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with hook._lock:
                    reply = hook.replies.pop(0) if len(hook.replies) > 1 else hook.replies[0]
                    hook.posts.append(Post(message_of(self.headers.get("Content-Type") or "", body), reply))
                time.sleep(reply.delay)
                payload = json.dumps(reply.body).encode()
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:  # the client stopped waiting and closed the connection
                    pass

            def log_message(self, format, *args) -> None:  # noqa: A002 - keep test output quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def url(self, path: str = "/hook", scheme: str = "json", **query: str) -> str:
        qs = "&".join(f"{k}={v}" for k, v in query.items())
        return f"{scheme}://127.0.0.1:{self.port}{path}" + (f"?{qs}" if qs else "")

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def hook():
    made: list[ScriptedHook] = []

    def make(*replies: Reply) -> ScriptedHook:
        made.append(ScriptedHook(*replies))
        return made[-1]

    yield make
    for h in made:
        h.stop()


def alerts(engine) -> list[Alert]:
    with session_factory(engine)() as s:
        return list(s.scalars(select(Alert).order_by(Alert.dedupe_key)))


def duplicate_digests(posts: list[Post]) -> int:
    """Posts the receiver took whose every item it had already taken from an earlier post."""
    seen: set[str] = set()
    again = 0
    for post in posts:
        if not post.taken:
            continue
        items = set(listed_orders(post.message))
        again += bool(items) and items <= seen
        seen |= items
    return again


REFUSED = Reply(200, {"errcode": 40001, "errmsg": "invalid credential, access_token is invalid"})


@pytest.mark.parametrize("scheme", ["json", "form"])
def test_a_webhook_answering_200_with_an_errcode_is_not_marked_sent(engine, tmp_path, hook, figure, scheme):
    receiver = hook(REFUSED, Reply())  # DingTalk/WeCom style: HTTP 200, the refusal in the body; then fixed
    config = write_apprise_config(tmp_path / "apprise.yml", {"cs-supervisor": receiver.url(scheme=scheme)})
    record(engine, [finding(n) for n in range(1, 6)])

    refused = send_digests(engine, config)
    after_refusal = alerts(engine)
    accepted = send_digests(engine, config, as_of=T0 + timedelta(seconds=60))
    at_the_end = alerts(engine)

    taken = [n for post in receiver.posts if post.taken for n in listed_orders(post.message)]
    wrongly_marked_sent = sum(1 for a in after_refusal if a.sent_at is not None)
    figure("false success", scheme=scheme, posts=len(receiver.posts), refused_posts=1,
           wrongly_marked_sent=wrongly_marked_sent, lost=5 - len(set(taken)))
    assert (len(receiver.posts), refused.alerts_sent, refused.failed) == (2, 0, 5)
    assert wrongly_marked_sent == 0
    assert all("errcode 40001" in a.last_error and "invalid credential" in a.last_error for a in after_refusal)
    assert (accepted.alerts_sent, sorted(taken)) == (5, [f"WO-{n:04d}" for n in range(1, 6)])
    assert all(a.sent_at == T0 + timedelta(seconds=60) and a.last_error is None for a in at_the_end)


def test_a_json_reply_without_a_numeric_errcode_still_counts_as_delivered(engine, tmp_path, hook):
    receiver = hook(Reply(200, {"ok": True}), Reply(200, {"errcode": "0"}))
    config = write_apprise_config(tmp_path / "apprise.yml", {"cs-supervisor": receiver.url()})
    record(engine, [finding(1)])

    first = send_digests(engine, config)
    record(engine, [finding(1), finding(2)], as_of=T0 + timedelta(minutes=1))
    second = send_digests(engine, config, as_of=T0 + timedelta(minutes=1))

    assert (first.alerts_sent, second.alerts_sent) == (1, 1)


def test_a_flapping_and_slow_webhook_loses_nothing_and_leaves_the_mail_alone(engine, tmp_path, hook, smtp_server,
                                                                           caplog, figure):
    # the read timeout is 1 s; the second reply comes after 2 s, when the client has given up on it
    receiver = hook(Reply(500, {"errcode": -1, "errmsg": "busy"}), Reply(delay=2.0), Reply())
    config = write_apprise_config(tmp_path / "apprise.yml", {
        "cs-supervisor": receiver.url("/robot/send/CANARY9d2e", cto="1", rto="1"),
        "finance-manager": smtp_server.url(to="finance@example.com")})
    record(engine, [finding(n) for n in range(1, 6)]
           + [finding(n, kind="cash-unhanded", severity=3, amount="80.00") for n in range(6, 9)], kinds=KINDS)
    caplog.set_level(logging.WARNING, logger="bianmin.delivery")

    runs = [send_digests(engine, config, as_of=T0 + timedelta(seconds=s)) for s in (0, 60, 180, 600)]

    taken = Counter(n for post in receiver.posts if post.taken for n in listed_orders(post.message))
    hook_orders = [f"WO-{n:04d}" for n in range(1, 6)]
    timeouts = sum("gave no answer within" in r.getMessage() for r in caplog.records)
    lost = sum(1 for n in hook_orders if taken[n] == 0)
    duplicates = duplicate_digests(receiver.posts)  # a digest the receiver had already taken, taken again
    duplicate_lines = sum(taken[n] - 1 for n in hook_orders if taken[n] > 1)
    mails = smtp_server.messages
    email_ok = (len(mails) == 1 and sorted(listed_orders(smtp_server.text(mails[0]))) == ["WO-0006", "WO-0007",
                                                                                          "WO-0008"]
                and runs[0].per_tag.get("finance-manager") == 3)
    figure("webhook flap", lost=lost, duplicates=duplicates, duplicate_lines=duplicate_lines, timeouts=timeouts,
           email_ok=email_ok, posts=len(receiver.posts))
    assert [p.reply.status for p in receiver.posts] == [500, 200, 200]
    assert lost == 0
    assert timeouts == 1 and duplicates <= timeouts
    assert duplicate_lines <= 5 * timeouts  # at most the one digest in flight, its five lines
    assert email_ok
    assert [r.alerts_sent for r in runs] == [3, 0, 5, 0]
    assert all(a.sent_at is not None for a in alerts(engine))
    assert "CANARY9d2e" not in caplog.text  # the timeout's log line names host and port, never the secret path
