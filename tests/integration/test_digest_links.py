"""Issue 20: every digest item carries one link to the console; Markdown channels get a Markdown link, the others
the URL on a line of its own; the resolved notice names who acknowledged."""
from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

from models.ledger.db import transaction
from notifications import outbox
from notifications.digest import item_from, render_digest
from tests.integration.test_delivery import send_digests
from tests.integration.test_outbox import T0, deliver_to_files, finding, record, rows
from tests.servers import smtp_server, write_apprise_config  # noqa: F401 (fixtures)

TZ = ZoneInfo("Asia/Shanghai")


def link(alert_id: int) -> str:
    return f"https://bianmin.example.com/a/token-{alert_id}.x_y-z"


def test_a_mailed_digest_has_each_items_link_on_a_line_of_its_own(engine, tmp_path, smtp_server):
    config = write_apprise_config(tmp_path / "apprise.yml", {"cs-supervisor": smtp_server.url()})
    record(engine, [finding(1), finding(2)])

    result = send_digests(engine, config, locale="en", link=link)

    [mail] = smtp_server.messages
    lines = [line.strip() for line in smtp_server.text(mail).replace("\r\n", "\n").split("\n")]
    ids = sorted(a.id for a in rows(engine).values())
    assert result.alerts_sent == 2
    assert sorted(line for line in lines if "/a/" in line) == [link(i) for i in ids]  # each once, alone on a line


def test_a_markdown_digest_has_a_markdown_link_per_item():
    alert = SimpleNamespace(id=7, dedupe_key="callback-overdue:WO-0007:1@cs-supervisor", kind="callback-overdue",
                            level=1, severity=2, office="A1", tag="cs-supervisor", order_number="WO-0007",
                            payload={"subject": "WO-0007", "facts": {}}, first_seen=T0, last_notified_at=None,
                            resolved_at=None, acked_by=None)
    for locale, words in (("en", "Open in the console"), ("zh_CN", "在控制台处理")):
        [part] = render_digest("cs-supervisor", [item_from(alert, as_of=T0, tz=TZ, link=link(7))], [],
                               locale=locale, as_of=T0, tz=TZ, markdown=True)
        assert f"[{words}]({link(7)})" in part.body
        [plain] = render_digest("cs-supervisor", [item_from(alert, as_of=T0, tz=TZ, link=link(7))], [],
                                locale=locale, as_of=T0, tz=TZ)
        assert f"\n   {link(7)}\n" in plain.body + "\n" and "](" not in plain.body


def test_the_resolved_notice_names_who_acknowledged_and_carries_no_link(engine, tmp_path):
    record(engine, [finding(1), finding(2)])
    deliver_to_files(engine, tmp_path / "first", link=link)
    with transaction(engine) as s:
        outbox.ack(s, key="callback-overdue:WO-0001:1", by="李主管", at=T0 + timedelta(minutes=5))
    later = T0 + timedelta(hours=1)
    record(engine, [], as_of=later)  # both findings no longer hold: resolved

    result = deliver_to_files(engine, tmp_path / "second", as_of=later, link=link)

    [notice] = [p.read_text(encoding="utf-8") for p in (tmp_path / "second").rglob("*") if p.is_file()]
    assert result.resolved_sent == 2
    [acked_line] = [line for line in notice.splitlines() if "WO-0001" in line]
    [other_line] = [line for line in notice.splitlines() if "WO-0002" in line]
    assert "acknowledged by 李主管" in acked_line and "acknowledged" not in other_line
    assert "/a/" not in notice
