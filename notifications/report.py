"""What the monthly report calls things, and where its files may go.

The labels (metrics, words, finding kinds, departments, offices) are shared by the workbook
(notifications.report_workbook), the HTML summary (notifications.report_summary) and the send
(notifications.report_send); an office's folder name is checked here before any path is built from it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from models import findings as catalogue
from models.ledger.codes import OFFICE_CODE_PATTERN, is_office_code
from models.reconcile import GROUP
from models.ledger.tables import DEPARTMENT_NAMES

# -- labels --------------------------------------------------------------------------------------

KIND_LABELS = {k.name: (k.report_label.zh_CN, k.report_label.en) for k in catalogue.TALLY_KINDS if k.report_label}

# (key, zh, en, format): format is one of int, money, rate
METRICS = (
    ("orders", "派单数", "Orders", "int"),
    ("completed", "完工数", "Completed", "int"),
    ("on_time_rate", "按时完工率", "On-time rate", "rate"),
    ("accepted", "验收数", "Accepted", "int"),
    ("receipts", "收费票据数", "Receipts", "int"),
    ("revenue_cash", "现金收入", "Revenue cash", "money"),
    ("revenue_electronic", "电子支付收入", "Revenue electronic", "money"),
    ("revenue", "收入合计", "Revenue total", "money"),
    ("average_fee", "平均收费", "Average fee", "money"),
    ("phone_requests", "来电数", "Phone requests", "int"),
    ("reply_rate", "10分钟回复率", "Replied in 10 min", "rate"),
    ("callbacks_due", "应回访数", "Callbacks due", "int"),
    ("callback_on_time_rate", "按时回访率", "Callback on-time rate", "rate"),
    ("satisfaction_rate", "满意率", "Satisfaction rate", "rate"),
    ("rework", "返修数", "Rework", "int"),
    ("rework_rate", "返修率", "Rework rate", "rate"),
    ("findings", "问题数", "Findings", "int"),
)

WORDS = {
    "summary": ("汇总", "Summary"),
    "departments": ("部门", "Departments"),
    "workers": ("人员", "Workers"),
    "findings": ("问题清单", "Findings"),
    "callbacks": ("回访与返修", "Callbacks & rework"),
    "changes": ("自v{version}以来的变化", "Changes since v{version}"),
    "month": ("月份", "Month"),
    "office": ("服务处", "Office"),
    "group": ("全集团", "Group"),
    "version": ("版本", "Version"),
    "metric": ("指标", "Metric"),
    "this_month": ("本月", "This month"),
    "previous_month": ("上月", "Previous month"),
    "change": ("变化", "Change"),
    "department": ("部门", "Department"),
    "worker_code": ("工号", "Staff code"),
    "worker": ("姓名", "Name"),
    "kind": ("类别", "Kind"),
    "count": ("数量", "Count"),
    "order": ("通知单号", "Order"),
    "reference": ("单据", "Reference"),
    "occurred_at": ("发生时间", "When"),
    "amount": ("金额", "Amount"),
    "expected": ("应收/申报", "Expected"),
    "detail": ("说明", "Detail"),
    "rework_of": ("原单号", "Rework of"),
    "due_at": ("应回访时间", "Due"),
    "done_at": ("回访时间", "Done"),
    "outcome": ("结果", "Outcome"),
    "on_time": ("按时", "On time"),
    "rework_order": ("返修单号", "Rework order"),
    "yes": ("是", "yes"),
    "no": ("否", "no"),
    "total": ("合计", "Total"),
    "section": ("部分", "Section"),
    "item": ("项目", "Item"),
    "before": ("之前", "Before"),
    "after": ("之后", "After"),
    "added": ("新增", "added"),
    "removed": ("已消除", "removed"),
    "no_changes": ("无变化", "no changes"),
    **catalogue.detail_labels(),
    "satisfied": ("满意", "satisfied"),
    "unsatisfied": ("不满意", "unsatisfied"),
    "unreachable": ("未联系上", "unreachable"),
}


def word(key: str, locale: str, **params: Any) -> str:
    zh, en = WORDS[key]
    return (en if locale == "en" else zh).format(**params)


def kind_label(kind: str, locale: str) -> str:
    zh, en = KIND_LABELS[kind]
    return en if locale == "en" else zh


def department_label(code: str | None, locale: str) -> str:
    if code is None:
        return ""
    zh, en = DEPARTMENT_NAMES.get(code, (code, code))
    return en if locale == "en" else zh


def office_label(office: str, locale: str) -> str:
    return word("group", locale) if office == GROUP else office


class UnsafeReportPath(ValueError):
    """A report file would not land inside the reports folder: nothing of that report is written.

    Raised for an office code from before the code pattern (`models.ledger.codes`), still in an old ledger, and for
    any path that resolves outside the folder (a `..`, an absolute part, a symlink pointing away).
    """

    def __init__(self, office: str | None, path: Path | str, root: Path | str) -> None:
        self.office, self.path, self.root = office, str(path), str(root)
        super().__init__(self.message("en"))

    def message(self, locale: str) -> str:
        if self.office is not None:
            return (f"office code {self.office!r} cannot name a reports folder ({OFFICE_CODE_PATTERN}): its report "
                    f"was not written; correct the code in the ledger" if locale == "en" else
                    f"服务处代码 {self.office!r} 不能用作报表文件夹名({OFFICE_CODE_PATTERN}):该服务处的报表未生成,"
                    f"请在台账中改正代码")
        return (f"refused to write {self.path!r}: it is outside the reports folder {self.root}" if locale == "en"
                else f"拒绝写入 {self.path!r}:不在报表文件夹 {self.root} 之内")


def office_dir(office: str) -> str:
    """The folder name of an office's reports; the group's is `group` ("*" is no folder name).

    A code that is not a well-formed office code is refused here, before any path is built from it.
    """
    if office == GROUP:
        return "group"
    if not is_office_code(office):
        raise UnsafeReportPath(office, office, "")
    return office


def confined(root: Path, path: Path) -> Path:
    """`path`, once its resolved form is checked to be inside `root`'s; else UnsafeReportPath."""
    if not path.resolve().is_relative_to(root.resolve()):
        raise UnsafeReportPath(None, path, root)
    return path
