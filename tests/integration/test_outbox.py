"""The outbox on SQLite and PostgreSQL: one row per finding and tag, repeats, acks, silences, resolution.

Delivery here goes to the local outbox folder (no apprise config); the real servers are in test_delivery.py.
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from flows.settings import DEFAULT_ROUTES
from models.calendar import BusinessCalendar
from models.ledger.db import session_factory, transaction
from models.ledger.tables import Alert, AlertSilence, AuditEvent
from notifications import outbox
from models.findings import Finding
from notifications.dispatcher import dispatch
from notifications.outbox import route_tags, sync_findings

TZ = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 11, 26, 10, 0, tzinfo=TZ)  # a Thursday, in working hours
CALLBACK_KINDS = {"callback-overdue"}


# -- builders --------------------------------------------------------------------------------------------

def finding(n: int = 1, *, kind: str = "callback-overdue", level: int = 1, office: str = "A1",
            severity: int = 2, department: str | None = None, **facts) -> Finding:
    """A finding about work order WO-000n, as the chase detector would write it."""
    number = f"WO-{n:04d}"
    key = f"{kind}:{number}:{level}" if kind == "callback-overdue" else f"{kind}:{number}"
    base = {"resident": "张三", "phone": "13812345678", "address": f"3栋-2-{n:03d}", "community": "丽景花园"}
    common = {"holder": "李客服", "overdue_minutes": 30 + n}
    common.update({name: facts.pop(name) for name in ("holder", "due_at", "overdue_minutes", "amount")
                   if name in facts})
    return Finding(key=key, kind=kind, office=office, level=level, severity=severity, order_number=number,
                   department=department, subject=number, **common, facts={**base, **facts},
                   occurred_at=T0 - timedelta(minutes=30 + n))


def stored_payload(f: Finding) -> dict:
    """The payload the outbox stores for a finding."""
    return outbox._facts(f)


def record(engine, findings, *, as_of=T0, kinds=CALLBACK_KINDS, **kwargs):
    with transaction(engine) as s:
        return sync_findings(s, findings, kinds=kinds, as_of=as_of, routes=DEFAULT_ROUTES, **kwargs)


def listed_orders(body: str) -> list[str]:
    """The order numbers a digest lists, one per item heading ("3. [WARNING] Callback overdue WO-0007")."""
    return re.findall(r"^\d+\. .*?(WO-\d{4})", body, re.M)


def deliver_to_files(engine, folder: Path, as_of=T0, **kwargs):
    return dispatch(session_factory(engine), apprise_config=None, outbox_dir=folder, locale="en", as_of=as_of,
                    **kwargs)


def rows(engine) -> dict[str, Alert]:
    with session_factory(engine)() as s:
        return {a.dedupe_key: a for a in s.scalars(select(Alert))}


def statuses(engine, as_of=T0) -> dict[str, str]:
    with session_factory(engine)() as s:
        return {v.alert_key: v.status for v in outbox.list_alerts(s, as_of=as_of)}


# -- routing -----------------------------------------------------------------------------------------------

def test_routes_look_up_kind_and_level_first_then_kind():
    assert route_tags(DEFAULT_ROUTES, kind="callback-overdue", level=2) == ["cs-manager"]
    assert route_tags(DEFAULT_ROUTES, kind="reply-overdue", level=1) == ["cs-supervisor"]


def test_department_placeholder_is_filled_and_cash_goes_to_two_tags():
    assert route_tags(DEFAULT_ROUTES, kind="cash-unhanded", department="cleaning") == [
        "finance-manager", "cleaning-supervisor"]


def test_a_kind_nobody_is_routed_to_reaches_ops_rather_than_nobody():
    assert route_tags(DEFAULT_ROUTES, kind="something-new") == ["ops"]
    assert route_tags({"order-overdue": "{dept}-supervisor"}, kind="order-overdue", department=None) == ["ops"]


# -- recording ---------------------------------------------------------------------------------------------

def test_a_finding_is_recorded_once_and_seen_again_only_updates_last_seen(engine):
    first = record(engine, [finding(1)])
    later = T0 + timedelta(minutes=5)
    again = record(engine, [finding(1, overdue_minutes=36)], as_of=later)
    assert (first.new, first.seen_again) == (1, 0)
    assert (again.new, again.seen_again) == (0, 1)
    [row] = rows(engine).values()
    assert row.dedupe_key == "callback-overdue:WO-0001:1@cs-supervisor"
    assert (row.first_seen, row.last_seen) == (T0, later)
    assert row.payload["overdue_minutes"] == 36


def test_recording_the_same_window_twice_changes_nothing(engine):
    record(engine, [finding(1), finding(2)])
    before = {k: (a.last_seen, a.sent_at, a.next_attempt_at, a.payload) for k, a in rows(engine).items()}
    record(engine, [finding(1), finding(2)])
    after = {k: (a.last_seen, a.sent_at, a.next_attempt_at, a.payload) for k, a in rows(engine).items()}
    assert after == before


def test_a_finding_routed_to_two_tags_becomes_one_row_per_tag(engine):
    result = record(engine, [finding(7, kind="cash-unhanded", department="engineering", severity=3)],
                    kinds={"cash-unhanded"})
    assert sorted(result.keys) == ["cash-unhanded:WO-0007@engineering-supervisor",
                                   "cash-unhanded:WO-0007@finance-manager"]
    assert {a.tag for a in rows(engine).values()} == {"engineering-supervisor", "finance-manager"}


def test_an_escalated_callback_keeps_the_supervisor_alert_and_adds_the_manager(engine, tmp_path):
    record(engine, [finding(1)])
    deliver_to_files(engine, tmp_path / "a")
    later = T0 + timedelta(hours=1)  # within the repeat interval: the supervisor is not reminded yet
    record(engine, [finding(1, level=1), finding(1, level=2, severity=3)], as_of=later)
    result = deliver_to_files(engine, tmp_path / "b", as_of=later)
    assert result.per_tag == {"cs-manager": 1}
    assert statuses(engine, later) == {"callback-overdue:WO-0001:1@cs-supervisor": "sent",
                                       "callback-overdue:WO-0001:2@cs-manager": "sent"}


def test_a_finding_that_no_longer_holds_is_resolved_and_others_of_other_kinds_are_left_alone(engine):
    record(engine, [finding(1), finding(2)])
    record(engine, [finding(9, kind="order-overdue", department="engineering")], kinds={"order-overdue"})
    result = record(engine, [finding(2)], as_of=T0 + timedelta(hours=1))
    assert result.resolved == 1
    assert statuses(engine) == {"callback-overdue:WO-0001:1@cs-supervisor": "resolved",
                                "callback-overdue:WO-0002:1@cs-supervisor": "pending",
                                "order-overdue:WO-0009@engineering-supervisor": "pending"}


def test_resolving_within_one_office_leaves_other_offices_open(engine):
    record(engine, [finding(1, office="A1"), finding(2, office="B2")])
    record(engine, [], office="A1", as_of=T0 + timedelta(hours=1))
    assert statuses(engine) == {"callback-overdue:WO-0001:1@cs-supervisor": "resolved",
                                "callback-overdue:WO-0002:1@cs-supervisor": "pending"}


# -- delivery semantics (to files) ---------------------------------------------------------------------

def test_without_an_apprise_config_each_tag_gets_one_file_in_the_outbox_folder(engine, tmp_path):
    record(engine, [finding(n) for n in range(1, 4)]
           + [finding(9, kind="cash-unhanded", department="cleaning", severity=3)],
           kinds={"callback-overdue", "cash-unhanded"})
    result = deliver_to_files(engine, tmp_path / "outbox")
    files = sorted((tmp_path / "outbox").glob("*.txt"))
    assert (result.messages_sent, result.alerts_sent, len(files)) == (3, 5, 3)
    supervisor = next(f for f in files if "-cs-supervisor-" in f.name).read_text(encoding="utf-8")
    assert all(f"WO-000{n}" in supervisor for n in (1, 2, 3))
    assert "138****5678" in supervisor and "13812345678" not in supervisor


def test_dispatching_again_sends_nothing_new(engine, tmp_path):
    record(engine, [finding(1), finding(2)])
    deliver_to_files(engine, tmp_path / "outbox")
    again = deliver_to_files(engine, tmp_path / "outbox", as_of=T0 + timedelta(minutes=1))
    assert (again.messages_sent, again.alerts_sent, again.pending_left) == (0, 0, 0)
    assert len(list((tmp_path / "outbox").glob("*.txt"))) == 1


def test_items_are_sorted_by_severity_then_age(engine, tmp_path):
    record(engine, [finding(1, severity=1), finding(2, severity=3), finding(3, severity=3)])
    deliver_to_files(engine, tmp_path / "o")
    [text] = [f.read_text(encoding="utf-8") for f in (tmp_path / "o").glob("*.txt")]
    # WO-0003 fell due earlier than WO-0002 (it is older), both critical; the notice comes last
    assert text.index("WO-0003") < text.index("WO-0002") < text.index("WO-0001")


def test_a_sent_alert_is_not_repeated_before_the_repeat_interval(engine, tmp_path):
    record(engine, [finding(1)])
    deliver_to_files(engine, tmp_path / "o")
    three_hours = T0 + timedelta(hours=3, minutes=59)
    record(engine, [finding(1)], as_of=three_hours)
    assert deliver_to_files(engine, tmp_path / "o", as_of=three_hours).alerts_sent == 0


def test_a_sent_alert_still_true_after_the_repeat_interval_is_sent_again_as_a_reminder(engine, tmp_path):
    record(engine, [finding(1)])
    deliver_to_files(engine, tmp_path / "first")
    four_hours = T0 + timedelta(hours=4)
    sync = record(engine, [finding(1)], as_of=four_hours)
    result = deliver_to_files(engine, tmp_path / "second", as_of=four_hours)
    [text] = [f.read_text(encoding="utf-8") for f in (tmp_path / "second").glob("*.txt")]
    assert (sync.seen_again, result.alerts_sent) == (1, 1)
    assert "WO-0001 (reminder)" in text


def test_with_a_calendar_the_repeat_interval_counts_working_hours_only(engine, tmp_path):
    calendar = BusinessCalendar()
    friday_4pm = datetime(2026, 11, 27, 16, 0, tzinfo=TZ)
    record(engine, [finding(1)], as_of=friday_4pm, calendar=calendar)
    deliver_to_files(engine, tmp_path / "o", as_of=friday_4pm)
    # Friday 16:00-17:30 is 1.5 working hours; Monday 08:30-10:59 adds 2.5 minus a minute: not yet 4
    monday_1059 = datetime(2026, 11, 30, 10, 59, tzinfo=TZ)
    record(engine, [finding(1)], as_of=monday_1059, calendar=calendar)
    assert deliver_to_files(engine, tmp_path / "o", as_of=monday_1059).alerts_sent == 0
    monday_11 = datetime(2026, 11, 30, 11, 0, tzinfo=TZ)
    record(engine, [finding(1)], as_of=monday_11, calendar=calendar)
    assert deliver_to_files(engine, tmp_path / "o", as_of=monday_11).alerts_sent == 1


def test_an_acked_alert_is_not_repeated(engine, tmp_path):
    record(engine, [finding(1)])
    deliver_to_files(engine, tmp_path / "o")
    with transaction(engine) as s:
        assert outbox.ack(s, key="callback-overdue:WO-0001:1", by="王主管", at=T0 + timedelta(minutes=10)) == 1
    much_later = T0 + timedelta(days=2)
    record(engine, [finding(1)], as_of=much_later)
    assert deliver_to_files(engine, tmp_path / "o", as_of=much_later).alerts_sent == 0
    assert statuses(engine, much_later) == {"callback-overdue:WO-0001:1@cs-supervisor": "acked"}


def test_an_acked_alert_whose_level_changes_is_sent_again(engine, tmp_path):
    late = finding(5, kind="order-overdue", department="engineering")
    record(engine, [late], kinds={"order-overdue"})
    deliver_to_files(engine, tmp_path / "o")
    with transaction(engine) as s:
        outbox.ack(s, key="order-overdue:WO-0005", by="工程主管", at=T0)
    escalated = finding(5, kind="order-overdue", department="engineering", level=2, severity=3)
    later = T0 + timedelta(minutes=30)
    record(engine, [escalated], kinds={"order-overdue"}, as_of=later)
    assert deliver_to_files(engine, tmp_path / "o", as_of=later).alerts_sent == 1


def test_ack_is_recorded_in_the_audit_trail(engine):
    record(engine, [finding(1)])
    with transaction(engine) as s:
        outbox.ack(s, key="callback-overdue:WO-0001:1@cs-supervisor", by="王主管", at=T0)
    with session_factory(engine)() as s:
        event = s.scalars(select(AuditEvent).where(AuditEvent.action == "ack")).one()
    assert (event.actor, event.entity) == ("王主管", "alert")


def test_a_silence_holds_back_its_kind_in_its_office_until_it_ends(engine, tmp_path):
    with transaction(engine) as s:
        outbox.silence(s, kind="callback-overdue", office="A1", starts_at=T0, until=T0 + timedelta(hours=2),
                       by="王经理", reason="停电抢修,回访暂停")
    record(engine, [finding(1, office="A1"), finding(2, office="B2")])
    during = deliver_to_files(engine, tmp_path / "o")
    assert (during.alerts_sent, during.pending_left) == (1, 1)
    assert statuses(engine)["callback-overdue:WO-0001:1@cs-supervisor"] == "silenced"
    after = T0 + timedelta(hours=2)
    assert deliver_to_files(engine, tmp_path / "o", as_of=after).alerts_sent == 1
    with session_factory(engine)() as s:
        assert s.scalar(select(func.count()).select_from(AlertSilence)) == 1


def test_a_resolved_alert_that_was_sent_gets_a_resolved_line_in_the_next_digest(engine, tmp_path):
    record(engine, [finding(1), finding(2)])
    deliver_to_files(engine, tmp_path / "first")
    later = T0 + timedelta(hours=1)
    record(engine, [finding(2)], as_of=later)
    result = deliver_to_files(engine, tmp_path / "second", as_of=later)
    [text] = [f.read_text(encoding="utf-8") for f in (tmp_path / "second").glob("*.txt")]
    assert (result.alerts_sent, result.resolved_sent) == (0, 1)
    assert "resolved: Callback overdue WO-0001" in text
    assert deliver_to_files(engine, tmp_path / "third", as_of=later).messages_sent == 0


def test_a_finding_resolved_before_anyone_was_told_sends_nothing(engine, tmp_path):
    record(engine, [finding(1)])
    record(engine, [], as_of=T0 + timedelta(minutes=5))
    result = deliver_to_files(engine, tmp_path / "o", as_of=T0 + timedelta(minutes=5))
    assert (result.messages_sent, result.resolved_sent) == (0, 0)


def test_resolved_lines_are_not_sent_when_settings_say_so(engine, tmp_path):
    record(engine, [finding(1)])
    deliver_to_files(engine, tmp_path / "o")
    record(engine, [], as_of=T0 + timedelta(hours=1))
    result = deliver_to_files(engine, tmp_path / "o", as_of=T0 + timedelta(hours=1), send_resolved=False)
    assert (result.messages_sent, result.resolved_sent) == (0, 0)
    assert rows(engine)["callback-overdue:WO-0001:1@cs-supervisor"].resolved_notified_at is not None


def test_a_resolved_finding_that_comes_back_is_pending_again(engine, tmp_path):
    record(engine, [finding(1)])
    deliver_to_files(engine, tmp_path / "o")
    record(engine, [], as_of=T0 + timedelta(hours=1))
    record(engine, [finding(1)], as_of=T0 + timedelta(hours=2))
    assert statuses(engine, T0 + timedelta(hours=2)) == {"callback-overdue:WO-0001:1@cs-supervisor": "pending"}


def test_a_long_digest_is_split_into_numbered_parts_below_the_limit_each_item_once(engine, tmp_path):
    record(engine, [finding(n, note="住户要求下午回电 " * 3) for n in range(1, 31)])
    result = deliver_to_files(engine, tmp_path / "o", body_limit=2000)
    texts = [f.read_text(encoding="utf-8") for f in sorted((tmp_path / "o").glob("*.txt"))]
    bodies = [t.split("\n\n", 1)[1] for t in texts]
    assert result.messages_sent == len(texts) > 1
    assert all(len(b) < 2000 for b in bodies)
    assert all(f"[{i}/{len(texts)}]" in "".join(t.splitlines()[1] for t in texts) for i in range(1, len(texts) + 1))
    assert sorted(number for b in bodies for number in listed_orders(b)) == [f"WO-{n:04d}" for n in range(1, 31)]


def test_the_markdown_digest_bolds_the_order_and_still_masks_the_phone():
    from notifications.digest import item_from, render_digest

    alert = Alert(id=1, dedupe_key="callback-overdue:WO-0001:1@cs-supervisor", kind="callback-overdue", level=2,
                  severity=3, office="A1", order_number="WO-0001", tag="cs-supervisor", first_seen=T0, last_seen=T0,
                  payload=stored_payload(finding(1)))
    [part] = render_digest("cs-supervisor", [item_from(alert, as_of=T0, tz=TZ)], [], locale="zh_CN", as_of=T0,
                           tz=TZ, markdown=True)
    assert part.body_format == "markdown"
    assert "**WO-0001**" in part.body and "138****5678" in part.body and "13812345678" not in part.body
    assert "`callback-overdue:WO-0001:1`" in part.body


def test_facts_with_times_and_money_are_stored_as_json_values(engine):
    from decimal import Decimal

    record(engine, [finding(1, due_at=T0, amount=Decimal("80.00"))])
    [row] = rows(engine).values()
    assert (row.payload["due_at"], row.payload["amount"]) == (T0.isoformat(), "80.00")


def test_an_over_long_finding_key_still_fits_the_column_and_stays_stable():
    long_key = "receipt-gap:" + "R" * 300
    assert len(outbox.alert_key(long_key, "finance-manager")) <= 200
    assert outbox.alert_key(long_key, "finance-manager") == outbox.alert_key(long_key, "finance-manager")
    assert outbox.alert_key(long_key, "finance-manager").endswith("@finance-manager")


def test_a_digest_lists_every_item_once_in_order_even_when_an_alert_text_holds_control_characters():
    from notifications.digest import item_from, render_digest

    alerts = [Alert(id=n, dedupe_key=f"callback-overdue:WO-{n:04d}:1@cs-supervisor", kind="callback-overdue",
                    level=1, severity=2, office="A1", order_number=f"WO-{n:04d}", tag="cs-supervisor",
                    first_seen=T0 - timedelta(minutes=n), last_seen=T0,
                    payload=stored_payload(finding(n, note="业主留言\x1e\x1e 请回电\x00")))
              for n in range(1, 41)]
    items = [item_from(a, as_of=T0, tz=TZ) for a in alerts]

    parts = render_digest("cs-supervisor", items, items[:3], locale="zh_CN", as_of=T0, tz=TZ, body_limit=2500)

    assert len(parts) > 1
    assert [i for p in parts for i in p.alert_ids] == list(range(40, 0, -1))  # the oldest first
    numbered = [line.split(".", 1)[0] for p in parts for line in p.body.splitlines() if "WO-" in line and ". [" in line]
    assert numbered == [str(n) for n in range(1, 41)]
    assert all(p.body.count("\x1e\x1e 请回电") == len(p.alert_ids) for p in parts)
