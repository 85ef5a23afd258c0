"""Delivery under faults: a mail server down over several dispatches, a dispatcher killed between a receiver
getting its digest and the commit, and a restart inside the repeat interval. Real receivers on 127.0.0.1, real
processes where a process dies; what arrived is counted by the alert keys in the bodies ("key <finding key>").
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections import Counter
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from flows.dispatch import run_dispatch
from flows.runtime import Runtime
from models.ledger.db import session_factory, transaction
from models.ledger.tables import Alert
from notifications.claims import pending_count
from tests.builders import at, request_for, setup_office
from tests.integration.test_delivery_record import HOLD_LIMIT, HoldingSink, eventually
from tests.integration.test_outbox import T0, finding, record
from tests.servers import SmtpSink, smtp_server, write_apprise_config  # noqa: F401 (fixture)

ROOT = Path(__file__).resolve().parents[2]
KEY_LINE = re.compile(r"^\s*key (\S+)\s*$", re.M)  # the en digest's last line of each item
TAGS = ("cs-supervisor", "engineering-supervisor", "finance-manager")


def keys_in(body: str) -> list[str]:
    return KEY_LINE.findall(body.replace("\r\n", "\n"))


def mail_deliveries(sink: SmtpSink) -> list[tuple[str, list[str]]]:
    """(tag, finding keys) of every mail the sink accepted; the tag is the local part of its recipient."""
    return [(str(mail["To"]).split("@")[0], keys_in(sink.text(mail))) for mail in sink.messages]


def tally(deliveries: list[tuple[str, list[str]]], expected: set[tuple[str, str]]) -> dict[str, int]:
    """lost: expected (tag, key) never delivered; duplicates: deliveries of a (tag, key) beyond its first;
    repeated_digests: messages carrying only (tag, key)s that had already arrived."""
    seen: Counter = Counter()
    repeated = 0
    for tag, keys in deliveries:
        if keys and all(seen[(tag, k)] for k in keys):
            repeated += 1
        seen.update((tag, k) for k in keys)
    return {"lost": len(expected - set(seen)), "duplicates": sum(n - 1 for n in seen.values() if n > 1),
            "repeated_digests": repeated, "unexpected": len(set(seen) - expected)}


def pending(engine) -> int:
    with session_factory(engine)() as s:
        return pending_count(s, as_of=T0)


def fifty_alerts_for_three_tags():
    """20 callbacks (cs-supervisor), 15 late engineering orders, 15 cash handovers (finance-manager)."""
    return ([finding(n) for n in range(1, 21)]
            + [finding(n, kind="order-overdue", department="engineering") for n in range(21, 36)]
            + [finding(n, kind="cash-unhanded", severity=3, amount="80.00") for n in range(36, 51)])


def expected_pairs(findings) -> set[tuple[str, str]]:
    tags = {"callback-overdue": "cs-supervisor", "order-overdue": "engineering-supervisor",
            "cash-unhanded": "finance-manager"}
    return {(tags[f.kind], f.key) for f in findings}


def next_due(engine, after):
    """When the outbox next has something due after `after` (None when nothing waits)."""
    with session_factory(engine)() as s:
        moments = [m for m in s.scalars(select(Alert.next_attempt_at).where(
            Alert.sent_at.is_(None), Alert.resolved_at.is_(None))) if m is not None]
    later = [m for m in moments if m > after]
    return min(later) if later else None


# -- smtp outage -----------------------------------------------------------------------------------------------

def test_smtp_down_over_three_dispatches_then_up_loses_nothing_and_sends_nothing_twice(
        settings, engine, tmp_path, smtp_server, figure):
    config = write_apprise_config(tmp_path / "apprise.yml", {
        tag: smtp_server.url(to=f"{tag}@example.com") for tag in (*TAGS, "ops")})
    rt = Runtime(settings.model_copy(update={"apprise_config": config, "locale": "en"}))
    found = fifty_alerts_for_three_tags()
    record(engine, found, kinds={"callback-overdue", "order-overdue", "cash-unhanded"})
    smtp_server.stop()

    moment, down = T0, []
    try:
        for _ in range(3):  # each dispatch when the backoff says the next try is due
            down.append(run_dispatch(rt, moment))
            moment = next_due(engine, moment)
        smtp_server.start()
        up = []
        while moment is not None and len(up) < 10:
            up.append(run_dispatch(rt, moment))
            moment = next_due(engine, moment)
    finally:
        rt.close()

    counts = tally(mail_deliveries(smtp_server), expected_pairs(found))
    left = pending(engine)
    figure("smtp outage", lost=counts["lost"], duplicates=counts["duplicates"], pending=left,
           failed_dispatches=sum(1 for r in down if r.messages_failed), alerts=len(found))
    assert [(r.messages_sent, r.messages_failed) for r in down] == [(0, 3)] * 3  # each run said it failed
    assert (counts["lost"], counts["duplicates"], left, counts["unexpected"]) == (0, 0, 0, 0)


# -- crash after send --------------------------------------------------------------------------------------------

# the dispatch flow's own logic (flows.dispatch.run_dispatch) wired from BIANMIN_* settings, in a process of its own
DISPATCHER = """
import json, sys
from datetime import datetime
from flows.dispatch import run_dispatch
from flows.runtime import Runtime
from flows.settings import Settings
rt = Runtime(Settings())
as_of = datetime.fromisoformat(sys.argv[2])
if sys.argv[1] == "checks-and-dispatch":
    from flows.callbacks import run_chase_replies
    run_chase_replies(rt, as_of)
result = run_dispatch(rt, as_of)
rt.close()
print(json.dumps({"sent": result.messages_sent, "failed": result.messages_failed, "pending": result.pending_left}))
"""


def process_env(db_url: str, tmp_path: Path, config: Path) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("BIANMIN_", "PREFECT_"))}
    return keep | {"BIANMIN_DATABASE_URL": db_url, "BIANMIN_DATA_DIR": str(tmp_path / "var"),
                   "BIANMIN_APPRISE_CONFIG": str(config), "BIANMIN_LOCALE": "en",
                   "BIANMIN_CONFIG_FILE": str(tmp_path / "absent.toml"),
                   "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}


def start_dispatcher(env, as_of, what="dispatch") -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", DISPATCHER, what, as_of.isoformat()], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(process: subprocess.Popen) -> dict:
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err[-2000:]
    return json.loads(out.strip().splitlines()[-1])


def unsent_or_sent(engine, tag: str) -> tuple[set[str], set[str]]:
    with session_factory(engine)() as s:
        rows = s.execute(select(Alert.dedupe_key, Alert.sent_at, Alert.attempts).where(Alert.tag == tag)).all()
    return ({k for k, sent, tries in rows if sent is None and tries == 0}, {k for k, sent, _ in rows if sent})


def test_a_dispatcher_killed_after_a_receiver_got_its_digest_re_sends_at_most_that_digest(
        db_url, engine, tmp_path, smtp_server, figure):
    sink = HoldingSink()
    config = write_apprise_config(tmp_path / "apprise.yml", {
        "cs-supervisor": smtp_server.url(to="cs-supervisor@example.com"),
        "engineering-supervisor": sink.url("/eng")})
    env = process_env(db_url, tmp_path, config)
    crashes, per_crash, expected = 3, [], set()
    try:
        for round_ in range(crashes):
            moment = T0 + timedelta(minutes=30 * round_)
            found = [finding(100 * round_ + n) for n in range(1, 6)] + [
                finding(100 * round_ + n, kind="order-overdue", department="engineering") for n in range(6, 11)]
            record(engine, found, as_of=moment, kinds=set())
            expected |= expected_pairs(found)
            before = len(smtp_server.messages) + len(sink.bodies)
            sink.hold("/eng")  # the engineering digest reaches the receiver, which keeps the answer back

            dispatcher = start_dispatcher(env, moment)
            arrived = sink.arrived.wait(HOLD_LIMIT)
            # the kill comes once the mail of the same run is committed and the webhook's digest is still open
            eventually(lambda: unsent_or_sent(engine, "cs-supervisor")[0] == set()
                       and len(unsent_or_sent(engine, "engineering-supervisor")[0]) == 5, within=HOLD_LIMIT / 2)
            dispatcher.send_signal(signal.SIGKILL)
            dispatcher.wait(timeout=60)
            sink.release()

            # the restart comes after the dead dispatcher's lease (10 min) has run out
            restarted = finish(start_dispatcher(env, moment + timedelta(minutes=11)))
            per_crash.append((arrived, dispatcher.returncode, restarted["failed"],
                              len(smtp_server.messages) + len(sink.bodies) - before))
    finally:
        sink.stop()

    deliveries = mail_deliveries(smtp_server) + [
        ("engineering-supervisor", keys_in(json.loads(body)["message"])) for _p, body in sink.bodies]
    counts = tally(deliveries, expected)
    left = pending(engine)
    figure("crash after send", crashes=crashes, lost=counts["lost"], duplicates=counts["repeated_digests"],
           duplicate_alerts=counts["duplicates"], pending=left)
    assert all(arrived and code == -signal.SIGKILL and failed == 0 for arrived, code, failed, _n in per_crash)
    # each round: one mail, the held webhook digest, and its one re-send after the restart
    assert [n for *_rest, n in per_crash] == [3] * crashes
    assert (counts["lost"], left, counts["unexpected"]) == (0, 0, 0)
    assert counts["repeated_digests"] <= crashes and counts["duplicates"] <= 5 * crashes


# -- restart keeps dedup -----------------------------------------------------------------------------------------

def unanswered_phone_requests(engine, count: int, *, when) -> list[str]:
    with transaction(engine) as s:
        offices = [setup_office(s, "A1"), setup_office(s, "B2")]
        return [request_for(s, offices[n % 2], at=when + timedelta(minutes=n)).number for n in range(count)]


def test_a_restart_inside_the_repeat_interval_re_runs_the_checks_and_sends_nothing_again(
        db_url, engine, tmp_path, smtp_server, figure):
    config = write_apprise_config(tmp_path / "apprise.yml", {"cs-supervisor": smtp_server.url(to="cs@example.com")})
    env = process_env(db_url, tmp_path, config)
    numbers = unanswered_phone_requests(engine, 12, when=at("2026-11-26", "09:00"))

    first = finish(start_dispatcher(env, at("2026-11-26", "10:00"), "checks-and-dispatch"))
    sent_first = len(smtp_server.messages)
    # everything stopped; a new process an hour later, inside the 4 h repeat interval
    again = finish(start_dispatcher(env, at("2026-11-26", "11:00"), "checks-and-dispatch"))
    re_sends = len(smtp_server.messages) - sent_first
    # past the repeat interval (4 working hours) the same open findings are due again: the count above could move
    later = finish(start_dispatcher(env, at("2026-11-26", "14:30"), "checks-and-dispatch"))

    [digest, repeat] = smtp_server.messages
    listed = keys_in(smtp_server.text(digest))
    figure("restart keeps dedup", re_sends=re_sends, alerts=len(listed), pending=pending(engine))
    assert (first["sent"], again["sent"], later["sent"]) == (1, 0, 1)
    assert re_sends == 0
    assert sorted(listed) == sorted(f"reply-overdue:{n}" for n in numbers)
    assert sorted(keys_in(smtp_server.text(repeat))) == sorted(listed)
