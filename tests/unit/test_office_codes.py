"""The office code pattern, declared once in models/ledger/codes.py, and the report folder built from it."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from models.ledger.codes import OFFICE_CODE_PATTERN, is_office_code
from notifications import report

HOSTILE = ["../evil", "/tmp/x", "", "a/b", "..", ".", "CON", "nul", "group", "A" * 17, "服务处", "a\nb", "A1\n",
           "-A1", "_A1", "A 1", "A1.", "Ａ1", "a\\b", "a\x00b"]


@pytest.mark.parametrize("code", ["A1", "a", "9", "SO-1", "east_2", "A" * 16, "Group1"])
def test_a_plain_word_of_up_to_16_letters_digits_dashes_and_underscores_is_an_office_code(code):
    assert is_office_code(code)


@pytest.mark.parametrize("code", HOSTILE, ids=repr)
def test_a_path_an_empty_name_a_reserved_name_or_a_long_or_foreign_word_is_not_an_office_code(code):
    assert not is_office_code(code)


def test_the_pattern_is_the_one_documented_for_the_desk():
    assert OFFICE_CODE_PATTERN == "[A-Za-z0-9][A-Za-z0-9_-]{0,15}"
    desk_page = (Path(__file__).resolve().parents[2] / "docs" / "desk.md").read_text(encoding="utf-8")
    assert f"`{OFFICE_CODE_PATTERN}`" in desk_page


@pytest.mark.parametrize("code", ["../evil", "/tmp/x", "a/b", "..", "", "group"], ids=repr)
def test_a_report_folder_is_never_made_of_a_code_outside_the_pattern(code):
    with pytest.raises(report.UnsafeReportPath) as refused:
        report.office_dir(code)
    assert repr(code) in str(refused.value) and "\n" not in str(refused.value)
    assert repr(code) in refused.value.message("zh_CN")


def test_the_group_report_keeps_its_folder_and_an_office_its_code():
    assert (report.office_dir("*"), report.office_dir("A1")) == ("group", "A1")


def test_a_path_inside_the_reports_folder_is_kept(tmp_path):
    root = tmp_path / "reports"
    assert report.confined(root, root / "A1" / "2026-10" / "v1") == root / "A1" / "2026-10" / "v1"


@pytest.mark.parametrize("part", ["../evil", "/tmp/x", "A1/../../evil"])
def test_a_path_that_resolves_outside_the_reports_folder_is_refused(tmp_path, part):
    root = tmp_path / "reports"
    with pytest.raises(report.UnsafeReportPath):
        report.confined(root, root / part / "2026-10")


def test_a_symlink_in_the_reports_folder_pointing_away_is_refused(tmp_path):
    root = tmp_path / "reports"
    root.mkdir()
    os.symlink(tmp_path / "elsewhere", root / "A1")
    with pytest.raises(report.UnsafeReportPath):
        report.confined(root, root / "A1" / "2026-10")
