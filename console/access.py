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




# the pages beside the alerts: who may open them (each page then shows only the user's offices)
SUPERVISORS_AND_MANAGERS = frozenset({"cs-supervisor", "cs-manager", "engineering-supervisor", "cleaning-supervisor"})
PAGE_ROLES: dict[str, frozenset[str]] = {
    # cash held and due: finance, and the supervisors and managers whose workers collect it
    "cash": frozenset({"finance-manager", "admin"}) | SUPERVISORS_AND_MANAGERS,
    # the monthly reports go to administration (procedure 4.5); managers read them too
    "reports": frozenset({"administration", "cs-manager", "finance-manager", "admin"}),
    # the month's sign-off: the four parties' confirmers answer, administration follows it
    "signoff": frozenset({"cs-manager", "finance-manager", "engineering-supervisor", "cleaning-supervisor",
                          "administration", "admin"}),
    # flows and deliveries: the administrator, and the managers who answer for their alerts arriving
    "health": frozenset({"admin", "administration", "cs-manager", "finance-manager"}),
}


def may_open(user: Account, page: str) -> bool:
    return user.role in PAGE_ROLES.get(page, frozenset())


def pages_of(user: Account) -> list[str]:
    """The extra pages this user's menu shows, in menu order."""
    return [p for p in PAGE_ROLES if may_open(user, p)]
