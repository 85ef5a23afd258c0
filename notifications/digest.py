"""Digests: alerts as the lines of one message per recipient tag, in zh_CN or en, text or Markdown.

Long digests are split into numbered parts below the tightest size limit of the tag's services; each
part carries its own alert ids, so the dispatcher (notifications.dispatcher) marks only what a part sent.
Everything here is a function of rows already read: no database, no sending.
"""
from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from models import findings as catalogue
from models import texts
from models.rules import overdue_minutes
from models.ledger.tables import Alert
from notifications.masking import mask_phone, mask_text

TEMPLATES = Path(__file__).with_name("templates")
SPLIT_MARGIN = 200  # room for the part marker and a service's own framing


@dataclass(frozen=True)
class DigestItem:
    """One alert as a line of a digest (phone already masked)."""

    alert_id: int
    key: str
    kind: str
    level: int
    severity: int
    office: str | None
    number: str | None
    community: str | None
    address: str | None
    resident: str | None
    phone: str | None
    overdue_minutes: int | None
    due_at: str | None
    holder: str | None
    worker: str | None
    amount: str | None
    receipts: list[str] | None
    detail: str | None
    repeat: bool
    resolved: bool
    age_from: datetime
    link: str | None = None  # the console's signed link to this alert (console.links), when the caller gives one
    acked_by: str | None = None  # who acknowledged it: the resolved notice names them


@dataclass(frozen=True)
class DigestPart:
    """One message: its title and body, and the alerts it carries."""

    tag: str
    title: str
    body: str
    alert_ids: tuple[int, ...]
    resolved_ids: tuple[int, ...]
    body_format: str = "text"


# -- rendering ------------------------------------------------------------------------------------------

# the templates ship with the code: checking their files' mtimes before every digest cost more than rendering it
_env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=False, undefined=StrictUndefined,
                   keep_trailing_newline=False, auto_reload=False)
# the digests' kind labels come from the finding catalogue, one table per locale; their other words from the
# translation catalogue, in the `locale` each module is made for
_env.globals["finding_labels"] = {locale: catalogue.labels("label", locale) for locale in texts.LOCALES}
_env.globals["text"] = texts.render


class _Macros:
    """The digest macros of one locale and format; Markdown borrows what it does not define from text."""

    def __init__(self, locale: str, markdown: bool) -> None:
        self.text = _env.get_template("alert_digest.txt.j2").make_module({"locale": locale})
        self.md = _env.get_template("alert_digest.md.j2").make_module({"locale": locale}) if markdown else None

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if self.md is not None and hasattr(self.md, name):
            return getattr(self.md, name)
        return getattr(self.text, name)


@functools.cache
def _macros(locale: str, markdown: bool) -> _Macros:
    return _Macros(locale, markdown)


def _blocks(rendered: Any, sep: str, count: int) -> list[str]:
    """One macro call's output cut back into its `count` lines (each was followed by `sep`)."""
    blocks = str(rendered).split(sep)
    blocks.pop()  # after the last separator
    if len(blocks) != count:
        raise ValueError(f"a digest template rendered {len(blocks)} lines for {count} items")
    return blocks


def _as_int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _local(value: str | None, tz: ZoneInfo) -> str | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value).astimezone(tz).strftime("%Y-%m-%d %H:%M")
    except (TypeError, ValueError):
        return mask_text(str(value))


_ITEM_COLUMNS = (Alert.id, Alert.dedupe_key, Alert.kind, Alert.level, Alert.severity, Alert.office, Alert.tag,
                 Alert.order_number, Alert.payload, Alert.first_seen, Alert.last_notified_at, Alert.resolved_at,
                 Alert.acked_by)


def item_from(alert: Alert, *, as_of: datetime, tz: ZoneInfo, resolved: bool = False,
              link: str | None = None) -> DigestItem:
    """A digest line's facts from an outbox row; phone numbers masked, free text scrubbed of mobiles. `link` is
    the URL that opens the alert in the console (made by the caller: this layer holds no key)."""
    payload = alert.payload or {}
    facts = payload.get("facts") or {}
    # the finding's typed common fields (models.findings.Finding); `bianmin db upgrade` gave older rows theirs
    due_at = payload.get("due_at")
    overdue = _as_int(payload.get("overdue_minutes"))
    if overdue is None and due_at:
        try:
            overdue = overdue_minutes(datetime.fromisoformat(due_at), as_of)
        except (TypeError, ValueError):
            overdue = None
    detail_parts = [str(facts[k]) for k in ("note", "reason", "flow", "flow_run", "error", "message") if facts.get(k)]
    receipts = facts.get("receipts")
    return DigestItem(
        alert_id=alert.id, key=payload.get("key") or alert.dedupe_key, kind=alert.kind, level=alert.level,
        severity=alert.severity, office=alert.office,
        number=payload.get("subject"),
        community=facts.get("community"), address=mask_text(facts.get("address")) or None,
        resident=mask_text(facts.get("resident")) or None,
        phone=mask_phone(facts.get("phone")) or None,
        overdue_minutes=overdue, due_at=_local(due_at, tz),
        holder=payload.get("holder"), worker=facts.get("worker"),
        amount=str(payload["amount"]) if payload.get("amount") not in (None, "") else None,
        receipts=[str(r) for r in receipts] if isinstance(receipts, (list, tuple)) else None,
        detail=mask_text(" · ".join(detail_parts))[:500] or None,
        repeat=alert.last_notified_at is not None and not resolved,
        resolved=resolved,
        age_from=datetime.fromisoformat(payload["occurred_at"]) if payload.get("occurred_at") else alert.first_seen,
        link=link, acked_by=getattr(alert, "acked_by", None),
    )


def order_items(items: list[DigestItem]) -> list[DigestItem]:
    """Most severe first, then the oldest."""
    return sorted(items, key=lambda it: (-it.severity, it.age_from, it.number or "", it.alert_id))


def render_digest(tag: str, items: list[DigestItem], resolved: list[DigestItem], *, locale: str, as_of: datetime,
                  tz: ZoneInfo, body_limit: int | None = None, title_in_body: bool = False,
                  markdown: bool = False) -> list[DigestPart]:
    """The digest for one tag, split into numbered parts when it would exceed `body_limit` characters."""
    m = _macros(locale, markdown)
    items = order_items(items)
    resolved = sorted(resolved, key=lambda it: (it.number or "", it.alert_id))
    head = str(m.header(tag, None, as_of.astimezone(tz).strftime("%Y-%m-%d %H:%M")))
    foot = str(m.footer()) if items else ""
    res_head = str(m.resolved_header())
    # every line of the digest in one macro call (a call per line cost more than the line), each line followed
    # by a separator no alert's text can hold, so the digest can still be cut below the size limit between lines
    sep = f"\x1e{uuid.uuid4().hex}\x1e"
    blocks = [(text, it, False) for text, it in zip(_blocks(m.items(items, sep), sep, len(items)), items)]
    blocks += [(text, it, True) for text, it in zip(_blocks(m.resolved_lines(resolved, sep), sep, len(resolved)),
                                                   resolved)]
    budget = None
    if body_limit:
        budget = body_limit - SPLIT_MARGIN - len(head) - len(foot) - len(res_head) - (300 if title_in_body else 0)
        budget = max(budget, 200)
        # one item longer than a whole part (a huge address pasted into a note) is cut to fit, marked as cut,
        # so it cannot push the part past the service's limit; the other items stay whole in their parts
        marker = str(m.truncated())
        blocks = [(_cut(text, budget, marker) if len(text) > budget else text, it, r) for text, it, r in blocks]

    groups: list[list[tuple[str, DigestItem, bool]]] = [[]]
    size = 0
    for block in blocks:
        if budget is not None and groups[-1] and size + len(block[0]) > budget:
            groups.append([])
            size = 0
        groups[-1].append(block)
        size += len(block[0])

    counts_all = _counts(items)
    parts: list[DigestPart] = []
    for n, group in enumerate(groups, 1):
        text = head
        shown_resolved_head = False
        for body, _it, is_resolved in group:
            if is_resolved and not shown_resolved_head:
                text += res_head
                shown_resolved_head = True
            text += body
        text += foot
        title = str(m.title(tag, counts_all, len(resolved), n, len(groups)))
        parts.append(DigestPart(
            tag=tag, title=mask_text(title), body=mask_text(text).strip() + "\n",
            alert_ids=tuple(it.alert_id for _b, it, r in group if not r),
            resolved_ids=tuple(it.alert_id for _b, it, r in group if r),
            body_format="markdown" if markdown else "text"))
    return parts


def _cut(block: str, budget: int, marker: str) -> str:
    """`block` cut to `budget` characters with `marker` where the text stops; its last line (the ack key) kept."""
    block = mask_text(block)  # masked before the cut, so the cut never leaves half a mobile readable
    _before, newline, last = block.rpartition("\n")
    tail = newline + last if newline and len(last) <= budget // 4 else ""
    return block[:max(budget - len(marker) - len(tail), 0)].rstrip() + marker + tail


def _counts(items: list[DigestItem]) -> dict[Any, int]:
    counts: dict[Any, int] = {1: 0, 2: 0, 3: 0}
    for it in items:
        counts[min(max(it.severity, 1), 3)] += 1
    counts["total"] = len(items)
    return counts
