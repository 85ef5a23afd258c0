"""Report injection: names and notes that start like a formula (`=`, `+`, `-`, `@`, a tab, a carriage return)
or carry HTML, through the monthly workbook, the HTML summary, the mail subject and the digests.

Decided: a workbook cell holds the text exactly as entered, as a text cell (xlsxwriter's write_string: Excel
and LibreOffice show a text cell, they never evaluate it), so administration reads what the clerk typed; no
quote prefix that would change the data. HTML is escaped exactly once; the subject line is plain text.
"""
from __future__ import annotations

import dataclasses
import html
import re
from decimal import Decimal
from pathlib import Path

import openpyxl
from sqlalchemy import select

from flows.callbacks import run_chase_replies
from flows.dispatch import run_dispatch
from flows.tally import run_monthly_tally
from models import desk
from models.ledger.db import transaction
from models.tally.queries import reconcile_month
from models.ledger.tables import Callback
from notifications import report_summary
from tests.builders import OfficeCodes, accepted_job, at, collect_fee, give_receipts, request_for, setup_office
from tests.servers import write_apprise_config

FORMULAS = ['=1+2', '=HYPERLINK("http://evil.example/","点我")', "=cmd|' /C calc'!A0", "+SUM(1,2)", "-2+3",
            "@SUM(A1:A2)"]
CONTROL = ["\t=1+2", "\r=1+2"]  # a clerk cannot type these at the desk: an old ledger's rows can hold them
MARKUP = ["<script>alert(1)</script>", "Tom &amp; Jerry", "a < b & c > d"]
AFTER_OCTOBER = at("2026-11-01", "08:00")


def build_october(engine, calendar) -> tuple[OfficeCodes, list[str]]:
    """October at A1 with hostile text in every field the workbook shows; the office and the texts planted."""
    planted: list[str] = []
    with transaction(engine) as s:
        o = setup_office(s)
        for n, name in enumerate(FORMULAS + MARKUP):
            desk.add_staff(s, code=f"A1-W{n:02d}", name=name, office="A1", department="engineering", role="worker",
                           at=at("2026-10-01", "08:00"))
            planted.append(name)
        receipts = iter(give_receipts(s, o, first="000101", count=40))
        hostile = FORMULAS + MARKUP
        for n, text in enumerate(hostile):
            job = accepted_job(s, calendar, o, at=at("2026-10-12", "09:00").replace(hour=8 + n % 9, day=12 + n // 9))
            collect_fee(s, o, job, receipt=next(receipts), amount=Decimal("60.00"), reason=text,
                        at=at("2026-10-20", "11:30"))
            desk.department_report(s, by=o.eng_supervisor, department="engineering", worker=f"A1-W{n:02d}",
                                   address=text, description=text, fee=Decimal("50.00"), reference=text,
                                   at=at("2026-10-21", "17:00").replace(minute=n))
            planted += [text, f"{text}: {text}"]  # the reason; a private job's "address: description"
        for n, text in enumerate(CONTROL):
            job = accepted_job(s, calendar, o, at=at("2026-10-22", "09:00").replace(hour=9 + n))
            owed = s.scalar(select(Callback).where(Callback.order_id == job.id))
            owed.done_at, owed.outcome, owed.note = at("2026-10-23", "10:00"), "unsatisfied", text
            planted.append(text)
    return o, planted


def ooxml_text(value: str) -> str:
    """A cell's text as Excel shows it: OOXML writes a carriage return as `_x000D_`, which openpyxl leaves as is."""
    return re.sub(r"_x([0-9A-Fa-f]{4})_", lambda m: chr(int(m[1], 16)), value)


def workbook_cells(path: Path) -> list:
    book = openpyxl.load_workbook(path)  # not read-only: each cell's data_type as stored
    return [cell for sheet in book for row in sheet.iter_rows() for cell in row if cell.value is not None]


def test_formulas_stay_text_in_the_workbook_and_html_is_escaped_exactly_once(runtime, engine, calendar, smtp_server,
                                                                               tmp_path, figure):
    o, planted = build_october(engine, calendar)
    with transaction(engine) as s:  # November: phone requests from residents named like formulas and markup
        for n, name in enumerate(MARKUP + FORMULAS):
            request_for(s, o, at=at("2026-11-25", "10:00").replace(minute=n), resident=name, address=name)
    runtime.settings.apprise_config = write_apprise_config(
        tmp_path / "apprise.yml", {tag: smtp_server.url(to=f"{tag}@example.com")
                                   for tag in ("administration", "cs-supervisor", "ops")})

    result = run_monthly_tally(runtime, "2026-10", as_of=AFTER_OCTOBER)
    run_chase_replies(runtime, at("2026-11-25", "11:00"))
    dispatched = run_dispatch(runtime, at("2026-11-25", "11:00"))
    assert result.sent == 2 and dispatched.failed == 0

    # the workbooks: every cell that holds text is a text cell, hostile ones exactly as entered
    cells = []
    for outcome in result.reports:
        cells += workbook_cells(Path(outcome.path))
    formulas = [c.coordinate for c in cells if c.data_type == "f"]
    texts = {ooxml_text(c.value) for c in cells if c.data_type == "s"}
    missing = [p for p in planted if p not in texts]

    # the HTML written and mailed, the mail subjects, the digests
    double_escaped = 0
    pages = [p.read_text(encoding="utf-8") for o in result.reports for p in Path(o.path).parent.glob("*.html")]
    mails = smtp_server.messages
    reports = [m for m in mails if str(m["To"]).startswith("administration")]
    digests = [m for m in mails if str(m["To"]).startswith("cs-supervisor")]
    for mail in reports:
        assert str(mail["Subject"]) in {report_summary.title_for("2026-10", office, 1, locale=runtime.settings.locale)
                                        for office in ("A1", "*")}
    for mail in mails:
        pages += [part.get_content() for part in mail.walk() if part.get_content_type() == "text/html"]
    for page in pages:
        double_escaped += page.count("&amp;amp;") + page.count("&amp;lt;") + page.count("&amp;gt;")
    [digest] = digests
    plain = digest.get_body(preferencelist=("plain",)).get_content()
    marked_up = digest.get_body(preferencelist=("html",))
    for name in MARKUP + FORMULAS:
        assert name in plain  # a text body is never escaped
        if marked_up is not None:
            body = marked_up.get_content()
            assert html.escape(name, quote=False) in body or html.escape(name) in body
            double_escaped += body.count(html.escape(html.escape(name)))

    # a title and an office label with markup: the subject plain, the HTML body escaped once
    with runtime.sessions() as s:
        tally = reconcile_month(s, month="2026-10", calendar=calendar)
    odd = dataclasses.replace(tally, office="R&D<1>")
    subject = report_summary.title(odd, locale="en", version=1)
    body = report_summary.email_html(odd, locale="en", version=1, workbook=tmp_path / "book.xlsx")
    double_escaped += body.count("&amp;amp;") + body.count("&amp;lt;")

    figure("report injection", cells_checked=len(cells), formulas=len(formulas), double_escaped=double_escaped,
           hostile_texts=len(planted), pages_checked=len(pages) + 1)
    assert formulas == [] and missing == []
    assert subject == "bianmin monthly tally 2026-10: R&D<1> (v1)"
    assert "R&amp;D&lt;1&gt;" in body and "R&D<1>" not in body
    assert double_escaped == 0
