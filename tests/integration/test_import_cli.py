"""`bianmin import` from the command line: a GBK CSV, a refused file (exit 2), the template, a dry run."""
from __future__ import annotations

import csv
import json

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from models.imports import KINDS, ORDER, REJECTS_HEADER
from models.ledger.tables import ServiceRequest
from tests.cli import office_cli

HEADER = "登记号,登记时间,登记人,接待方式,业主姓名,住址,联系方式,类别,报修内容,费用\n"


@pytest.fixture
def cli(settings, engine):
    with office_cli(settings, engine, locale="zh_CN") as invoke:
        yield invoke


def requests_kept(engine) -> int:
    with engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(ServiceRequest))


def gbk_requests(path, rows: int = 10) -> None:
    lines = [f"R-{i:03d},2026/10/{8 + i % 20} 9:{10 + i:02d},王客服,来电,业主{i},{i}栋101,1380000{i:04d},水,水管漏水,￥80\n"
             for i in range(rows)]
    lines[3] = lines[3].replace(",水,", ",家电维修,")
    lines[6] = lines[6].replace("2026/10/14 9:16", "10月14日上午")
    path.write_bytes((HEADER + "".join(lines)).encode("gbk"))


def test_a_gbk_csv_saved_by_excel_is_imported_and_its_two_bad_rows_returned_with_reasons(cli, engine, tmp_path):
    path = tmp_path / "2026年10月登记表.csv"
    gbk_requests(path)

    result = cli("import", path, "--json")

    assert result.exit_code == 1, result.stderr
    data = json.loads(result.stdout)
    assert (data["kept"], data["rejected"], data["rejects_file"]) == (8, 2, str(tmp_path / "2026年10月登记表.rejects.csv"))
    assert [(r["line"], r["column"]) for r in data["rejects"]] == [(5, "类别"), (8, "登记时间")]
    assert "暂不列入有偿服务范围" in data["rejects"][0]["reason"]
    assert data["rejects"][1]["reason"].startswith("时间看不懂:10月14日上午")
    assert requests_kept(engine) == 8
    with open(data["rejects_file"], encoding="utf-8-sig", newline="") as fh:
        rejected = list(csv.reader(fh))
    assert rejected[0] == [*HEADER.strip().split(","), REJECTS_HEADER]
    assert [row[0] for row in rejected[1:]] == ["R-003", "R-006"]


def test_importing_the_csv_again_adds_nothing(cli, engine, tmp_path):
    path = tmp_path / "requests.csv"
    gbk_requests(path)
    cli("import", path)

    again = json.loads(cli("import", path, "--json").stdout)

    assert (again["kept"], again["already_present"], again["rejected"]) == (0, 8, 2)
    assert requests_kept(engine) == 8


def test_a_file_missing_a_required_column_is_refused_with_one_message_and_exit_2(cli, engine, tmp_path):
    path = tmp_path / "requests.csv"
    path.write_text(HEADER.replace("住址,", "") + "R-1,2026-10-08 09:00,王客服,来电,刘女士,138,水,漏水,80\n",
                    encoding="utf-8")

    result = cli("import", path)

    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        "工作表 requests 缺少必填列:住址。整个文件未导入(0 行),请补上这些列后重新导入。"]
    assert requests_kept(engine) == 0
    assert not (tmp_path / "requests.rejects.csv").exists()


def test_a_csv_whose_kind_cannot_be_told_asks_for_kind(cli, tmp_path):
    path = tmp_path / "export.csv"
    path.write_text(HEADER, encoding="utf-8")

    result = cli("import", path)

    assert result.exit_code == 2 and "--kind" in result.stderr
    assert cli("import", path, "--kind", "requests", "--json").exit_code == 0


def test_the_template_has_a_sheet_per_kind_with_bilingual_headers_and_imports_as_nothing(cli, tmp_path):
    path = tmp_path / "docs" / "import-template.xlsx"

    assert cli("import", "--template", path).exit_code == 0

    book = load_workbook(path)
    assert book.sheetnames == ["说明 README", *(f"{KINDS[k].zh} {k}" for k in ORDER)]
    headers = [c.value for c in book["登记表 requests"][1]]
    assert headers[:3] == ["登记号 number *", "服务处 office", "小区 community"]
    result = json.loads(cli("import", path, "--json").stdout)
    assert (result["rows"], result["rejected"], result["ignored_sheets"]) == (0, 0, ["说明 README"])


def test_a_dry_run_reports_what_would_happen_and_writes_nothing(cli, engine, tmp_path):
    path = tmp_path / "requests.csv"
    gbk_requests(path)

    data = json.loads(cli("import", path, "--dry-run", "--json").stdout)

    assert (data["dry_run"], data["kept"], data["rejected"], data["rejects_file"]) == (True, 8, 2, None)
    assert requests_kept(engine) == 0


def write_csv(path, rows: list[list[str]]):
    path.write_text("\n".join(",".join(r) for r in rows) + "\n", encoding="utf-8-sig")
    return path


def test_an_imported_unsatisfied_callback_schedules_its_rework_by_the_rework_due_hours_setting(
        settings, engine, tmp_path):
    from datetime import datetime, timedelta

    from models.ledger.tables import WorkOrder
    from tests.builders import TZ

    files = [
        write_csv(tmp_path / "登记表.csv", [
            ["登记号", "登记时间", "登记人", "接待方式", "业主姓名", "住址", "联系方式", "类别", "报修内容", "费用"],
            ["R-1", "2026/10/12 9:00", "A1-CS1", "来访", "刘女士", "3栋501", "13812345678", "水", "漏水", "80"]]),
        write_csv(tmp_path / "通知单.csv", [
            ["通知单号", "登记号", "施工人员", "开单时间", "约定时间", "完工时间", "验收时间"],
            ["WO-1", "R-1", "A1-PL1", "2026/10/12 9:10", "2026/10/12 10:00", "2026/10/12 10:40",
             "2026/10/12 10:50"]]),
        write_csv(tmp_path / "回访记录.csv", [["通知单号", "回访人", "回访结果", "回访时间", "备注"],
                                          ["WO-1", "A1-CS1", "不满意", "2026/10/13 10:00", "还在滴水"]])]
    with office_cli(settings, engine, locale="en", rework_due_hours=48) as invoke:
        for path in files:
            done = invoke("import", path)
            assert done.exit_code == 0, done.output

    with engine.connect() as conn:
        scheduled = conn.scalar(select(WorkOrder.scheduled_for).where(WorkOrder.rework_of_id.is_not(None)))
    called = datetime(2026, 10, 13, 10, 0, tzinfo=TZ)
    assert scheduled.astimezone(TZ) == called + timedelta(hours=48)
