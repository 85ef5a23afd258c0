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
