"""Paths and permissions: hostile office codes through the real `bianmin` program and its import are refused, nothing
is written outside the data folder, and every file and folder bianmin makes there is its owner's only.

Every command runs through the real program (`.venv/bin/bianmin`, umask 022 as a login shell gives it; the
refusals all in one process, through the same entry point), on SQLite in a data folder that does not exist
beforehand; `bianmin run` goes through Prefect as an operator's would.
"""
from __future__ import annotations

import csv
import json
import os
import sqlite3
import stat
import subprocess
import tempfile
from pathlib import Path

from tests.cli import run_in_one_process

ROOT = Path(__file__).resolve().parents[2]
BIANMIN = ROOT / ".venv" / "bin" / "bianmin"
HOSTILE = ["../evil", "/tmp/x", "", "a/b", "..", "CON", "A" * 17, "服务处", "a\nb"]
HEADER = ["登记号", "服务处", "登记时间", "登记人", "接待方式", "业主姓名", "住址", "联系方式", "类别", "报修内容", "费用"]


class Bianmin:
    """The real program with its own data folder, run as an operator would from `cwd`."""

    def __init__(self, cwd: Path, data: Path | None) -> None:
        self.cwd = cwd
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("BIANMIN_", "PREFECT_"))}
        self.env |= {"BIANMIN_LOCALE": "en", "BIANMIN_CONFIG_FILE": str(cwd / "absent.toml"),
                     "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
        if data is not None:
            self.env["BIANMIN_DATA_DIR"] = str(data)

    def __call__(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(BIANMIN), *map(str, args)], cwd=self.cwd, env=self.env, capture_output=True,
                              text=True, timeout=600, umask=0o022)

    def ok(self, *args: str) -> subprocess.CompletedProcess:
        done = self(*args)
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        return done

    def refused_each(self, *commands: list[str]) -> list[str]:
        """The one line each refusal prints (exit 2, nothing on stdout), every command through the real entry point
        in one process of its own (its driver's files outside the folders the test watches)."""
        with tempfile.TemporaryDirectory() as workdir:
            results = run_in_one_process(self.env, Path(workdir), [[str(a) for a in c] for c in commands],
                                         cwd=self.cwd)
        lines = []
        for r in results:
            assert r["code"] == 2, r
            said = r["stderr"].strip().splitlines()
            assert len(said) == 1 and r["stdout"].strip() == "", r
            lines.append(said[0])
        return lines


def everything_under(folder: Path) -> set[Path]:
    return {Path(root) / name for root, dirs, files in os.walk(folder) for name in files + dirs}


def open_to_others(paths) -> dict[str, str]:
    modes = {path: path.lstat().st_mode for path in paths}
    return {str(p): stat.filemode(m) for p, m in modes.items() if not stat.S_ISLNK(m) and m & 0o077}


def requests_csv(path: Path, offices: list[str]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(HEADER)
        for i, office in enumerate(offices):
            out.writerow([f"IMP-{i:03d}", office, f"2026-10-{8 + i:02d} 09:00", "A1-CS1", "来访", f"业主{i}",
                          f"{i}栋101", "13800000000", "水", "水管漏水", "80"])
    return path


def set_up_office(bianmin: Bianmin, code: str) -> None:
    bianmin.ok("office", "add", code, "--name", f"第{code}服务处", "--at", "2026-09-01T08:00")
    for suffix, dept, role in (("CS1", "cs", "clerk"), ("PL1", "engineering", "worker"), ("FC1", "finance", "cashier")):
        bianmin.ok("staff", "add", f"{code}-{suffix}", "--name", f"{code}{suffix}", "--office", code, "--dept", dept,
                   "--role", role, "--at", "2026-09-01T08:00")


def a_paid_job(bianmin: Bianmin, office: str, day: str, receipt: str) -> None:
    """Register, issue, complete, accept, collect in cash, hand over and call back: one job through the desk."""
    registered = json.loads(bianmin.ok(
        "desk", "register", "--office", office, "--by", f"{office}-CS1", "--channel", "walk_in", "--resident", "刘女士",
        "--address", "3栋501", "--phone", "13812345678", "--category", "plumbing", "--description", "漏水",
        "--price", "TAP", "--at", f"{day}T09:00", "--json").stdout)
    issued = json.loads(bianmin.ok("desk", "issue", registered["request"], "--by", f"{office}-CS1", "--worker",
                                   f"{office}-PL1", "--scheduled", f"{day}T10:00", "--at", f"{day}T09:10",
                                   "--json").stdout)
    order = issued["order"]
    bianmin.ok("desk", "complete", order, "--by", f"{office}-PL1", "--at", f"{day}T11:00")
    bianmin.ok("desk", "accept", order, "--signed-by", "刘女士", "--at", f"{day}T11:10")
    bianmin.ok("desk", "receipts", "issue", "--by", f"{office}-CS1", "--to", f"{office}-PL1", "--first", receipt,
               "--count", "5", "--at", f"{day}T08:00")
    bianmin.ok("desk", "collect", order, "--by", f"{office}-PL1", "--receipt", receipt, "--amount", "80",
               "--method", "cash", "--at", f"{day}T11:20")
    bianmin.ok("desk", "handover", "--by", f"{office}-PL1", "--cashier", f"{office}-FC1", "--receipts", receipt,
               "--counted", "80", "--at", f"{day}T16:00")


def test_hostile_office_codes_are_refused_and_nothing_bianmin_writes_is_outside_or_open_to_others(tmp_path, figure):
    data = tmp_path / "site" / "var"  # bianmin makes it
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    bianmin = Bianmin(tmp_path, data)
    tmp_x_before = Path("/tmp/x").exists()
    before = everything_under(tmp_path)
    made_by_test: set[Path] = set()

    bianmin.ok("db", "upgrade")
    set_up_office(bianmin, "A1")
    bianmin.ok("prices", "set", "TAP", "--category", "plumbing", "--name", "换龙头", "--fee", "80",
               "--at", "2026-09-01T08:00")

    # the desk: each hostile code is one line and exit 2
    refused = 0
    lines = bianmin.refused_each(*[["office", "add", code, "--name", "恶意服务处"] for code in HOSTILE])
    for code, line in zip(HOSTILE, lines, strict=True):
        assert line.startswith(f"Malformed office code {code!r}")
        refused += 1

    # the import: a row naming a hostile code is rejected with its line, column and reason (an empty cell is no
    # code: it means the only office) ...
    named = [code for code in HOSTILE if code]
    sheet = requests_csv(inbox / "requests.csv", ["A1", *named])
    made_by_test.add(sheet)
    done = bianmin("import", sheet, "--json")
    assert done.returncode == 1, done.stderr
    result = json.loads(done.stdout)
    assert result["kept"] == 1
    assert [(r["line"], r["column"]) for r in result["rejects"]] == [(3 + i, "服务处") for i in range(len(named))]
    assert all("not a well-formed office code" in r["reason"] for r in result["rejects"])
    refused += len(result["rejects"])
    rejects_file = Path(result["rejects_file"])
    assert rejects_file.parent == inbox  # written next to the file imported, by design
    # ... and a whole import for a hostile --office is refused
    plain = requests_csv(inbox / "plain.csv", ["", ""])
    made_by_test.add(plain)
    for line in bianmin.refused_each(*[["import", plain, "--kind", "requests", "--office", code]
                                       for code in HOSTILE]):
        assert "not a well-formed office code" in line
        refused += 1

    # a month through the desk, its tally and the dispatch, through Prefect
    a_paid_job(bianmin, "A1", "2026-10-12", "000101")
    tally = json.loads(bianmin.ok("run", "monthly-tally", "--month", "2026-10", "--json").stdout)
    assert {r["office"] for r in tally["reports"]} == {"A1", "*"}
    bianmin.ok("run", "dispatch")

    # an older ledger already holding a code that is an absolute path: the tally writes nothing outside and says so
    escape = tmp_path / "escape"
    set_up_office(bianmin, "B2")
    a_paid_job(bianmin, "B2", "2026-09-14", "000201")
    with sqlite3.connect(data / "bianmin.db") as db:
        db.execute("UPDATE offices SET code = ? WHERE code = 'B2'", (str(escape),))
    legacy = bianmin("run", "monthly-tally", "--month", "2026-09", "--json")
    with sqlite3.connect(data / "bianmin.db") as db:
        runs_for_it = db.execute("SELECT count(*) FROM report_runs WHERE office = ?", (str(escape),)).fetchone()[0]
        told = [row[0] for row in db.execute("SELECT payload FROM alerts WHERE tag = 'ops'")]
    assert runs_for_it == 0 and not escape.exists()
    assert any(repr(str(escape)) in json.dumps(json.loads(p), ensure_ascii=False) for p in told) \
        or repr(str(escape)) in legacy.stdout + legacy.stderr, (legacy.stdout, legacy.stderr, told)

    # the newcomer's demo in a folder of its own
    demo_folder = tmp_path / "demo"
    demo_folder.mkdir()
    made_by_test.add(demo_folder)
    Bianmin(demo_folder, None).ok("demo")
    demo = demo_folder / "var"

    written = everything_under(tmp_path) - before - made_by_test - {rejects_file}
    outside = sorted(str(p) for p in written if not p.is_relative_to(data) and not p.is_relative_to(demo)
                     and p != data.parent)
    if Path("/tmp/x").exists() and not tmp_x_before:
        outside.append("/tmp/x")
    checked = [data, *everything_under(data), demo, *everything_under(demo), rejects_file]
    exposed = open_to_others(checked)

    figure("paths and permissions", hostile_codes_refused=refused, files_checked=len(checked),
           readable_by_others=len(exposed), written_outside=len(outside))
    assert refused == len(HOSTILE) * 2 + len(named)
    assert outside == []
    assert exposed == {}
    assert (data / "reports" / "A1" / "2026-10" / "v1" / "tally.json").exists()
    assert any((data / "outbox").iterdir())
