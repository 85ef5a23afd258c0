"""The cash check's queries on a real ledger (SQLite and PostgreSQL), scenarios built through the desk operations."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import re

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from models import desk
from models.calendar import BusinessCalendar
from models.cash.facts import CashCheck
from models.cash.queries import check_cash
from models.cash.rules import evaluation_time
from models.ledger.db import session_factory, transaction
from models.ledger.tables import CashHandover, Receipt, ReceiptBook, Staff, WorkOrder
from tests.plans import query_plans

SH = ZoneInfo("Asia/Shanghai")


def local(*args) -> datetime:
    return datetime(*args, tzinfo=SH)


class CashDesk:
    """One service office (SO1) with a CS clerk, two engineers, a cashier; every step through models.desk."""

    def __init__(self, engine, calendar: BusinessCalendar) -> None:
        self.sessions = session_factory(engine)
        self.cal = calendar
        at = local(2026, 9, 1, 8, 0)
        with transaction(self.sessions) as s:
            desk.add_office(s, code="SO1", name="一号服务处", at=at)
            desk.add_staff(s, code="C1", name="客服小李", office="SO1", department="cs", role="clerk", at=at)
            desk.add_staff(s, code="W1", name="王师傅", office="SO1", department="engineering", role="worker", at=at)
            desk.add_staff(s, code="W2", name="张师傅", office="SO1", department="engineering", role="worker", at=at)
            desk.add_staff(s, code="F1", name="出纳刘", office="SO1", department="finance", role="cashier", at=at)

    def second_office(self) -> None:
        """SO2, with its own clerk (C2), worker (W3) and cashier (F2)."""
        at = local(2026, 9, 1, 8, 0)
        with transaction(self.sessions) as s:
            desk.add_office(s, code="SO2", name="二号服务处", at=at)
            desk.add_staff(s, code="C2", name="客服小周", office="SO2", department="cs", role="clerk", at=at)
            desk.add_staff(s, code="W3", name="刘师傅", office="SO2", department="engineering", role="worker", at=at)
            desk.add_staff(s, code="F2", name="出纳孙", office="SO2", department="finance", role="cashier", at=at)

    OFFICE_OF = {"W1": "SO1", "W2": "SO1", "W3": "SO2"}
    CLERK = {"SO1": "C1", "SO2": "C2"}
    CASHIER = {"SO1": "F1", "SO2": "F2"}

    def book(self, first: str, count: int, at: datetime, holder: str = "W1") -> None:
        with transaction(self.sessions) as s:
            desk.issue_receipts(s, by=self.CLERK[self.OFFICE_OF[holder]], to=holder, first=first, count=count,
                                at=at)

    def job(self, accepted_at: datetime, fee: str = "120.00", worker: str = "W1") -> str:
        """A plumbing job registered, done and signed for; returns the order number."""
        start = accepted_at - timedelta(hours=3)
        office = self.OFFICE_OF[worker]
        with transaction(self.sessions) as s:
            req = desk.register(s, office=office, by=self.CLERK[office], channel="walk_in", resident="陈女士",
                                address="1-2-301", phone="13812345678", category="plumbing",
                                description="厨房水龙头漏水", fee=Decimal(fee), at=start)
            order = desk.issue_order(s, request=req, by=self.CLERK[office], worker=worker,
                                     scheduled=start + timedelta(hours=1),
                                     at=start)
            desk.complete(s, order=order, by=worker, at=accepted_at - timedelta(minutes=10))
            desk.accept(s, order=order, signed_by="陈女士", at=accepted_at, calendar=self.cal)
            return order.number

    def paid_job(self, receipt: str, at: datetime, fee: str = "120.00", by: str = "W1",
                 method: str = "cash") -> str:
        order = self.job(at - timedelta(minutes=5), fee=fee, worker=by)
        self.collect(order, receipt, at, amount=fee, by=by, method=method)
        return order

    def collect(self, order: str, receipt: str, at: datetime, amount: str, by: str = "W1",
                method: str = "cash") -> None:
        with transaction(self.sessions) as s:
            desk.collect(s, order=order, by=by, receipt=receipt, amount=Decimal(amount), method=method, at=at)

    def handover(self, receipts: list[str], counted: str, at: datetime, by: str = "W1") -> str:
        with transaction(self.sessions) as s:
            return desk.handover(s, by=by, cashier=self.CASHIER[self.OFFICE_OF[by]], receipts=receipts,
                                 counted=Decimal(counted), at=at).number

    def void(self, number: str, at: datetime) -> None:
        with transaction(self.sessions) as s:
            desk.void_receipt(s, number=number, by="C1", at=at, reason="写错作废")

    def give_back(self, number: str, at: datetime) -> None:
        with transaction(self.sessions) as s:
            desk.return_receipt(s, number=number, by="C1", at=at)

    def legacy_receipt(self, *, number: str, order: str, amount: str, at: datetime,
                       serial_of: str | None = None, method: str = "wechat", collector: bool = True) -> None:
        """An imported row the desk would refuse: on the serial of `serial_of`, or on a one-leaf book of its own."""
        with transaction(self.sessions) as s:
            holder = s.scalar(select(Staff.id).where(Staff.code == "W1"))
            if serial_of is not None:
                twin = s.scalars(select(Receipt).where(Receipt.number == serial_of)).one()
                book_id, serial = twin.book_id, twin.serial
            else:
                book = ReceiptBook(office_id=s.scalar(select(Staff.office_id).where(Staff.id == holder)),
                                   holder_id=holder, issued_by_id=holder, issued_at=at, first_serial=int(number[2:]),
                                   count=1)
                s.add(book)
                s.flush()
                book_id, serial = book.id, int(number[2:])
            s.add(Receipt(number=number, serial=serial, book_id=book_id, state="used",
                          order_id=s.scalar(select(WorkOrder.id).where(WorkOrder.number == order)),
                          amount=Decimal(amount), method=method, collected_at=at,
                          collected_by_id=holder if collector else None,
                          state_changed_at=at))

    def check(self, as_of: datetime, day: date | None = None, return_workdays: int = 5) -> CashCheck:
        with transaction(self.sessions) as s:
            return check_cash(s, day=day or self.cal.local(as_of).date(), as_of=as_of, calendar=self.cal,
                              cutoff=time(17, 30), return_workdays=return_workdays)


def evening(cal: BusinessCalendar, day: date) -> datetime:
    return evaluation_time(day, cal, cutoff=time(17, 30), grace_minutes=30)


def kinds(check: CashCheck) -> dict[str, int]:
    return {k: n for k, n in check.findings_by_kind.items() if n}


@pytest.fixture
def office(engine, calendar) -> CashDesk:
    return CashDesk(engine, calendar)


def test_cash_taken_the_evening_before_national_day_is_flagged_on_october_8_and_not_before(office, calendar):
    office.book("000101", 10, local(2026, 9, 30, 9, 0))
    order = office.paid_job("000101", local(2026, 9, 30, 18, 0))

    for day in range(1, 8):
        assert kinds(office.check(evening(calendar, date(2026, 10, day)))) == {}
    assert kinds(office.check(local(2026, 10, 8, 17, 30))) == {}

    found = office.check(evening(calendar, date(2026, 10, 8)))
    assert kinds(found) == {"cash-unhanded": 1}
    (unhanded,) = found.unhanded
    assert (unhanded.collector, unhanded.receipts, unhanded.orders, unhanded.total, unhanded.due_at,
            unhanded.overdue_minutes) == ("W1", ("000101",), (order,), Decimal("120.00"),
                                          local(2026, 10, 8, 17, 30), 30)


def test_the_make_up_saturday_gives_exactly_the_expected_findings_and_figures(office, calendar):
    saturday = date(2026, 10, 10)
    office.book("000101", 10, local(2026, 10, 9, 9, 0), holder="W1")
    office.book("000201", 10, local(2026, 10, 9, 9, 0), holder="W2")
    office.paid_job("000101", local(2026, 10, 10, 10, 0), fee="80.00")
    kept = office.paid_job("000102", local(2026, 10, 10, 12, 0), fee="45.50")
    office.paid_job("000103", local(2026, 10, 10, 13, 0), fee="60.00", method="wechat")
    office.handover(["000101"], "80.00", local(2026, 10, 10, 16, 0))
    office.paid_job("000201", local(2026, 10, 10, 18, 10), fee="200.00", by="W2")  # after cut-off: due Monday
    unpaid = office.job(local(2026, 10, 10, 10, 30), fee="30.00", worker="W2")

    found = office.check(evening(calendar, saturday))

    assert kinds(found) == {"cash-unhanded": 1, "fee-not-collected": 1}
    assert [(u.collector, u.receipts, u.orders, u.total) for u in found.unhanded] == [
        ("W1", ("000102",), (kept,), Decimal("45.50"))]
    assert [(f.order, f.fee, f.due_at) for f in found.fees_not_collected] == [
        (unpaid, Decimal("30.00"), local(2026, 10, 10, 17, 30))]
    # W2's 18:10 cash is after the 18:00 evaluation: not yet seen, neither in findings nor in figures
    assert [(c.collector, c.cash, c.electronic, c.handed_over, c.outstanding) for c in found.collectors] == [
        ("W1", Decimal("125.50"), Decimal("60.00"), Decimal("80.00"), Decimal("45.50"))]
    (totals,) = found.offices
    assert (totals.office, totals.cash, totals.electronic, totals.handed_over, totals.outstanding) == (
        "SO1", Decimal("125.50"), Decimal("60.00"), Decimal("80.00"), Decimal("45.50"))

    later = office.check(local(2026, 10, 10, 23, 0), day=saturday)
    assert [(c.collector, c.cash, c.outstanding) for c in later.collectors] == [
        ("W1", Decimal("125.50"), Decimal("45.50")), ("W2", Decimal("200.00"), Decimal("200.00"))]
    assert [u.collector for u in later.unhanded] == ["W1"]


def test_a_one_cent_shortfall_is_found_even_where_floats_would_hide_it(office, calendar):
    office.book("000101", 10, local(2026, 10, 12, 8, 40))
    office.paid_job("000101", local(2026, 10, 12, 9, 0), fee="0.10")
    office.paid_job("000102", local(2026, 10, 12, 9, 30), fee="0.20")
    office.paid_job("000103", local(2026, 10, 12, 10, 0), fee="33.33")
    number = office.handover(["000101", "000102", "000103"], "33.62", local(2026, 10, 12, 16, 0))

    found = office.check(evening(calendar, date(2026, 10, 12)))

    assert kinds(found) == {"cash-shortfall": 1}
    (short,) = found.shortfalls
    assert (short.handover, short.covered, short.counted, short.difference, short.receipts) == (
        number, Decimal("33.63"), Decimal("33.62"), Decimal("0.01"), ("000101", "000102", "000103"))


def test_an_exact_count_of_float_unfriendly_amounts_is_no_shortfall(office, calendar):
    office.book("000101", 10, local(2026, 10, 12, 8, 40))
    office.paid_job("000101", local(2026, 10, 12, 9, 0), fee="0.10")
    office.paid_job("000102", local(2026, 10, 12, 9, 30), fee="0.20")
    office.handover(["000101", "000102"], "0.30", local(2026, 10, 12, 16, 0))

    assert kinds(office.check(evening(calendar, date(2026, 10, 12)))) == {}


def test_an_overcount_is_reported_as_an_overcount_not_a_shortfall(office, calendar):
    office.book("000101", 10, local(2026, 10, 12, 8, 40))
    office.paid_job("000101", local(2026, 10, 12, 9, 0), fee="100.00")
    number = office.handover(["000101"], "105.00", local(2026, 10, 12, 16, 0))

    found = office.check(evening(calendar, date(2026, 10, 12)))

    assert kinds(found) == {"cash-overcount": 1}
    assert [(o.handover, o.difference) for o in found.overcounts] == [(number, Decimal("5.00"))]


def test_replaying_an_evening_does_not_see_a_handover_recorded_the_next_morning(office, calendar):
    office.book("000101", 10, local(2026, 10, 12, 8, 40))
    office.paid_job("000101", local(2026, 10, 12, 9, 0))
    office.handover(["000101"], "120.00", local(2026, 10, 13, 9, 15))

    assert [u.receipts for u in office.check(evening(calendar, date(2026, 10, 12))).unhanded] == [("000101",)]
    assert kinds(office.check(local(2026, 10, 13, 9, 0))) == {"cash-unhanded": 1}
    assert kinds(office.check(local(2026, 10, 13, 9, 30))) == {}


def test_receipt_custody_finds_the_gap_and_the_unreturned_page_once_each(office, calendar):
    office.book("000101", 8, local(2026, 10, 12, 9, 0))
    office.paid_job("000101", local(2026, 10, 12, 10, 0))
    office.paid_job("000103", local(2026, 10, 12, 11, 0))  # 000102 skipped
    office.handover(["000101", "000103"], "240.00", local(2026, 10, 12, 16, 0))
    office.void("000104", local(2026, 10, 12, 16, 5))
    for n in ("000105", "000106", "000107"):
        office.give_back(n, local(2026, 10, 13, 9, 0))
    # 000108 stays blank in W1's pocket

    first = office.check(evening(calendar, date(2026, 10, 12)))
    assert kinds(first) == {"receipt-gap": 1}
    (gap,) = first.gaps
    assert (gap.number, gap.book, gap.holder, gap.used_after, gap.key) == (
        "000102", "000101", "W1", "000103", "receipt-gap:000102")

    # five working days after Mon 10-12 is Mon 10-19 (cut-off 17:30)
    assert kinds(office.check(local(2026, 10, 19, 17, 0))) == {"receipt-gap": 1}
    late = office.check(evening(calendar, date(2026, 10, 19)))
    assert kinds(late) == {"receipt-gap": 1, "receipt-unreturned": 1}
    (unreturned,) = late.unreturned
    assert (unreturned.book, unreturned.numbers, unreturned.return_due, unreturned.key) == (
        "000101", ("000108",), local(2026, 10, 19, 17, 30), "receipt-unreturned:000101")


def test_a_receipt_returned_after_the_evaluation_is_still_out_when_replaying(office, calendar):
    office.book("000101", 1, local(2026, 10, 12, 9, 0))
    office.give_back("000101", local(2026, 10, 20, 9, 0))

    assert [u.numbers for u in office.check(evening(calendar, date(2026, 10, 19))).unreturned] == [("000101",)]
    assert kinds(office.check(evening(calendar, date(2026, 10, 20)))) == {}


def test_legacy_double_use_is_reported_once_per_serial_and_per_order_without_crashing(office, calendar):
    office.book("000101", 2, local(2026, 10, 12, 8, 40))
    first = office.paid_job("000101", local(2026, 10, 12, 9, 0))
    second = office.paid_job("000102", local(2026, 10, 12, 9, 30))
    office.handover(["000101", "000102"], "240.00", local(2026, 10, 12, 16, 0))
    third = office.job(local(2026, 10, 12, 9, 35))
    # imported rows: leaf 000101 written again for `third`, and `first` paid a second time on another book
    office.legacy_receipt(number="L-000101", serial_of="000101", order=third, amount="120.00",
                          at=local(2026, 10, 12, 9, 40))
    office.legacy_receipt(number="L-900001", order=first, amount="120.00", at=local(2026, 10, 12, 9, 45))

    found = office.check(evening(calendar, date(2026, 10, 12)))
    again = office.check(evening(calendar, date(2026, 10, 13)))

    assert kinds(found) == kinds(again) == {"receipt-double-use": 2}
    assert [(t.key, t.numbers, t.orders, t.total) for t in found.used_twice] == [
        ("receipt-double-use:number:000101", ("000101", "L-000101"), (first, third), Decimal("240.00")),
        (f"receipt-double-use:order:{first}", ("000101", "L-900001"), (first,), Decimal("240.00"))]


def test_imported_cash_without_a_collector_is_held_by_the_books_holder(office, calendar):
    order = office.job(local(2026, 10, 12, 9, 0))
    office.legacy_receipt(number="L-700001", order=order, amount="66.60", at=local(2026, 10, 12, 9, 10),
                          method="cash", collector=False)

    found = office.check(evening(calendar, date(2026, 10, 12)))

    assert [(u.collector, u.receipts, u.total) for u in found.unhanded] == [("W1", ("L-700001",), Decimal("66.60"))]
    assert [(c.collector, c.cash, c.outstanding) for c in found.collectors] == [
        ("W1", Decimal("66.60"), Decimal("66.60"))]


def test_a_fee_collected_the_next_morning_is_still_missing_when_replaying_the_evening(office, calendar):
    office.book("000101", 10, local(2026, 10, 12, 8, 40))
    order = office.job(local(2026, 10, 12, 10, 0))
    office.collect(order, "000101", local(2026, 10, 13, 9, 0), amount="120.00")

    assert [f.order for f in office.check(evening(calendar, date(2026, 10, 12))).fees_not_collected] == [order]
    assert office.check(evening(calendar, date(2026, 10, 13))).fees_not_collected == ()


def test_the_database_refuses_a_desk_receipt_paying_an_order_twice(office):
    office.book("000101", 2, local(2026, 10, 12, 8, 40))
    order = office.paid_job("000101", local(2026, 10, 12, 9, 0))

    with pytest.raises(IntegrityError), transaction(office.sessions) as s:
        # what a second desk.collect racing the first could write: the unique partial index stops it
        twin = s.scalars(select(Receipt).where(Receipt.number == "000102")).one()
        twin.state, twin.method, twin.amount = "used", "cash", Decimal("120.00")
        twin.order_id = s.scalar(select(WorkOrder.id).where(WorkOrder.number == order))
        twin.collected_at = twin.state_changed_at = local(2026, 10, 12, 9, 5)
        s.flush()


def test_a_handover_written_outside_the_desk_is_checked_against_its_receipts(office, calendar):
    office.book("000101", 10, local(2026, 10, 12, 8, 40))
    office.paid_job("000101", local(2026, 10, 12, 9, 0), fee="80.00")
    office.paid_job("000102", local(2026, 10, 12, 9, 30), fee="40.00")
    with transaction(office.sessions) as s:
        # a legacy row whose declared sum was copied from the count, not from the receipts
        w1, f1, office_id = s.execute(select(Staff.id, select(Staff.id).where(Staff.code == "F1").scalar_subquery(),
                                             Staff.office_id).where(Staff.code == "W1")).one()
        legacy = CashHandover(number="H-LEGACY-1", office_id=office_id, handed_by_id=w1, received_by_id=f1,
                              handed_at=local(2026, 10, 12, 16, 0), confirmed_at=local(2026, 10, 12, 16, 0),
                              declared_amount=Decimal("100.00"), counted_amount=Decimal("100.00"))
        s.add(legacy)
        s.flush()
        for r in s.scalars(select(Receipt).where(Receipt.number.in_(["000101", "000102"]))):
            r.handover_id = legacy.id

    found = office.check(evening(calendar, date(2026, 10, 12)))

    assert [(m.handover, m.covered, m.counted, m.difference) for m in found.shortfalls] == [
        ("H-LEGACY-1", Decimal("120.00"), Decimal("100.00"), Decimal("20.00"))]


def test_the_cash_check_reads_open_items_through_their_partial_indexes(office, calendar, backend):
    office.book("000101", 10, local(2026, 10, 12, 8, 40))
    first = office.paid_job("000101", local(2026, 10, 12, 9, 0))
    office.paid_job("000102", local(2026, 10, 12, 9, 30))
    office.handover(["000102"], "110.00", local(2026, 10, 12, 16, 0))
    office.void("000103", local(2026, 10, 13, 9, 0))
    office.legacy_receipt(number="L-900001", order=first, amount="120.00", at=local(2026, 10, 12, 9, 45))
    with transaction(office.sessions) as s:
        # statistics that say what a ledger says (almost no order is a rework, almost every one is paid)
        found, plans = query_plans(s, lambda: check_cash(s, day=date(2026, 10, 12), calendar=calendar,
                                                         as_of=evening(calendar, date(2026, 10, 12))), analyze=True)

    assert kinds(found) == {"cash-unhanded": 1, "cash-shortfall": 1, "receipt-double-use": 1}
    for index in ("ix_receipts_cash_open", "ix_receipts_blank", "ix_receipts_retired_at", "ix_receipts_legacy_used",
                  "ix_work_orders_unpaid", "ix_work_orders_paid_at", "ix_cash_handovers_to_verify"):
        assert index in plans, index
    # no history-sized table is read end to end (the blank numbers' partial index is the books in hand)
    assert not re.search(r"SCAN (receipts|work_orders|cash_handovers)\b(?! USING INDEX ix_receipts_blank)", plans), plans
    if backend == "sqlite":
        # nor walked by collection time from the beginning of the history: every walk by collection time has a
        # lower bound (the day's figures, or what was collected after the moment replayed). PostgreSQL costs a
        # ten-row table's indexes all alike, so only its absence of table scans says something here.
        walks = [plan for plan in plans.split(" | ") if "ix_receipts_collected_month" in plan]
        assert walks and all(re.search(r"collected_at>", plan) for plan in walks), "\n".join(walks)
    assert "Seq Scan" not in plans, plans
