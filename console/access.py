"""Who may see and do what in the console: by role and offices. Pure of FastAPI.

A role sees the alerts routed to the tags it answers for (the apprise tags of notifications/outbox.py), in its
offices; an account with no office sees every office, and alerts that belong to no office. The desk's follow-up
actions (reply, callback) are CS work (procedure 2 and 4.4): CS roles of that office only, and the desk itself
checks again that the staff member is CS of that office.
"""
from __future__ import annotations

from sqlalchemy import ColumnElement, and_, false, true

from console.accounts import Account
from models.ledger.tables import Alert

CS_ROLES = frozenset({"cs-clerk", "cs-supervisor", "cs-manager"})
# role -> the alert tags it answers for; None: every tag (the administrator, who also receives `ops`)
ROLE_TAGS: dict[str, frozenset[str] | None] = {
    "cs-clerk": frozenset({"cs-supervisor"}),  # the clerk does the callback the supervisor is chased for
    "cs-supervisor": frozenset({"cs-supervisor", "cs-manager"}),
    "cs-manager": frozenset({"cs-supervisor", "cs-manager"}),
    "finance-manager": frozenset({"finance-manager"}),
    "engineering-supervisor": frozenset({"engineering-supervisor"}),
    "cleaning-supervisor": frozenset({"cleaning-supervisor"}),
    "administration": frozenset({"administration"}),
    "admin": None,
}


def in_offices(user: Account, office: str | None) -> bool:
    if user.every_office:
        return True
    return office is not None and office in user.offices


def may_see_tag(user: Account, tag: str) -> bool:
    tags = ROLE_TAGS.get(user.role, frozenset())
    return tags is None or tag.split("@", 1)[0] in tags


def may_see_alert(user: Account, alert: Alert) -> bool:
    return may_see_tag(user, alert.tag) and in_offices(user, alert.office)


def visible_alerts(user: Account) -> ColumnElement[bool]:
    """SQL truth of "this user may see this alert row" (the same rule as may_see_alert)."""
    tags = ROLE_TAGS.get(user.role, frozenset())
    by_tag = true() if tags is None else (Alert.tag.in_(sorted(tags)) if tags else false())
    by_office = true() if user.every_office else Alert.office.in_(list(user.offices))
    return and_(by_tag, by_office)


def is_cs_of(user: Account, office: str | None) -> bool:
    """CS of that office: may see residents' full phone numbers and record the desk's follow-ups there."""
    return user.role in CS_ROLES and in_offices(user, office)


def may_see_order(user: Account, office: str) -> bool:
    """The order page: anyone with alerts about the office's orders; its phone is masked unless is_cs_of."""
    return in_offices(user, office)


