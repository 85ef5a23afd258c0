"""The finding catalogue is the one place a kind is named; routes, labels and kind sets are read from it."""
from __future__ import annotations

import re
from pathlib import Path

from flows.callbacks import CALLBACK_KINDS, REPLY_KINDS
from flows.cash import CASH_KINDS
from commands.cash import _KIND_NAMES
from flows.settings import DEFAULT_ROUTES, Settings
from models import findings as catalogue
from models.tally.facts import KINDS as TALLY_KINDS
from notifications.report import KIND_LABELS, kind_label

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = ROOT / "models" / "findings.py"


def _code_files() -> list[Path]:
    return sorted(p for folder in ("models", "notifications", "flows", "commands") for p in (ROOT / folder).rglob("*")
                  if p.suffix in (".py", ".j2") and p != CATALOGUE)


def _quoted(name: str) -> re.Pattern[str]:
    # a string literal holding the kind, alone or as a key's first part: "x", 'x', f"x:{...}"
    return re.compile(r"""["']""" + re.escape(name) + r"""["':]""")


def test_every_kind_is_named_in_the_catalogue_only():
    files = {p: p.read_text(encoding="utf-8") for p in _code_files()}
    typed = {(k.name, str(p.relative_to(ROOT)))
             for k in catalogue.ALL for p, text in files.items() if _quoted(k.name).search(text)}
    assert typed == set()


def test_every_kind_is_named_once_in_the_catalogue():
    text = CATALOGUE.read_text(encoding="utf-8")
    assert {k.name: len(_quoted(k.name).findall(text)) for k in catalogue.ALL} == {k.name: 1 for k in catalogue.ALL}


def test_the_search_for_kind_literals_sees_a_kind_typed_in_a_module():
    assert _quoted("cash-shortfall").search('kind = "cash-shortfall"')
    assert _quoted("cash-shortfall").search('key = f"cash-shortfall:{number}"')
    assert not _quoted("callback-missing").search('kind = "rework-callback-missing"')


def test_default_routes_are_the_catalogues_routes():
    assert DEFAULT_ROUTES == {
        "reply-overdue": "cs-supervisor",
        "callback-overdue:1": "cs-supervisor",
        "callback-overdue:2": "cs-manager",
        "rework-missing": "cs-supervisor",
        "rework-callback-missing:1": "cs-supervisor",
        "rework-callback-missing:2": "cs-manager",
        "rework-callback-missing": "cs-supervisor",
        "order-overdue": "{dept}-supervisor",
        "cash-unhanded": "finance-manager,{dept}-supervisor",
        "cash-shortfall": "finance-manager,{dept}-supervisor",
        "cash-overcount": "finance-manager",
        "receipt-unreturned": "finance-manager,{dept}-supervisor",
        "receipt-gap": "finance-manager,{dept}-supervisor",
        "receipt-double-use": "finance-manager",
        "fee-not-collected": "cs-supervisor",
        "monthly-report": "administration",
        "flow-failed": "ops",
        "channel-failing": "ops",
        "signoff-draft": "{party}",
        "signoff-reminder": "{party}",
        "signoff-overdue": "cs-manager",
    }
    assert list(DEFAULT_ROUTES) == list(catalogue.default_routes())
    assert Settings().alert_routes == catalogue.default_routes()


def test_every_kind_with_alerts_has_a_route_and_a_digest_label_in_both_languages():
    alerting = [k for k in catalogue.ALL if k.severity is not None]
    assert [k.name for k in alerting if not (k.route or k.level_routes)] == []
    assert [k.name for k in alerting if k.label is None or not k.label.zh_CN or not k.label.en] == []


def test_the_flows_kind_sets_are_the_catalogues():
    assert REPLY_KINDS == {"reply-overdue"}
    assert CALLBACK_KINDS == {"callback-overdue", "rework-callback-missing", "rework-missing", "order-overdue"}
    assert CASH_KINDS == {"cash-unhanded", "cash-shortfall", "cash-overcount", "receipt-unreturned", "receipt-gap",
                          "receipt-double-use", "fee-not-collected"}
    assert TALLY_KINDS == tuple(k.name for k in catalogue.TALLY_KINDS)


def test_the_report_and_the_cli_read_their_labels_from_the_catalogue():
    assert KIND_LABELS["handover-shortfall"] == ("交款短缺", "Handover shortfall")
    assert kind_label("receipt-gap", "en") == catalogue.RECEIPT_GAP.report_label.en == "Receipt gap"
    assert set(KIND_LABELS) == set(TALLY_KINDS)
    assert _KIND_NAMES["cash-overcount"] == ("交款长款", "handover over-count")
    assert set(_KIND_NAMES) == CASH_KINDS


def test_a_key_is_the_kind_then_its_parts():
    assert catalogue.CASH_UNHANDED.key("A01-PL1", "2026-03-02") == "cash-unhanded:A01-PL1:2026-03-02"
    assert catalogue.CALLBACK_OVERDUE.key("WO-1", 2) == "callback-overdue:WO-1:2"
    assert catalogue.CALLBACK_OVERDUE.severity_at(1) == 2
    assert catalogue.CALLBACK_OVERDUE.severity_at(2) == 3
