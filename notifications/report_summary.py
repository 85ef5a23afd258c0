"""The monthly report's HTML summary (Jinja2) with its chart (matplotlib), and its title.

A function of a `MonthTally` and a locale: no settings, no clock, no database.
"""
from __future__ import annotations

import base64
import functools
import html
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from models import texts
from models.tally.facts import GROUP, MonthTally
from notifications.masking import mask_text
from notifications.report import METRICS, department_label, kind_label, office_label
from notifications.report_content import Change

TEMPLATES = Path(__file__).with_name("templates")


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
               previous_version: int | None = None, signoff: str | None = None, unconfirmed: str = "",
               open_disputes: int = 0) -> str:
    """The message body: headline figures against last month, findings by kind, offices, the chart, the file's place.

    `signoff` says how the departments checked it: None (no sign-off: bianmin reconciled their records),
    "confirmed" (all four confirmed) or "deadline" (sent at the deadline; `unconfirmed` names who had not).

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
        intro="report.email.intro" + (f".{signoff}" if signoff else ""), unconfirmed=unconfirmed,
        open_disputes=open_disputes,
    ))
