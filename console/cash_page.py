"""Cash today (/cash): per collector, the cash held, when each part of it is due at finance, the day's figures,
handover shortfalls, blank receipts kept past their return time and skipped receipt numbers; the cash check's own
queries and rules (models.cash.queries.check_cash: the facts behind cash-shortfall, receipt-unreturned and
receipt-gap), for the user's offices only.

Read-only, as of now: the same facts the evening's cash check turns into alerts, before it runs."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response

from console.context import Console
from models.cash.facts import ZERO, CashCheck
from models.cash.queries import cash_held, check_cash
from models.rules import cash_due


@dataclass
class Due:
    due_at: str
    amount: Decimal
    receipts: int
    overdue: str  # "" while not yet due


@dataclass
class Unreturned:
    """One book's blank numbers still with its holder after the return time (a receipt-unreturned finding)."""

    book: str
    numbers: str  # "000103…000105", as the finding's subject names them
    count: int
    due_at: str
    overdue: str


@dataclass
class Gap:
    """A blank number skipped: a higher number of its book was used (a receipt-gap finding)."""

    number: str
    book: str
    used_after: str
    skipped_at: str


@dataclass
class Collector:
    code: str
    name: str
    department: str
    office: str
    cash: Decimal = ZERO
    electronic: Decimal = ZERO
    handed_over: Decimal = ZERO
    held: Decimal = ZERO
    dues: list[Due] = field(default_factory=list)
    shortfalls: list[dict] = field(default_factory=list)
    unreturned: list[Unreturned] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)


def collectors_of(c: Console, checks: list[tuple[CashCheck, list]], at: datetime) -> list[Collector]:
    """The page's rows: each collector's figures, held cash by due time, and shortfalls, merged by collector."""
    cal, cutoff = c.rt.calendar, c.settings.cash_cutoff
    out: dict[str, Collector] = {}

    def of(code: str, name: str, department: str, office: str) -> Collector:
        return out.setdefault(code, Collector(code, name, department, office))
    for check, held in checks:
        for f in check.collectors:
            row = of(f.collector, f.name, f.department, f.office)
            row.cash, row.electronic, row.handed_over = f.cash, f.electronic, f.handed_over
        groups: dict[tuple[str, datetime], list] = defaultdict(list)
        for item in held:
            groups[(item.collector, cash_due(item.collected_at, cal, cutoff=cutoff))].append(item)
        for (code, due), items in sorted(groups.items(), key=lambda kv: (kv[0][1], kv[0][0])):
            first = items[0]
            row = of(code, first.collector_name, first.department, first.office)
            amount = sum((i.amount for i in items), ZERO)
            row.held += amount
            overdue = c.duration((at - due).total_seconds() / 60) if due < at else ""
            row.dues.append(Due(c.local(due), amount, len(items), overdue))
        for s in check.shortfalls:
            of(s.collector, s.collector_name, s.department, s.office).shortfalls.append(
                {"handover": s.handover, "handed_at": c.local(s.handed_at), "covered": s.covered,
                 "counted": s.counted, "difference": s.difference})
        # receipt custody: a holder with blank numbers to account for gets a row even without cash
        for b in check.unreturned:
            numbers = f"{b.numbers[0]}…{b.numbers[-1]}" if len(b.numbers) > 1 else b.numbers[0]
            of(b.holder, b.holder_name, b.department, b.office).unreturned.append(Unreturned(
                b.book, numbers, len(b.numbers), c.local(b.return_due),
                c.duration((at - b.return_due).total_seconds() / 60)))
        for g in check.gaps:
            of(g.holder, g.holder_name, g.department, g.office).gaps.append(
                Gap(g.number, g.book, g.used_after, c.local(g.skipped_at)))
    return sorted(out.values(), key=lambda r: (r.office, -(r.held + sum((s["difference"] for s in r.shortfalls),
                                                                         ZERO)), r.code))


def register(app: FastAPI, c: Console) -> None:
    rt, settings = c.rt, c.settings

    @app.get("/cash", response_class=HTMLResponse)
    def cash_page(request: Request) -> Response:
        user = c.user_for(request, "cash")
        at = c.now()
        day: date = rt.calendar.local(at).date()
        offices = [None] if user.every_office else sorted(user.offices)
        checks = []
        with rt.sessions() as s:
            for office in offices:  # one check per office: the rows of other offices are never read
                check = check_cash(s, day=day, as_of=at, calendar=rt.calendar, cutoff=settings.cash_cutoff,
                                   return_workdays=settings.receipt_return_workdays, office=office)
                checks.append((check, cash_held(s, as_of=at, office=office)))
        rows = collectors_of(c, checks, at)
        totals = {"held": sum((r.held for r in rows), ZERO),
                  "overdue": sum((d.amount for r in rows for d in r.dues if d.overdue), ZERO),
                  "short": sum((s["difference"] for r in rows for s in r.shortfalls), ZERO),
                  "unreturned": sum(b.count for r in rows for b in r.unreturned),
                  "gaps": sum(len(r.gaps) for r in rows)}
        return c.page(request, "cash.html.j2", rows=rows, day=day.isoformat(), as_of=c.local(at), totals=totals,
                      offices=offices)
