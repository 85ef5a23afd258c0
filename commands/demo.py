"""`bianmin demo`: a realistic month built through the desk, every check run once as of its end, and the tally.

The flows' plain logic functions are called directly with the Runtime (run_chase_replies, run_chase_callbacks,
run_cash_check, run_monthly_tally, run_dispatch): no Prefect server, no scheduler, a few seconds on SQLite. What
they found is then compared with what the generator planted (commands.generator): each planted problem must be in
the outbox exactly once and in the report's findings exactly once, nothing else may be, and the report's figures
must equal the generator's own counts.
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import select

from flows.runtime import Runtime
from models import findings as catalogue
from models import texts
from models.ledger.db import shown_url, upgrade
from models.errors import DomainError
from commands.generator import GeneratedMonth, Planted, generate_month
from models.ledger.tables import Alert, Office

# the report's figures the generator counts itself
FIGURES = ("orders", "completed", "accepted", "receipts", "revenue_cash", "revenue_electronic", "phone_requests",
           "phone_replied_in_time", "rework")


@dataclass(frozen=True)
class PlantedFound:
    """One planted problem and how often the outbox and the report hold it (1 and 1 is right)."""

    planted: Planted
    alerts: int  # findings in the outbox with the planted key (one finding may go to several recipients)
    report_rows: int
    recipients: tuple[str, ...] = ()

    @property
    def found_once(self) -> bool:
        return (self.alerts == 1 or self.planted.alert_key is None) and (
            self.report_rows == 1 or self.planted.tally_kind is None)


@dataclass(frozen=True)
class DemoResult:
    """What the demo built, what the checks found against what was planted, and where the output went."""

    month: str
    offices: tuple[str, ...]
    seed: int
    database: str
    as_of: datetime
    figures: dict[str, str]  # the generator's counts, group-wide
    report_figures: dict[str, str]  # the same figures as the group report states them
    found: tuple[PlantedFound, ...]
    unexpected_alerts: tuple[str, ...]
    unexpected_report_rows: tuple[str, ...]
    alerts_by_kind: dict[str, int]
    report_findings_by_kind: dict[str, int]
    reports: tuple[str, ...]
    delivered_to: str
    messages_sent: int
    delivery_files: tuple[str, ...] = field(default=())

    @property
    def figures_match(self) -> bool:
        return self.figures == self.report_figures

    @property
    def all_found(self) -> bool:
        return (all(f.found_once for f in self.found) and not self.unexpected_alerts
                and not self.unexpected_report_rows and self.figures_match)


def run_demo(rt: Runtime, month: str = "2026-10", offices: int = 2, seed: int = 7,
             orders_per_office: int | None = None) -> DemoResult:
    """Build the month, run every flow's logic once as of its end and the tally, deliver, and compare."""
    from flows.callbacks import run_chase_callbacks, run_chase_replies
    from flows.cash import run_cash_check
    from flows.dispatch import run_dispatch
    from flows.tally import run_monthly_tally

    s = rt.settings
    upgrade(s.effective_database_url)
    with rt.sessions() as session:
        # never mix made-up offices into a real ledger: the demo builds into an empty database only
        if session.scalar(select(Office.id).limit(1)) is not None:
            raise DomainError("demo_exists", database=shown_url(s.effective_database_url, mask="****"))
    gen = generate_month(rt.sessions, calendar=rt.calendar, month=month, offices=offices,
                         orders_per_office=orders_per_office or 150, seed=seed,
                         callback_workdays=s.callback_workdays)
    as_of = gen.end
    run_chase_replies(rt, as_of)
    run_chase_callbacks(rt, as_of)
    run_cash_check(rt, gen.last_working_day, as_of)
    tally = run_monthly_tally(rt, gen.month, as_of=as_of)
    delivered = run_dispatch(rt, as_of)

    recipients: dict[str, list[str]] = {}
    kinds: Counter = Counter()
    with rt.sessions() as session:
        # the outbox keeps one row per finding and recipient tag ("<key>@<tag>"): count findings, list tags
        for key, tag, kind, payload in session.execute(
                select(Alert.dedupe_key, Alert.tag, Alert.kind, Alert.payload)
                # the sign-off's drafts to the departments are notices, not findings of the month
                .where(Alert.resolved_at.is_(None), Alert.kind != catalogue.FLOW_FAILED.name,
                       Alert.kind.not_in([k.name for k in catalogue.SIGNOFF_KINDS]))
                .order_by(Alert.dedupe_key)):
            finding = (payload or {}).get("key") or key.rsplit("@", 1)[0]
            if finding not in recipients:
                kinds[kind] += 1
            recipients.setdefault(finding, []).append(tag)
    open_keys = Counter({k: 1 for k in recipients})
    group = next(r for r in tally.reports if r.office == "*")
    content = json.loads(Path(group.path).with_name("tally.json").read_text(encoding="utf-8"))
    rows = Counter((f["kind"], f["reference"]) for f in content["findings"])
    found = tuple(PlantedFound(p, open_keys.get(p.alert_key, 0) if p.alert_key else 0,
                               rows.get((p.tally_kind, p.tally_reference), 0) if p.tally_kind else 0,
                               tuple(recipients.get(p.alert_key, ())))
                  for p in gen.planted)
    planted_keys = {p.alert_key for p in gen.planted}
    planted_rows = {(p.tally_kind, p.tally_reference) for p in gen.planted}
    return DemoResult(
        month=gen.month, offices=gen.offices, seed=seed, database=shown_url(s.effective_database_url, mask="****"),
        as_of=as_of, figures=_figures(gen), report_figures={k: str(content["total"][k]) for k in FIGURES},
        found=found, unexpected_alerts=tuple(sorted(k for k in open_keys if k not in planted_keys)),
        unexpected_report_rows=tuple(sorted(f"{k}:{r}" for k, r in rows if (k, r) not in planted_rows)),
        alerts_by_kind=dict(sorted(kinds.items())),
        report_findings_by_kind={k: n for k, n in content["findings_by_kind"].items() if n},
        reports=tuple(r.path for r in tally.reports),
        delivered_to=("apprise" if s.apprise_config else str(s.effective_outbox_dir)),
        messages_sent=delivered.messages_sent, delivery_files=tuple(delivered.files))


def _figures(gen: GeneratedMonth) -> dict[str, str]:
    total = gen.total()
    return {k: str(getattr(total, k).quantize(Decimal("0.01")) if isinstance(getattr(total, k), Decimal)
                   else getattr(total, k)) for k in FIGURES}


def render_demo(result: DemoResult, console, locale: str) -> None:
    """The rich summary: what was built, what was found against what was planted, where the output is."""
    from rich.table import Table

    def tr(code: str, **values: Any) -> str:
        return texts.render(code, locale, **values)

    f = result.figures
    console.print(tr("cli.demo.built", month=result.month, offices=tr("cli.demo.list_sep").join(result.offices),
                     seed=result.seed, database=result.database), markup=False, highlight=False)
    console.print(tr("cli.demo.figures", **f), markup=False, highlight=False)
    table = Table(title=tr("cli.demo.planted"))
    for head in ("problem", "office", "reference", "alerts", "sent_to", "report_rows"):
        table.add_column(tr(f"cli.demo.{head}"), overflow="fold")
    table.add_column("", overflow="fold")
    for item in result.found:
        p = item.planted
        table.add_row(p.kind, p.office, p.reference, str(item.alerts) if p.alert_key else "-",
                      ", ".join(item.recipients) or "-",
                      str(item.report_rows) if p.tally_kind else "-",
                      "[green]✓[/green]" if item.found_once else "[red]✗[/red]")
    console.print(table)
    if result.unexpected_alerts or result.unexpected_report_rows:
        console.print(tr("cli.demo.unexpected")
                      + ", ".join(result.unexpected_alerts + result.unexpected_report_rows),
                      style="red", markup=False)
    figures = Table(title=tr("cli.demo.figures_title"))
    for head in ("figure", "generator", "report"):
        figures.add_column(tr(f"cli.demo.{head}"))
    for key, value in result.figures.items():
        shown = result.report_figures.get(key)
        figures.add_row(key, value, shown if shown == value else f"[red]{shown}[/red]")
    console.print(figures)
    console.print(tr("cli.demo.delivered", sent=result.messages_sent, to=result.delivered_to),
                  markup=False, highlight=False)
    for path in result.reports:
        console.print(tr("cli.demo.report_file", path=path), markup=False, highlight=False)
    verdict = result.all_found
    console.print(tr("cli.demo.all_found") if verdict else tr("cli.demo.missed"),
                  style="bold green" if verdict else "bold red")
