"""The cash check's as-of queries: cash not handed to finance, handover mismatches, receipt custody, fees owed.

Rules are pure (plain values in, business facts out); queries take the session and an `as_of`
and see only what had happened by then, so any past evening can be replayed exactly.
What "as of T" means for a receipt:
- collected: `collected_at <= T` (a receipt used after T was still blank at T);
- accounted for (no longer blank in the holder's hands): used by T, or voided/returned by T
  (`state_changed_at <= T`; legacy rows without any time count as accounted);
- handed over: its handover was confirmed by finance by T (`confirmed_at <= T`).

What keeps the check's cost that of the open items, not of the history (see "queries" below): rows the desk
writes carry `origin = 'desk'`, and the database refuses a second use of a desk receipt's leaf or a second desk
payment of one order, so a double use needs a row loaded some other way; the desk declares a handover's sum
from its receipts, so only a count that differs (or a row loaded otherwise) needs re-adding; `desk.collect`
stamps the order's `paid_at`, so unpaid jobs are the few without it.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from functools import cache

from sqlalchemy import (
    ColumnElement,
    Executable,
    Select,
    String,
    and_,
    bindparam,
    case,
    exists,
    func,
    literal_column,
    or_,
    select,
    type_coerce,
    union_all,
)
from sqlalchemy.orm import Session, aliased

from models import findings as catalogue
from models.calendar import BusinessCalendar
from models.cash.facts import (
    CENT,
    ZERO,
    CashCheck,
    CashHeld,
    CollectorFigures,
    FeeNotCollected,
    HandoverOvercount,
    HandoverShortfall,
    ReceiptCustody,
    ReceiptGap,
    ReceiptUsedTwice,
    UnreturnedReceipt,
)
from models.cash.rules import (
    classify_handover,
    fee_due,
    is_chargeable,
    office_totals,
    receipt_gap,
    receipts_return_due,
    unhanded_by_collector,
)
from models.facts import maker
from models.ledger.tables import (
    CashHandover,
    Money,
    Office,
    Receipt,
    ReceiptBook,
    ServiceRequest,
    Staff,
    UTCDateTime,
    WorkOrder,
)
from models.planning import broad, short_queries

# literal (not bound) values, so that PostgreSQL and SQLite can match the partial index
# ix_receipts_cash_open, whose predicate is written with these literals
_CASH = literal_column("'cash'")
_USED = literal_column("'used'")
_ISSUED = literal_column("'issued'")
_ZERO_FEE = literal_column("0")  # ix_work_orders_unpaid: "fee > 0"

_collector_figures = maker(CollectorFigures)


# -- queries ------------------------------------------------------------------------------
# Each check runs in two steps. First the ids of the few rows that can be findings, each from one table
# through its partial index (open cash, blank numbers, handovers to re-add, unpaid jobs, legacy receipts),
# plus, when replaying a past moment, the rows whose closing event came after it (through an index on that
# event's time; none for a run "now"). Then their details, by id. A one-table question leaves neither
# planner a choice to get wrong (SQLite without statistics, PostgreSQL misjudging how few rows a partial
# index holds would otherwise hash-join them against a scan of the history). Statements are built once,
# with the moment as a bound parameter.

_AS_OF = bindparam("as_of", type_=UTCDateTime())
_OFFICE = bindparam("office", type_=String())
_IDS = bindparam("ids", expanding=True)
_CHUNK = 500


def _collected_by(r: type[Receipt] | Receipt, as_of) -> ColumnElement[bool]:
    return and_(r.collected_at.is_not(None), r.collected_at <= as_of)


def _office_filter(column, office: str | None) -> list[ColumnElement[bool]]:
    return [] if office is None else [column == _OFFICE]


def _params(as_of: datetime, office: str | None) -> dict:
    return {"as_of": as_of} if office is None else {"as_of": as_of, "office": office}


def _execute(session: Session, stmt, params: dict):
    """A column statement on the session's connection (after flushing what the session holds): no ORM
    execution or row loading, which cost more than the check's index look-ups."""
    session.flush()
    return session.connection().execute(stmt, params)


@cache
def _together(statements: tuple) -> Executable:
    """One round trip for several one-table questions: each branch of a UNION ALL is planned on its own."""
    return statements[0] if len(statements) == 1 else union_all(*statements)


def _ids(session: Session, statements: tuple, params: dict) -> list[int]:
    return sorted(set(_execute(session, _together(statements), params).scalars()))


def _by_ids(session: Session, stmt, ids: Sequence[int], params: dict) -> list:
    rows: list = []
    for start in range(0, len(ids), _CHUNK):
        rows.extend(_execute(session, stmt, {**params, "ids": list(ids[start:start + _CHUNK])}).all())
    return rows


@cache
def _cash_held_statements(by_office: bool) -> tuple:
    # today's open cash sits in the partial index ix_receipts_cash_open
    open_cash = select(Receipt.id).where(Receipt.method == _CASH, Receipt.state == _USED,
                                         broad(Receipt.handover_id.is_(None)), Receipt.collected_at <= _AS_OF)
    # handed over but never confirmed by finance (legacy rows), or confirmed after the moment replayed ...
    not_confirmed = (select(CashHandover.id).where(CashHandover.confirmed_at.is_(None)),
                     select(CashHandover.id).where(CashHandover.confirmed_at > _AS_OF))
    # ... and the cash they cover
    in_handovers = select(Receipt.id).where(Receipt.handover_id.in_(_IDS), Receipt.method == _CASH,
                                            Receipt.state == _USED, Receipt.collected_at <= _AS_OF)
    detail = (select(Receipt.number, WorkOrder.number, type_coerce(Receipt.amount, Money), Receipt.collected_at,
                     Staff.code, Staff.name, Staff.department, Office.code.label("office"))
              .join(ReceiptBook, ReceiptBook.id == Receipt.book_id)
              # an imported receipt with no collector is held by its book's holder: never dropped
              .join(Staff, Staff.id == func.coalesce(Receipt.collected_by_id, ReceiptBook.holder_id))
              .join(Office, Office.id == Staff.office_id)
              .outerjoin(WorkOrder, WorkOrder.id == Receipt.order_id)
              .where(Receipt.id.in_(_IDS), *_office_filter(Office.code, "x" if by_office else None)))
    return open_cash, not_confirmed, in_handovers, detail


def cash_held(session: Session, *, as_of: datetime, office: str | None = None) -> list[CashHeld]:
    """Cash receipts collected by `as_of` whose handover finance had not confirmed by then."""
    open_cash, not_confirmed, in_handovers, detail = _cash_held_statements(office is not None)
    moment = {"as_of": as_of}
    ids = set(_execute(session, open_cash, moment).scalars())
    ids.update(r[0] for r in _by_ids(session, in_handovers, _ids(session, not_confirmed, moment), moment))
    rows = sorted(_by_ids(session, detail, sorted(ids), _params(as_of, office)), key=lambda r: (r[3], r[0]))
    return [CashHeld(receipt=r[0], order=r[1], amount=Decimal(r[2] or 0).quantize(CENT), collected_at=r[3],
                     collector=r[4], collector_name=r[5], department=r[6], office=r[7]) for r in rows]


@cache
def _mismatch_statements(by_office: bool) -> tuple:
    # only these can differ: the desk declares the sum of the receipts it covers, which never change
    # afterwards (ix_cash_handovers_to_verify); rows written otherwise are always re-added
    to_verify = (select(CashHandover.id)
                 .where(or_(CashHandover.counted_amount != CashHandover.declared_amount,
                            CashHandover.origin.is_(None)),
                        CashHandover.confirmed_at.is_not(None), CashHandover.confirmed_at <= _AS_OF))
    covered = func.coalesce(func.sum(Receipt.amount), 0)
    detail = (select(CashHandover.id, CashHandover.number, CashHandover.handed_at, CashHandover.counted_amount,
                     type_coerce(covered, Money).label("covered"),
                     Staff.code, Staff.name, Staff.department, Office.code)
              .join(Staff, Staff.id == CashHandover.handed_by_id)
              .join(Office, Office.id == CashHandover.office_id)
              .outerjoin(Receipt, Receipt.handover_id == CashHandover.id)
              .where(CashHandover.id.in_(_IDS), *_office_filter(Office.code, "x" if by_office else None))
              .group_by(CashHandover.id, CashHandover.number, CashHandover.handed_at, CashHandover.counted_amount,
                        Staff.code, Staff.name, Staff.department, Office.code)
              # rounded so that SQLite's REAL storage of NUMERIC cannot invent a difference below a cent
              .having(func.round(covered - CashHandover.counted_amount, 2) != 0))
    return (to_verify,), detail


def handover_mismatches(session: Session, *, as_of: datetime,
                        office: str | None = None) -> list[HandoverShortfall | HandoverOvercount]:
    """Handovers confirmed by `as_of` whose counted amount differs from the receipts they cover."""
    to_verify, detail = _mismatch_statements(office is not None)
    rows = sorted(_by_ids(session, detail, _ids(session, to_verify, {"as_of": as_of}), _params(as_of, office)),
                  key=lambda r: (r[2], r[1]))
    numbers: dict[int, list[str]] = defaultdict(list)
    for hid, number in _by_ids(session, select(Receipt.handover_id, Receipt.number)
                               .where(Receipt.handover_id.in_(_IDS)).order_by(Receipt.serial, Receipt.number),
                               [r[0] for r in rows], {}):
        numbers[hid].append(number)
    out = []
    for hid, number, handed_at, counted, cov, code, name, dept, office_code in rows:
        found = classify_handover(handover=number, collector=code, collector_name=name, department=dept,
                                  office=office_code, handed_at=handed_at, receipts=numbers[hid],
                                  covered=cov, counted=counted)
        if found is not None:
            out.append(found)
    return out


def _book_label() -> ColumnElement[str]:
    """A book's stable name: its first receipt number."""
    first = aliased(Receipt)
    return (select(func.min(first.number)).where(first.book_id == ReceiptBook.id)
            .scalar_subquery())


@cache
def _blank_statements(by_office: bool) -> tuple:
    # blank as of T: still issued (ix_receipts_blank), or used, voided or returned after T (a legacy row with
    # neither time counts as accounted for) ...
    later, book = aliased(Receipt), aliased(ReceiptBook)
    issued_before = bindparam("issued_before", type_=UTCDateTime())

    def candidate(book_id, serial) -> ColumnElement[bool]:
        """Possibly a finding: a higher number of its book already used (a gap), or its book issued early enough
        for the return window to have closed (the workers' current books, most blanks, are neither)."""
        return or_(
            exists().where(later.book_id == book_id, later.serial > serial, _collected_by(later, _AS_OF)),
            # a scalar look-up, not an EXISTS PostgreSQL would answer by hashing every book ever issued
            select(book.issued_at).where(book.id == book_id).scalar_subquery() < issued_before)

    # the books in hand, each asked once about its lowest blank (ix_receipts_blank) ...
    lowest = (select(Receipt.book_id, func.min(Receipt.serial).label("serial")).where(Receipt.state == _ISSUED)
              .group_by(Receipt.book_id).subquery())
    books_in_question = select(lowest.c.book_id).where(candidate(lowest.c.book_id, lowest.c.serial))
    # ... then the blanks of those that may hold a finding
    blanks_of_books = select(Receipt.id).where(Receipt.state == _ISSUED, Receipt.book_id.in_(_IDS))
    # numbers used, voided or returned after the moment replayed (none for a run "now")
    replayed = (
        select(Receipt.id).where(Receipt.state != _ISSUED, Receipt.collected_at > _AS_OF,
                                 candidate(Receipt.book_id, Receipt.serial)),
        select(Receipt.id).where(Receipt.state != _ISSUED, broad(Receipt.collected_at.is_(None)),
                                 Receipt.state_changed_at.is_not(None), Receipt.state_changed_at > _AS_OF,
                                 candidate(Receipt.book_id, Receipt.serial)),
    )
    detail = (select(Receipt.book_id, Receipt.serial, Receipt.number, ReceiptBook.issued_at, _book_label(),
                     Staff.code, Staff.name, Staff.department, Office.code)
              .join(ReceiptBook, ReceiptBook.id == Receipt.book_id)
              .join(Staff, Staff.id == ReceiptBook.holder_id)
              .join(Office, Office.id == ReceiptBook.office_id)
              .where(Receipt.id.in_(_IDS), ReceiptBook.issued_at <= _AS_OF,
                     *_office_filter(Office.code, "x" if by_office else None)))
    used = (select(Receipt.book_id, Receipt.serial, Receipt.number, Receipt.collected_at)
            .where(Receipt.book_id.in_(_IDS), _collected_by(Receipt, _AS_OF))
            .order_by(Receipt.serial, Receipt.number))
    return (books_in_question, blanks_of_books, replayed), detail, used


def receipt_custody(session: Session, *, as_of: datetime, calendar: BusinessCalendar, workdays: int = 5,
                    cutoff: time = time(17, 30), office: str | None = None) -> ReceiptCustody:
    """Blank numbers as of `as_of` that a higher used number skipped (gaps), else held past the return window."""
    blank_ids, detail, used_in = _blank_statements(office is not None)
    # the `workdays`-th working day after the issue is at least `workdays` calendar days later, so a book issued
    # on or after this midnight cannot be due back yet
    issued_before = calendar.at(calendar.local(as_of).date() - timedelta(days=workdays - 1), time(0))
    moment = {"as_of": as_of, "issued_before": issued_before}
    books_in_question, blanks_of_books, replayed = blank_ids
    ids = sorted({r[0] for r in _by_ids(session, blanks_of_books, _ids(session, (books_in_question,), moment), {})}
                 | set(_ids(session, replayed, moment)))
    blanks = sorted(_by_ids(session, detail, ids, _params(as_of, office)), key=lambda b: (b[3], b[0], b[1], b[2]))
    if not blanks:
        return ReceiptCustody((), ())
    # the used numbers of just the books that still have blanks (a worker's current book or two)
    used: dict[int, list[tuple[int, str, datetime]]] = defaultdict(list)
    for book_id, serial, number, at in _by_ids(session, used_in, sorted({b[0] for b in blanks}), {"as_of": as_of}):
        used[book_id].append((serial, number, at))

    gaps: list[ReceiptGap] = []
    books: dict[int, dict] = {}
    due_cache: dict[datetime, datetime] = {}
    for book_id, serial, number, issued_at, label, code, name, dept, office_code in blanks:
        gap = receipt_gap(serial, used.get(book_id, ()))
        if gap is not None:
            gaps.append(ReceiptGap(number=number, book=label, holder=code, holder_name=name, department=dept,
                                   office=office_code, used_after=gap[0], issued_at=issued_at, skipped_at=gap[1]))
            continue
        if issued_at not in due_cache:
            due_cache[issued_at] = receipts_return_due(issued_at, calendar, workdays=workdays, cutoff=cutoff)
        due = due_cache[issued_at]
        if due >= as_of:
            continue
        books.setdefault(book_id, dict(book=label, holder=code, holder_name=name, department=dept,
                                       office=office_code, issued_at=issued_at, return_due=calendar.local(due),
                                       numbers=[]))["numbers"].append(number)
    gaps.sort(key=lambda g: (g.office, g.number))
    return ReceiptCustody(tuple(gaps), tuple(UnreturnedReceipt(**{**b, "numbers": tuple(b["numbers"])})
                                             for b in books.values()))


@cache
def _legacy_used_statement():
    # the desk cannot write a double use (uq_receipts_desk_serial, uq_receipts_desk_paid_order), so every one
    # involves a used receipt written some other way: those few (ix_receipts_legacy_used) say where to look
    return (select(Receipt.book_id, Receipt.order_id)
            .where(Receipt.state == _USED, Receipt.origin.is_(None), *_collected_by(Receipt, _AS_OF).clauses))


@cache
def _twice_statements(by_office: bool) -> tuple:
    # a voided receipt rewritten for the same order is not a double use: only receipts in state 'used' count
    used = and_(Receipt.state == _USED, _collected_by(Receipt, _AS_OF))
    per_serial = (select(Receipt.book_id, Receipt.serial)
                  .where(used, Receipt.book_id.in_(bindparam("books", expanding=True)))
                  .group_by(Receipt.book_id, Receipt.serial).having(func.count() > 1).subquery())
    per_order = (select(Receipt.order_id)
                 .where(used, Receipt.order_id.in_(bindparam("orders", expanding=True)))
                 .group_by(Receipt.order_id).having(func.count() > 1).subquery())
    cols = (Receipt.book_id, Receipt.serial, Receipt.order_id, Receipt.number, WorkOrder.number,
            Receipt.amount, Office.code)

    def detail(stmt):
        return (stmt.join(ReceiptBook, ReceiptBook.id == Receipt.book_id)
                .join(Office, Office.id == ReceiptBook.office_id)
                .outerjoin(WorkOrder, WorkOrder.id == Receipt.order_id)
                .where(used, *_office_filter(Office.code, "x" if by_office else None))
                .order_by(Receipt.number))

    return (detail(select(*cols).join(per_serial, and_(per_serial.c.book_id == Receipt.book_id,
                                                       per_serial.c.serial == Receipt.serial))),
            detail(select(*cols).join(per_order, per_order.c.order_id == Receipt.order_id)))


def receipts_used_twice(session: Session, *, as_of: datetime, office: str | None = None) -> list[ReceiptUsedTwice]:
    """Book serials used on more than one receipt row, and orders paid on more than one receipt, by `as_of`."""
    legacy = _execute(session, _legacy_used_statement(), {"as_of": as_of}).all()
    if not legacy:
        return []
    params = _params(as_of, office)
    by_serial, by_order = _twice_statements(office is not None)
    out: list[ReceiptUsedTwice] = []
    for how, stmt, name, refs, group_of in (
            ("number", by_serial, "books", sorted({r[0] for r in legacy}), lambda r: (r[0], r[1])),
            ("order", by_order, "orders", sorted({r[1] for r in legacy if r[1] is not None}), lambda r: r[2])):
        groups: dict[object, list] = defaultdict(list)
        # a group lies within one book or one order, so batches of them never split one
        for start in range(0, len(refs), 500):
            for row in _execute(session, stmt, {**params, name: refs[start:start + 500]}):
                groups[group_of(row)].append(row)
        for rows in groups.values():
            numbers = tuple(r[3] for r in rows)
            orders = tuple(dict.fromkeys(r[4] for r in rows if r[4]))
            ref = numbers[0] if how == "number" else orders[0]
            out.append(ReceiptUsedTwice(how=how, ref=ref, numbers=numbers, orders=orders, office=rows[0][6],
                                        total=sum((Decimal(r[5] or 0).quantize(CENT) for r in rows), ZERO)))
    return sorted(out, key=lambda f: f.key)


@cache
def _unpaid_statements(by_office: bool) -> tuple:
    paid = exists().where(Receipt.order_id == WorkOrder.id, Receipt.state == _USED, _collected_by(Receipt, _AS_OF))
    chargeable = and_(WorkOrder.accepted_at <= _AS_OF, broad(WorkOrder.rework_of_id.is_(None)),
                      WorkOrder.fee > _ZERO_FEE, ~paid)
    # jobs the desk has not seen paid (ix_work_orders_unpaid; rows loaded otherwise have no paid_at and are
    # checked against their receipts), and, when replaying, those paid after the moment replayed
    unpaid_ids = (select(WorkOrder.id).where(WorkOrder.accepted_at.is_not(None), WorkOrder.paid_at.is_(None),
                                             chargeable),
                  select(WorkOrder.id).where(WorkOrder.paid_at.is_not(None), WorkOrder.paid_at > _AS_OF, chargeable))
    worker = aliased(Staff)
    detail = (select(WorkOrder.number, Office.code, WorkOrder.department, worker.code, worker.name,
                     WorkOrder.accepted_at, WorkOrder.fee, WorkOrder.rework_of_id, ServiceRequest.resident_name,
                     ServiceRequest.phone, ServiceRequest.address)
              .join(Office, Office.id == WorkOrder.office_id)
              .join(worker, worker.id == WorkOrder.worker_id)
              .join(ServiceRequest, ServiceRequest.id == WorkOrder.request_id)
              .where(WorkOrder.id.in_(_IDS), *_office_filter(Office.code, "x" if by_office else None)))
    return unpaid_ids, detail


def fees_not_collected(session: Session, *, as_of: datetime, calendar: BusinessCalendar,
                       cutoff: time = time(17, 30), office: str | None = None) -> list[FeeNotCollected]:
    """Accepted, chargeable (fee > 0, not rework) jobs with no receipt used by `as_of`, past their cut-off."""
    unpaid_ids, detail = _unpaid_statements(office is not None)
    rows = sorted(_by_ids(session, detail, _ids(session, unpaid_ids, {"as_of": as_of}), _params(as_of, office)),
                  key=lambda r: (r[5], r[0]))
    out = []
    for number, office_code, dept, code, worker_name, accepted_at, fee, rework_of, resident, phone, address in rows:
        due = fee_due(accepted_at, calendar, cutoff=cutoff)
        if is_chargeable(fee, rework_of) and due < as_of:
            out.append(FeeNotCollected(order=number, office=office_code, department=dept, worker=code,
                                       worker_name=worker_name,
                                       accepted_at=accepted_at, due_at=calendar.local(due),
                                       fee=Decimal(fee).quantize(CENT), resident=resident, phone=phone,
                                       address=address))
    return out


@cache
def _figures_statements() -> tuple:
    start, end = bindparam("start", type_=UTCDateTime()), bindparam("end", type_=UTCDateTime())
    cash_sum = func.coalesce(func.sum(case((Receipt.method == _CASH, Receipt.amount), else_=0)), 0)
    e_sum = func.coalesce(func.sum(case((Receipt.method != _CASH, Receipt.amount), else_=0)), 0)
    # (by collection time: whether a receipt has a collector is no reason for SQLite to pick an index)
    on_day = (Receipt.state == _USED, Receipt.collected_at >= start, Receipt.collected_at < end)

    def per_person(sums) -> Select:
        """The day's sums per person, then who they are: the join after the grouping, a look-up per person."""
        return (select(Staff.code, Staff.name, Staff.department, Office.code, *(type_coerce(c, Money) for c in
                                                                               list(sums.c)[1:]))
                .select_from(sums).join(Staff, Staff.id == sums.c.person).join(Office, Office.id == Staff.office_id))
    collected = per_person(select(Receipt.collected_by_id.label("person"), cash_sum, e_sum)
                           .where(*on_day, broad(Receipt.collected_by_id.is_not(None)))
                           .group_by(Receipt.collected_by_id).subquery())
    # an imported receipt with no collector counts for its book's holder (the join only for those: joined for
    # every receipt of the day, PostgreSQL hashes every book ever issued)
    by_holder = per_person(select(ReceiptBook.holder_id.label("person"), cash_sum, e_sum)
                           .join(ReceiptBook, ReceiptBook.id == Receipt.book_id)
                           .where(*on_day, broad(Receipt.collected_by_id.is_(None)))
                           .group_by(ReceiptBook.holder_id).subquery())
    handed = per_person(select(CashHandover.handed_by_id.label("person"), func.sum(CashHandover.counted_amount))
                        .where(CashHandover.handed_at >= start, CashHandover.handed_at < end,
                               CashHandover.confirmed_at.is_not(None), CashHandover.confirmed_at <= _AS_OF)
                        .group_by(CashHandover.handed_by_id).subquery())
    return union_all(collected, by_holder), handed


def collector_figures(session: Session, *, day: date, as_of: datetime, calendar: BusinessCalendar,
                      held: Iterable[CashHeld], office: str | None = None) -> list[CollectorFigures]:
    """Per collector: collected on `day` (cash / electronic), handed over on `day`, and all cash still held."""
    params = {"start": calendar.at(day, time(0)), "as_of": as_of,
              "end": min(calendar.at(day + timedelta(days=1), time(0)), as_of + timedelta(microseconds=1))}
    collected, handed = _figures_statements()
    # collector, name, department, office, cash, electronic, handed over, outstanding
    figures: dict[str, list] = {}

    def entry(code: str, name: str, dept: str, office_code: str) -> list:
        e = figures.get(code)
        if e is None:
            e = figures[code] = [code, name, dept, office_code, ZERO, ZERO, ZERO, ZERO]
        return e
    for code, name, dept, office_code, cash, electronic in _execute(session, collected, params):
        e = entry(code, name, dept, office_code)
        e[4] = (e[4] + cash).quantize(CENT)
        e[5] = (e[5] + electronic).quantize(CENT)
    for code, name, dept, office_code, amount in _execute(session, handed, params):
        entry(code, name, dept, office_code)[6] = amount.quantize(CENT)
    for item in held:
        entry(item.collector, item.collector_name, item.department, item.office)[7] += item.amount
    out = [_collector_figures(*f) for f in figures.values()]
    if office is not None:
        out = [f for f in out if f.office == office]
    return sorted(out, key=lambda f: (f.office, f.collector))


def check_cash(session: Session, *, day: date, as_of: datetime, calendar: BusinessCalendar,
               cutoff: time = time(17, 30), return_workdays: int = 5, office: str | None = None) -> CashCheck:
    """Everything the end-of-day cash check finds as of `as_of`, with `day`'s figures."""
    short_queries(session)
    held = cash_held(session, as_of=as_of, office=office)
    unhanded = unhanded_by_collector(held, as_of=as_of, calendar=calendar, cutoff=cutoff)
    mismatches = handover_mismatches(session, as_of=as_of, office=office)
    custody = receipt_custody(session, as_of=as_of, calendar=calendar, workdays=return_workdays, cutoff=cutoff,
                              office=office)
    gaps, unreturned = custody.gaps, custody.unreturned
    twice = receipts_used_twice(session, as_of=as_of, office=office)
    fees = fees_not_collected(session, as_of=as_of, calendar=calendar, cutoff=cutoff, office=office)
    collectors = collector_figures(session, day=day, as_of=as_of, calendar=calendar, held=held, office=office)
    shortfalls = tuple(m for m in mismatches if isinstance(m, HandoverShortfall))
    overcounts = tuple(m for m in mismatches if isinstance(m, HandoverOvercount))
    return CashCheck(
        day=day, as_of=as_of, unhanded=tuple(unhanded), shortfalls=shortfalls, overcounts=overcounts,
        unreturned=tuple(unreturned), gaps=tuple(gaps), used_twice=tuple(twice), fees_not_collected=tuple(fees),
        collectors=tuple(collectors), offices=tuple(office_totals(collectors)),
        findings_by_kind={k.name: len(found) for k, found in (
                          (catalogue.CASH_UNHANDED, unhanded), (catalogue.CASH_SHORTFALL, shortfalls),
                          (catalogue.CASH_OVERCOUNT, overcounts), (catalogue.RECEIPT_UNRETURNED, unreturned),
                          (catalogue.RECEIPT_GAP, gaps), (catalogue.RECEIPT_DOUBLE_USE, twice),
                          (catalogue.FEE_NOT_COLLECTED, fees))})
