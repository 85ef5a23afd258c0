"""Defect 12: an oversized digest item is cut to fit the channel's limit, with a marker; the rest stay whole."""
from __future__ import annotations

import apprise
import pytest

from tests.integration.test_delivery import send_digests
from tests.integration.test_outbox import finding, listed_orders, record
from tests.servers import http_server, smtp_server, write_apprise_config  # noqa: F401 (fixtures)

HUGE = "丽景花园三期东区" * 32_500  # a 260 KB address pasted by mistake


def limit_of(url: str) -> int:
    """The body limit apprise's plugin for `url` declares (a json:// webhook: 32768 characters)."""
    return apprise.Apprise.instantiate(url).body_maxlen


@pytest.mark.parametrize(("locale", "marker"), [("zh_CN", "(已截断)"), ("en", "(truncated)")])
def test_an_oversized_item_is_cut_to_the_webhooks_limit_with_a_marker_and_the_others_stay_whole(
        engine, tmp_path, http_server, locale, marker):
    url = http_server.url("/hook")
    config = write_apprise_config(tmp_path / "apprise.yml", {"cs-supervisor": url})
    record(engine, [finding(1, address=HUGE), finding(2, note="住户要求下午回电"), finding(3)])

    result = send_digests(engine, config, locale=locale)

    posted = [p["message"] for p in http_server.json_bodies()]
    assert result.alerts_sent == 3 and result.pending_left == 0
    assert posted and all(len(message) <= limit_of(url) for message in posted)
    assert sum(message.count(marker) for message in posted) == 1
    assert sorted(n for message in posted for n in listed_orders(message)) == ["WO-0001", "WO-0002", "WO-0003"]
    whole = [m for m in posted if "WO-0002" in m]
    assert whole and "住户要求下午回电" in whole[0] and "callback-overdue:WO-0003:1" in "".join(posted)
    cut = next(m for m in posted if "WO-0001" in m)
    assert "callback-overdue:WO-0001:1" in cut  # the item's ack key survives the cut


def test_a_mail_digest_keeps_a_long_item_whole_up_to_the_generous_mail_limit(engine, tmp_path, smtp_server):
    config = write_apprise_config(tmp_path / "apprise.yml", {"cs-supervisor": smtp_server.url()})
    long_address = "丽景花园三期东区" * 5_000  # 40k characters: past a webhook's limit, well within a mail's
    record(engine, [finding(1, address=long_address), finding(2)])

    result = send_digests(engine, config)

    [mail] = smtp_server.messages
    assert result.alerts_sent == 2
    assert long_address in smtp_server.text(mail).replace("\r\n", "\n")
