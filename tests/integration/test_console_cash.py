"""Cash today shows, per collector and office, the blank receipts kept past their return time and the receipt
numbers skipped: the cash check's own findings (check_cash), to the user's offices only."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from models.cash.queries import check_cash
from models.ledger.db import transaction
from models.ledger.tables import WorkOrder
from tests.builders import OfficeCodes, at, collect_fee, give_receipts
from tests.consoles import NOW, client, log_in, world  # noqa: F401  (fixtures)



@pytest.fixture
def custody(world, engine):
    """In each office (A1 numbers 0001xx, B1 0002xx): the plumber took a book on Monday 2 Nov and collected his
    job's fee on its second number, skipping the first; the electrician took a book on Tuesday 20 Oct, due back
    by Tuesday 27 Oct 17:30, and still holds all five blanks."""
    with transaction(engine) as s:
        for office, order, base in (("A1", world.order_a, 100), ("B1", world.order_b, 200)):
            o = OfficeCodes.of(office)
            plumbers = give_receipts(s, o, first=f"000{base + 1}", count=5, at=at("2026-11-02", "08:30"))
            give_receipts(s, o, to=o.electrician, first=f"000{base + 11}", count=5, at=at("2026-10-20", "08:30"))
            wo = s.scalar(select(WorkOrder).where(WorkOrder.number == order))
            collect_fee(s, o, wo, receipt=plumbers[1], at=at("2026-11-04", "10:00"))


def page_of(client, login: str) -> str:
    assert log_in(client, login).status_code == 303
    page = client.get("/cash")
    assert page.status_code == 200
    return page.text


def test_a_supervisor_sees_the_blank_receipts_its_collectors_kept_too_long(client, custody):
    page = page_of(client, "li")  # CS supervisor of A1
    assert "A1-EL1" in page
    assert ("5 blank receipts not returned (book 000111: 000111…000115), due back by 2026-10-27 17:30, "
            "overdue by 8d 16h 30min") in page


def test_a_supervisor_sees_the_receipt_numbers_its_collectors_skipped(client, custody):
    page = page_of(client, "li")
    assert "Receipt 000101 skipped (book 000101): 000102 was used at 2026-11-04 10:00" in page


def test_a_supervisor_of_a_sees_none_of_bs_receipts(client, custody):
    page = page_of(client, "li")
    assert "B1-" not in page and "0002" not in page


def test_a_supervisor_of_b_sees_bs_receipts_and_none_of_as(client, custody):
    page = page_of(client, "zhou")
    assert "Receipt 000201 skipped" in page and "book 000211: 000211…000215" in page
    assert "A1-" not in page and "0001" not in page


def test_the_page_shows_every_receipt_finding_of_the_cash_check_and_counts_them(client, custody, world):
    rt = world.rt
    with rt.sessions() as s:
        check = check_cash(s, day=NOW.date(), as_of=NOW, calendar=rt.calendar, cutoff=rt.settings.cash_cutoff,
                           return_workdays=rt.settings.receipt_return_workdays)
    page = page_of(client, "root")  # an admin of every office
    assert {g.number for g in check.gaps} == {"000101", "000201"}
    for g in check.gaps:
        assert f"Receipt {g.number} skipped" in page
    for b in check.unreturned:
        assert f"{len(b.numbers)} blank receipts not returned (book {b.book}:" in page
    blanks = sum(len(b.numbers) for b in check.unreturned)
    assert f"<dt>Blank receipts not returned</dt><dd>{blanks}</dd>" in page
    assert f"<dt>Receipt numbers skipped</dt><dd>{len(check.gaps)}</dd>" in page
