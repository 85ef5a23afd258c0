"""The cash check's facts as outbox findings: one per fact, keyed and routed by the catalogue."""
from __future__ import annotations

from models.cash.facts import CashCheck, CollectorFigures
from models.findings import Finding
from models.rules import overdue_minutes


def _money(value) -> str:
    return f"{value:.2f}"


def _figures_facts(figures: CollectorFigures | None) -> dict[str, str] | None:
    if figures is None:
        return None
    return {"cash": _money(figures.cash), "electronic": _money(figures.electronic),
            "handed_over": _money(figures.handed_over), "outstanding": _money(figures.outstanding)}


def findings_of(check: CashCheck) -> list[Finding]:
    """Every fact of one check as an outbox finding; the collector's department fills "{dept}" in routes."""
    figures = {c.collector: c for c in check.collectors}
    out: list[Finding] = []
    for u in check.unhanded:
        out.append(Finding(
            key=u.key, kind=u.kind.name, office=u.office, severity=u.kind.severity, department=u.department,
            subject=f"{u.collector_name}({u.collector}) {u.due_at.date().isoformat()}", holder=u.collector_name,
            due_at=u.due_at, overdue_minutes=u.overdue_minutes, amount=u.total, occurred_at=u.due_at,
            facts={"collector": u.collector, "receipts": list(u.receipts), "orders": list(u.orders),
                   "day": check.day.isoformat(), "figures": _figures_facts(figures.get(u.collector))}))
    for m in (*check.shortfalls, *check.overcounts):
        out.append(Finding(
            key=m.key, kind=m.kind.name, office=m.office, severity=m.kind.severity, department=m.department,
            subject=m.handover, holder=m.collector_name, amount=m.difference, occurred_at=m.handed_at,
            facts={"handover": m.handover, "collector": m.collector, "handed_at": m.handed_at.isoformat(),
                   "receipts": list(m.receipts), "covered": _money(m.covered), "counted": _money(m.counted)}))
    for b in check.unreturned:
        out.append(Finding(
            key=b.key, kind=b.kind.name, office=b.office, severity=b.kind.severity, department=b.department,
            subject=f"{b.numbers[0]}…{b.numbers[-1]}" if len(b.numbers) > 1 else b.numbers[0],
            holder=b.holder_name, due_at=b.return_due, occurred_at=b.return_due,
            facts={"book": b.book, "collector": b.holder, "issued_at": b.issued_at.isoformat(),
                   "receipts": list(b.numbers), "count": len(b.numbers)}))
    for g in check.gaps:
        out.append(Finding(
            key=g.key, kind=g.kind.name, office=g.office, severity=g.kind.severity, department=g.department,
            subject=g.number, holder=g.holder_name,
            facts={"receipt": g.number, "book": g.book, "collector": g.holder, "used_after": g.used_after,
                   "receipts": [g.number]}))
    for d in check.used_twice:
        out.append(Finding(
            key=d.key, kind=d.kind.name, office=d.office, severity=d.kind.severity,
            order_number=d.orders[0] if d.how == "order" else None, subject=d.ref, amount=d.total,
            facts={"how": d.how, "ref": d.ref, "receipts": list(d.numbers), "orders": list(d.orders)}))
    for f in check.fees_not_collected:
        out.append(Finding(
            key=f.key, kind=f.kind.name, office=f.office, severity=f.kind.severity, order_number=f.order,
            department=f.department, subject=f.order, holder=f.worker_name, due_at=f.due_at,
            overdue_minutes=overdue_minutes(f.due_at, check.as_of), amount=f.fee, occurred_at=f.due_at,
            facts={"resident": f.resident, "phone": f.phone, "address": f.address,
                   "accepted_at": f.accepted_at.isoformat()}))
    return out
