"""The import refuses, row by row, the values the desk refuses (models/ledger/values.py): amounts that are not plain
money, names longer than their column, control characters and ANSI escapes. Each reject names line and column."""
from __future__ import annotations

import csv
from datetime import datetime

import pytest
from sqlalchemy import func, select

from models.ledger.db import session_factory, transaction
from models.imports import import_ledger
from models.ledger.tables import ServiceRequest
from tests.builders import TZ, setup_office

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=TZ)
HEADERS = ["登记号", "登记时间", "登记人", "接待方式", "业主姓名", "住址", "联系方式", "类别", "报修内容", "费用"]
GOOD = {"登记号": "R-1", "登记时间": "2026-10-03 14:05", "登记人": "王客服", "接待方式": "来电", "业主姓名": "刘女士",
        "住址": "3栋501", "联系方式": "13812345678", "类别": "水", "报修内容": "漏水\n厨房", "费用": "80"}
BAD = [  # column, value, refusal
    ("费用", "1e-30", "import_bad_amount"),
    ("费用", "0.001", "money_places"),
    ("费用", "80e2", "import_bad_amount"),
    ("费用", "99999999999999999999", "money_too_large"),
    ("费用", "-0", "import_negative"),
    ("业主姓名", "刘" * 101, "text_too_long"),
    ("住址", "3栋\x1b[31m501", "text_control"),
    ("联系方式", "138\x0012345678", "text_control"),
    ("报修内容", "x" * 2001, "text_too_long"),
    ("报修内容", "漏水\u202e", "text_control"),
    ("登记号", "R-" + "9" * 40, "text_too_long"),
]


@pytest.fixture
def office(engine):
    with transaction(engine) as s:
        return setup_office(s, "A1")


def test_each_value_the_desk_refuses_is_a_rejected_row_with_its_line_column_and_reason(engine, calendar, office,
                                                                                       tmp_path):
    path = tmp_path / "登记表.csv"
    with path.open("w", encoding="utf-8", newline="") as f:
        out = csv.DictWriter(f, HEADERS)
        out.writeheader()
        out.writerow(GOOD)
        for k, (column, value, _) in enumerate(BAD, start=2):
            out.writerow(GOOD | {"登记号": f"R-{k}", column: value})

    result = import_ledger(session_factory(engine), path, calendar=calendar, now=NOW, office="A1")

    assert (result.rows, result.kept, result.rejected) == (1 + len(BAD), 1, len(BAD))
    found = {r.line: (r.column, r.code) for r in result.rejects}
    assert found == {k + 1: (column, code) for k, (column, _, code) in enumerate(BAD, start=2)}
    for reject in result.rejects:
        for locale in ("en", "zh_CN"):
            reason = reject.reason(locale)
            assert "\n" not in reason and "\x1b" not in reason and "\x00" not in reason and len(reason) < 300
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(ServiceRequest)) == 1
        assert conn.scalar(select(ServiceRequest.description)) == "漏水\n厨房"  # free text keeps its lines
