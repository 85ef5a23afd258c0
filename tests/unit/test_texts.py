"""The translation catalogue (models/texts.py and its parts texts_*.py): complete in both languages, and the only
source of words, the web console's pages included."""
from __future__ import annotations

import re
import string
from pathlib import Path

from models import findings, texts
from models.texts import TEXTS, Text

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [p for folder in ("commands", "models", "flows", "notifications", "console") for p in (ROOT / folder).rglob("*.py")]
TEMPLATES = [p for folder in ("notifications", "console") for p in (ROOT / folder / "templates").rglob("*.j2")]

# a code a DomainError (or an import refusal built on one) is raised with
RAISED = re.compile(r"\b(?:(?:DomainError|NotFound|ImportRefused|Refused)\(|RowProblem\([^,()]+,)\s*\"([\w.-]+)\"")
# any literal naming a catalogue area's code; a literal ending in "." starts an f-string family (checked apart)
AREA = re.compile(r"[\"']((?:cli|digest|report|flow|calendar|department|console)\.[\w.-]*)(\{)?")
# a template's words: text("code", ...)
IN_TEMPLATE = re.compile(r"\b(?:html_)?text\(\s*\"([\w.-]+)\"")

# placeholders one language needs and the other spells out: the code's zh_CN says "两位" for `places`
ONE_LANGUAGE_ONLY = {"money_places": {"places"}}


def _placeholders(template: str) -> set[str]:
    """The names a text fills in."""
    return {field.split(".")[0].split("[")[0] for _lit, field, _spec, _conv in string.Formatter().parse(template)
            if field}


def _texts() -> dict[str, Text]:
    """The catalogue and the finding kinds' labels, which are declared with their kinds."""
    labels = {f"{k.name}.{field}": getattr(k, field) for k in findings.ALL
              for field in ("label", "report_label", "count_label") if getattr(k, field) is not None}
    labels |= {f"{k.name}.detail.{code}": label for k in findings.ALL for code, label in k.detail_labels}
    return TEXTS | labels


def test_every_text_is_in_both_languages_and_of_the_one_text_type():
    assert findings.Label is Text
    for code, text in _texts().items():
        assert isinstance(text, Text), code
        assert text.zh_CN.strip() and text.en.strip(), code


def test_a_code_takes_the_same_placeholders_in_both_languages():
    mismatched = {}
    for code, text in _texts().items():
        zh, en = _placeholders(text.zh_CN), _placeholders(text.en)
        if zh ^ en != ONE_LANGUAGE_ONLY.get(code, set()):
            mismatched[code] = (sorted(zh), sorted(en))
    assert mismatched == {}


def test_every_code_the_code_base_uses_is_in_the_catalogue():
    used, families = set(), set()
    for path in SOURCES:
        if path.name.startswith("texts"):  # the catalogue and its parts
            continue
        source = path.read_text(encoding="utf-8")
        used |= {(m, path.name) for m in RAISED.findall(source)}
        for code, brace in AREA.findall(source):
            (families if brace or code.endswith(".") else used).add((code.rstrip("."), path.name))
    for path in TEMPLATES:
        used |= {(m, path.name) for m in IN_TEMPLATE.findall(path.read_text(encoding="utf-8"))}
    assert len(used) > 200  # the patterns still find the code base's codes
    assert sorted((code, where) for code, where in used if code not in TEXTS) == []
    # f"cli.alerts.status.{status}": the family has entries
    assert sorted((f, where) for f, where in families if not any(c.startswith(f + ".") for c in TEXTS)) == []


def test_a_named_term_has_words_in_the_catalogue():
    for template in (w for text in TEXTS.values() for w in text):
        for _lit, field, spec, _conv in string.Formatter().parse(template):
            if spec in texts.TERMS:
                assert any(code.startswith(spec + ".") for code in TEXTS), (template, spec)


def test_every_thing_category_and_department_a_refusal_names_has_words():
    from models.desk.rules import WHAT
    from models.ledger.tables import CATEGORIES, DEPARTMENTS, OUT_OF_SCOPE_CATEGORIES

    named = ([f"thing.{w}" for w in WHAT.values()] + [f"department.{d}" for d in DEPARTMENTS]
             + [f"category.{c}" for c in (*CATEGORIES, *OUT_OF_SCOPE_CATEGORIES)]
             + [f"action.{a}" for a in ("register", "reply", "issue", "callback")])
    assert [code for code in named if code not in TEXTS] == []


def test_render_names_a_term_and_a_text_value_in_the_locale():
    assert texts.render("not_found", "zh_CN", what="work_order", ref="WO-1") == "找不到通知单:WO-1"
    assert texts.render("not_found", "en", what="work_order", ref="WO-1") == "No work order WO-1"
    assert texts.render("cs_only", "en", staff="E1", department="engineering", action="issue") == (
        "Only customer service may issue: E1 belongs to engineering (procedure 2 and 4.4)")
    assert texts.render("out_of_scope", "zh_CN", category="oddity").startswith("不受理:oddity(oddity)")  # unknown
    assert texts.render("import_required", "en", column=Text("完工时间", "completed_at")) == "completed_at is empty"


def test_render_fills_a_code_in_the_locale_and_shows_an_unknown_code_as_itself():
    assert texts.render("cli.desk.completed", "en", order="WO-1") == "WO-1 completed"
    assert texts.render("cli.desk.completed", "zh_CN", order="WO-1") == "WO-1 已完工"
    assert texts.render("no.such.code", "en") == "no.such.code"


def test_the_console_speaks_only_through_the_catalogue():
    """No page template carries words of its own: every visible word is text("console....")."""
    pages = [p for p in TEMPLATES if "console" in p.parts]
    assert len(pages) >= 6
    for path in pages:
        source = path.read_text(encoding="utf-8")
        assert not re.search(r"\b_\(", source), path.name  # the old inline (zh, en) pairs
        visible = re.sub(r"{[{%#].*?[}%#]}|<[^>]*>|&\w+;", " ", source, flags=re.S)
        assert not re.findall(r"[\u4e00-\u9fff]", visible), path.name
        assert not re.findall(r"\b[A-Za-z]{3,}\b", visible), (path.name, re.findall(r"\b[A-Za-z]{3,}\b", visible))
    console_codes = [c for c in TEXTS if c.startswith("console.")]
    assert len(console_codes) > 100
