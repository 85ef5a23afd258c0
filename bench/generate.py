"""A property group's ledger in bulk: N paid jobs over a year, with their receipts, handovers, callbacks and
department records, plus a fixed number of planted open items at the end.

The rows have the shapes and invariants the desk operations produce (models/desk/): a request registered by CS,
a work order for its department, acceptance before collection, one receipt per paid job from the worker's
pre-issued book, cash handed to finance before its cut-off, a callback row per accepted job (rework free, with its own
callback), a department record per completed job. Nothing happens after `as_of` except the planted "closed later"
items that check the as-of replay. Rows go in with SQLAlchemy Core executemany (SQLite) or COPY (PostgreSQL), ids
assigned here so foreign keys need no round trips. Audit events are not generated for the history: no measured
question reads them.

The planted open items are the same count at every N (`open_items`, default 100, i.e. ~1% at 10k orders), so
detection times at 10k and 1M compare like with like.
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import time as _time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url

from models.calendar import BusinessCalendar
from models.desk import DEFAULT_REWORK_WITHIN
from models.ledger.db import make_engine, upgrade
from models.rules import CATEGORY_DEPARTMENT, callback_due, cash_due
from models.ledger.tables import (
    CashHandover,
    Callback,
    Community,
    DepartmentReport,
    Office,
    PriceItem,
    Receipt,
    ReceiptBook,
    ServiceRequest,
    Staff,
    WorkOrder,
)

GENERATOR_VERSION = 3
# several working copies (git worktrees) can share one cache: a 1M-order ledger takes minutes to build
CACHE_DIR = Path(os.environ.get("BIANMIN_BENCH_CACHE") or Path(__file__).with_name("cache"))
END_DAY = date(2026, 11, 26)  # a Thursday, a working day
CHASE_CLOCK = time(17, 0)  # the chase flows look in working time, so deadlines are judged as of then
CASH_CLOCK = time(18, 0)  # the cash check of the day: the 17:30 cut-off plus its 30-minute grace
CUTOFF = time(17, 30)
BOOK_SIZE = 10  # about a week of one worker's jobs; blanks go back within the return window
RETURN_AFTER = timedelta(days=3)
ORDERS_PER_OFFICE = 5000
# July is the busy month (summer plumbing and electrical work): ~10% of a year's jobs
MONTH_WEIGHT = {7: 1.3}
BUSY_MONTH = (2026, 7)
# The last two weeks (every check's open items: the day's cash, callbacks due, replies, receipt books in hand) are
# those of a 10k-orders-a-year ledger at every N: its volume, in its two offices (the offices of the group that
# are busy now), so "1M / 10k" compares the same open items, collectors and books over a longer history: what
# issue 8 asks ("flat in history size ... for the same number of open items").
CURRENT_DAYS = 14
CURRENT_VOLUME_ORDERS = 10_000
CURRENT_OFFICES = 2  # what a 10k ledger has: max(2, 10_000 // ORDERS_PER_OFFICE)
LAYOUTS = ("year", "month")

PRICES = [
    ("P01", "plumbing", "疏通下水道", Decimal("80.00")),
    ("P02", "plumbing", "更换水龙头", Decimal("50.00")),
    ("E01", "electrical", "更换开关插座", Decimal("30.00")),
    ("E02", "electrical", "安装灯具", Decimal("60.00")),
    ("C01", "cleaning", "家庭保洁", Decimal("120.00")),
    ("C02", "cleaning", "擦玻璃", Decimal("100.00")),
    ("G01", "greening", "阳台绿植修剪", Decimal("40.00")),
]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华"
METHODS = (("cash", 40), ("wechat", 35), ("alipay", 20), ("card", 5))

# insertion order respects foreign keys
TABLES = [Office, Community, Staff, PriceItem, ServiceRequest, WorkOrder, ReceiptBook, CashHandover, Receipt,
          Callback, DepartmentReport]


@dataclass(frozen=True)
class BenchParams:
    """What a generated database is a function of; the cache key."""

    orders: int
    open_items: int = 100
    seed: int = 8
    # "year": the history spread over a year (July the busiest month, ~10%); "month": every order outside the
    # current fortnight falls in July 2026, for the tally of a month of N orders
    layout: str = "year"

    @property
    def key(self) -> str:
        extra = "" if (self.open_items, self.seed) == (100, 8) else f"_o{self.open_items}_s{self.seed}"
        extra += "" if self.layout == "year" else f"_{self.layout}"
        return f"bianmin_bench_{self.orders}{extra}_v{GENERATOR_VERSION}_{schema_fingerprint()}"


def schema_fingerprint() -> str:
    """A short hash of the migrations, so a schema change (a new index) invalidates the cached databases."""
    if os.environ.get("BIANMIN_BENCH_SCHEMA"):  # pin a database built before someone's schema edit
        return os.environ["BIANMIN_BENCH_SCHEMA"]
    digest = hashlib.sha1()
    for path in sorted((Path(__file__).parents[1] / "models" / "ledger" / "migrations" / "versions").glob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:6]


@dataclass
class Planted:
    """What a correct check must find as of `as_of`: the ground truth the generator planted."""

    as_of: str       # the chase flows' moment (working time, so judged as of itself)
    cash_as_of: str  # the cash check's moment for `day`
    day: str
    busiest_month: str
    busiest_month_orders: int
    replies_overdue: list[str] = field(default_factory=list)       # request numbers
    callbacks_overdue: list[str] = field(default_factory=list)     # order numbers
    orders_overdue: list[str] = field(default_factory=list)        # order numbers
    cash_unhanded: list[str] = field(default_factory=list)         # receipt numbers overdue as of as_of
    counts: dict[str, int] = field(default_factory=dict)


def _money(x: Decimal) -> Decimal:
    return x.quantize(Decimal("0.01"))


class _Sink:
    """Buffers rows per table and writes them in foreign-key order."""

    FLUSH_ROWS = 60_000

    def __init__(self, url: str) -> None:
        self.url = url
        self.backend = make_url(url).get_backend_name()
        self.engine = make_engine(url)
        self.buffers: dict[str, list[dict]] = defaultdict(list)
        self.pending = 0
        self.counts: dict[str, int] = defaultdict(int)
        self._pg = None
        if self.backend == "postgresql":
            self._pg = self.engine.raw_connection()

    def add(self, table: str, row: dict) -> None:
        self.buffers[table].append(row)
        self.pending += 1

    def maybe_flush(self) -> None:
        """Called between jobs only, where every buffered row's references are buffered or written."""
        if self.pending >= self.FLUSH_ROWS:
            self.flush()

    def flush(self) -> None:
        for model in TABLES:
            name = model.__tablename__
            rows = self.buffers.pop(name, None)
            if not rows:
                continue
            self.counts[name] += len(rows)
            if self._pg is not None:
                self._copy(model, rows)
            else:
                with self.engine.begin() as conn:
                    conn.execute(model.__table__.insert(), rows)
        self.pending = 0

    def _copy(self, model, rows: list[dict]) -> None:
        cols = [c.name for c in model.__table__.columns]
        with self._pg.cursor() as cur:
            with cur.copy(f'COPY {model.__tablename__} ({", ".join(cols)}) FROM STDIN') as copy:
                for row in rows:
                    copy.write_row([row.get(c) for c in cols])
        self._pg.commit()

    def close(self) -> None:
        self.flush()
        if self._pg is not None:
            with self._pg.cursor() as cur:
                for model in TABLES:
                    t = model.__tablename__
                    cur.execute(f"SELECT setval(pg_get_serial_sequence('{t}', 'id'), "
                                f"COALESCE((SELECT max(id) FROM {t}), 0) + 1, false)")
                cur.execute("ANALYZE")
            self._pg.commit()
            self._pg.close()
        else:
            with self.engine.begin() as conn:
                conn.execute(text("ANALYZE"))
        self.engine.dispose()


class _Generator:
    def __init__(self, params: BenchParams, sink: _Sink) -> None:
        self.p = params
        self.sink = sink
        self.rng = random.Random(params.seed)
        self.cal = BusinessCalendar()
        self.as_of = self.cal.at(END_DAY, CHASE_CLOCK).astimezone(timezone.utc)
        self.cash_as_of = self.cal.at(END_DAY, CASH_CLOCK).astimezone(timezone.utc)
        self.numbers: dict[str, int] = defaultdict(int)
        self.root_of: dict[int, str] = {}  # rework order id -> the original order's number
        self.ids: dict[str, int] = defaultdict(int)
        self.serial = 10_000_000
        self._cb_due: dict[date, datetime] = {}
        self._cash_due: dict[tuple[date, bool], datetime] = {}
        self.books: dict[int, list] = {}  # worker id -> [book id, next serial, last serial]
        self.pending_cash: dict[tuple[int, date], list[dict]] = defaultdict(list)
        self.month_orders: dict[str, int] = defaultdict(int)
        self.planted = Planted(as_of=self.as_of.isoformat(), cash_as_of=self.cash_as_of.isoformat(),
                               day=END_DAY.isoformat(), busiest_month="",
                               busiest_month_orders=0)

    # -- helpers -----------------------------------------------------------
    def next_id(self, table: str) -> int:
        self.ids[table] += 1
        return self.ids[table]

    def number(self, prefix: str, office: dict, at: datetime) -> str:
        """The desk's numbering: `<prefix>-<office>-<local day>-<nnn>`."""
        head = f"{prefix}-{office['code']}-{self.cal.local(at).strftime('%Y%m%d')}"
        self.numbers[head] += 1
        return f"{head}-{self.numbers[head]:03d}"

    def local(self, day: date, clock: time) -> datetime:
        return self.cal.at(day, clock).astimezone(timezone.utc)

    def callback_due(self, accepted_at: datetime) -> datetime:
        day = self.cal.local(accepted_at).date()
        if day not in self._cb_due:
            self._cb_due[day] = callback_due(accepted_at, self.cal, workdays=2).astimezone(timezone.utc)
        return self._cb_due[day]

    def cash_due(self, collected_at: datetime) -> datetime:
        local = self.cal.local(collected_at)
        key = (local.date(), local.time() < CUTOFF)
        if key not in self._cash_due:
            self._cash_due[key] = cash_due(collected_at, self.cal, cutoff=CUTOFF).astimezone(timezone.utc)
        return self._cash_due[key]

    def name(self) -> str:
        r = self.rng
        return r.choice(SURNAMES) + "".join(r.choice(GIVEN) for _ in range(r.randint(1, 2)))

    def phone(self) -> str:
        return f"1{self.rng.choice('3589')}{self.rng.randint(0, 9)}{self.rng.randint(10_000_000, 99_999_999)}"

    # -- reference data ----------------------------------------------------
    def reference_data(self) -> None:
        start = self.local(END_DAY - timedelta(days=400), time(9, 0))
        n_offices = max(2, self.p.orders // ORDERS_PER_OFFICE)
        self.offices = []
        for i in range(1, n_offices + 1):
            oid = self.next_id("offices")
            self.sink.add("offices", {"id": oid, "code": f"O{i:03d}", "name": f"第{i}服务处"})
            communities = []
            for j in range(1, 6):
                cid = self.next_id("communities")
                self.sink.add("communities", {"id": cid, "office_id": oid, "code": f"O{i:03d}C{j}",
                                              "name": f"第{i}服务处{j}号小区"})
                communities.append((cid, f"{j}号小区"))
            staff: dict[tuple[str, str], list[int]] = defaultdict(list)
            layout = [("cs", "clerk", 2), ("cs", "supervisor", 1), ("cs", "manager", 1),
                      ("engineering", "worker", 4), ("engineering", "supervisor", 1),
                      ("cleaning", "worker", 3), ("cleaning", "supervisor", 1),
                      ("finance", "cashier", 1), ("finance", "manager", 1), ("administration", "clerk", 1)]
            for dept, role, count in layout:
                for _ in range(count):
                    sid = self.next_id("staff")
                    self.sink.add("staff", {"id": sid, "code": f"S{sid:06d}", "name": self.name(), "office_id": oid,
                                            "department": dept, "role": role, "active": True})
                    staff[(dept, role)].append(sid)
            self.offices.append({"id": oid, "code": f"O{i:03d}", "communities": communities, "staff": staff})
        self.present = self.offices[:CURRENT_OFFICES]
        self.prices = []
        for code, category, pname, fee in PRICES:
            pid = self.next_id("price_items")
            self.sink.add("price_items", {"id": pid, "code": code, "category": category, "name": pname, "fee": fee})
            self.prices.append((pid, category, pname, fee))
        self._start = start

    # -- one job's life ----------------------------------------------------
    def request(self, office: dict, received_at: datetime, channel: str, *, replied_at: datetime | None,
                price=None) -> dict:
        r = self.rng
        pid, category, pname, fee = price or r.choice(self.prices)
        rid = self.next_id("service_requests")
        cid, cname = r.choice(office["communities"])
        row = {
            "id": rid, "number": self.number("R", office, received_at), "office_id": office["id"], "community_id": cid,
            "channel": channel, "received_at": received_at, "received_by_id": r.choice(office["staff"][("cs", "clerk")]),
            "resident_name": self.name(), "address": f"{cname}{r.randint(1, 30)}栋{r.randint(1, 6)}单元{r.randint(101, 2604)}",
            "phone": self.phone(), "category": category, "description": pname, "preferred_at": None,
            "price_item_id": pid, "agreed_fee": fee, "expected_result": "恢复正常使用",
            "replied_at": replied_at,
            "replied_by_id": r.choice(office["staff"][("cs", "clerk")]) if replied_at else None,
        }
        self.sink.add("service_requests", row)
        return row

    def order(self, office: dict, req: dict, *, issued_at: datetime, scheduled: datetime, fee: Decimal,
              rework_of: dict | None = None) -> dict:
        dept = CATEGORY_DEPARTMENT[req["category"]]
        oid = self.next_id("work_orders")
        if rework_of is None:
            number = self.number("WO", office, issued_at)
        else:
            root = self.root_of.get(rework_of["id"], rework_of["number"])
            self.numbers[root] += 1
            number = f"{root}-R{self.numbers[root]}"
        row = {
            "id": oid, "number": number, "request_id": req["id"], "office_id": office["id"],
            "department": dept, "worker_id": self.rng.choice(office["staff"][(dept, "worker")]),
            "issued_at": issued_at, "issued_by_id": req["received_by_id"], "scheduled_for": scheduled,
            "completed_at": None, "completed_by_id": None, "accepted_at": None, "accepted_by": None,
            "fee": fee, "rework_of_id": rework_of["id"] if rework_of else None, "paid_at": None,
        }
        if rework_of is not None:
            self.root_of[oid] = root
        return row

    def complete(self, office: dict, order: dict, req: dict, completed_at: datetime) -> None:
        order["completed_at"] = completed_at
        order["completed_by_id"] = order["worker_id"]
        order["accepted_at"] = completed_at + timedelta(minutes=self.rng.randint(1, 5))
        order["accepted_by"] = req["resident_name"]
        self.sink.add("department_reports", {
            "id": self.next_id("department_reports"), "reference": self.number("DR", office, completed_at),
            "office_id": office["id"], "department": order["department"],
            "reported_by_id": office["staff"][(order["department"], "supervisor")][0],
            "worker_id": order["worker_id"], "reported_at": completed_at, "address": req["address"],
            "description": req["description"], "order_id": order["id"], "fee": order["fee"],
        })

    def take_receipt(self, office: dict, worker: int, at: datetime) -> tuple[int, int]:
        book = self.books.get(worker)
        if book is not None and book[1] <= book[2] and at - book[3] > RETURN_AFTER:
            self.return_blanks(book, at - timedelta(hours=1))
        if book is None or book[1] > book[2]:
            bid = self.next_id("receipt_books")
            first = self.serial
            self.serial += BOOK_SIZE
            issued_at = at - timedelta(hours=2)
            self.sink.add("receipt_books", {"id": bid, "office_id": office["id"], "holder_id": worker,
                                            "issued_by_id": office["staff"][("cs", "supervisor")][0],
                                            "issued_at": issued_at, "first_serial": first, "count": BOOK_SIZE})
            book = self.books[worker] = [bid, first, first + BOOK_SIZE - 1, issued_at]
        serial = book[1]
        book[1] += 1
        return book[0], serial

    def return_blanks(self, book: list, at: datetime) -> None:
        """The holder gives the unused numbers of a book back to the desk."""
        for serial in range(book[1], book[2] + 1):
            self.sink.add("receipts", self.receipt_row(book[0], serial, state="returned", reason="交回",
                                                       state_changed_at=at))
        book[1] = book[2] + 1

    def receipt_row(self, book_id: int, serial: int, **values) -> dict:
        row = {"id": self.next_id("receipts"), "number": f"{serial:08d}", "serial": serial, "book_id": book_id,
               "state": "issued", "order_id": None, "amount": None, "method": None, "collected_at": None,
               "collected_by_id": None, "reason": None, "state_changed_at": None, "handover_id": None,
               "origin": "desk"}  # as models.desk writes them
        row.update(values)
        return row

    def collect(self, office: dict, order: dict, at: datetime, *, method: str | None = None) -> dict:
        r = self.rng
        worker = order["worker_id"]
        if r.random() < 0.005:  # a spoilt receipt, voided: the next number is used
            book_id, serial = self.take_receipt(office, worker, at)
            self.sink.add("receipts", self.receipt_row(book_id, serial, state="voided", reason="写错作废",
                                                       state_changed_at=at))
        book_id, serial = self.take_receipt(office, worker, at)
        if method is None:
            method = r.choices([m for m, _ in METHODS], [w for _, w in METHODS])[0]
        row = self.receipt_row(book_id, serial, state="used", order_id=order["id"], amount=order["fee"],
                               method=method, collected_at=at, collected_by_id=worker, state_changed_at=at)
        order["paid_at"] = at  # as desk.collect records it
        if method == "cash":
            self.pending_cash[(worker, self.cal.local(self.cash_due(at)).date())].append(row)
        else:
            self.sink.add("receipts", row)
        return row

    def callbacks(self, office: dict, order: dict, req: dict) -> None:
        """The callback row(s) of an accepted job; rework (free) gets its own. Stops at as_of."""
        r = self.rng
        accepted = order["accepted_at"]
        due = self.callback_due(accepted)
        created = accepted
        while True:
            done_day = self.cal.next_working_day(self.cal.local(created).date())
            done_at = self.local(done_day, time(10, r.randint(0, 59)))
            cb = {"id": self.next_id("callbacks"), "order_id": order["id"], "created_at": created, "due_at": due,
                  "done_at": None, "done_by_id": None, "outcome": None, "note": None, "rework_order_id": None}
            if done_at > self.as_of:
                self.sink.add("callbacks", cb)
                return
            roll = r.random()
            outcome = "satisfied" if roll >= 0.02 else ("unsatisfied" if roll < 0.01 else "unreachable")
            cb.update(done_at=done_at, done_by_id=r.choice(office["staff"][("cs", "clerk")]), outcome=outcome)
            if outcome == "unreachable":
                self.sink.add("callbacks", cb)
                created = done_at
                due = self.local(self.cal.next_working_day(done_day), self.cal.work_end)
                continue
            if outcome == "unsatisfied":
                rework = self.order(office, req, issued_at=done_at, scheduled=done_at + DEFAULT_REWORK_WITHIN,
                                    fee=Decimal("0.00"), rework_of=order)
                rework["worker_id"] = order["worker_id"]
                cb["rework_order_id"] = rework["id"]
                # done the same day, long before its deadline (callbacks are done by 11:00)
                self.complete(office, rework, req, done_at + timedelta(hours=2))
                self.sink.add("work_orders", rework)
                self.sink.add("callbacks", cb)
                self.callbacks(office, rework, req)
                return
            self.sink.add("callbacks", cb)
            return

    def job(self, office: dict, received_at: datetime) -> None:
        r = self.rng
        phone = r.random() < 0.6
        replied = received_at + timedelta(minutes=r.randint(1, 9) if r.random() > 0.01 else r.randint(11, 40))
        req = self.request(office, received_at, "phone" if phone else "walk_in", replied_at=replied if phone else None)
        issued = received_at + timedelta(minutes=r.randint(2, 15))
        scheduled = issued + timedelta(minutes=r.randint(20, 150))
        order = self.order(office, req, issued_at=issued, scheduled=scheduled, fee=req["agreed_fee"])
        self.complete(office, order, req, scheduled + timedelta(minutes=r.randint(30, 90)))
        self.sink.add("work_orders", order)
        collected = order["accepted_at"] + timedelta(minutes=1)
        local = self.cal.local(collected).time()
        if time(17, 20) <= local < CUTOFF:  # keep clear of the handover window so history has no late cash
            collected += timedelta(minutes=15)
        self.collect(office, order, collected)
        self.callbacks(office, order, req)
        self.month_orders[self.cal.local(received_at).strftime("%Y-%m")] += 1

    def handovers(self, day: date) -> None:
        """Every worker hands over the cash due today at 17:25; finance confirms at once."""
        if not self.cal.is_working_day(day):
            return
        at = self.local(day, time(17, 25))
        for key in [k for k in self.pending_cash if k[1] == day]:
            worker, _ = key
            receipts = self.pending_cash.pop(key)
            self.hand(receipts, worker, at)

    def hand(self, receipts: list[dict], worker: int, at: datetime, *, short: Decimal = Decimal("0")) -> int:
        office = self.office_of_worker[worker]
        hid = self.next_id("cash_handovers")
        total = _money(sum((x["amount"] for x in receipts), Decimal("0")))
        self.sink.add("cash_handovers", {
            "id": hid, "number": self.number("H", office, at), "office_id": office["id"], "handed_by_id": worker,
            "received_by_id": office["staff"][("finance", "cashier")][0], "handed_at": at, "confirmed_at": at,
            "declared_amount": total, "counted_amount": total - short, "origin": "desk"})
        for x in receipts:
            x["handover_id"] = hid
            self.sink.add("receipts", x)
        return hid

    # -- the year ----------------------------------------------------------
    def history(self) -> None:
        first = END_DAY - timedelta(days=364)
        days = [first + timedelta(days=i) for i in range(365)]
        counts = daily_counts(days, self.p.orders, layout=self.p.layout, calendar=self.cal)
        self.office_of_worker = {w: o for o in self.offices for k, ws in o["staff"].items() for w in ws}
        current_from = END_DAY - timedelta(days=CURRENT_DAYS - 1)
        for day, count in zip(days, counts):
            offices = self.present if day >= current_from else self.offices
            # the last day's jobs are morning jobs, all finished before as_of
            latest = time(12, 0) if day == END_DAY else time(15, 0)
            span = (latest.hour * 60 + latest.minute) - (8 * 60 + 30)
            for _ in range(count):
                minute = self.rng.randrange(span)
                received = self.local(day, time(8 + (30 + minute) // 60, (30 + minute) % 60, self.rng.randrange(60)))
                self.job(self.rng.choice(offices), received)
                self.sink.maybe_flush()
            self.handovers(day)

    def plant(self) -> None:
        """The open items, the same count at every N; what a correct check finds as of as_of."""
        k, r, cal, P = self.p.open_items, self.rng, self.cal, self.planted
        as_of = self.as_of
        tenth = max(1, k // 10)
        # phone requests without a reply: overdue, not yet due, and replied only after as_of
        for i in range(k):
            req = self.request(r.choice(self.present), as_of - timedelta(minutes=r.randint(11, 400)), "phone",
                               replied_at=None)
            P.replies_overdue.append(req["number"])
        for i in range(k // 2):
            self.request(r.choice(self.present), as_of - timedelta(minutes=r.randint(1, 9)), "phone", replied_at=None)
        for i in range(tenth):
            req = self.request(r.choice(self.present), as_of - timedelta(minutes=r.randint(30, 300)), "phone",
                               replied_at=as_of + timedelta(minutes=5))
            P.replies_overdue.append(req["number"])
        # accepted jobs whose callback is overdue (some at level 2), not yet due, or done only after as_of
        def accepted_job(day: date, *, done_later: bool = False) -> dict:
            office = r.choice(self.present)
            received = self.local(day, time(9, r.randint(0, 59)))
            req = self.request(office, received, "walk_in", replied_at=None)
            order = self.order(office, req, issued_at=received + timedelta(minutes=5),
                               scheduled=received + timedelta(hours=1), fee=req["agreed_fee"])
            self.complete(office, order, req, received + timedelta(hours=2))
            self.sink.add("work_orders", order)
            self.collect(office, order, order["accepted_at"] + timedelta(minutes=1), method="wechat")
            due = self.callback_due(order["accepted_at"])
            cb = {"id": self.next_id("callbacks"), "order_id": order["id"], "created_at": order["accepted_at"],
                  "due_at": due, "done_at": None, "done_by_id": None, "outcome": None, "note": None,
                  "rework_order_id": None}
            if done_later:
                cb.update(done_at=as_of + timedelta(hours=15), done_by_id=office["staff"][("cs", "clerk")][0],
                          outcome="satisfied")
            self.sink.add("callbacks", cb)
            return order

        # back[i]: the i-th working day before END_DAY (back[0] is END_DAY itself)
        back = [cal.working_days_before(END_DAY, i) for i in range(8)]
        for i in range(k):
            order = accepted_job(back[r.choice([3, 4, 5, 6])])
            P.callbacks_overdue.append(order["number"])
        for i in range(k // 2):
            accepted_job(back[0])
        for i in range(tenth):
            order = accepted_job(back[4], done_later=True)
            P.callbacks_overdue.append(order["number"])
        # work orders past their scheduled time and not completed; and ones scheduled for tomorrow
        for i in range(k + k // 2):
            office = r.choice(self.present)
            received = as_of - timedelta(hours=r.randint(4, 8))
            req = self.request(office, received, "walk_in", replied_at=None)
            late = i < k
            order = self.order(office, req, issued_at=received + timedelta(minutes=5),
                               scheduled=(received + timedelta(hours=1)) if late else (as_of + timedelta(hours=16)),
                               fee=req["agreed_fee"])
            self.sink.add("work_orders", order)
            if late:
                P.orders_overdue.append(order["number"])
        # cash not handed over: collected today before the cut-off, yesterday, and handed only after as_of
        def cash_job(day: date, clock: time) -> tuple[dict, dict]:
            office = r.choice(self.present)
            received = self.local(day, clock)
            req = self.request(office, received, "walk_in", replied_at=None)
            order = self.order(office, req, issued_at=received + timedelta(minutes=5),
                               scheduled=received + timedelta(minutes=30), fee=req["agreed_fee"])
            self.complete(office, order, req, received + timedelta(hours=1))
            self.sink.add("work_orders", order)
            self.callbacks(office, order, req)
            worker = order["worker_id"]
            book_id, serial = self.take_receipt(office, worker, order["accepted_at"])
            rec = self.receipt_row(book_id, serial, state="used", order_id=order["id"], amount=order["fee"],
                                   method="cash", collected_at=order["accepted_at"] + timedelta(minutes=1),
                                   collected_by_id=worker, state_changed_at=order["accepted_at"])
            order["paid_at"] = rec["collected_at"]
            return office, rec

        for i in range(k):
            _, rec = cash_job(back[0], time(13, r.randint(0, 59)))
            self.sink.add("receipts", rec)
            P.cash_unhanded.append(rec["number"])
        for i in range(tenth):
            _, rec = cash_job(back[1], time(14, r.randint(0, 59)))
            self.sink.add("receipts", rec)
            P.cash_unhanded.append(rec["number"])
        for i in range(tenth):
            _, rec = cash_job(back[0], time(11, r.randint(0, 59)))
            self.hand([rec], rec["collected_by_id"], as_of + timedelta(hours=15))
            P.cash_unhanded.append(rec["number"])
        # cash collected after the cut-off on the last day is due tomorrow: not a finding
        for key in list(self.pending_cash):
            for rec in self.pending_cash.pop(key):
                self.sink.add("receipts", rec)

    def finish(self) -> None:
        # blanks of books older than a few days went back this morning; the rest stay 'issued' with the worker
        morning = self.local(END_DAY, time(9, 0))
        for book in self.books.values():
            if book[3] < morning - RETURN_AFTER:
                self.return_blanks(book, morning)
            for serial in range(book[1], book[2] + 1):
                self.sink.add("receipts", self.receipt_row(book[0], serial))
        busiest = max(self.month_orders, key=self.month_orders.get)
        self.planted.busiest_month = busiest
        self.planted.busiest_month_orders = self.month_orders[busiest]
        for name in ("replies_overdue", "callbacks_overdue", "orders_overdue", "cash_unhanded"):
            getattr(self.planted, name).sort()


def _apportion(total: int, weights: list[float]) -> list[int]:
    """`total` split in proportion to `weights`, in whole jobs (largest remainders)."""
    if total <= 0 or not any(weights):
        return [0] * len(weights)
    quotas = [total * w / sum(weights) for w in weights]
    counts = [int(q) for q in quotas]
    for i in sorted(range(len(weights)), key=lambda i: quotas[i] - counts[i], reverse=True)[:total - sum(counts)]:
        counts[i] += 1
    return counts


def daily_counts(days: list[date], orders: int, *, layout: str, calendar: BusinessCalendar) -> list[int]:
    """Jobs per day: the current fortnight at a fixed volume, the rest of `orders` over the history's days."""
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; known: {', '.join(LAYOUTS)}")
    weights = [MONTH_WEIGHT.get(d.month, 1.0) * (1.0 if calendar.is_working_day(d) else 0.6) for d in days]
    current = [d > END_DAY - timedelta(days=CURRENT_DAYS) for d in days]
    year_volume = _apportion(min(orders, CURRENT_VOLUME_ORDERS), weights)
    fixed = [n if now else 0 for n, now in zip(year_volume, current)]
    if layout == "month":
        rest_weights = [w if (d.year, d.month) == BUSY_MONTH else 0.0 for d, w in zip(days, weights)]
    else:
        rest_weights = [0.0 if now else w for w, now in zip(weights, current)]
    rest = _apportion(orders - sum(fixed), rest_weights)
    return [a + b for a, b in zip(fixed, rest)]


def generate_into(url: str, params: BenchParams) -> Planted:
    """Fill the (migrated, empty) ledger at `url` with the benchmark's data; returns the planted ground truth."""
    sink = _Sink(url)
    gen = _Generator(params, sink)
    gen.reference_data()
    gen.history()
    gen.plant()
    gen.finish()
    sink.close()
    gen.planted.counts = dict(sink.counts)
    return gen.planted


def pg_admin_url(url: str) -> str:
    return make_url(url).set(database="postgres").render_as_string(hide_password=False)


@dataclass(frozen=True)
class _Frozen(BenchParams):
    """BenchParams whose key is computed once."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "_key", BenchParams.key.fget(self))

    @property
    def key(self) -> str:
        return self._key


def _drop_stale(params: BenchParams, *, db: str, cache_dir: Path, admin_url: str | None) -> None:
    """Databases of the same parameters built for an older schema or generator: they only fill the disk."""
    stem = params.key.rsplit("_v", 1)[0] + "_v"
    if admin_url is None:
        for path in cache_dir.glob(f"{stem}*.db*"):
            if not path.name.startswith(params.key):
                path.unlink(missing_ok=True)
    else:
        admin = make_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            names = conn.execute(text("SELECT datname FROM pg_database WHERE datname LIKE :p"),
                                 {"p": stem.replace("_", r"\_") + "%"}).scalars().all()
            for name in names:
                if name not in (params.key, f"{params.key}_tmp"):
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    for manifest in cache_dir.glob(f"{stem}*-{db}.json"):
        if not manifest.name.startswith(params.key):
            manifest.unlink(missing_ok=True)


def ensure(params: BenchParams, *, db: str = "sqlite", pg_url: str = "postgresql://postgres@127.0.0.1:5432/postgres",
           cache_dir: Path = CACHE_DIR, log=print) -> tuple[str, Planted, dict]:
    """The URL of a generated database for `params` (built once, cached), its planted truth and how it was built."""
    # the key hashes the migrations in the working tree, which others may edit while this runs: read it once
    params = _Frozen(params.orders, params.open_items, params.seed, params.layout)
    cache_dir.mkdir(parents=True, exist_ok=True)
    manifest = cache_dir / f"{params.key}-{db}.json"
    if db == "sqlite":
        path = cache_dir / f"{params.key}.db"
        url = f"sqlite:///{path}"
        if manifest.exists() and path.exists():
            data = json.loads(manifest.read_text())
            return url, Planted(**data["planted"]), data["build"]
        tmp = cache_dir / f"{params.key}.tmp.db"
        for p in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
            p.unlink(missing_ok=True)
        tmp_url = f"sqlite:///{tmp}"
    else:
        admin = make_engine(pg_admin_url(pg_url), isolation_level="AUTOCOMMIT")
        url = make_url(pg_url).set(database=params.key).render_as_string(hide_password=False)
        with admin.connect() as conn:
            exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": params.key}).first()
            if exists and manifest.exists():
                admin.dispose()
                data = json.loads(manifest.read_text())
                return url, Planted(**data["planted"]), data["build"]
            conn.execute(text(f'DROP DATABASE IF EXISTS "{params.key}_tmp" WITH (FORCE)'))
            conn.execute(text(f'DROP DATABASE IF EXISTS "{params.key}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{params.key}_tmp"'))
        tmp_url = make_url(pg_url).set(database=f"{params.key}_tmp").render_as_string(hide_password=False)
    _drop_stale(params, db=db, cache_dir=cache_dir, admin_url=None if db == "sqlite" else pg_admin_url(pg_url))
    log(f"generating {params.orders} orders ({db}) ...")
    t0 = _time.perf_counter()
    upgrade(tmp_url)
    planted = generate_into(tmp_url, params)
    seconds = _time.perf_counter() - t0
    build = {"seconds": round(seconds, 1), "rows": sum(planted.counts.values()), "generator": GENERATOR_VERSION}
    if db == "sqlite":
        import sqlite3

        conn = sqlite3.connect(tmp)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()
        shutil.move(tmp, path)
        for suffix in ("-wal", "-shm"):
            Path(f"{tmp}{suffix}").unlink(missing_ok=True)
        build["bytes"] = path.stat().st_size
    else:
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{params.key}_tmp" RENAME TO "{params.key}"'))
            build["bytes"] = conn.execute(text("SELECT pg_database_size(:n)"), {"n": params.key}).scalar()
        admin.dispose()
    manifest.write_text(json.dumps({"params": asdict(params), "planted": asdict(planted), "build": build},
                                   ensure_ascii=False, indent=1))
    log(f"generated {build['rows']} rows in {seconds:.1f} s")
    return url, planted, build


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description="generate (or reuse) a benchmark ledger")
    ap.add_argument("--orders", type=int, default=10_000)
    ap.add_argument("--open", type=int, default=100)
    ap.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    ap.add_argument("--layout", choices=LAYOUTS, default="year")
    args = ap.parse_args()
    print(ensure(BenchParams(args.orders, args.open, layout=args.layout), db=args.db)[0])
