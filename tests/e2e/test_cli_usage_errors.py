"""Bad arguments are answered like refused operations: one line on stderr, exit code 2, in the locale."""
import subprocess
import sys
from pathlib import Path

import pytest

BIANMIN = Path(sys.executable).with_name("bianmin")


def bianmin(tmp_path, *args: str, locale: str = "zh_CN") -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "BIANMIN_DATA_DIR": str(tmp_path / "var"), "BIANMIN_LOCALE": locale}
    return subprocess.run([str(BIANMIN), *args], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("args, names", [
    (["desk", "register", "--office", "A1"], "--by"),
    (["desk", "no-such-command"], "no-such-command"),
    (["orders", "show"], "ORDER"),
])
def test_a_usage_error_is_one_line_with_exit_code_2(tmp_path, args, names):
    result = bianmin(tmp_path, *args, locale="en")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert names.lower() in lines[0].lower() and "Traceback" not in result.stderr


def test_a_usage_error_speaks_the_configured_locale(tmp_path):
    result = bianmin(tmp_path, "desk", "register", "--office", "A1")
    assert result.returncode == 2
    assert "参数错误" in result.stderr and "--by" in result.stderr


def test_a_group_without_a_command_shows_its_help_and_succeeds(tmp_path):
    result = bianmin(tmp_path, "desk")
    assert result.returncode == 0
    assert "register" in result.stdout + result.stderr


REGISTER = ["desk", "register", "--office", "A1", "--by", "A1-CS1", "--channel", "phone", "--resident", "刘女士",
            "--address", "3栋501", "--phone", "13812345678", "--category", "plumbing", "--description", "漏水"]


@pytest.mark.parametrize("args, names", [
    (REGISTER + ["--fee", "1e30", "--at", "2026-09-30T10:00"], "--fee"),
    (REGISTER + ["--fee", "80", "--at", "9999-12-31T23:59"], "--at"),
    (REGISTER + ["--fee", "80", "--at", "0001-01-01"], "--at"),
    (["run", "monthly-tally", "--month", "9999-12"], "--month"),
    (["run", "cash-check", "--day", "0001-01-01"], "--day"),
])
def test_an_absurd_amount_or_time_is_one_line_naming_it_with_exit_code_2(tmp_path, args, names):
    result = bianmin(tmp_path, *args, locale="en")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and names in lines[0], result.stderr
    assert "Traceback" not in result.stderr and "db upgrade" not in result.stderr


def test_an_ansi_escape_in_an_argument_is_refused_before_it_reaches_the_terminal(tmp_path):
    result = bianmin(tmp_path, "desk", "reply", "R-1\x1b[2J", "--by", "A1-CS1", locale="en")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == ["argument 3 holds a control character U+001B: refused"]


def test_no_module_of_ours_imports_a_private_module_of_a_library():
    import ast

    root = Path(__file__).resolve().parents[2]
    private = []
    for folder in ("flows", "commands", "models", "notifications", "bench"):
        for path in (root / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names = ([node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else
                         [a.name for a in node.names] if isinstance(node, ast.Import) else [])
                private += [f"{path.relative_to(root)}: {n}" for n in names
                            if any(part.startswith("_") and not part.startswith("__") for part in n.split(".")[1:])]
    assert private == []
