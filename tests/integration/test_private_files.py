"""bianmin's files are its owner's only: the ledger, digests, reports and rejects are created 0600 in 0700 folders
by every entry point (the CLI, and a flow's first use of the runtime, as in a Prefect worker), and `config check`
warns when the apprise config, which holds passwords and tokens, is open to group or others."""
from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from flows.settings import DEFAULT_ROUTES
from notifications.outbox import routed_tags
from tests.integration.test_alerts_cli import cli  # noqa: F401  (fixture)
from tests.servers import http_server, write_apprise_config  # noqa: F401  (fixture)

ROOT = Path(__file__).resolve().parents[2]
BIANMIN = ROOT / ".venv" / "bin" / "bianmin"
PYTHON = ROOT / ".venv" / "bin" / "python"


def apprise_config(tmp_path, http_server, mode: int) -> Path:
    path = write_apprise_config(tmp_path / "apprise.yml",
                                {tag: http_server.url(f"/{tag}") for tag in routed_tags(DEFAULT_ROUTES)})
    path.chmod(mode)
    return path


def warnings_in(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "apprise" in line and ("chmod 600" in line)]


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660], ids=oct)
def test_config_check_warns_in_one_line_when_the_apprise_config_is_open_to_group_or_others(cli, tmp_path,
                                                                                          http_server, mode):
    config = apprise_config(tmp_path, http_server, mode)

    result = cli("config", "check", apprise_config=config)

    assert result.exit_code == 0, result.stderr
    assert warnings_in(result.stderr) == [
        f"Warning: the apprise config {config} is {stat.filemode(stat.S_IFREG | mode)}, open to group or others, "
        f"and it holds passwords and tokens: run chmod 600 {config}"]


def test_the_permission_warning_reads_in_chinese_and_is_kept_apart_from_the_json(cli, tmp_path, http_server):
    config = apprise_config(tmp_path, http_server, 0o644)

    result = cli("config", "check", "--json", locale="zh_CN", apprise_config=config)

    assert result.exit_code == 0, result.stderr
    assert warnings_in(result.stderr) == [
        f"警告:apprise 配置 {config} 的权限是 -rw-r--r--,同组或其他用户可以读取其中的密码和令牌;请运行 chmod 600 {config}"]
    assert '"warnings"' in result.stdout


def test_config_check_gives_no_permission_warning_for_an_owner_only_apprise_config(cli, tmp_path, http_server):
    config = apprise_config(tmp_path, http_server, 0o600)

    result = cli("config", "check", apprise_config=config)

    assert result.exit_code == 0, result.stderr
    assert warnings_in(result.stderr) == []


@pytest.fixture
def fresh_env(tmp_path) -> dict[str, str]:
    """A real process's environment: SQLite under a data folder that does not exist yet; umask 022 as usual."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("BIANMIN_", "PREFECT_"))}
    return keep | {"BIANMIN_DATA_DIR": str(tmp_path / "var"), "BIANMIN_LOCALE": "en",
                   "BIANMIN_CONFIG_FILE": str(tmp_path / "absent.toml")}


def group_or_other_bits(folder: Path) -> dict[str, str]:
    """Every file and folder under `folder` (itself included) that anyone but its owner may use."""
    found = {}
    for root, dirs, files in os.walk(folder):
        for path in [Path(root), *(Path(root) / n for n in files)]:
            mode = path.stat().st_mode
            if mode & 0o077:
                found[str(path)] = stat.filemode(mode)
    return found


def test_the_ledger_and_its_folder_made_by_the_cli_are_its_owners_only(fresh_env, tmp_path):
    for args in (["db", "upgrade"], ["office", "add", "A1", "--name", "第一服务处"]):
        done = subprocess.run([str(BIANMIN), *args], env=fresh_env, cwd=tmp_path, capture_output=True, text=True,
                              timeout=120, umask=0o022)
        assert done.returncode == 0, done.stderr

    data = tmp_path / "var"
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert stat.S_IMODE((data / "bianmin.db").stat().st_mode) == 0o600
    assert group_or_other_bits(data) == {}


def test_a_process_whose_first_bianmin_call_is_the_flows_runtime_makes_owner_only_files(fresh_env, tmp_path):
    # what a Prefect worker's flow run does first: build the runtime, then touch the database
    script = ("from flows.runtime import current_runtime\n"
              "from models.ledger.db import upgrade\n"
              "upgrade(current_runtime().settings.effective_database_url)\n")
    done = subprocess.run([str(PYTHON), "-c", script], env=fresh_env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=120, umask=0o022)
    assert done.returncode == 0, done.stderr

    assert group_or_other_bits(tmp_path / "var") == {}
    assert stat.S_IMODE((tmp_path / "var" / "bianmin.db").stat().st_mode) == 0o600
