"""What must never leave the system in clear: residents' mobile numbers and the secrets in apprise URLs."""
from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

# A mainland mobile number: 1[3-9] and nine more digits, optionally after +86/0086/86 and written with
# spaces or dashes between the groups (138 1234 5678, 138-1234-5678, +86 13812345678). The lookarounds
# keep us from biting into longer digit runs such as order or receipt numbers.
_SEP = r"[ \-]?"
_HEAD, _FOUR = r"1[3-9]\d", r"\d{4}"
_MOBILE = re.compile(
    r"(?<![\d])"
    r"(?P<prefix>(?:\+|00)?86[ \-]?)?"
    rf"(?P<head>{_HEAD})" + _SEP + rf"(?P<mid>{_FOUR})" + _SEP + rf"(?P<tail>{_FOUR})"
    r"(?![\d])"
)
# The part every match contains. A pattern that starts with a lookbehind is tried at every position of the
# text (220 us for a 2.7 kB digest); one that starts with the literal "1" is found by a fast scan (2.5 us), and
# a text without it cannot hold a mobile number, masked ones ("138****5678") included.
_MOBILE_CORE = re.compile(_HEAD + _SEP + _FOUR)


def mask_phone(phone: str | None) -> str:
    """A resident's phone as it may be shown outside the ledger: 138****5678; other numbers keep 3+4 only."""
    if not phone:
        return ""
    masked = mask_text(phone)
    if masked != phone:
        return masked
    digits = re.sub(r"\D", "", phone)
    if len(digits) >= 7:  # a landline or foreign number: same idea, the middle hidden
        return f"{digits[:3]}****{digits[-4:]}"
    return "****"


def mask_text(text: str | None) -> str:
    """`text` with every Chinese mobile number in it masked (free-text notes included)."""
    if not text:
        return text or ""
    if _MOBILE_CORE.search(text) is None:
        return text
    return _MOBILE.sub(lambda m: f"{m['prefix'] or ''}{m['head']}****{m['tail']}", text)


def has_unmasked_mobile(text: str) -> bool:
    """True when `text` still carries a full mobile number (tests and a last check before sending)."""
    return _MOBILE_CORE.search(text) is not None and _MOBILE.search(text) is not None


def mask_facts(value: Any) -> Any:
    """A copy of JSON-like facts with every string's mobile numbers masked."""
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {k: mask_facts(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [mask_facts(v) for v in value]
    return value


# -- apprise URLs -------------------------------------------------------------------------------------

_URL = re.compile(r"\b[a-z][a-z0-9+.\-]{1,30}://[^\s'\"<>]+", re.I)


# query arguments apprise itself defines and that hold no secret; every other value is elided, because
# apprise's privacy form leaves custom query arguments (json://...?-token=..., +Authorization=...) as given
_SAFE_QUERY_KEYS = {"method", "overflow", "retry", "wait", "optional", "cto", "rto", "format", "mode", "verify",
                    "from", "to", "cc", "bcc", "name", "reply", "smtp", "image", "emojis", "tz", "lang",
                    "priority", "title", "footer", "batch", "encoding", "cache"}


def _elide(value: str) -> str:
    return f"{value[:1]}...{value[-1:]}" if len(value) > 2 else "..."


def harden_privacy_url(url: str) -> str:
    """Apprise's privacy URL with every non-standard query value elided too."""
    from urllib.parse import quote, unquote, urlsplit, urlunsplit

    try:
        parts = urlsplit(url)
    except ValueError:
        return url.split("://", 1)[0] + "://****"
    if not parts.query:
        return url
    pairs = []
    for pair in parts.query.split("&"):
        key, _, value = pair.partition("=")  # keys kept raw: "+Header" must not turn into " Header"
        if unquote(key).lower() not in _SAFE_QUERY_KEYS:
            value = quote(_elide(unquote(value)), safe="@.,")
        pairs.append(f"{key}={value}")
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "&".join(pairs), parts.fragment))


def privacy_url(url: str) -> str:
    """An apprise URL in apprise's own privacy form (tokens and passwords elided); never the raw text."""
    try:
        import apprise

        obj = apprise.Apprise.instantiate(url, suppress_exceptions=True)
    except Exception:  # noqa: BLE001 - whatever went wrong, the raw URL must not come out
        obj = None
    if obj:
        try:
            return harden_privacy_url(obj.url(privacy=True))
        except Exception:  # noqa: BLE001
            pass
    scheme = url.split("://", 1)[0] if "://" in url else "?"
    return f"{scheme}://****"


def scrub(text: str | None, secrets: Iterable[str] = ()) -> str:
    """Error text made safe to store or print: known secrets and any URL replaced, mobiles masked."""
    if not text:
        return ""
    out = str(text)
    for secret in sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True):
        out = out.replace(secret, "****")
    out = _URL.sub(lambda m: m.group(0).split("://", 1)[0] + "://****", out)
    return mask_text(out)


def url_secrets(url: str) -> list[str]:
    """The parts of an apprise URL that may be secret: every path segment, password and query value.

    Coarse on purpose: scrubbing a harmless host name from an error is cheap, leaking a token is not.
    """
    from urllib.parse import parse_qsl, unquote, urlsplit

    try:
        parts = urlsplit(url)
    except ValueError:
        return [url]
    found = [url]
    netloc = parts.netloc
    if "@" in netloc:
        userinfo = netloc.rsplit("@", 1)[0]
        found.extend(unquote(p) for p in userinfo.split(":"))
        netloc = netloc.rsplit("@", 1)[1]
    host = netloc.split(":")[0]
    if host and not re.fullmatch(r"[\d.]+|localhost", host):
        found.append(host)  # webhook schemes (wecombot://KEY) carry the token where a host would be
    found.extend(unquote(seg) for seg in parts.path.split("/") if seg)
    found.extend(unquote(v) for _, v in parse_qsl(parts.query) if v)
    return [s for s in found if len(s) >= 6]
