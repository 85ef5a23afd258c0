"""Reading clerks' cells: times, amounts, headers in Chinese or English, sheet names, CSV encodings."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from openpyxl import Workbook

from models.imports.cells import RowProblem, read_money, read_row, read_time
from models.imports.readers import _calamine_sheets, _csv_row_count, _openpyxl_sheets, detect_encoding
from models.imports.spec import KINDS, kind_named, map_headers

TZ = ZoneInfo("Asia/Shanghai")
FIVE_PAST_TWO = datetime(2026, 10, 3, 14, 5, tzinfo=TZ)


@pytest.mark.parametrize("cell", ["2026-10-03 14:05", "2026/10/3 14:05", "2026-10-03T14:05", "2026年10月3日 14:05",
                                  "  2026/10/03  14:05 ", datetime(2026, 10, 3, 14, 5), 46298 + (14 * 60 + 5) / 1440,
                                  str(46298 + (14 * 60 + 5) / 1440)])
def test_the_common_local_forms_of_a_time_are_read_as_shanghai_time(cell):
    assert abs(read_time(cell, TZ) - FIVE_PAST_TWO).total_seconds() < 1


@pytest.mark.parametrize("cell", ["2026-13-45 10:00", "昨天", "2026-10-03", "46298", "12", "2026/9/31 9:00"])
def test_a_time_that_is_not_a_moment_is_refused(cell):
    with pytest.raises(ValueError):
        read_time(cell, TZ)


def test_a_preferred_day_without_a_time_is_taken_as_that_day():
    assert read_time("2026/10/3", TZ, date_alone=True) == datetime(2026, 10, 3, tzinfo=TZ)


@pytest.mark.parametrize("cell, amount", [("80", "80.00"), ("¥80.5", "80.50"), ("80元", "80.00"), ("￥1,200", "1200.00"),
                                          (80.1, "80.10"), (200, "200.00"), ("-50", "-50.00")])
def test_amounts_are_read_with_or_without_yuan_signs_and_exactly(cell, amount):
    assert read_money(cell) == Decimal(amount)


def test_a_negative_fee_is_refused_in_the_fee_column_with_the_clerks_words():
    kind = KINDS["requests"]
    headers = ["登记号", "登记时间", "登记人", "接待方式", "业主姓名", "住址", "联系方式", "类别", "报修内容", "费用"]
    cells = ("R-1", "2026-10-03 14:05", "王客服", "来电", "刘女士", "3栋501", 13812345678.0, "水", "漏水", "¥-80")
    with pytest.raises(RowProblem) as problem:
        read_row(kind, map_headers(kind, headers), cells, TZ)
    assert problem.value.field == "fee"
    assert problem.value.error.message("zh_CN") == "金额不能为负数:¥-80"


def test_a_phone_number_typed_into_a_numeric_cell_keeps_its_digits():
    kind = KINDS["requests"]
    headers = ["登记号", "登记时间", "登记人", "接待方式", "业主姓名", "住址", "联系方式", "类别", "报修内容"]
    cells = ("R-1", "2026-10-03 14:05", "王客服", "来电", "刘女士", "3栋501", 13812345678.0, "电", "跳闸")
    values = read_row(kind, map_headers(kind, headers), cells, TZ)
    assert (values["phone"], values["category"], values["channel"]) == ("13812345678", "electrical", "phone")


def test_headers_are_recognised_in_chinese_english_or_both():
    kind = KINDS["receipts"]
    found = map_headers(kind, ["收据号", "order", "金额 amount *", "Collected_At", None, "收款人", "备注栏"])
    assert found == {"number": 0, "order": 1, "amount": 2, "collected_at": 3, "collected_by": 5}


@pytest.mark.parametrize("name, kind", [("登记表", "requests"), ("有偿服务通知单", "orders"), ("2026年10月回访记录", "callbacks"),
                                        ("receipts", "receipts"), ("交款 handovers", "handovers"),
                                        ("department_reports", "department_reports"), ("员工名单", "staff")])
def test_a_sheet_or_file_name_says_which_ledger_it_holds(name, kind):
    assert kind_named(name).name == kind


def test_a_readme_sheet_is_no_ledger():
    assert kind_named("说明 README") is None


@pytest.mark.parametrize("encoding", ["gbk", "utf-8", "utf-8-sig"])
def test_csv_encoding_is_detected_so_chinese_headers_read_back(tmp_path, encoding):
    path = tmp_path / "requests.csv"
    path.write_bytes("登记号,业主姓名\nR-1,刘女士\n".encode(encoding))
    detected = detect_encoding(path)
    assert path.read_text(encoding=detected).splitlines()[0] == "登记号,业主姓名"


@pytest.mark.parametrize("cell", ["2026-10-03", "2026/10/3", "2026年10月3日"])
def test_a_day_without_a_time_is_refused_saying_the_time_is_missing(cell):
    kind = KINDS["callbacks"]
    cells = ("WO-1", "王客服", "满意", cell)
    with pytest.raises(RowProblem) as problem:
        read_row(kind, map_headers(kind, ["通知单号", "回访人", "回访结果", "回访时间"]), cells, TZ)
    assert (problem.value.field, problem.value.error.code) == ("at", "import_date_only")
    assert problem.value.error.message("zh_CN").startswith(f"只有日期没有时间:{cell}")


@pytest.mark.parametrize("text", ["2026-10-03 14:05", "2026-1-3 4:05", "2026/10/3 14:05:30", "2026-10-03T14:05:07",
                                  "2026/2/29 10:00", "2024/2/29 10:00", "2026-10-03 24:00", "2026-00-03 10:00",
                                  "2026-10-03 10:61", "2026/10/03T14:05", "2026-10/03 14:05", "20261-10-03 14:05",
                                  "2026-10-03T14:05", "2026-02-30 10:00", "２０２６-10-03 14:05", "2026-10-03 14:5"])
def test_the_quick_reading_of_the_usual_forms_agrees_with_the_formats_it_stands_for(text):
    formats = ("%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y/%m/%d %H:%M:%S", "%Y-%m-%dT%H:%M",
               "%Y-%m-%dT%H:%M:%S")
    expected = None
    for fmt in formats:
        try:
            expected = datetime.strptime(text, fmt).replace(tzinfo=TZ)
            break
        except ValueError:
            continue
    if expected is None:
        with pytest.raises(ValueError):
            read_time(text, TZ)
    else:
        assert read_time(text, TZ) == expected


def varied_workbook(path):
    """What clerks' workbooks hold: a title above the header, blank leading columns, every kind of cell."""
    book = Workbook()
    ws = book.active
    ws.title = "有偿服务登记表"
    ws["B1"] = "2026年10月 有偿服务登记表"
    headers = ["登记号", "登记时间", "登记人", "接待方式", "业主姓名", "住址", "联系方式", "类别", "报修内容", "费用",
               "方便维修的时间"]
    for col, header in enumerate(headers, start=2):
        ws.cell(row=2, column=col, value=header)
    rows = [["R-1", datetime(2026, 10, 3, 14, 5), "王客服", "来电", "刘女士", "3栋501", 13812345678, "水", "漏水", 80,
             datetime(2026, 10, 4)],
            ["R-2", "2026/10/3 9:00", "A1-CS1", "来访", " 张先生 ", "5栋", "13900001111", "电", "换开关", 80.5, None],
            ["R-3", 46298.5, None, True, "", "6栋", 1.0, "保洁", "保洁", "¥120", "2026-10-05"],
            [None] * len(headers),
            ["R-4", datetime(2026, 10, 3, 14, 5, 30), "王客服", "来电", "李", "7栋", 0, "绿化", "修剪", -5, 3]]
    for r, row in enumerate(rows, start=3):
        for col, value in enumerate(row, start=2):
            if value is not None:
                ws.cell(row=r, column=col, value=value)
    book.create_sheet("说明 README").append(["本页不会被导入"])
    staff = book.create_sheet("员工")
    staff.sheet_state = "hidden"
    staff.append(["工号", "姓名", "部门", "岗位"])
    staff.append(["A1-CS9", "新客服", "客服部", "客服"])
    book.save(path)
    return path


def sheets_read_by(reader, path):
    ignored: list[str] = []
    sheets = reader(path, None, ignored)
    return ignored, [(s.name, s.kind.name, s.headers, s.header_line, s.header_map, s.total, list(s.rows()))
                     for s in sheets]


def test_calamine_and_openpyxl_read_a_workbook_cell_for_cell_alike(tmp_path):
    pytest.importorskip("python_calamine")
    path = varied_workbook(tmp_path / "ledger.xlsx")

    by_calamine = sheets_read_by(_calamine_sheets, path)

    assert by_calamine == sheets_read_by(_openpyxl_sheets, path)
    assert by_calamine[0] == ["说明 README"]
    assert by_calamine[1][0][6][0] == (3, (None, "R-1", datetime(2026, 10, 3, 14, 5), "王客服", "来电", "刘女士",
                                           "3栋501", 13812345678, "水", "漏水", 80, datetime(2026, 10, 4)))


def test_calamine_and_openpyxl_read_the_thousand_row_ledger_alike(tmp_path):
    pytest.importorskip("python_calamine")
    from tests.integration.test_import_ledger import ledger_workbook

    path, _ = ledger_workbook(tmp_path)

    assert sheets_read_by(_calamine_sheets, path) == sheets_read_by(_openpyxl_sheets, path)


@pytest.mark.parametrize("text", [
    "a,b\n1,2\n3,4\n",                      # the usual file
    "a,b\r\n1,2\r\n3,4",                    # Windows endings, no final line break
    "a,b\r1,2\r3,4\r",                      # lone CR endings (old Mac)
    'a,b\n1,"two\nlines"\n3,4\n',           # a quoted cell holding a line break
    "a,b\n\n1,2\n",                         # a blank line
    "",                                     # an empty file
], ids=["lf", "crlf-unterminated", "cr", "quoted-break", "blank-line", "empty"])
@pytest.mark.parametrize("written, read", [("utf-8", "utf-8-sig"), ("utf-8-sig", "utf-8-sig"),
                                           ("gb18030", "gb18030")])
def test_a_csv_files_row_count_is_what_the_csv_reader_reads(tmp_path, text, written, read):
    import csv

    path = tmp_path / "requests.csv"
    path.write_bytes(text.replace("a,b", "登记号,业主").replace("3,4", "王芳,三栋").encode(written))
    with path.open(encoding=read, newline="") as fh:
        expected = sum(1 for _ in csv.reader(fh))
    assert _csv_row_count(path, read) == expected


def test_a_sheets_repeated_times_and_more_distinct_times_than_a_reader_keeps_all_read_as_their_moments():
    from datetime import timedelta

    from models.imports.cells import _SEEN_MOMENTS, row_reader

    kind = KINDS["requests"]
    read = row_reader(kind, map_headers(kind, ["登记号", "登记时间", "登记人", "接待方式", "业主姓名", "住址", "联系方式",
                                               "类别", "报修内容"]), TZ)
    start = datetime(2026, 10, 1, 8, 0)
    distinct = [f"{start + timedelta(minutes=n):%Y-%m-%d %H:%M}" for n in range(_SEEN_MOMENTS + 500)]
    texts = distinct + distinct[:700] + ["2026/10/3 14:05", "2026-10-03 14:05", "2026/10/3 14:05"]

    moments = [read(("R-1", text, "王客服", "来电", "刘女士", "3栋501", "13812345678", "水", "漏水"))["received_at"]
               for text in texts]

    assert moments == [read_time(text, TZ) for text in texts]
    assert moments[-3:] == [FIVE_PAST_TWO] * 3 and all(m.tzinfo is TZ for m in moments)


def test_a_sheets_batches_share_one_reader_so_the_times_it_has_read_carry_over(tmp_path):
    from models.imports.readers import open_sheets

    path = tmp_path / "requests.csv"
    path.write_text("登记号,登记时间,登记人,接待方式,业主姓名,住址,联系方式,类别,报修内容\n"
                    "R-1,2026-10-03 14:05,王客服,来电,刘女士,3栋501,13812345678,水,漏水\n", encoding="utf-8")
    [sheet], _ignored = open_sheets(path)
    [(_line, cells)] = list(sheet.rows())

    first, second = sheet.reader(TZ), sheet.reader(TZ)

    assert first is second  # what batch 1 read, batch 2 does not read again
    assert first(cells)["received_at"] == second(cells)["received_at"] == FIVE_PAST_TWO


def test_a_sheet_keeps_the_stored_texts_of_its_times_for_its_next_batches_within_a_bound(tmp_path):
    from models.imports.cells import _SEEN_MOMENTS
    from models.imports.readers import open_sheets

    path = tmp_path / "requests.csv"
    path.write_text("登记号,登记时间,登记人,接待方式,业主姓名,住址,联系方式,类别,报修内容\n", encoding="utf-8")
    [sheet], _ignored = open_sheets(path)
    texts = sheet.moment_texts()
    texts[id(FIVE_PAST_TWO)] = (FIVE_PAST_TWO, "2026-10-03 06:05:00.000000")

    assert sheet.moment_texts() is texts and len(texts) == 1  # the next batch finds it

    texts.update({n: (FIVE_PAST_TWO, "") for n in range(4 * _SEEN_MOMENTS)})
    assert sheet.moment_texts() == {}  # memory stays bounded however many distinct times a sheet holds


@pytest.mark.parametrize("writer", ["xlsxwriter", "xlsxwriter constant memory", "openpyxl"])
def test_the_fast_count_of_a_sheet_agrees_with_its_exact_parse(tmp_path, writer):
    import zipfile

    import xlsxwriter

    from models.imports.limits import _exact_extent, _sheet_extent, _workbook_census

    path = tmp_path / "requests.xlsx"
    cells = [(0, c, f"列{c}") for c in range(12)] + [(r, c, f"{r}-{c}") for r in range(1, 300, 3) for c in range(0, 12, 2)]
    cells += [(1000, 26, 7.5), (1001, 27, True)]
    if writer == "openpyxl":
        book = Workbook()
        ws = book.active
        ws.title = "requests"
        for r, c, v in cells:
            ws.cell(r + 1, c + 1, v)
        book.save(path)
    else:
        book = xlsxwriter.Workbook(str(path), {"constant_memory": writer.endswith("memory")})
        ws = book.add_worksheet("requests")
        for r, c, v in sorted(cells):
            ws.write(r, c, v)
        book.close()
    parts = _workbook_census(path)

    with zipfile.ZipFile(path) as zf:
        fast = _sheet_extent(zf, parts["requests"], parts.get("\0shared strings"), "requests")
        exact = _exact_extent(zf, parts["requests"], {})

    assert fast == exact
    assert (fast.rows, fast.columns, fast.cells) == (1002, 28, len(cells))


def test_a_cell_address_with_leading_zeros_is_counted_by_its_number(tmp_path):
    import zipfile

    from models.imports.limits import _sheet_extent

    path = tmp_path / "requests.xlsx"
    cells = '<c r="A999999" t="inlineStr"><is><t>far</t></is></c><c r="A0000001" t="inlineStr"><is><t>x</t></is></c>'
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("xl/worksheets/sheet1.xml", '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/'
                    f'main"><sheetData><row r="1">{cells}</row></sheetData></worksheet>')
    with zipfile.ZipFile(path) as zf:
        extent = _sheet_extent(zf, "xl/worksheets/sheet1.xml", None, "requests")
    assert (extent.rows, extent.columns, extent.cells) == (999_999, 1, 2)


def test_a_rejects_workbook_keeps_escape_characters_and_formulas_as_plain_escaped_text(tmp_path):
    from openpyxl import load_workbook

    from models.imports.rejects import RejectedRow, write_rejects

    hostile = "=cmd|' /C calc'!A0\x1b[31m"
    row = RejectedRow("登记表", 3, "业主姓名", "text_control", {"field": "resident", "char": "U+001B", "position": 19},
                      ("P-03", hostile, 80))
    path = write_rejects(tmp_path / "登记表.xlsx", [row], {"登记表": ["编号", "业主姓名", "金额"]})

    sheet = load_workbook(path)["登记表"]
    cell = sheet.cell(row=2, column=2)
    assert (cell.data_type, cell.value) == ("s", "=cmd|' /C calc'!A0\\x1b[31m")
    assert sheet.cell(row=2, column=3).value == 80
