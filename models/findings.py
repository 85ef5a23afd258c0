"""The finding catalogue: every kind of finding bianmin reports, declared once.

A kind's name is the `kind` of its alerts and report rows; its dedupe key is the name followed by the parts
in `key_format`, joined by ":". The default alert routes (flows/settings.py), the digest, report and CLI
labels and the flows' kind sets are all read from here, so a kind string is typed in this module only.
Pure: no prefect, apprise or typer.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from models.texts import Text

# a kind's labels are declared with the kind, in the catalogue's one text type
Label = Text


@dataclass(frozen=True)
class Kind:
    """One finding kind.

    `route` is the default apprise tag(s) of its alerts ("{dept}" is the holder's department) and
    `level_routes` those of a given escalation level. `label` is its name in alert digests, `report_label`
    in the monthly report's rows, `count_label` in the cash check's command-line summary; None where the
    kind does not appear there."""

    name: str
    key_format: str | None = None  # the parts after the name; None: no dedupe key (report rows only)
    severity: int | None = None  # of its alerts at level 1; None: the tally reports it, no flow alerts on it
    escalated_severity: int | None = None  # of its alerts at level 2 and above
    route: str | None = None
    level_routes: tuple[tuple[int, str], ...] = ()
    label: Label | None = None
    report_label: Label | None = None
    count_label: Label | None = None
    detail_labels: tuple[tuple[str, Label], ...] = ()  # a report row's detail code -> its words

    def key(self, *parts: object) -> str:
        """The dedupe key of one finding of this kind, from the parts named in `key_format`."""
        return ":".join((self.name, *(str(p) for p in parts)))

    def severity_at(self, level: int) -> int:
        assert self.severity is not None, f"{self.name} has no alerts"
        return self.escalated_severity if level >= 2 and self.escalated_severity is not None else self.severity


_CS = "cs-supervisor"
_CS_MANAGER = "cs-manager"
_FINANCE = "finance-manager"
_FINANCE_DEPT = "finance-manager,{dept}-supervisor"

# -- the daily chases (flows/callbacks.py) ---------------------------------------------------------------
REPLY_OVERDUE = Kind("reply-overdue", "{request_number}", severity=2, route=_CS,
                     label=Label("电话登记未回复", "Phone request not replied"))
CALLBACK_OVERDUE = Kind("callback-overdue", "{order_number}:{level}", severity=2, escalated_severity=3,
                        level_routes=((1, _CS), (2, _CS_MANAGER)), label=Label("回访逾期", "Callback overdue"))
REWORK_MISSING = Kind("rework-missing", "{order_number}", severity=2, route=_CS,
                      label=Label("不满意未安排返工", "Unsatisfied, no rework ordered"),
                      report_label=Label("不满意未返修", "Unsatisfied without rework"))
REWORK_CALLBACK_MISSING = Kind("rework-callback-missing", "{order_number}:{level}", severity=2, escalated_severity=3,
                               route=_CS, level_routes=((1, _CS), (2, _CS_MANAGER)),
                               label=Label("返工单回访逾期", "Rework callback overdue"))
ORDER_OVERDUE = Kind("order-overdue", "{order_number}", severity=2, route="{dept}-supervisor",
                     label=Label("派工单超时未完工", "Work order past its time"))

# -- the daily cash check (flows/cash.py) ----------------------------------------------------------------
CASH_UNHANDED = Kind("cash-unhanded", "{collector}:{day}", severity=2, route=_FINANCE_DEPT,
                     label=Label("现金未交财务", "Cash not handed to finance"),
                     report_label=Label("现金月底未交财务", "Cash not handed over by month end"),
                     count_label=Label("现金未交", "cash not handed over"))
CASH_SHORTFALL = Kind("cash-shortfall", "{handover}", severity=3, route=_FINANCE_DEPT,
                      label=Label("交款短款", "Handover short"), count_label=Label("交款短款", "handover shortfall"))
CASH_OVERCOUNT = Kind("cash-overcount", "{handover}", severity=2, route=_FINANCE,
                      label=Label("交款长款", "Handover over"), count_label=Label("交款长款", "handover over-count"))
RECEIPT_UNRETURNED = Kind("receipt-unreturned", "{book}", severity=2, route=_FINANCE_DEPT,
                          label=Label("票据未交回", "Receipt not returned"),
                          count_label=Label("票据未交回", "receipts not returned"))
RECEIPT_GAP = Kind("receipt-gap", "{number}", severity=2, route=_FINANCE_DEPT,
                   label=Label("票据号断号", "Receipt number gap"), report_label=Label("票据跳号", "Receipt gap"),
                   count_label=Label("票据跳号", "receipt number skipped"))
RECEIPT_DOUBLE_USE = Kind("receipt-double-use", "{how}:{ref}", severity=3, route=_FINANCE,
                          label=Label("票据重复使用", "Receipt used twice"),
                          count_label=Label("票据重复使用", "receipt used twice"))
FEE_NOT_COLLECTED = Kind("fee-not-collected", "{order_number}", severity=2, route=_CS,
                         label=Label("验收后未收费", "Fee not collected after acceptance"),
                         count_label=Label("费用未收", "fee not collected"))

# -- the monthly report and the runs themselves -----------------------------------------------------------
MONTHLY_REPORT = Kind("monthly-report", route="administration", label=Label("月度统计", "Monthly tally"))
FLOW_FAILED = Kind("flow-failed", "{flow}[:{month}:{office}]", severity=3, route="ops",
                   label=Label("自动流程失败", "Scheduled flow failed"))
# a delivery channel (tag) failing for channel_alert_minutes; never routed to the failing tag itself
CHANNEL_FAILING = Kind("channel-failing", "{channel}", severity=3, route="ops",
                       label=Label("提醒通道发送失败", "Delivery channel failing"))

# -- the departments' sign-off of the monthly report (flows/signoff.py) -----------------------------------------
# drafts and reminders go to the answering party's own tag: "{party}" is its confirmer's (models/signoff/facts.py)
SIGNOFF_DRAFT = Kind("signoff-draft", "{month}:v{version}:{party}", severity=1, route="{party}",
                     label=Label("月度报表待核对确认", "Monthly report to check and confirm"))
SIGNOFF_REMINDER = Kind("signoff-reminder", "{month}:{party}:{day}", severity=1, route="{party}",
                        label=Label("月度报表尚未确认(提醒)", "Monthly report not yet confirmed (reminder)"))
SIGNOFF_OVERDUE = Kind("signoff-overdue", "{month}", severity=2, route=_CS_MANAGER,
                       label=Label("月度报表签字确认即将逾期", "Monthly report sign-off about to miss its deadline"))

# -- found by the monthly tally only (models/tally/) ------------------------------------------------------
UNPAID = Kind("unpaid", report_label=Label("已验收未收费", "Accepted but not paid"))
PAID_WITHOUT_COMPLETION = Kind("paid-without-completion", report_label=Label("收费但未完工验收", "Paid without completion"))
AMOUNT_DIFFERS = Kind("amount-differs", report_label=Label("收费金额与约定不符", "Amount differs from agreed fee"))
HANDOVER_SHORTFALL = Kind("handover-shortfall", report_label=Label("交款短缺", "Handover shortfall"))
PRIVATE_JOB = Kind("private-job", report_label=Label("私接活(无客服登记)", "Private job (no CS registration)"))
CALLBACK_MISSING = Kind("callback-missing", report_label=Label("回访缺失", "Callback missing"),
                        detail_labels=(("overdue", Label("到期未回访", "due and not done")),
                                       ("none", Label("验收后无回访记录", "no callback recorded after acceptance"))))
OUT_OF_SCOPE = Kind("out-of-scope", report_label=Label("超范围服务", "Out-of-scope work"))

#: every kind; the default routes follow this order
ALL: tuple[Kind, ...] = (
    REPLY_OVERDUE, CALLBACK_OVERDUE, REWORK_MISSING, REWORK_CALLBACK_MISSING, ORDER_OVERDUE,
    CASH_UNHANDED, CASH_SHORTFALL, CASH_OVERCOUNT, RECEIPT_UNRETURNED, RECEIPT_GAP, RECEIPT_DOUBLE_USE,
    FEE_NOT_COLLECTED, MONTHLY_REPORT, FLOW_FAILED, CHANNEL_FAILING, SIGNOFF_DRAFT, SIGNOFF_REMINDER, SIGNOFF_OVERDUE,
    UNPAID, PAID_WITHOUT_COMPLETION, AMOUNT_DIFFERS, HANDOVER_SHORTFALL, PRIVATE_JOB, CALLBACK_MISSING, OUT_OF_SCOPE,
)
BY_NAME: dict[str, Kind] = {k.name: k for k in ALL}

#: what each flow records (and so resolves when no longer found)
REPLY_KINDS: tuple[Kind, ...] = (REPLY_OVERDUE,)
CALLBACK_KINDS: tuple[Kind, ...] = (CALLBACK_OVERDUE, REWORK_CALLBACK_MISSING, REWORK_MISSING, ORDER_OVERDUE)
CASH_KINDS: tuple[Kind, ...] = (CASH_UNHANDED, CASH_SHORTFALL, CASH_OVERCOUNT, RECEIPT_UNRETURNED, RECEIPT_GAP,
                                RECEIPT_DOUBLE_USE, FEE_NOT_COLLECTED)
SIGNOFF_KINDS: tuple[Kind, ...] = (SIGNOFF_DRAFT, SIGNOFF_REMINDER, SIGNOFF_OVERDUE)
#: the monthly tally's kinds, in the order the report lists them
TALLY_KINDS: tuple[Kind, ...] = (UNPAID, PAID_WITHOUT_COMPLETION, AMOUNT_DIFFERS, CASH_UNHANDED, HANDOVER_SHORTFALL,
                                 RECEIPT_GAP, PRIVATE_JOB, CALLBACK_MISSING, REWORK_MISSING, OUT_OF_SCOPE)


@dataclass(frozen=True)
class Finding:
    """Something a check found that someone must be told about, as of the check's `as_of`.

    The common fields are typed so that the digest, the report and the CLI read them and never guess:
    `subject` is the number a person reads (order, request, receipt, handover, book or collector/day),
    `holder` who has it in hand, `due_at` when it fell due and `overdue_minutes` how late it was then,
    `amount` the money at stake. `facts` keeps what only its kind has."""

    key: str
    kind: str
    office: str | None
    level: int = 1
    severity: int = 1
    order_number: str | None = None
    department: str | None = None
    facts: dict[str, Any] = field(default_factory=dict)
    occurred_at: datetime | None = None
    subject: str | None = None
    holder: str | None = None
    due_at: datetime | None = None
    overdue_minutes: int | None = None
    amount: Decimal | None = None


def default_routes() -> dict[str, str]:
    """alert kind[:level] -> apprise tag(s), comma separated; a level's route before the kind's own."""
    routes: dict[str, str] = {}
    for k in ALL:
        for level, tags in k.level_routes:
            routes[f"{k.name}:{level}"] = tags
        if k.route is not None:
            routes[k.name] = k.route
    return routes


def labels(field: str, locale: str) -> dict[str, str]:
    """kind name -> its `label`, `report_label` or `count_label` in `locale`, for the kinds that have one."""
    return {k.name: getattr(k, field)(locale) for k in ALL if getattr(k, field) is not None}


def detail_labels() -> dict[str, Text]:
    """Report words by "kind:code": the words of a report row whose detail is a code, not ledger text."""
    return {f"{k.name}:{code}": label for k in ALL for code, label in k.detail_labels}
