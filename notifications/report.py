"""The monthly report's documents: the workbook (xlsxwriter), the email body (Jinja2) and the chart (matplotlib).

Everything here is a function of a `MonthTally` and a locale: no settings, no clock, no database.
The workbook's creation date is fixed to the end of the month it reports, so the same figures give the
same bytes; what the exactly-once bookkeeping compares, though, is `content_hash` of the figures and
rows written (the JSON in `tally.json` beside the workbook), which does not depend on the xlsx library.
"""
from __future__ import annotations

import base64
import functools
import hashlib
import html
import json
import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from models import findings as catalogue
from models import texts
from models.ledger.codes import OFFICE_CODE_PATTERN, is_office_code
from models.tally.facts import CallbackLine, Discrepancy, Figures, GROUP, jsonable_row, MonthTally
from models.ledger.tables import DEPARTMENT_NAMES
from notifications.masking import mask_facts, mask_text

TEMPLATES = Path(__file__).with_name("templates")

# Everything here goes to administration: every text that came from the ledger (a collect reason, a department
# report's description, an imported note, a name) has its mobile and ID numbers masked before it is written.
# Names and codes repeat on every row of a big month: each distinct one is masked once.
_masked = functools.lru_cache(maxsize=1 << 16)(mask_text)


def _masked_cell(value: Any) -> Any:
    return _masked(value) if type(value) is str else value

# -- labels --------------------------------------------------------------------------------------

KIND_LABELS = {k.name: k.report_label for k in catalogue.TALLY_KINDS if k.report_label}

# (key, zh, en, format): the words are the catalogue's "report.metric.<key>"; format is one of int, money, rate
METRICS = tuple((key, *texts.TEXTS[f"report.metric.{key}"], fmt) for key, fmt in (
    ("orders", "int"), ("completed", "int"), ("on_time_rate", "rate"), ("accepted", "int"), ("receipts", "int"),
    ("revenue_cash", "money"), ("revenue_electronic", "money"), ("revenue", "money"), ("average_fee", "money"),
    ("phone_requests", "int"), ("reply_rate", "rate"), ("callbacks_due", "int"), ("callback_on_time_rate", "rate"),
    ("satisfaction_rate", "rate"), ("rework", "int"), ("rework_rate", "rate"), ("findings", "int"),
))
# a report row's detail that is a code, not ledger text -> its words
DETAIL_LABELS = catalogue.detail_labels()


def word(key: str, locale: str, **params: Any) -> str:
    """The catalogue's "report.<key>" in `locale`."""
    return texts.render(f"report.{key}", locale, **params)


def kind_label(kind: str, locale: str) -> str:
    return KIND_LABELS[kind](locale)


def department_label(code: str | None, locale: str) -> str:
    if code is None:
        return ""
    name = DEPARTMENT_NAMES.get(code)
    return name(locale) if name else code


def office_label(office: str, locale: str) -> str:
    return word("group", locale) if office == GROUP else office


class UnsafeReportPath(ValueError):
    """A report file would not land inside the reports folder: nothing of that report is written.

    Raised for an office code from before the code pattern (`models.ledger.codes`), still in an old ledger, and for
    any path that resolves outside the folder (a `..`, an absolute part, a symlink pointing away).
    """

    def __init__(self, office: str | None, path: Path | str, root: Path | str) -> None:
        self.office, self.path, self.root = office, str(path), str(root)
        super().__init__(self.message("en"))

    def message(self, locale: str) -> str:
        if self.office is not None:
            return texts.render("report.unsafe_office", locale, office=self.office, pattern=OFFICE_CODE_PATTERN)
        return texts.render("report.unsafe_path", locale, path=self.path, root=self.root)


def office_dir(office: str) -> str:
    """The folder name of an office's reports; the group's is `group` ("*" is no folder name).

    A code that is not a well-formed office code is refused here, before any path is built from it.
    """
    if office == GROUP:
        return "group"
    if not is_office_code(office):
        raise UnsafeReportPath(office, office, "")
    return office


def confined(root: Path, path: Path) -> Path:
    """`path`, once its resolved form is checked to be inside `root`'s; else UnsafeReportPath."""
    if not path.resolve().is_relative_to(root.resolve()):
        raise UnsafeReportPath(None, path, root)
    return path


# -- hashing and changes ---------------------------------------------------------------------------

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
    findings = [jsonable_row(d) for d in group.discrepancies]
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
        run.append(_dumps(dict(jsonable_row(line), on_time=line.on_time)))
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


# -- the workbook --------------------------------------------------------------------------------

def _number(value: Any) -> Any:
    # xlsx stores numbers as doubles; the exact Decimal lives in tally.json and the hash
    if isinstance(value, Decimal):
        return float(value)
    return value


def _local_naive(moment: datetime | None, tz) -> datetime | None:
    return None if moment is None else moment.astimezone(tz).replace(tzinfo=None)


_EXCEL_EPOCH = datetime(1899, 12, 31)


def excel_time(moment: datetime | None, tz) -> float | None:
    """`moment` in local time as Excel's serial day number, exactly as xlsxwriter's `write_datetime` computes it
    (so `write_number` of it with a date format writes the same cell), without its per-cell checks."""
    if moment is None:
        return None
    delta = moment.astimezone(tz).replace(tzinfo=None) - _EXCEL_EPOCH
    serial = delta.days + (float(delta.seconds) + float(delta.microseconds) / 1e6) / (60 * 60 * 24)
    return serial + 1 if serial > 59 else serial  # Excel counts 1900-02-29, which never was


def _width(value: Any) -> int:
    text = value.strftime("%Y-%m-%d %H:%M") if isinstance(value, datetime) else str(value if value is not None else "")
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in text)


# a column's width is judged from its header and its first rows: measuring all 265k cells of a big month cost
# a tenth of the report, and a column's later rows are the same kind of value as its first
WIDTH_SAMPLE = 200
DATETIME_WIDTH = len("2026-07-01 09:00")
CONSTANT_MEMORY_ROWS = 50_000
EXCEL_ROWS = 1_048_576  # rows of a worksheet


class _Sheet:
    """A table on a worksheet: frozen header row, per-column number formats, widths from the header and first rows.

    Rows are written in order only: a large workbook is written with `constant_memory`, which flushes each
    row as the next begins.
    """

    def __init__(self, book, formats, name: str) -> None:
        self.ws = book.add_worksheet(name[:31])
        self.formats = formats
        self.row = 0
        self.widths: dict[int, int] = {}

    def header(self, headers: list[str], *, freeze: bool = True) -> None:
        for col, header in enumerate(headers):
            self.ws.write(self.row, col, header, self.formats["header"])
            self.widths[col] = max(self.widths.get(col, 0), _width(header))
        if freeze and self.row == 0:
            self.ws.freeze_panes(1, 0)

    def table(self, headers: list[str], kinds: list[str], rows: list[list[Any]], *, freeze: bool = True) -> None:
        if freeze and self.row == 0 and rows:
            self.ws.autofilter(0, 0, len(rows), len(headers) - 1)
        self.header(headers, freeze=freeze)
        ws, formats = self.ws, self.formats
        number_formats = [formats[kind] for kind in kinds]
        text, when = formats["text"], formats["datetime"]
        widths = self.widths
        for index, values in enumerate(rows):
            self.row += 1
            row = self.row
            for col, value in enumerate(values):
                if value is None or value == "":
                    continue  # an empty cell: nothing to write (most rows have no rework, half no detail)
                cls = type(value)
                if cls is str:
                    ws.write_string(row, col, value, text)
                elif cls is Decimal or cls is int or cls is float:
                    ws.write_number(row, col, float(value) if cls is Decimal else value, number_formats[col])
                elif cls is datetime:
                    ws.write_datetime(row, col, value, when)
                else:
                    ws.write_string(row, col, str(value), text)
                if index < WIDTH_SAMPLE:
                    kind = kinds[col]
                    # a datetime column holds Excel serial numbers, shown as yyyy-mm-dd hh:mm
                    width = DATETIME_WIDTH if kind == "datetime" else _width(value) + (3 if kind == "money" else 0)
                    if width > widths.get(col, 0):
                        widths[col] = width
        self.row += 2

    def finish(self) -> None:
        for col, width in self.widths.items():
            self.ws.set_column(col, col, min(max(width + 2, 8), 60))


def _metric_values(figures: Figures) -> list[Any]:
    data = figures.as_dict()
    return [Decimal(data[key]) if fmt != "int" and data[key] is not None else data[key]
            for key, _zh, _en, fmt in METRICS]


def _metric_headers(locale: str) -> list[str]:
    return [texts.render(f"report.metric.{key}", locale) for key, *_rest in METRICS]


def _metric_kinds() -> list[str]:
    return [fmt for *_rest, fmt in METRICS]


def _detail(d, locale: str) -> str:
    # a missing callback carries a code for its two cases; every other detail is ledger text (a reason, a description)
    key = f"{d.kind}:{d.detail}"
    return DETAIL_LABELS[key](locale) if key in DETAIL_LABELS else d.detail


@dataclass(frozen=True)
class SheetRows:
    """The rows of a workbook's two long sheets (findings; callbacks & rework), as written."""

    findings: list[list[Any]]
    callbacks: list[list[Any]]

    @classmethod
    def of(cls, tally: MonthTally, *, locale: str, tz) -> SheetRows:
        return cls([_finding_row(d, locale, tz) for d in tally.discrepancies],
                   [_callback_row(c, locale, tz) for c in tally.callbacks])

    @classmethod
    def split(cls, group: MonthTally, offices: Iterable[str], *, locale: str, tz) -> dict[str, SheetRows]:
        """The group's rows and each office's, every row made once (a row is the same in both workbooks)."""
        out = {office: cls([], []) for office in offices}
        every = cls([], [])
        for source, make, part in ((group.discrepancies, _finding_row, "findings"),
                                   (group.callbacks, _callback_row, "callbacks")):
            for item in source:
                row = make(item, locale, tz)
                getattr(every, part).append(row)
                mine = out.get(item.office)
                if mine is not None:
                    getattr(mine, part).append(row)
        out[group.office] = every
        return out


def _finding_row(d: Discrepancy, locale: str, tz) -> list[Any]:
    return [kind_label(d.kind, locale), _masked_cell(d.office), _masked_cell(d.order_number), mask_text(d.reference),
            department_label(d.department, locale), _masked_cell(d.worker), _masked_cell(d.worker_name),
            excel_time(d.occurred_at, tz), d.amount, d.expected, mask_text(_detail(d, locale))]


def _callback_row(c: CallbackLine, locale: str, tz) -> list[Any]:
    return [_masked_cell(c.office), c.order_number, c.rework_of, department_label(c.department, locale),
            _masked_cell(c.worker), _masked_cell(c.worker_name),
            excel_time(c.due_at, tz), excel_time(c.done_at, tz), word(c.outcome, locale) if c.outcome else "",
            word("yes" if c.on_time else "no", locale), c.rework_order]


def write_workbook(tally: MonthTally, path: Path, *, locale: str, version: int, tz,
                   changes: list[Change] | None = None, previous_version: int | None = None,
                   rows: SheetRows | None = None, sheet_rows: int = EXCEL_ROWS,
                   constant_memory_rows: int = CONSTANT_MEMORY_ROWS) -> Path:
    """Write the month's workbook to `path` (sheets: summary, departments, workers, findings, callbacks & rework,
    and "changes since v N" when given). `rows`: the long sheets' rows if made already (`SheetRows.split`);
    a month of more than `constant_memory_rows` long-sheet rows streams them to temporary files."""
    import xlsxwriter

    long_rows = SheetRows.of(tally, locale=locale, tz=tz) if rows is None else rows
    path.parent.mkdir(parents=True, exist_ok=True)
    # A month's workbook is built in memory (no temporary files: on this disk their writes and removals
    # cost more than the cells); a very large one streams its rows to temporary files instead
    # (constant_memory), which keeps a 1M-order month in bounded memory. The choice depends on the data
    # only, so the same figures still give the same bytes.
    big = len(tally.callbacks) + len(tally.discrepancies) > constant_memory_rows
    book = xlsxwriter.Workbook(str(path), {"remove_timezone": True, "constant_memory": big, "in_memory": not big})
    # a fixed creation date makes the same figures give the same bytes
    book.set_properties({"title": title(tally, locale=locale, version=version), "author": "bianmin",
                         "created": _local_naive(tally.end, tz)})
    formats = {
        "header": book.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1, "text_wrap": True,
                                   "valign": "top"}),
        "int": book.add_format({"num_format": "0"}),
        "money": book.add_format({"num_format": "#,##0.00"}),
        "rate": book.add_format({"num_format": "0.0%"}),
        # text cells take the default style (no "s" attribute): an empty format of its own is one more XML attribute,
        # escaped, on each of a big month's ~2M text cells
        "text": None,
        "datetime": book.add_format({"num_format": "yyyy-mm-dd hh:mm"}),
    }
    w = lambda key, **p: word(key, locale, **p)  # noqa: E731

    # summary: headline with the previous month, then offices, then findings by kind
    sheet = _Sheet(book, formats, w("summary"))
    total, previous = tally.total, tally.previous
    this_values = _metric_values(total)
    prev_values = _metric_values(previous) if previous else [None] * len(METRICS)
    rows = []
    for (key, _zh, _en, fmt), now, before in zip(METRICS, this_values, prev_values):
        change = (now - before) if now is not None and before is not None else None
        rows.append([texts.render(f"report.metric.{key}", locale), now, before, change])
    sheet.header([w("metric"), w("this_month"), w("previous_month"), w("change")])
    for (key, _zh, _en, fmt), row in zip(METRICS, rows):
        sheet.row += 1
        sheet.ws.write_string(sheet.row, 0, row[0], formats["text"])
        sheet.widths[0] = max(sheet.widths.get(0, 0), _width(row[0]))
        for col in (1, 2, 3):
            if row[col] is None:
                sheet.ws.write_blank(sheet.row, col, None, formats[fmt])
            else:
                sheet.ws.write_number(sheet.row, col, _number(row[col]), formats[fmt])
                sheet.widths[col] = max(sheet.widths.get(col, 0), _width(row[col]) + 3)
    sheet.row += 2
    sheet.table([w("month"), w("office"), w("version")], ["text", "text", "int"],
                [[tally.month, office_label(tally.office, locale), version]], freeze=False)
    if tally.office == GROUP:
        sheet.table([w("office")] + _metric_headers(locale), ["text"] + _metric_kinds(),
                    [[f.office] + _metric_values(f) for f in tally.by_office()], freeze=False)
    sheet.table([w("kind"), w("count")], ["text", "int"],
                [[kind_label(k, locale), n] for k, n in tally.findings_by_kind().items()], freeze=False)
    sheet.finish()

    sheet = _Sheet(book, formats, w("departments"))
    sheet.table([w("department")] + _metric_headers(locale), ["text"] + _metric_kinds(),
                [[department_label(f.department, locale)] + _metric_values(f) for f in tally.by_department()]
                + [[w("total")] + this_values])
    sheet.finish()

    sheet = _Sheet(book, formats, w("workers"))
    sheet.table([w("office"), w("department"), w("worker_code"), w("worker")] + _metric_headers(locale),
                ["text"] * 4 + _metric_kinds(),
                [[_masked_cell(f.office), department_label(f.department, locale), _masked_cell(f.worker),
                  _masked_cell(f.worker_name)] + _metric_values(f)
                 for f in tally.by_worker()])
    sheet.finish()

    for name, headers, kinds, rows_of_sheet in (
            ("findings", [w("kind"), w("office"), w("order"), w("reference"), w("department"), w("worker_code"),
                          w("worker"), w("occurred_at"), w("amount"), w("expected"), w("detail")],
             ["text"] * 7 + ["datetime", "money", "money", "text"], long_rows.findings),
            ("callbacks", [w("office"), w("order"), w("rework_of"), w("department"), w("worker_code"), w("worker"),
                           w("due_at"), w("done_at"), w("outcome"), w("on_time"), w("rework_order")],
             ["text"] * 6 + ["datetime", "datetime", "text", "text", "text"], long_rows.callbacks)):
        # a sheet holds at most `sheet_rows` rows, header included (Excel's limit): the rest continue on
        # "<name> (2)", ..., never dropped
        per_sheet = sheet_rows - 1
        for part, start in enumerate(range(0, max(len(rows_of_sheet), 1), per_sheet)):
            sheet = _Sheet(book, formats, w(name) + (f" ({part + 1})" if part else ""))
            fits = len(rows_of_sheet) <= per_sheet
            sheet.table(headers, kinds, rows_of_sheet if fits else rows_of_sheet[start:start + per_sheet])
            sheet.finish()

    if changes is not None and previous_version is not None:
        sheet = _Sheet(book, formats, w("changes", version=previous_version))
        labels = {key: texts.render(f"report.metric.{key}", locale) for key, *_rest in METRICS}
        rows = [[c.section, mask_text(c.item) or w("total"), labels.get(c.metric, c.metric),
                 (w("removed") if c.before and c.section == "findings" else c.before),
                 (w("added") if c.after and c.section == "findings" else c.after)] for c in changes]
        sheet.table([w("section"), w("item"), w("metric"), w("before"), w("after")], ["text"] * 5,
                    rows or [[w("no_changes"), "", "", "", ""]])
        sheet.finish()
    book.close()
    return path


# -- the chart -------------------------------------------------------------------------------------

CJK_FONT_NAMES = ("Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "WenQuanYi Micro Hei",
                  "WenQuanYi Zen Hei", "SimHei", "Microsoft YaHei", "PingFang SC", "Droid Sans Fallback")


def cjk_font() -> str | None:
    """The first installed font with Chinese glyphs, or None (then the chart is labelled in English)."""
    from matplotlib import font_manager

    installed = {f.name for f in font_manager.fontManager.ttflist}
    return next((name for name in CJK_FONT_NAMES if name in installed), None)


# One Figure on one Agg canvas for every chart of a run: its renderer keeps the measured texts (department
# names, tick labels) from one office's chart to the next. The lock keeps two runs in threads off each other
# (and off matplotlib's global rcParams, which rc_context changes).
_CHART_LOCK = threading.Lock()
_CHART_AXES: dict[str | None, tuple] = {}  # font -> (figure, revenue axes, satisfaction axes)


def _chart_axes(font: str | None) -> tuple:
    """The figure and its two axes for `font`, emptied of the previous chart's bars and points.

    The axes are kept, not rebuilt: their ticks, spines and labels are made once per process (under the
    rc_context of their font), which was most of a chart's cost.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if font not in _CHART_AXES:
        figure = Figure(figsize=(7, 3.6), dpi=100)
        FigureCanvasAgg(figure)
        ax = figure.add_subplot()
        ax2 = ax.twinx()
        # fixed margins for the two y-axis labels: tight_layout measured every text first, a third of the chart
        figure.subplots_adjust(left=0.15, right=0.9, bottom=0.12, top=0.9)
        _CHART_AXES[font] = (figure, ax, ax2)
    figure, ax, ax2 = _CHART_AXES[font]
    for container in list(ax.containers):
        container.remove()
    for line in list(ax2.lines):
        line.remove()
    ax.relim()
    ax2.relim()
    return figure, ax, ax2


def write_chart(tally: MonthTally, path: Path, *, locale: str) -> Path:
    """A PNG of revenue (bars) and satisfaction rate (points) per department."""
    from matplotlib import rc_context

    font = cjk_font() if locale != "en" else None
    chart_locale = "zh_CN" if font else "en"
    departments = tally.by_department()
    names = [department_label(f.department, chart_locale) for f in departments]
    revenue = [float(f.revenue) for f in departments]
    satisfaction = [float(f.satisfaction_rate) * 100 if f.satisfaction_rate is not None else float("nan")
                    for f in departments]
    rc = {"font.family": [font, "DejaVu Sans"]} if font else {}
    with _CHART_LOCK, rc_context(rc):
        fig, ax, ax2 = _chart_axes(font)
        positions = range(len(names))
        ax.bar(positions, revenue, color="#4472C4", label=texts.render("report.chart.revenue", chart_locale))
        ax.set_xticks(list(positions), names)
        ax.set_ylabel(texts.render("report.chart.revenue", chart_locale))
        ax.autoscale_view()
        ax2.plot(list(positions), satisfaction, "o", color="#C00000", markersize=9,
                 label=texts.render("report.chart.satisfaction", chart_locale))
        ax2.set_ylim(0, 105)
        ax2.set_ylabel(texts.render("report.chart.satisfaction", chart_locale))
        label = office_label(tally.office, chart_locale)
        ax.set_title(f"{label} {tally.month}")
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, format="png", metadata={"Software": None})
    return path


# -- the email -------------------------------------------------------------------------------------

@functools.cache
def _environment() -> Environment:
    # only the HTML templates escape: the title is a mail subject and a workbook property, plain text, and the
    # HTML template escapes it once itself (escaping it here too showed "R&amp;amp;D" in the body)
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)),
                      autoescape=select_autoescape(["html", "html.j2"], default_for_string=False),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=False)
    env.filters["pct"] = lambda v: "–" if v is None else f"{Decimal(v) * 100:.1f}%"
    env.filters["money"] = lambda v: "–" if v is None else f"{Decimal(v):,.2f}"
    env.globals["text"] = texts.render
    env.globals["html_text"] = _html_text
    return env


def _html_text(code: str, locale: str, **values: Any) -> Markup:
    """A catalogue text for the HTML body: its words escaped as the HTML templates once wrote them (an apostrophe
    left as is), the values filled in escaped in full, as `{{ value }}` would be."""
    return Markup(html.escape(texts.words(code, locale), quote=False)).format(**values)


def title_for(month: str, office: str, version: int, *, locale: str) -> str:
    """The email subject / workbook title of one report version."""
    template = _environment().get_template("report_title.txt.j2")
    return template.render(locale=locale, month=month, office=office_label(office, locale), version=version).strip()


def title(tally: MonthTally, *, locale: str, version: int) -> str:
    return title_for(tally.month, tally.office, version, locale=locale)


def email_html(tally: MonthTally, *, locale: str, version: int, workbook: Path, chart: Path | None = None,
               inline_chart: bool = True, changes: list[Change] | None = None,
               previous_version: int | None = None) -> str:
    """The message body: headline figures against last month, findings by kind, offices, the chart, the file's place.

    With `inline_chart` the PNG is embedded in the HTML (for email); without, the body names the attached
    chart instead, so a chat channel gets a short summary rather than 30 kB of base64.
    """
    chart_data = (base64.b64encode(chart.read_bytes()).decode("ascii")
                  if inline_chart and chart and chart.exists() else None)
    total, previous = tally.total, tally.previous
    headline = []
    for key, _zh, _en, fmt in METRICS:
        now = total.as_dict()[key]
        before = previous.as_dict()[key] if previous else None
        headline.append(dict(label=texts.render(f"report.metric.{key}", locale), fmt=fmt, now=now, before=before))
    template = _environment().get_template("report_email.html.j2")
    return mask_text(template.render(
        locale=locale,
        title=title(tally, locale=locale, version=version),
        month=tally.month, office=office_label(tally.office, locale), version=version,
        headline=headline,
        findings=[dict(label=kind_label(k, locale), count=n) for k, n in tally.findings_by_kind().items() if n],
        findings_total=len(tally.discrepancies),
        departments=[dict(name=department_label(f.department, locale), **f.as_dict()) for f in tally.by_department()],
        offices=[f.as_dict() for f in tally.by_office()] if tally.office == GROUP else [],
        chart=chart_data, chart_name=chart.name if chart else None, workbook=str(workbook),
        workbook_name=workbook.name,
        changes=len(changes) if changes is not None else None, previous_version=previous_version,
    ))


def atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
