"""A file past the import's limits (docs/import.md "Limits") is refused as a whole: one line, exit 2, nothing written.

Each file also holds a good registration, to show that nothing of it reaches the ledger.
"""
from __future__ import annotations

import os
import subprocess
import zipfile
from pathlib import Path

import pytest
import xlsxwriter
from sqlalchemy import func, select

from models.ledger.db import transaction
from models.imports.limits import MAX_CELL_CHARS, MAX_FILE_BYTES, column_letters
from models.ledger.tables import ServiceRequest
from tests.builders import setup_office
from tests.cli import office_cli

ROOT = Path(__file__).resolve().parents[2]
BIANMIN = ROOT / ".venv" / "bin" / "bianmin"
HEADER = ["登记号", "登记时间", "登记人", "接待方式", "业主姓名", "住址", "联系方式", "类别", "报修内容", "费用"]
GOOD = ["R-1", "2026-10-08 09:00", "A1-CS1", "来电", "刘女士", "3栋501", "13812345678", "水", "漏水", "80"]


@pytest.fixture
def cli(settings, engine):
    with office_cli(settings, engine, locale="en") as invoke:
        yield invoke


def requests_kept(engine) -> int:
    with engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(ServiceRequest))


def refused(result, engine, folder: Path) -> str:
    """The one line of a refusal, after checking its exit code and that nothing was written."""
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert "Traceback" not in result.stdout + result.stderr
    assert requests_kept(engine) == 0
    assert not list(folder.glob("*.rejects.*"))
    return lines[0]


def csv_file(path: Path, *rows: list[str]) -> Path:
    path.write_text("\n".join(",".join(r) for r in (HEADER, GOOD, *rows)) + "\n", encoding="utf-8")
    return path


def test_a_csv_with_a_10_mb_cell_is_refused_naming_its_line(cli, engine, tmp_path):
    path = csv_file(tmp_path / "requests.csv", ["R-2", "2026-10-08 09:05", "A1-CS1", "来电", "王先生", "x" * (10 << 20),
                                                "13812345679", "水", "漏水", "80"])

    line = refused(cli("import", path), engine, tmp_path)

    assert line == f"requests line 3: a cell is longer than the limit of {MAX_CELL_CHARS:,} characters: nothing " \
                   "was imported (0 rows)"


def test_a_csv_cell_just_over_the_limit_is_refused_naming_its_line_column_and_length(cli, engine, tmp_path):
    path = csv_file(tmp_path / "requests.csv", ["R-2", "2026-10-08 09:05", "A1-CS1", "来电", "王先生",
                                                "住" * (MAX_CELL_CHARS + 1), "13812345679", "水", "漏水", "80"])

    line = refused(cli("import", path), engine, tmp_path)

    assert line.startswith(f"requests line 3 column F: the cell holds {MAX_CELL_CHARS + 1:,} characters")


def test_a_csv_cell_at_the_limit_is_read(cli, engine, tmp_path):
    # the long cell is a clerk's own column: read, then left aside (the desk keeps 2,000 characters of a note)
    path = tmp_path / "requests.csv"
    rows = [[*HEADER, "备注"], [*GOOD, ""],
            ["R-2", "2026-10-08 09:05", "A1-CS1", "来电", "王先生", "3栋502", "13812345679", "水", "漏水", "80",
             "漏" * MAX_CELL_CHARS]]
    path.write_text("\n".join(",".join(r) for r in rows) + "\n", encoding="utf-8")

    result = cli("import", path)

    assert result.exit_code == 0, result.stderr
    assert requests_kept(engine) == 2


def test_a_csv_larger_than_the_limit_is_refused_unread(cli, engine, tmp_path):
    path = csv_file(tmp_path / "requests.csv")
    with path.open("r+b") as fh:
        fh.truncate(MAX_FILE_BYTES + 1)  # a sparse file: the size is all that is looked at

    line = refused(cli("import", path), engine, tmp_path)

    assert line.startswith("requests.csv is 1,024 MB, over the import limit of 1,024 MB")


def workbook(path: Path, *cells: tuple[int, int, str], constant_memory: bool = False) -> Path:
    book = xlsxwriter.Workbook(str(path), {"constant_memory": constant_memory})
    ws = book.add_worksheet("requests")
    ws.write_row(0, 0, HEADER)
    ws.write_row(1, 0, GOOD)
    for row, column, value in cells:
        ws.write(row, column, value)
    book.close()
    return path


def test_a_5_kb_workbook_with_a_cell_at_xfd1048576_is_refused_before_it_is_read(db_url, engine, tmp_path):
    # in a process of its own: the reader used to try to lay out 17 billion cells and abort (exit 134)
    with transaction(engine) as s:
        setup_office(s, "A1")
    path = workbook(tmp_path / "requests.xlsx", (1048575, 16383, "x"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BIANMIN_", "PREFECT_"))} | {
        "BIANMIN_DATABASE_URL": db_url, "BIANMIN_DATA_DIR": str(tmp_path / "var"), "BIANMIN_LOCALE": "en",
        "BIANMIN_CONFIG_FILE": str(tmp_path / "absent.toml")}

    result = subprocess.run([str(BIANMIN), "import", str(path)], env=env, capture_output=True, text=True, timeout=120)

    assert path.stat().st_size < 8000
    assert (result.returncode, result.stderr.strip().splitlines()) == (2, [
        "Sheet requests uses cell XFD1048576, beyond the limit of 1,000,000 rows and 200 columns (up to column GR): "
        "nothing was imported (0 rows); delete the cells beyond your data (Ctrl+End finds the last one) and import "
        "again"])
    assert requests_kept(engine) == 0


def rewrite(path: Path, change, part: str = "xl/worksheets/sheet1.xml") -> Path:
    """The workbook with one part's XML changed by `change` (bytes -> bytes): what no writer would make."""
    target = path.with_name(f"crafted-{path.name}")
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as out:
        for info in src.infolist():
            data = src.read(info)
            out.writestr(info, change(data) if info.filename == part else data)
    return target


def test_a_workbook_that_declares_a_small_sheet_but_holds_a_far_cell_is_refused(cli, engine, tmp_path):
    made = workbook(tmp_path / "made.xlsx", (999_999, 150, "x"))
    path = rewrite(made, lambda xml: xml.replace(b'<dimension ref="A1:EU1000000"/>', b'<dimension ref="A1:J2"/>'))

    line = refused(cli("import", path), engine, tmp_path)

    assert line.startswith("Sheet requests spreads to EU1000000 (151,000,000 cells) but holds only 21")


def test_a_cell_without_its_address_is_placed_by_its_neighbours_and_counted(cli, engine, tmp_path):
    made = workbook(tmp_path / "made.xlsx")
    # a row far down whose cells carry no r="...": a reader puts them at row 900000, columns A.. onwards
    far = b'<row r="900000">' + b'<c t="inlineStr"><is><t>x</t></is></c>' * 30 + b"</row></sheetData>"
    path = rewrite(made, lambda xml: xml.replace(b"</sheetData>", far))

    line = refused(cli("import", path), engine, tmp_path)

    assert line.startswith("Sheet requests spreads to AD900000 (27,000,000 cells) but holds only 50")


def test_a_sparse_sheet_is_refused_though_within_the_row_and_column_limits(cli, engine, tmp_path):
    path = workbook(tmp_path / "requests.xlsx", (199_999, 13, "x"))

    line = refused(cli("import", path), engine, tmp_path)

    assert line == ("Sheet requests spreads to N200000 (2,800,000 cells) but holds only 21: nothing was imported "
                    "(0 rows); delete the cells beyond your data (Ctrl+End finds the last one) and import again")


@pytest.mark.parametrize("strings", ["shared", "inline"])
def test_a_workbook_cell_over_the_limit_is_refused_naming_its_row_and_column(cli, engine, tmp_path, strings):
    # writers refuse or cut such a cell (Excel's limit is theirs too): the part is written by hand
    made = workbook(tmp_path / "made.xlsx", (2, 5, "LONG"), constant_memory=strings == "inline")
    longer = b"<t>" + "住".encode() * (MAX_CELL_CHARS + 5) + b"</t>"
    path = rewrite(made, lambda xml: xml.replace(b"<t>LONG</t>", longer),
                   "xl/sharedStrings.xml" if strings == "shared" else "xl/worksheets/sheet1.xml")

    line = refused(cli("import", path), engine, tmp_path)

    assert line.startswith(f"requests line 3 column F: the cell holds {MAX_CELL_CHARS + 5:,} characters, over the "
                           f"limit of {MAX_CELL_CHARS:,}")


def test_a_zip_bomb_is_refused_before_it_is_unzipped(cli, engine, tmp_path):
    made = workbook(tmp_path / "made.xlsx")
    path = tmp_path / "requests.xlsx"
    zeros = bytes(1 << 24)
    with zipfile.ZipFile(made) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as out:
        for info in src.infolist():
            out.writestr(info, src.read(info))
        with out.open("xl/media/image1.bin", "w", force_zip64=True) as bomb:
            for _ in range(MAX_FILE_BYTES // len(zeros) + 1):
                bomb.write(zeros)

    line = refused(cli("import", path), engine, tmp_path)

    assert path.stat().st_size < 8 << 20
    assert line.startswith("requests.xlsx unzips to 1,040 MB, over the limit of 1,024 MB")


def test_a_workbook_within_every_limit_is_imported(cli, engine, tmp_path):
    path = workbook(tmp_path / "requests.xlsx", (2, 0, "R-2"), (2, 1, "2026-10-08 09:05"), (2, 2, "A1-CS1"),
                    (2, 3, "来电"), (2, 4, "王先生"), (2, 5, "3栋502"), (2, 6, "13812345679"), (2, 7, "水"),
                    (2, 8, "漏水"), (2, 9, "80"), (2, 199, "漏" * MAX_CELL_CHARS))

    result = cli("import", path)

    assert result.exit_code == 0, result.stderr
    assert requests_kept(engine) == 2


@pytest.mark.parametrize("number, letters", [(1, "A"), (26, "Z"), (27, "AA"), (200, "GR"), (16384, "XFD")])
def test_column_numbers_are_spelled_as_a_spreadsheet_does(number, letters):
    assert column_letters(number) == letters


def test_a_workbook_whose_sheet_is_not_well_formed_is_refused_with_one_line(cli, engine, tmp_path):
    made = workbook(tmp_path / "made.xlsx")
    path = rewrite(made, lambda xml: xml.replace(b"</sheetData>", b"</sheetDat>"))

    line = refused(cli("import", path), engine, tmp_path)

    assert line == "Cannot read crafted-made.xlsx (XmlError)"
