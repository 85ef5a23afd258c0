"""`bianmin run cash-check --day D [--as-of T] [--office O] [--json]`: replay or run the end-of-day cash check.

Prefect (and flows.cash, which imports it) is imported inside the command only.
"""
from __future__ import annotations

from typing import Any, Optional

import typer
from rich.table import Table

from commands.common import (check_text, console, emit, local_text, parse_at, parse_day, run_flow_once, t,
                               to_jsonable)
from models import findings as catalogue
from models.ledger.tables import DEPARTMENT_NAMES, Office
from notifications.masking import mask_phone


def cash_data(result: Any) -> dict[str, Any]:
    """The result as plain values, residents' phone numbers masked."""
    data = to_jsonable(result)
    for finding in data.get("findings", []):
        facts = finding.get("facts") or {}
        if facts.get("phone"):
            facts["phone"] = mask_phone(facts["phone"])
    return data


_KIND_NAMES = {k.name: (k.count_label.zh_CN, k.count_label.en) for k in catalogue.CASH_KINDS if k.count_label}


def _what(finding: dict[str, Any]) -> str:
    facts = finding["facts"]
    kind = finding["kind"]
    if kind == catalogue.FEE_NOT_COLLECTED.name:
        return f"{finding.get('subject')} {facts.get('resident', '')} {facts.get('phone', '')}"
    if kind in (catalogue.CASH_SHORTFALL.name, catalogue.CASH_OVERCOUNT.name):
        return t(f"交款 {facts['handover']}:应交 {facts['covered']},实点 {facts['counted']}",
                 f"handover {facts['handover']}: receipts {facts['covered']}, counted {facts['counted']}")
    receipts = facts.get("receipts") or []
    shown = ", ".join(receipts[:6]) + (" …" if len(receipts) > 6 else "")
    orders = facts.get("orders") or []
    return shown + (f" ({', '.join(orders[:3])}{' …' if len(orders) > 3 else ''})" if orders else "")


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _render(data: dict[str, Any]) -> None:
    day, when = data["day"], local_text(data["as_of"])
    if data["skipped"]:
        console.print(t(f"现金检查 {day}:休息日,不做检查;未解决的提醒保持不变。",
                        f"Cash check {day}: a day off, nothing evaluated; open findings stay open."))
        return
    findings = Table(title=t(f"现金检查 {day}(截至 {when})", f"Cash check {day} (as of {when})"))
    for header in (t("类别", "Finding"), t("服务处", "Office"), t("经手人", "Holder"), t("票据 / 单号", "Receipts / orders"),
                   t("金额", "Amount"), t("到期", "Due"), t("逾期(分钟)", "Overdue (min)")):
        findings.add_column(header)
    for f in data["findings"]:
        zh, en = _KIND_NAMES.get(f["kind"], (f["kind"], f["kind"]))
        findings.add_row(t(zh, en), f["office"] or "", f.get("holder") or "", _what(f), _text(f.get("amount")),
                         local_text(f.get("due_at")), _text(f.get("overdue_minutes")))
    if data["findings"]:
        console.print(findings)
    else:
        console.print(t(f"现金检查 {day}(截至 {when}):没有发现问题。", f"Cash check {day} (as of {when}): nothing found."))

    people = Table(title=t(f"{day} 收款与交款(按经手人)", f"{day} money by collector"))
    for header in (t("服务处", "Office"), t("经手人", "Collector"), t("部门", "Department"), t("现金", "Cash"),
                   t("电子支付", "Electronic"), t("已交财务", "Handed over"), t("未交现金", "Outstanding")):
        people.add_column(header, justify="right" if header not in (t("服务处", "Office"), t("经手人", "Collector"),
                                                                     t("部门", "Department")) else "left")
    for c in data["collectors"]:
        zh, en = DEPARTMENT_NAMES.get(c["department"], (c["department"], c["department"]))
        people.add_row(c["office"], f"{c['name']} ({c['collector']})", t(zh, en), c["cash"], c["electronic"],
                       c["handed_over"], c["outstanding"])
    for o in data["offices"]:
        people.add_row(o["office"], t(f"合计({o['collectors']} 人)", f"total ({o['collectors']})"), "", o["cash"],
                       o["electronic"], o["handed_over"], o["outstanding"], style="bold")
    if data["collectors"]:
        console.print(people)
    if not data["recorded"]:
        console.print(t("回放:提醒表已有更晚的现金检查结果,本次只显示、不写入提醒。",
                        "Replay: the outbox already holds a later cash check; shown only, no alerts recorded."))
        return
    console.print(t(f"新增提醒 {data['new']} 条,仍未解决 {data['seen_again']} 条,已解决 {data['resolved']} 条",
                    f"{data['new']} new alert(s) queued, {data['seen_again']} still open, "
                    f"{data['resolved']} resolved"))


def register(root: typer.Typer, run: typer.Typer) -> None:
    """Add `run cash-check` to the `run` group."""

    @run.command("cash-check")
    def cash_check(
        day: Optional[str] = typer.Option(None, "--day", help="The working day to check (YYYY-MM-DD); "
                                          "default: the check due now (this evening's, or this morning's "
                                          "look at the previous working day)."),
        as_of: Optional[str] = typer.Option(None, "--as-of", help="Judge as of this moment instead of the "
                                            "day's cut-off + grace (ISO, local time unless an offset is given)."),
        office: Optional[str] = typer.Option(None, "--office", help="Only this office (code)."),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    ) -> None:
        """End-of-day cash check: cash not handed over, shortfalls, receipt custody, fees not collected."""
        the_day = parse_day(day)
        moment = parse_at(as_of, default_now=False, field="--as-of")
        office = check_text(office, "--office", Office.code)
        def load():
            from flows.cash import cash_check_flow
            return cash_check_flow

        result = run_flow_once("cash-check", load, day=the_day, as_of=moment, office=office)
        data = cash_data(result)
        emit(as_json, data, lambda: _render(data))
