"""Signed links to one alert: `BIANMIN_PUBLIC_URL/a/<token>`, for the digest (one per item) and the console.

Pure of FastAPI. The token names the alert row and expires after BIANMIN_LINK_HOURS; the salt is this purpose's
own, so a token signed for anything else (a session cookie) never opens an alert. The link does not prove who
clicked (a chat group is shared): the console asks for a login before it shows anything.
"""
from __future__ import annotations

from collections.abc import Callable

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from console.secret import secret_key
from flows.settings import Settings

ALERT_LINK_SALT = "bianmin.console.alert-link"


class LinkInvalid(Exception):
    """A link that was tampered with or is not one of ours."""


class LinkExpired(LinkInvalid):
    """A genuine link older than BIANMIN_LINK_HOURS."""


def _serializer(settings: Settings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key(settings), salt=ALERT_LINK_SALT)


def alert_token(settings: Settings, alert_id: int) -> str:
    return _serializer(settings).dumps({"alert": int(alert_id)})


def alert_link(settings: Settings, alert_id: int) -> str:
    """The URL that opens alert row `alert_id` in the console (after a login)."""
    return f"{settings.public_url.rstrip('/')}/a/{alert_token(settings, alert_id)}"


def alert_linker(settings: Settings) -> Callable[[int], str]:
    """`alert_link` for many alerts (a digest's items): the key is read and the signer built once."""
    signer, base = _serializer(settings), settings.public_url.rstrip("/")
    return lambda alert_id: f"{base}/a/{signer.dumps({'alert': int(alert_id)})}"


def read_alert_token(settings: Settings, token: str) -> int:
    """The alert id a token names; LinkExpired or LinkInvalid otherwise."""
    try:
        data = _serializer(settings).loads(token, max_age=int(settings.link_hours * 3600))
    except SignatureExpired as exc:
        raise LinkExpired(str(exc)) from None
    except BadSignature as exc:
        raise LinkInvalid(str(exc)) from None
    if not isinstance(data, dict) or not isinstance(data.get("alert"), int):
        raise LinkInvalid("not an alert link")
    return data["alert"]
