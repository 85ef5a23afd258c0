"""bianmin's own webhook channels (json://, form://) post what apprise posts: compared at a real HTTP sink."""
from __future__ import annotations

from urllib.parse import parse_qs

import apprise
import pytest

from notifications.delivery import deliver
from tests.servers import http_server, write_apprise_config  # noqa: F401 (fixtures)

TITLE = "【便民提醒】cs-supervisor:2 条待处理"
BODY = "1. [警告] 回访逾期 WO-0001\n   业主 张三 138****5678\n2. [警告] 回访逾期 WO-0002"


def by_apprise_and_by_us(sink, url: str, tmp_path, attachments=()):
    app = apprise.Apprise()
    assert app.add(url)
    assert app.notify(body=BODY, title=TITLE, body_format="text", attach=[str(a) for a in attachments] or None)
    config = write_apprise_config(tmp_path / "apprise.yml", {"cs-supervisor": url})
    assert deliver(tag="cs-supervisor", title=TITLE, body=BODY, apprise_config=config, attachments=attachments,
                   outbox_dir=tmp_path / "outbox").ok
    theirs, ours = sink.requests
    return theirs, ours


def same_headers(theirs, ours) -> bool:
    keep = {"content-type", "user-agent", "x-api-key"}
    pick = lambda r: {k.lower(): v.split(";")[0] for k, v in r.headers.items() if k.lower() in keep}  # noqa: E731
    return pick(theirs) == pick(ours)


@pytest.mark.parametrize("query", ["", "?:title=subject&:type=&:source=bianmin&-token=abc&+X-Api-Key=k1"])
def test_a_json_webhook_gets_apprises_payload_path_query_and_headers(tmp_path, http_server, query):
    theirs, ours = by_apprise_and_by_us(http_server, http_server.url("/hook") + query, tmp_path)

    assert (ours.method, ours.path) == (theirs.method, theirs.path)
    assert ours.json() == theirs.json()
    assert same_headers(theirs, ours)


def test_a_json_webhook_gets_an_attachment_as_apprise_encodes_it(tmp_path, http_server):
    workbook = tmp_path / "tally.xlsx"
    workbook.write_bytes(bytes(range(256)) * 8)

    theirs, ours = by_apprise_and_by_us(http_server, http_server.url("/hook"), tmp_path, attachments=[workbook])

    assert ours.json() == theirs.json() and ours.json()["attachments"][0]["filename"] == "tally.xlsx"


@pytest.mark.parametrize("query", ["", "?:message=text&:version=&:source=bianmin"])
def test_a_form_webhook_gets_apprises_fields(tmp_path, http_server, query):
    theirs, ours = by_apprise_and_by_us(http_server, http_server.url("/hook", scheme="form") + query, tmp_path)

    fields = lambda r: parse_qs(r.body.decode("ascii"), keep_blank_values=True)  # noqa: E731
    assert (ours.method, ours.path) == (theirs.method, theirs.path)
    assert fields(ours) == fields(theirs) and [BODY] in fields(ours).values()
    assert same_headers(theirs, ours)
