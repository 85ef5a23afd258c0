"""`bianmin office add` with a code that is no plain word: exit 2, one line in the locale, nothing written."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from models.ledger.tables import AuditEvent, Office
from tests.e2e.test_cli_desk import cli, cli_zh, ok  # noqa: F401  (fixtures)

HOSTILE = ["../evil", "/tmp/x", "", "a/b", "..", "CON", "A" * 17, "服务处", "a\nb"]


def offices_and_audits(engine) -> tuple[int, int]:
    with engine.connect() as conn:
        return (conn.scalar(select(func.count()).select_from(Office)),
                conn.scalar(select(func.count()).select_from(AuditEvent)))


@pytest.mark.parametrize("code", HOSTILE, ids=repr)
def test_an_office_code_that_is_not_a_plain_word_is_refused_with_one_line_and_exit_2(cli, engine, code):
    result = cli("office", "add", code, "--name", "恶意服务处")

    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert result.stderr.strip().startswith(f"Malformed office code {code!r}: letters, digits, _ and - only")
    assert len(result.stderr.strip().splitlines()) == 1
    assert offices_and_audits(engine) == (0, 0)


def test_the_refusal_of_an_office_code_reads_in_chinese(cli_zh, engine):
    result = cli_zh("office", "add", "../evil", "--name", "恶意服务处")

    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        "服务处代码不合格:'../evil'(只能用字母、数字、_ 和 -,以字母或数字开头,最多 16 个字符:"
        "[A-Za-z0-9][A-Za-z0-9_-]{0,15};不能是 group、CON、NUL 等保留名)"]
    assert offices_and_audits(engine) == (0, 0)


@pytest.mark.parametrize("code", ["A1", "EAST-2", "so_3", "A" * 16])
def test_a_plain_office_code_of_up_to_16_characters_is_added(cli, engine, code):
    assert ok(cli("office", "add", code, "--name", "第一服务处", "--json"))["office"] == code
    assert offices_and_audits(engine) == (1, 1)
