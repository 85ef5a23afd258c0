"""Importing a clerk's workbook: 1,000 rows with 37 planted bad ones, through the desk rules, on both backends."""
from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from openpyxl import Workbook, load_workbook
from sqlalchemy import func, select

from models.ledger.db import session_factory, transaction
from models.imports import REJECTS_HEADER, ImportRefused, import_ledger
from models.ledger.tables import Callback, CashHandover, DepartmentReport, Receipt, ServiceRequest, Staff, WorkOrder
from tests.builders import PRICES, TZ, setup_office

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=TZ)
CATS = ("plumbing", "electrical", "cleaning", "greening")
WORKER = {"plumbing": "钱师傅", "electrical": "孙师傅", "cleaning": "吴阿姨", "greening": "吴阿姨"}
FEE = {PRICES[code][0]: PRICES[code][2] for code in PRICES}
HEADERS = {
    "登记表": ["登记号", "服务处", "登记时间", "登记人", "接待方式", "业主姓名", "住址", "联系方式", "类别",
            "报修内容", "费用", "回复时间"],
    "通知单": ["通知单号", "登记号", "施工人员", "开单时间", "约定时间", "完工时间", "验收时间"],
    "收费": ["收据号", "通知单号", "金额", "收款方式", "收款时间", "收款人"],
    "交款": ["交款单号", "交款人", "出纳", "收据号", "点收金额", "交款时间"],
    "回访": ["通知单号", "回访人", "回访结果", "回访时间"],
    "department_reports": ["reference", "department", "by", "worker", "reported_at", "address", "description",
                           "order", "fee"],
}


def when(i: int, minutes: int = 0) -> datetime:
    """Request i's moment in September 2026, plus minutes."""
    return datetime(2026, 9, 1 + i % 28, 9, 0, tzinfo=TZ) + timedelta(minutes=(i % 40) * 5 + minutes)


def stamp(moment: datetime, style: int = 0) -> str | datetime:
    """The forms clerks write times in: ISO-ish, slashes without zero padding, or a real Excel datetime."""
    local = moment.astimezone(TZ)
    if style % 3 == 0:
        return local.strftime("%Y-%m-%d %H:%M")
    if style % 3 == 1:
        return f"{local.year}/{local.month}/{local.day} {local:%H:%M}"
    return local.replace(tzinfo=None)


def category(i: int) -> str:
    return CATS[(i // 2) % 4]  # pairs of requests share a worker, so one handover covers two receipts


def ledger_workbook(path: Path) -> tuple[Path, Counter]:
    """1,000 rows over six sheets with 37 planted bad rows, none of which another row depends on."""
    book = Workbook()
    book.remove(book.active)
    sheets = {name: book.create_sheet(name) for name in HEADERS}
    for name, ws in sheets.items():
        ws.append(HEADERS[name])
    planted: Counter = Counter()

    for i in range(300):  # requests 250..299 get no order, so their bad rows strand nothing
        cat, fee, received = category(i), FEE[category(i)], when(i)
        row = [f"R-{i:04d}", "A1", stamp(received, i), "王客服", "来电" if i % 2 else "来访", f"业主{i}",
               f"{1 + i % 9}栋{1 + i % 3}单元{100 + i}", f"138{i:08d}", {"plumbing": "水", "electrical": "电",
               "cleaning": "保洁", "greening": "绿化"}[cat], "报修内容", f"¥{fee}" if i % 3 else f"{fee}元",
               stamp(received + timedelta(minutes=5), i) if i % 2 else None]
        bad = i - 250
        if 0 <= bad < 5:
            row[2], planted["bad date"] = ("2026-13-45 10:00", "昨天上午", "2026/9/31 9:00", "2026-09-03", "abc")[bad], \
                planted["bad date"] + 1
        elif 5 <= bad < 10:
            row[8], planted["out of scope"] = ("家电维修", "装修", "appliance", "renovation", "房屋修缮")[bad - 5], \
                planted["out of scope"] + 1
        elif 10 <= bad < 13:
            row[10], planted["non-numeric fee"] = ("八十元", "free", "8O")[bad - 10], planted["non-numeric fee"] + 1
        elif 13 <= bad < 16:
            row[10], planted["negative fee"] = ("-80", "¥-50.00", "-1元")[bad - 13], planted["negative fee"] + 1
        elif 16 <= bad < 18:
            row[5], planted["missing resident"] = None, planted["missing resident"] + 1
        sheets["登记表"].append(row)

    for i in range(250):  # orders 200..249 get no receipt and no callback
        cat, issued = category(i), when(i, 10)
        row = [f"WO-{i:04d}", f"R-{i:04d}", WORKER[cat], stamp(issued, i + 1), stamp(issued + timedelta(hours=1)),
               stamp(issued + timedelta(hours=2), i), stamp(issued + timedelta(hours=2, minutes=10), i + 2)]
        if 200 <= i < 205:
            row[2], planted["unknown worker"] = f"王{i}师傅", planted["unknown worker"] + 1
        elif 205 <= i < 207:
            row[4], planted["bad date"] = "明天", planted["bad date"] + 1
        sheets["通知单"].append(row)

    for i in range(200):  # receipts 0..99 are cash and handed over in pairs; 100..199 are e-payments
        cat, collected = category(i), when(i, 150)
        row = [f"{100000 + i}", f"WO-{i:04d}", FEE[cat], "现金" if i < 100 else "微信", stamp(collected, i), WORKER[cat]]
        if 150 <= i < 155:
            row[0], planted["duplicate receipt"] = f"{100000 + i - 50}", planted["duplicate receipt"] + 1
        elif 155 <= i < 157:
            row[2], planted["negative fee"] = "-200", planted["negative fee"] + 1
        elif 157 <= i < 159:
            row[2], planted["non-numeric fee"] = "二百", planted["non-numeric fee"] + 1
        sheets["收费"].append(row)

    for j in range(50):
        a, b = 2 * j, 2 * j + 1
        cat = category(a)
        handed = max(when(a, 150), when(b, 150)) + timedelta(hours=1)
        sheets["交款"].append([f"H-{j:04d}", WORKER[cat], "郑出纳", f"{100000 + a}、{100000 + b}",
                             f"¥{FEE[cat] * 2}", stamp(handed, j)])

    for i in range(150):
        row = [f"WO-{i:04d}", "王客服", "满意", stamp(when(i, 10 + 24 * 60), i)]
        if i == 148:
            row[2], planted["bad outcome"] = "还行", planted["bad outcome"] + 1
        elif i == 149:
            row[3], planted["bad date"] = "2026-09-xx 10:00", planted["bad date"] + 1
        sheets["回访"].append(row)

    for k in range(50):
        cat = category(k)
        department = "engineering" if cat in ("plumbing", "electrical") else "cleaning"
        row = [f"DR-{k:04d}", department, "赵工长" if department == "engineering" else "周主管", WORKER[cat],
               stamp(when(k, 300)), f"{1 + k % 9}栋", "维修", f"WO-{k:04d}", str(FEE[cat])]
        if k == 49:
            row[3], planted["unknown worker"] = "李四", planted["unknown worker"] + 1
        sheets["department_reports"].append(row)

    target = path / "ledger-2026-09.xlsx"
    book.save(target)
    return target, planted


@pytest.fixture
def office(engine):
    with transaction(engine) as s:
        return setup_office(s, "A1")


def run_import(engine, calendar, path, **kwargs):
    return import_ledger(session_factory(engine), path, calendar=calendar, now=NOW, **kwargs)


def counts(engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {t.__tablename__: conn.scalar(select(func.count()).select_from(t)) for t in
                (ServiceRequest, WorkOrder, Receipt, CashHandover, Callback, DepartmentReport, Staff)}


def test_a_thousand_row_workbook_keeps_963_rows_and_rejects_the_37_planted_with_reasons(engine, calendar, office,
                                                                                       tmp_path):
    path, planted = ledger_workbook(tmp_path)
    assert sum(planted.values()) == 37

    result = run_import(engine, calendar, path)

    assert (result.rows, result.kept, result.rejected, result.present) == (1000, 963, 37, 0)
    by_sheet = {s.sheet: (s.rows, s.added, s.rejected) for s in result.sheets}
    assert by_sheet == {"登记表": (300, 282, 18), "通知单": (250, 243, 7), "收费": (200, 191, 9),
                        "交款": (50, 50, 0), "回访": (150, 148, 2), "department_reports": (50, 49, 1)}
    rows = counts(engine)
    assert rows["service_requests"] == 282 and rows["work_orders"] == 243 and rows["cash_handovers"] == 50
    assert rows["department_reports"] == 49
    with engine.connect() as conn:
        used = conn.scalar(select(func.count()).select_from(Receipt).where(Receipt.state == "used"))
        handed = conn.scalar(select(func.count()).select_from(Receipt).where(Receipt.handover_id.is_not(None)))
        done = conn.scalar(select(func.count()).select_from(Callback).where(Callback.outcome == "satisfied"))
    assert (used, handed, done) == (191, 100, 148)

    codes = Counter(r.code for r in result.rejects)
    assert codes == Counter({"import_bad_time": 7, "import_date_only": 1, "out_of_scope": 5, "import_bad_amount": 5, "import_negative": 5,
                             "import_required": 2, "import_unknown_staff": 6, "import_receipt_used": 5,
                             "import_bad_choice": 1})
    every = {(r.sheet, r.line): r for r in result.rejects}
    scope = every[("登记表", 2 + 255)]
    assert scope.column == "类别"
    assert "家电维修和房屋修缮暂不列入有偿服务范围" in scope.reason("zh_CN")
    duplicate = every[("收费", 2 + 150)]
    assert duplicate.column == "收据号"
    assert duplicate.reason("en") == "Receipt 100100 was already used for work order WO-0100: a receipt is used once"
    assert every[("通知单", 2 + 200)].reason("zh_CN").startswith("员工名单里没有 王200师傅")
    assert every[("登记表", 2 + 263)].reason("en") == "An amount cannot be negative: -80"


def test_importing_the_same_workbook_again_adds_nothing(engine, calendar, office, tmp_path):
    path, _ = ledger_workbook(tmp_path)
    run_import(engine, calendar, path)
    before = counts(engine)

    again = run_import(engine, calendar, path)

    assert (again.kept, again.present, again.rejected) == (0, 963, 37)
    assert counts(engine) == before


def test_rejected_rows_land_next_to_the_file_and_once_corrected_import_cleanly(engine, calendar, office, tmp_path):
    path, _ = ledger_workbook(tmp_path)
    result = run_import(engine, calendar, path)
    assert result.rejects_file == tmp_path / "ledger-2026-09.rejects.xlsx"

    book = load_workbook(result.rejects_file)
    assert sum(ws.max_row - 1 for ws in book.worksheets) == 37
    ws = book["登记表"]
    header = [c.value for c in ws[1]]
    assert header[-1] == REJECTS_HEADER and header[:-1] == HEADERS["登记表"]
    for row in ws.iter_rows(min_row=2):  # the clerk fixes the requests sheet: dates, categories, fees, names
        cells = {h: c for h, c in zip(header, row)}
        cells["登记时间"].value = "2026-09-20 10:00"
        cells["回复时间"].value = cells["回复时间"].value and "2026-09-20 10:05"
        cells["类别"].value = "水"
        cells["费用"].value = "80"
        cells["业主姓名"].value = cells["业主姓名"].value or "补登业主"
    for name in [n for n in book.sheetnames if n != "登记表"]:
        del book[name]
    fixed = tmp_path / "fixed.xlsx"
    book.save(fixed)

    second = run_import(engine, calendar, fixed)

    assert (second.kept, second.rejected) == (18, 0)
    assert counts(engine)["service_requests"] == 300


def test_a_sheet_missing_a_required_column_is_refused_whole_and_nothing_is_kept(engine, calendar, office, tmp_path):
    path, _ = ledger_workbook(tmp_path)
    book = load_workbook(path)
    book["回访"].delete_cols(3)  # 回访结果
    book.save(path)
    before = counts(engine)

    with pytest.raises(ImportRefused) as refused:
        run_import(engine, calendar, path)

    assert refused.value.message("zh_CN").startswith("工作表 回访 缺少必填列:回访结果。整个文件未导入(0 行)")
    assert counts(engine) == before


def test_a_dry_run_reports_the_same_counts_and_writes_nothing(engine, calendar, office, tmp_path):
    path, _ = ledger_workbook(tmp_path)
    before = counts(engine)

    result = run_import(engine, calendar, path, dry_run=True)

    assert (result.kept, result.rejected) == (963, 37)
    assert result.rejects_file is None and not (tmp_path / "ledger-2026-09.rejects.xlsx").exists()
    assert counts(engine) == before


class Crash(Exception):
    """The power goes out in the middle of an import."""


def test_a_crash_mid_import_leaves_whole_batches_and_the_rerun_finishes(engine, calendar, office, tmp_path):
    path, _ = ledger_workbook(tmp_path)
    seen = 0

    def power_cut() -> None:
        nonlocal seen
        seen += 1
        if seen == 130:
            raise Crash

    with pytest.raises(Crash):
        run_import(engine, calendar, path, batch_size=50, on_row=power_cut)
    assert counts(engine)["service_requests"] == 100  # two whole batches of 50, none of the third

    rerun = run_import(engine, calendar, path, batch_size=50)

    assert (rerun.present, rerun.kept, rerun.rejected) == (100, 863, 37)
    assert counts(engine)["service_requests"] == 282


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    path.write_text("\n".join(",".join(r) for r in rows) + "\n", encoding="utf-8-sig")
    return path


def test_staff_then_an_unsatisfied_callback_then_the_reworks_completion_come_in_as_separate_files(
        engine, calendar, office, tmp_path):
    staff = write_csv(tmp_path / "员工名单.csv", [["工号", "姓名", "部门", "岗位"],
                                                ["A1-PL9", "蒋师傅", "工程部", "师傅"],
                                                ["A1-XX1", "无名", "保安部", "保安"]])
    first = write_csv(tmp_path / "ledger.csv", [
        ["登记号", "登记时间", "登记人", "接待方式", "业主姓名", "住址", "联系方式", "类别", "报修内容", "费用"],
        ["R-1", "2026/10/12 9:00", "A1-CS1", "来访", "刘女士", "3栋501", "13812345678", "水", "漏水", "80"]])
    order = write_csv(tmp_path / "通知单.csv", [
        ["通知单号", "登记号", "施工人员", "开单时间", "约定时间", "完工时间", "验收时间"],
        ["WO-1", "R-1", "蒋师傅", "2026/10/12 9:10", "2026/10/12 10:00", "2026/10/12 10:40", "2026/10/12 10:50"]])
    callback = write_csv(tmp_path / "回访记录.csv", [["通知单号", "回访人", "回访结果", "回访时间", "备注"],
                                                 ["WO-1", "王客服", "不满意", "2026/10/13 10:00", "还在滴水"]])
    rework = write_csv(tmp_path / "返修.csv", [["通知单号", "登记号", "施工人员", "开单时间", "约定时间", "完工时间", "验收时间"],
                                             ["WO-1-R1", "R-1", "蒋师傅", "2026/10/13 10:00", "2026/10/14 10:00",
                                              "2026/10/14 9:30", "2026/10/14 9:40"]])

    staff_result = run_import(engine, calendar, staff)
    for path, kind in ((first, "requests"), (order, None), (callback, None), (rework, "orders")):
        result = run_import(engine, calendar, path, kind=kind)
        assert (result.kept, result.rejected) == (1, 0), [r.reason("en") for r in result.rejects]

    assert (staff_result.kept, [r.column for r in staff_result.rejects]) == (1, ["部门"])
    with engine.connect() as conn:
        orders = conn.execute(select(WorkOrder.number, WorkOrder.fee, WorkOrder.accepted_at.is_not(None))
                              .order_by(WorkOrder.number)).all()
        owed = conn.scalar(select(func.count()).select_from(Callback).where(Callback.done_at.is_(None)))
    assert orders == [("WO-1", Decimal("80.00"), True), ("WO-1-R1", Decimal("0.00"), True)]
    assert owed == 1  # the rework's own callback, opened by its acceptance
