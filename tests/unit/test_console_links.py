"""console.links: the signed alert links the digest will carry, pure of FastAPI."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest
import time_machine
from itsdangerous import URLSafeTimedSerializer
from pydantic import SecretStr

from console.links import LinkExpired, LinkInvalid, alert_link, alert_token, read_alert_token
from flows.settings import Settings


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(_env_file=None, data_dir=tmp_path, public_url="https://bianmin.example.com/",
                    secret_key=SecretStr("s" * 48), link_hours=2)


def test_a_link_names_its_alert_under_the_public_url(settings):
    link = alert_link(settings, 42)
    assert link.startswith("https://bianmin.example.com/a/")
    assert read_alert_token(settings, link.rsplit("/", 1)[1]) == 42


def test_a_link_expires_after_link_hours(settings):
    with time_machine.travel(datetime.now().astimezone() - timedelta(hours=2, minutes=1)):
        old = alert_token(settings, 42)
    with pytest.raises(LinkExpired):
        read_alert_token(settings, old)
    with time_machine.travel(datetime.now().astimezone() - timedelta(hours=1, minutes=59)):
        fresh = alert_token(settings, 42)
    assert read_alert_token(settings, fresh) == 42


def test_another_key_another_salt_or_an_edit_is_refused(settings):
    token = alert_token(settings, 42)
    other_key = settings.model_copy(update={"secret_key": SecretStr("t" * 48)})
    other_salt = URLSafeTimedSerializer("s" * 48, salt="bianmin.something-else").dumps({"alert": 42})
    forged_id = URLSafeTimedSerializer("s" * 48, salt="bianmin.console.alert-link").dumps({"alert": "42"})
    for bad, where in ((token, other_key), (other_salt, settings), (token[:-2] + "xx", settings),
                       ("", settings), (forged_id, settings)):
        with pytest.raises(LinkInvalid):
            read_alert_token(where, bad)


def test_the_public_url_must_be_http_or_https():
    with pytest.raises(ValueError):
        Settings(_env_file=None, public_url="javascript:alert(1)")
