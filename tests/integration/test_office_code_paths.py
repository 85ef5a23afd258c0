"""Office codes that are paths: the import rejects the rows naming them, and the monthly tally writes no report
outside the reports folder even for a code an older ledger already holds."""
from __future__ import annotations

import csv
import os
import shutil
import tempfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from flows.tally import run_monthly_tally
from models.ledger.db import session_factory, transaction
from models.imports import ImportRefused, import_ledger
from models.ledger.tables import Office, ReportRun, ServiceRequest
from notifications import report
from tests.builders import TZ, accepted_job, at, setup_office

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=TZ)
HEADER = ["登记号", "服务处", "登记时间", "登记人", "接待方式", "业主姓名", "住址", "联系方式", "类别", "报修内容", "费用"]


def files_under(folder: Path) -> set[Path]:
    return {Path(root) / name for root, dirs, files in os.walk(folder) for name in files + dirs}


def legacy_code(engine, good: str, bad: str) -> None:
    """An office added before codes were checked: its row holds `bad` (the desk would refuse it now)."""
    with transaction(engine) as s:
        s.execute(update(Office).where(Office.code == good).values(code=bad))


def requests_csv(path: Path, offices: list[str]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(HEADER)
        for i, office in enumerate(offices):
            out.writerow([f"R-{i:03d}", office, f"2026-10-{8 + i:02d} 09:00", "王客服", "来访", f"业主{i}", f"{i}栋101",
                          "13800000000", "水", "水管漏水", "80"])
    return path


def test_import_rows_naming_an_office_code_that_is_a_path_are_rejected_with_line_column_and_reason(
        engine, calendar, tmp_path):
    with transaction(engine) as s:
        setup_office(s, "A1")
    # an empty cell is no code: it means the file's office (here the only one)
    hostile = ["../evil", "/tmp/x", "a/b", "..", "CON", "A" * 17, "a\nb", "服务处/../x"]
    path = requests_csv(tmp_path / "requests.csv", ["A1", *hostile])

    result = import_ledger(session_factory(engine), path, calendar=calendar, now=NOW)

    assert [(r.line, r.column) for r in result.rejects] == [(3 + i, "服务处") for i in range(len(hostile))]
    assert [r.reason("en") for r in result.rejects] == [
        f"No office {code!r}, and it is not a well-formed office code ([A-Za-z0-9][A-Za-z0-9_-]{{0,15}})"
        for code in hostile]
    assert result.kept == 1 and result.rejected == len(hostile)
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(ServiceRequest)) == 1
    assert not (tmp_path / "evil").exists() and not Path("/tmp/x/requests.rejects.csv").exists()


def test_import_rows_naming_an_office_whose_old_code_is_a_path_are_rejected(engine, calendar, tmp_path):
    with transaction(engine) as s:
        setup_office(s, "A1")
    legacy_code(engine, "A1", "../evil")
    path = requests_csv(tmp_path / "requests.csv", ["../evil", "第A1服务处 Office A1"])

    result = import_ledger(session_factory(engine), path, calendar=calendar, now=NOW)

    assert [(r.line, r.column, r.code) for r in result.rejects] == [(2, "服务处", "bad_office_code"),
                                                                    (3, "服务处", "bad_office_code")]
    assert result.rejects[0].reason("zh_CN").startswith("服务处代码不合格:'../evil'")
    assert result.kept == 0


def test_an_import_for_an_office_code_that_is_a_path_is_refused_whole(engine, calendar, tmp_path):
    with transaction(engine) as s:
        setup_office(s, "A1")
    path = requests_csv(tmp_path / "requests.csv", ["", ""])

    with pytest.raises(ImportRefused) as refused:
        import_ledger(session_factory(engine), path, calendar=calendar, now=NOW, office="../evil")

    assert refused.value.code == "import_bad_office"
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(ServiceRequest)) == 0


@pytest.fixture
def elsewhere() -> Iterator[Path]:
    """An absolute folder short enough for offices.code (32 characters), outside the test's folders."""
    folder = Path(tempfile.mkdtemp(prefix="bm-", dir="/tmp"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.parametrize("bad", ["../evil", "ABSOLUTE", "a/b", ".."])
def test_the_tally_writes_no_report_outside_the_reports_folder_for_a_code_an_old_ledger_holds(
        runtime, engine, calendar, tmp_path, elsewhere, bad):
    bad = str(elsewhere / "evil") if bad == "ABSOLUTE" else bad
    with transaction(engine) as s:
        for code in ("A1", "B2"):
            accepted_job(s, calendar, setup_office(s, code), at=at("2026-10-12", "09:00"))
    legacy_code(engine, "B2", bad)
    # the reports, and the outbox the good office's report is delivered to (no apprise config here)
    allowed = (runtime.settings.effective_reports_dir, runtime.settings.effective_outbox_dir)
    before = files_under(tmp_path)

    try:
        run_monthly_tally(runtime, "2026-10", as_of=at("2026-11-01", "08:00"))
    except report.UnsafeReportPath as exc:  # until one office's failure is isolated, it stops the tally
        assert repr(bad) in str(exc)

    assert files_under(elsewhere) == set()
    written = files_under(tmp_path) - before
    assert [path for path in written if not path.is_relative_to(allowed[0]) and not path.is_relative_to(allowed[1])] \
        == []
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(ReportRun).where(ReportRun.office == bad)) == 0
