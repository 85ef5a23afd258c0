"""The chases' facts as outbox findings: keys, levels and routes from the catalogue, moments in local time."""
from __future__ import annotations

from models import findings as catalogue
from models.calendar import BusinessCalendar
from models.chase.facts import (
    CallbackChase,
    MissingRework,
    OverdueCallback,
    OverdueReply,
    OverdueWorkOrder,
    ReworkWithoutCallback,
)
from models.findings import Finding


def _iso(moment, calendar: BusinessCalendar) -> str:
    """Local time for the people who read the digest (Asia/Shanghai unless configured)."""
    return calendar.local(moment).isoformat()


def _common(f, cal: BusinessCalendar) -> dict:
    """The typed common fields every chase finding has: the holder, the local due time, the lateness."""
    return {"holder": f.holder, "due_at": cal.local(f.due_at), "overdue_minutes": f.overdue_minutes}


def _where(f) -> dict:
    """Where and whom: the kind-specific facts every chase finding also carries."""
    return {"community": f.community, "address": f.address, "resident": f.resident, "phone": f.phone,
            "request_number": f.request_number}


def reply_finding(r: OverdueReply, cal: BusinessCalendar) -> Finding:
    kind = catalogue.REPLY_OVERDUE
    return Finding(key=kind.key(r.request_number), kind=kind.name, office=r.office, level=1,
                   severity=kind.severity, subject=r.request_number, **_common(r, cal),
                   facts={**_where(r), "received_at": _iso(r.received_at, cal)}, occurred_at=r.due_at)


def callback_findings(c: OverdueCallback, cal: BusinessCalendar) -> list[Finding]:
    """One finding per level reached: at level 2 the manager is told and the supervisor's alert stays open."""
    rework = isinstance(c, ReworkWithoutCallback)
    kind = catalogue.REWORK_CALLBACK_MISSING if rework else catalogue.CALLBACK_OVERDUE
    facts = {**_where(c), "department": c.department, "worker": c.worker,
             "escalates_at": _iso(c.escalates_at, cal), "callback_id": c.callback_id}
    if rework:
        facts["rework_of"] = c.rework_of
    return [Finding(key=kind.key(c.order_number, level), kind=kind.name, office=c.office, level=level,
                    severity=kind.severity_at(level), order_number=c.order_number, subject=c.order_number,
                    **_common(c, cal), facts=facts, occurred_at=c.due_at if level == 1 else c.escalates_at)
            for level in c.levels]


def missing_rework_finding(m: MissingRework, cal: BusinessCalendar) -> Finding:
    kind = catalogue.REWORK_MISSING
    return Finding(key=kind.key(m.order_number), kind=kind.name, office=m.office, level=1,
                   severity=kind.severity, order_number=m.order_number, subject=m.order_number, **_common(m, cal),
                   facts={**_where(m), "department": m.department,
                          "callback_done_at": _iso(m.callback_done_at, cal)},
                   occurred_at=m.due_at)


def overdue_order_finding(o: OverdueWorkOrder, cal: BusinessCalendar) -> Finding:
    kind = catalogue.ORDER_OVERDUE
    return Finding(key=kind.key(o.order_number), kind=kind.name, office=o.office, level=1,
                   severity=kind.severity, order_number=o.order_number, department=o.department,
                   subject=o.order_number, **_common(o, cal),
                   facts={**_where(o), "department": o.department, "rework_of": o.rework_of,
                          "scheduled_for": _iso(o.due_at, cal)},
                   occurred_at=o.due_at)


def callback_chase_findings(found: CallbackChase, cal: BusinessCalendar) -> list[Finding]:
    """Every finding of one chase-callbacks run, in the order its checks ran."""
    out: list[Finding] = []
    for c in (*found.callbacks, *found.rework_callbacks):
        out.extend(callback_findings(c, cal))
    out.extend(missing_rework_finding(m, cal) for m in found.missing_reworks)
    out.extend(overdue_order_finding(o, cal) for o in found.overdue_orders)
    return out
