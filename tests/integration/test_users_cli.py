"""`bianmin users add|list|disable`: argon2 hashes, the password only from stdin, refusals one line, exit 2."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from console import accounts
from models.ledger.tables import User
from tests.cli import office_cli


@pytest.fixture
def cli(settings, engine):
    with office_cli(settings, engine, locale="en") as invoke:
        yield invoke


def add(cli, *args, password="s3cret-enough"):
    from typer.testing import CliRunner

    from commands.cli import app

    return CliRunner().invoke(app, ["users", "add", *args], input=password + "\n")


def test_add_hashes_with_argon2_and_list_never_shows_the_hash(cli, engine):
    result = add(cli, "li", "--name", "李主管", "--role", "cs-supervisor", "--office", "A1", "--staff", "A1-CSS",
                 "--password-stdin", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["offices"] == ["A1"]
    with engine.connect() as conn:
        stored = conn.scalar(select(User.password_hash))
    assert stored.startswith("$argon2id$") and "s3cret-enough" not in stored
    listed = cli("users", "list", "--json")
    assert listed.exit_code == 0
    assert [(u["login"], u["role"], u["staff"], u["active"]) for u in json.loads(listed.stdout)] == [
        ("li", "cs-supervisor", "A1-CSS", True)]
    assert "argon2" not in listed.stdout


@pytest.mark.parametrize("args, words", [
    (["--role", "boss"], "Unknown role"),
    (["--role", "admin", "--office", "Z9"], "No office Z9"),
    (["--role", "cs-clerk", "--staff", "NOPE"], "No staff member NOPE"),
    (["--role", "admin", "--name", " "], "must not be empty"),
])
def test_bad_input_is_one_line_and_exit_2(cli, engine, args, words):
    base = {"--name": "张三"}
    merged = [*(x for k, v in base.items() if k not in args for x in (k, v)), *args]
    result = add(cli, "zhang", *merged, "--password-stdin")
    assert result.exit_code == 2 and words in result.stderr and len(result.stderr.strip().splitlines()) == 1
    with engine.connect() as conn:
        assert conn.scalar(select(User.id)) is None


def test_password_only_from_stdin_and_long_enough(cli):
    no_flag = add(cli, "zhang", "--name", "张三", "--role", "admin")
    assert no_flag.exit_code == 2 and "--password-stdin" in no_flag.stderr
    short = add(cli, "zhang", "--name", "张三", "--role", "admin", "--password-stdin", password="short")
    assert short.exit_code == 2 and "too short" in short.stderr


def test_a_taken_login_and_a_malformed_one_are_refused(cli):
    assert add(cli, "zhang", "--name", "张三", "--role", "admin", "--password-stdin").exit_code == 0
    again = add(cli, "zhang", "--name", "张三", "--role", "admin", "--password-stdin")
    assert again.exit_code == 2 and "already exists" in again.stderr
    bad = add(cli, "../x", "--name", "x", "--role", "admin", "--password-stdin")
    assert bad.exit_code == 2 and "Malformed login" in bad.stderr


def test_disable_ends_logins(cli, engine):
    assert add(cli, "zhang", "--name", "张三", "--role", "admin", "--password-stdin").exit_code == 0
    assert cli("users", "disable", "zhang").exit_code == 0
    from datetime import datetime, timezone

    from models.ledger.db import transaction

    with transaction(engine) as s:
        result = accounts.authenticate(s, login="zhang", password="s3cret-enough", at=datetime.now(timezone.utc))
    assert result.account is None
    missing = cli("users", "disable", "nobody")
    assert missing.exit_code == 2 and "No user nobody" in missing.stderr


def test_refusals_in_chinese(settings, engine):
    with office_cli(settings, engine, locale="zh_CN"):
        result = add(None, "zhang", "--name", "张三", "--role", "boss", "--password-stdin")
    assert result.exit_code == 2 and "未知角色" in result.stderr
