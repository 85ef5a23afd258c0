"""A report's content: the figures and rows the exactly-once bookkeeping hashes, and what changed between versions.

The hash is of the canonical JSON written to `tally.json` beside the workbook, so it does not depend on the
xlsx library; the same data gives the same hash on any machine.
"""
from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models.ledger.jsonable import to_jsonable
from models.tally.facts import MonthTally
from notifications.masking import mask_facts, mask_text
from notifications.report import METRICS


def canonical_json(content: dict) -> str:
    return json.dumps(content, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def content_hash(content: dict) -> str:
    """sha256 of the report's content (figures and rows), the same for the same data on any machine."""
    return text_hash(canonical_json(content))


def text_hash(content_text: str) -> str:
    """`content_hash` of a content already turned into its canonical JSON."""
    return hashlib.sha256(content_text.encode("utf-8")).hexdigest()


_dumps = functools.partial(json.dumps, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
_LINES_PER_PIECE = 1000


@dataclass(frozen=True)
class ContentText:
    """A report's content as its canonical JSON (`canonical_json(content)`, the same text), in pieces.

    A big month's callback lines are each turned into JSON once, for the group and for their office, and are
    never one dict per line nor one string of the whole month: the text is hashed and written piece by piece.
    `figures` is the content without its callback lines, what a later version's changes are judged on.
    """

    figures: dict
    pieces: tuple[str, ...]

    @property
    def hash(self) -> str:
        digest = hashlib.sha256()
        for piece in self.pieces:
            digest.update(piece.encode("utf-8"))
        return digest.hexdigest()

    def write(self, path: Path) -> None:
        with path.open("w", encoding="utf-8") as out:
            out.writelines(self.pieces)

    @property
    def text(self) -> str:
        return "".join(self.pieces)


def content_texts(group: MonthTally, offices: dict[str, MonthTally]) -> dict[str, ContentText]:
    """`ContentText` of the group's report and of each office's (`group.split()`), keyed by office.

    Lines are joined into pieces of up to `_LINES_PER_PIECE` lines of one office; the group's text and the office's
    share those pieces (the group's lines are its offices' lines, office by office), so the month's lines are
    in memory as text once.
    """
    findings = [to_jsonable(d) for d in group.discrepancies]
    office_pieces: dict[str, list[str]] = {office: [] for office in offices}
    group_pieces: list[str] = []
    run: list[str] = []
    run_office = None

    def flush() -> None:
        if run:
            # masked as one text: a scan of a thousand lines costs less than a look at each of their names
            piece = mask_text(",".join(run))
            group_pieces.append(piece)
            mine = office_pieces.get(run_office)
            if mine is not None:
                mine.append(piece)
            run.clear()

    for line in group.callbacks:
        if line.office != run_office or len(run) == _LINES_PER_PIECE:
            flush()
            run_office = line.office
        run.append(_dumps(dict(to_jsonable(line), on_time=line.on_time)))
    flush()
    by_office: dict[str, list[dict]] = {office: [] for office in offices}
    for row in findings:
        mine = by_office.get(row["office"])
        if mine is not None:
            mine.append(row)
    out = {group.office: _content_text(group.content_with(findings, []), group_pieces)}
    for office, tally in offices.items():
        out[office] = _content_text(tally.content_with(by_office[office], []), office_pieces[office])
    return out


def _content_text(figures: dict, lines: list[str]) -> ContentText:
    # canonical JSON sorts the keys: "callbacks" comes first, then the rest of the object as canonical_json writes it
    del figures["callbacks"]
    figures = mask_facts(figures)
    rest = canonical_json(figures)
    pieces = ['{"callbacks":[']
    for index, piece in enumerate(lines):
        if index:
            pieces.append(",")
        pieces.append(piece)
    pieces.append("]," + rest[1:] if rest != "{}" else "]}")
    return ContentText(figures, tuple(pieces))


@dataclass(frozen=True)
class Change:
    """One difference between two versions of a month's report."""

    section: str  # total, departments, workers, findings
    item: str
    metric: str
    before: str
    after: str


def diff_content(old: dict, new: dict) -> list[Change]:
    """What changed from one version's content to the next: figures per total/department/worker, findings."""
    changes: list[Change] = []
    names = [m[0] for m in METRICS]

    def rows(content: dict, section: str) -> dict[str, dict]:
        if section == "total":
            return {"": content.get("total") or {}}
        return {"/".join(str(r.get(k) or "") for k in ("office", "department", "worker")): r
                for r in content.get(section) or []}

    for section in ("total", "departments", "workers"):
        before, after = rows(old, section), rows(new, section)
        for item in sorted(set(before) | set(after)):
            b, a = before.get(item, {}), after.get(item, {})
            for name in names:
                if b.get(name) != a.get(name):
                    changes.append(Change(section, item, name, _text(b.get(name)), _text(a.get(name))))
    before_f = {f"{f['kind']}:{f['reference']}": f for f in old.get("findings") or []}
    after_f = {f"{f['kind']}:{f['reference']}": f for f in new.get("findings") or []}
    for key in sorted(set(before_f) ^ set(after_f)):
        changes.append(Change("findings", key, "", "" if key in after_f else "x", "x" if key in after_f else ""))
    return changes


def _text(value: Any) -> str:
    return "" if value is None else str(value)
