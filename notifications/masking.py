"""What must never leave the system in clear: residents' mobile numbers and the secrets in apprise URLs."""
from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from models.ledger.db import shown_url

# A mainland mobile number: 1[3-9] and nine more digits, optionally after +86/0086/86, written plain or with
# spaces, dashes or dots between the groups (138 1234 5678, 138  8765  4321, 138.1234.5678, +86 13812345678),
# in ASCII or full-width digits (１３９１２３４５６７８: Python's \d is any decimal digit). The lookarounds keep
# us from biting into longer digit runs such as order, receipt or ID numbers.
_GAP = r"[ \t\u00a0\u3000]{0,3}"
_SEP = rf"(?:{_GAP}[\-.．－‐–—·・]?{_GAP})"
_HEAD, _FOUR = r"[1１][3-9３-９]\d", r"\d{4}"
_MOBILE = re.compile(
    r"(?<![\d])"
    rf"(?P<prefix>(?:[+＋]|00|００)?[8８][6６]{_SEP})?"
    rf"(?P<head>{_HEAD})" + _SEP + rf"(?P<mid>{_FOUR})" + _SEP + rf"(?P<tail>{_FOUR})"
    r"(?![\d])"
)
# A resident identity card number (居民身份证): 17 digits and a check digit or X, the 7th-14th a birth date.
_ID_CARD = re.compile(r"\d(?<!\d\d)\d{16}[\dXxＸｘ](?![\d])")  # \d first: a scan, not a try at every position
_ID_DATE = re.compile(r"\d{6}(?:18|19|20)\d\d(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])")
_TO_ASCII = str.maketrans("０１２３４５６７８９ＸｘＸ", "0123456789XxX")
# Necessary conditions, checked first: a text without them cannot hold a mobile or ID number (masked ones
# such as "138****5678" included). Each pattern starts with a literal, which the regex engine finds by a fast
# scan: a full-width digit class or a pattern starting with a lookbehind is tried at every position instead.
# Full-width digits are rare enough to send a text the slow way.
_QUICK_ONE = re.compile(rf"1(?:[3-9]\d{_SEP}{_FOUR}|[89]\d{{8}})")  # a mobile's head; an ID's 18xx/19xx year
_QUICK_TWO = re.compile(r"20\d{8}")  # an ID's 20xx year
_FULL_WIDTH_DIGITS = "０１２３４５６７８９"
_FULL_WIDTH_DIGIT = re.compile(f"[{_FULL_WIDTH_DIGITS}]")


def _may_hold_numbers(text: str) -> bool:
    return (_QUICK_ONE.search(text) is not None or _QUICK_TWO.search(text) is not None
            or (_FULL_WIDTH_DIGIT.search(text) is not None if len(text) < 100
                else any(digit in text for digit in _FULL_WIDTH_DIGITS)))


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


def _mask_id(m: re.Match) -> str:
    number = m.group(0)
    if _ID_DATE.match(number.translate(_TO_ASCII)) is None:
        return number  # 18 digits that carry no birth date: some other number
    return f"{number[:3]}{'*' * 11}{number[-4:]}"


def _mask_mobile(m: re.Match) -> str:
    return f"{m['prefix'] or ''}{m['head']}****{m['tail']}"


def mask_text(text: str | None) -> str:
    """`text` with every Chinese mobile number and identity card number in it masked (free-text notes included)."""
    if not text:
        return text or ""
    if not _may_hold_numbers(text):
        return text
    return _MOBILE.sub(_mask_mobile, _ID_CARD.sub(_mask_id, text))


def has_unmasked_mobile(text: str) -> bool:
    """True when `text` still carries a full mobile or ID number (tests and a last check before sending)."""
    return _may_hold_numbers(text) and mask_text(text) != text


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


# generic webhooks: the path is where the receiving side keeps its secret (json://host/hook/<secret>), and
# apprise's privacy form shows it whole, as it does their custom query arguments
GENERIC_SCHEMES = frozenset({"json", "jsons", "xml", "xmls", "form", "forms"})


def harden_privacy_url(url: str) -> str:
    """Apprise's privacy URL with every non-standard query value elided too, and a generic webhook's path.

    Scheme, host and port stay readable (they say which service it is); for json/xml/form URLs each path
    segment is elided as apprise elides tokens (`h...k`).
    """
    from urllib.parse import quote, unquote, urlsplit, urlunsplit

    try:
        parts = urlsplit(url)
    except ValueError:
        return url.split("://", 1)[0] + "://****"
    path = parts.path
    if parts.scheme.lower() in GENERIC_SCHEMES and path.strip("/"):
        path = "/".join(quote(_elide(unquote(seg)), safe="@.,") if seg else seg for seg in path.split("/"))
    pairs = []
    for pair in parts.query.split("&") if parts.query else ():
        key, _, value = pair.partition("=")  # keys kept raw: "+Header" must not turn into " Header"
        if unquote(key).lower() not in _SAFE_QUERY_KEYS:
            value = quote(_elide(unquote(value)), safe="@.,")
        pairs.append(f"{key}={value}")
    return urlunsplit((parts.scheme, parts.netloc, path, "&".join(pairs), parts.fragment))


# a URL in running text: up to the next blank, less the quotes and punctuation a message puts around it
_ANY_URL = re.compile(r"\b[a-z][a-z0-9+.\-]*://\S*[^\s'\"<>()\[\]{},.;:!?]", re.I)


def mask_url_password(text: str) -> str:
    """A database URL, or a text quoting URLs (an error message), as it may be shown: each URL's password and
    secret-looking query values as **** (models.ledger.db.shown_url)."""
    return _ANY_URL.sub(lambda m: shown_url(m.group(0), mask="****"), text)


def privacy_url(url: str) -> str:
    """An apprise URL in apprise's own privacy form (tokens and passwords elided); never the raw text."""
    from notifications.delivery import quiet_apprise

    try:
        import apprise

        # apprise logs the URL it parses ("Unparseable URL <raw>" at ERROR, "Loaded ... URL" at DEBUG)
        with quiet_apprise():
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
