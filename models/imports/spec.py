"""The column table: per kind of sheet, its columns, how clerks head them, which are required, how each
value is read; and the import template made from it."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models.texts import Text

# -- the column table ----------------------------------------------------------------------------------------
# value readers: text, time (a moment; a date alone is refused), when (a date alone means that day, 00:00),
# money, and choice tables below
CHOICES: dict[str, dict[str, str]] = {
    "channel": {"walk_in": "walk_in", "walk-in": "walk_in", "walkin": "walk_in", "来访": "walk_in",
                "上门": "walk_in", "现场": "walk_in", "phone": "phone", "来电": "phone", "电话": "phone"},
    "category": {"plumbing": "plumbing", "水": "plumbing", "水暖": "plumbing", "给排水": "plumbing",
                 "管道": "plumbing", "水维修": "plumbing", "electrical": "electrical", "电": "electrical",
                 "电工": "electrical", "电维修": "electrical", "cleaning": "cleaning", "保洁": "cleaning",
                 "清洁": "cleaning", "greening": "greening", "绿化": "greening",
                 "appliance": "appliance", "家电": "appliance", "家电维修": "appliance",
                 "renovation": "renovation", "房屋修缮": "renovation", "修缮": "renovation", "装修": "renovation"},
    "department": {"cs": "cs", "客服部": "cs", "客服": "cs", "客服中心": "cs", "engineering": "engineering",
                   "工程部": "engineering", "工程": "engineering", "cleaning": "cleaning", "保洁部": "cleaning",
                   "保洁": "cleaning", "环境部": "cleaning", "environment": "cleaning", "finance": "finance",
                   "财务部": "finance", "财务": "finance", "administration": "administration",
                   "行政部": "administration", "行政": "administration"},
    "role": {"clerk": "clerk", "客服": "clerk", "文员": "clerk", "职员": "clerk", "supervisor": "supervisor",
             "主管": "supervisor", "manager": "manager", "经理": "manager", "worker": "worker", "师傅": "worker",
             "维修工": "worker", "保洁员": "worker", "员工": "worker", "cashier": "cashier", "出纳": "cashier"},
    "method": {"cash": "cash", "现金": "cash", "wechat": "wechat", "微信": "wechat", "alipay": "alipay",
               "支付宝": "alipay", "card": "card", "刷卡": "card", "银行卡": "card"},
    "outcome": {"satisfied": "satisfied", "满意": "satisfied", "unsatisfied": "unsatisfied", "不满意": "unsatisfied",
                "unreachable": "unreachable", "联系不上": "unreachable", "未接通": "unreachable",
                "无人接听": "unreachable"},
}


@dataclass(frozen=True)
class Column:
    """One column of a kind: its field, the headers clerks use for it (Chinese first, English second)."""

    field: str
    headers: tuple[str, ...]
    required: bool = False
    read: str = "text"

    @property
    def label(self) -> str:
        return f"{self.headers[0]} {self.headers[1]}"

    @property
    def title(self) -> Text:
        """The column as a refusal names it: its Chinese header in zh_CN, its English one in en."""
        return Text(self.headers[0], self.headers[1])


@dataclass(frozen=True)
class Kind:
    """One kind of ledger sheet: what it is called (sheet or file names) and its columns."""

    name: str
    zh: str
    names: tuple[str, ...]
    columns: tuple[Column, ...]

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.field == name)


C = Column
KINDS: dict[str, Kind] = {k.name: k for k in (
    Kind("staff", "员工", ("staff", "员工", "员工名单", "人员"), (
        C("code", ("工号", "code", "员工编号", "staff_code"), True),
        C("name", ("姓名", "name"), True),
        C("office", ("服务处", "office")),
        C("department", ("部门", "department"), True, "department"),
        C("role", ("岗位", "role", "职务"), True, "role"),
    )),
    Kind("requests", "登记表", ("requests", "登记表", "有偿服务登记表", "登记"), (
        C("number", ("登记号", "number", "登记编号", "request"), True),
        C("office", ("服务处", "office")),
        C("community", ("小区", "community")),
        C("received_at", ("登记时间", "received_at", "受理时间", "time"), True, "time"),
        C("by", ("登记人", "clerk", "接待人", "received_by", "by"), True),
        C("channel", ("接待方式", "channel", "方式"), True, "channel"),
        C("resident", ("业主姓名", "resident", "业主", "姓名"), True),
        C("address", ("住址", "address", "地址"), True),
        C("phone", ("联系方式", "phone", "电话", "联系电话"), True),
        C("category", ("类别", "category", "服务类别"), True, "category"),
        C("description", ("报修内容", "description", "服务内容", "内容"), True),
        C("preferred", ("方便维修的时间", "preferred", "方便时间", "预约时间"), False, "when"),
        C("fee", ("费用", "fee", "约定费用"), False, "money"),
        C("price", ("价目", "price", "价目编码")),
        C("expected_result", ("效果", "expected_result", "预期效果")),
        C("replied_at", ("回复时间", "replied_at"), False, "time"),
        C("replied_by", ("回复人", "replied_by")),
    )),
    Kind("orders", "通知单", ("orders", "通知单", "有偿服务通知单", "work_orders"), (
        C("number", ("通知单号", "number", "单号", "order"), True),
        C("request", ("登记号", "request"), True),
        C("by", ("开单人", "issued_by", "by")),
        C("worker", ("施工人员", "worker", "维修人员", "师傅"), True),
        C("issued_at", ("开单时间", "issued_at"), True, "time"),
        C("scheduled", ("约定时间", "scheduled", "上门时间"), True, "time"),
        C("completed_at", ("完工时间", "completed_at"), False, "time"),
        C("accepted_at", ("验收时间", "accepted_at"), False, "time"),
        C("signed_by", ("验收签字", "signed_by", "业主签字")),
    )),
    Kind("receipts", "收费", ("receipts", "收费", "收据", "票据", "收费记录"), (
        C("number", ("收据号", "receipt", "票据号", "number"), True),
        C("order", ("通知单号", "order"), True),
        C("amount", ("金额", "amount", "实收金额", "费用", "fee"), True, "money"),
        C("method", ("收款方式", "method", "付款方式"), False, "method"),
        C("collected_at", ("收款时间", "collected_at"), True, "time"),
        C("collected_by", ("收款人", "collected_by", "by"), True),
        C("reason", ("差额说明", "reason", "说明")),
    )),
    Kind("handovers", "交款", ("handovers", "交款", "交款单", "现金上交"), (
        C("number", ("交款单号", "handover", "number"), True),
        C("by", ("交款人", "handed_by", "by"), True),
        C("cashier", ("出纳", "cashier", "接收人"), True),
        C("receipts", ("收据号", "receipts", "票据号"), True),
        C("counted", ("点收金额", "counted", "实收金额"), True, "money"),
        C("handed_at", ("交款时间", "handed_at"), True, "time"),
    )),
    Kind("callbacks", "回访", ("callbacks", "回访", "回访记录"), (
        C("order", ("通知单号", "order"), True),
        C("by", ("回访人", "by"), True),
        C("outcome", ("回访结果", "outcome", "结果"), True, "outcome"),
        C("at", ("回访时间", "done_at", "at"), True, "time"),
        C("note", ("备注", "note", "回访意见")),
    )),
    Kind("department_reports", "部门记录", ("department_reports", "部门记录", "工作记录", "部门台账"), (
        C("reference", ("记录编号", "reference", "编号"), True),
        C("department", ("部门", "department"), True, "department"),
        C("by", ("记录人", "reported_by", "by"), True),
        C("worker", ("施工人员", "worker", "师傅"), True),
        C("reported_at", ("记录时间", "reported_at", "日期时间"), True, "time"),
        C("address", ("住址", "address", "地址"), True),
        C("description", ("工作内容", "description", "内容"), True),
        C("order", ("通知单号", "order")),
        C("fee", ("费用", "fee"), False, "money"),
    )),
)}
# dependencies first: a row may refer to anything in an earlier kind, in the file or in the ledger
ORDER = ("staff", "requests", "orders", "receipts", "handovers", "callbacks", "department_reports")
REJECTS_HEADER = "退回原因 rejected_because"
_SPLIT = re.compile(r"[\s/|()()\[\]【】*:：]+")


def _norm(text: str) -> str:
    return text.strip().lower().replace(" ", "").replace("*", "")


def map_headers(kind: Kind, headers: list[Any]) -> dict[str, int]:
    """field -> column index for the headers a row of a sheet carries; unknown headers are ignored."""
    alias = {_norm(h): c.field for c in kind.columns for h in c.headers}
    found: dict[str, int] = {}
    for index, header in enumerate(headers):
        if header is None:
            continue
        text = str(header)
        candidates = [_norm(text)] + [_norm(t) for t in _SPLIT.split(text) if t.strip()]
        for token in candidates:
            fld = alias.get(token)
            if fld is not None and fld not in found:
                found[fld] = index
                break
    return found


def kind_named(name: str) -> Kind | None:
    """The kind a sheet or file name refers to ('登记表', 'orders', '2026-10 回访记录.csv'), if any."""
    text = _norm(name)
    pairs = sorted(((_norm(n), k) for k in KINDS.values() for n in k.names), key=lambda p: -len(p[0]))
    for alias, kind in pairs:
        if text == alias:
            return kind
    for alias, kind in pairs:
        if alias in text:
            return kind
    return None


def write_template(path: Path | str) -> Path:
    """The import template: one sheet per kind with bilingual headers (required ones marked *), and a README sheet."""
    from openpyxl import Workbook
    from openpyxl.comments import Comment
    from openpyxl.styles import Font

    path = Path(path)
    book = Workbook()
    readme = book.active
    readme.title = "说明 README"
    lines = [
        "bianmin 台账导入模板 / ledger import template",
        "每个工作表一类台账;表头可用中文或英文;带 * 的列必填。/ One sheet per kind; headers in Chinese or English; "
        "columns marked * are required.",
        "时间:2026-10-03 14:05 或 2026/10/3 14:05 或 Excel 日期。/ Times: 2026-10-03 14:05, 2026/10/3 14:05 or Excel dates.",
        "金额:80、80.00、¥80、80元。/ Amounts: 80, 80.00, ¥80, 80元.",
        "员工可填工号或姓名。/ Staff: code or name.",
        "本页不会被导入。/ This sheet is not imported.",
        "",
    ]
    for kind_name in ORDER:
        kind = KINDS[kind_name]
        lines.append(f"[{kind.zh} {kind.name}]")
        for c in kind.columns:
            choices = ""
            if c.read in CHOICES:
                choices = " = " + "、".join(k for k in CHOICES[c.read] if not k.isascii())
                choices += " / " + ", ".join(dict.fromkeys(CHOICES[c.read].values()))
            lines.append(f"  {'*' if c.required else ' '} {c.label}  ({c.read}){choices}")
    for text in lines:
        readme.append([text])
    bold = Font(bold=True)
    for kind_name in ORDER:
        kind = KINDS[kind_name]
        ws = book.create_sheet(f"{kind.zh} {kind.name}")
        ws.append([f"{c.label}{' *' if c.required else ''}" for c in kind.columns])
        for cell, c in zip(ws[1], kind.columns):
            cell.font = bold
            cell.comment = Comment(f"{'必填 required' if c.required else '选填 optional'}; {c.read}", "bianmin")
            ws.column_dimensions[cell.column_letter].width = max(12, len(c.label) + 4)
    path.parent.mkdir(parents=True, exist_ok=True)
    book.save(path)
    return path
