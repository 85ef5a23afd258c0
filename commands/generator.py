"""A realistic month of paid convenience services, built through the desk operations, with known problems planted.

Deterministic by seed: the same (month, offices, orders_per_office, seed, plan) builds the same ledger. Every row
is written by `models.desk`, so the data obeys the procedure exactly as a desk would; the generator then knows,
from its own bookkeeping, what the month's figures are and which problems it planted, so the flows and the
monthly tally can be checked against it.

The month's life, per office: CS registers walk-in and phone requests (fewer on days off, the October holiday
included), replies to phone calls within minutes, issues the notice to the department's worker, who completes
the job the same day; the resident signs, the worker collects on a pre-issued receipt (cash or e-payment) and
hands the day's cash to the cashier at 17:00; CS calls back on the next working day (some unreachable, then
reached; a few unsatisfied, which opens a free rework order that goes the same way); the department records
its own copy of each job. Requests of the last working day's afternoon are left scheduled for the next month.

Planted problems, each found exactly once as of the month's end (see `Planted`):
  reply-overdue     a phone request of the last working day never replied to
  callback-overdue  a job accepted three working days before the end whose callback nobody made (level 1)
  cash-unhanded     cash collected the day before the last working day, never handed over
  cash-shortfall    a handover in mid-month where the cashier counted 20 yuan less than the receipts
  receipt-gap       a receipt number skipped in a worker's book
  private-job       engineering records a job CS never registered (procedure 4.4)
and, for the report's figures only, phone requests replied to after the 10 minutes (`late_replies`).
"""
from __future__ import annotations

import heapq
import random
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from sqlalchemy.orm import Session, sessionmaker

from models import desk
from models.calendar import BusinessCalendar
from models.findings import (CALLBACK_MISSING, CALLBACK_OVERDUE, CASH_SHORTFALL, CASH_UNHANDED, HANDOVER_SHORTFALL,
                             PRIVATE_JOB, RECEIPT_GAP, REPLY_OVERDUE)

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
GIVEN = ("伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明", "超", "秀英",
         "霞", "平", "刚", "桂英", "建华", "文", "华", "红", "玉兰", "志强", "海燕", "国强")
TITLES = ("女士", "先生", "阿姨", "大爷")
COMMUNITY_NAMES = ("翠湖花园", "阳光新城", "锦绣华庭", "金色家园", "碧水蓝湾", "和平里小区", "东方明珠苑", "幸福家园",
                   "枫林绿洲", "滨江一号", "书香门第", "怡景湾")
OFFICE_NAMES = ("城东服务处", "城西服务处", "城南服务处", "城北服务处", "高新服务处", "滨江服务处")
PRICES = (  # code, category, name, fee; descriptions avoid appliance and renovation words on purpose
    ("PL-TAP", "plumbing", "更换水龙头", Decimal("80.00"), ("厨房水龙头漏水", "卫生间水龙头关不紧", "更换水龙头")),
    ("PL-DRAIN", "plumbing", "疏通下水道", Decimal("120.00"), ("厨房下水道堵塞", "地漏堵塞返水", "洗手池下水慢")),
    ("PL-TOILET", "plumbing", "马桶维修", Decimal("100.00"), ("马桶水箱漏水", "马桶冲水无力")),
    ("EL-SOCKET", "electrical", "更换插座开关", Decimal("50.00"), ("卧室插座没电", "客厅开关损坏", "插座松动打火")),
    ("EL-LIGHT", "electrical", "灯具安装维修", Decimal("60.00"), ("客厅灯不亮", "安装吸顶灯", "卫生间灯频闪")),
    ("EL-TRIP", "electrical", "线路检修", Decimal("150.00"), ("家里频繁跳闸", "厨房线路老化检修")),
    ("CL-DEEP", "cleaning", "深度保洁", Decimal("260.00"), ("全屋深度保洁", "厨房深度保洁")),
    ("CL-GLASS", "cleaning", "擦玻璃", Decimal("120.00"), ("阳台玻璃清洁", "全屋擦窗")),
    ("GR-TRIM", "greening", "庭院修剪", Decimal("150.00"), ("庭院绿篱修剪", "露台花木修剪")),
    ("GR-POT", "greening", "盆栽养护", Decimal("60.00"), ("盆栽换土施肥", "阳台花草养护")),
)
CATEGORY_WEIGHTS = {"plumbing": 4, "electrical": 3, "cleaning": 2, "greening": 1}
# one office's people: suffix, department, role, and for workers the categories they do
STAFF = (
    ("CS1", "cs", "clerk", ()), ("CS2", "cs", "clerk", ()), ("CSS", "cs", "supervisor", ()),
    ("CSM", "cs", "manager", ()), ("ENS", "engineering", "supervisor", ()),
    ("PL1", "engineering", "worker", ("plumbing",)), ("PL2", "engineering", "worker", ("plumbing",)),
    ("EL1", "engineering", "worker", ("electrical",)), ("CLS", "cleaning", "supervisor", ()),
    ("CL1", "cleaning", "worker", ("cleaning",)), ("GR1", "cleaning", "worker", ("greening",)),
    ("FC1", "finance", "cashier", ()), ("FM1", "finance", "manager", ()), ("AD1", "administration", "clerk", ()),
)
SUPERVISOR = {"engineering": "ENS", "cleaning": "CLS"}
METHODS = (("cash", 65), ("wechat", 25), ("alipay", 10))
SHORTFALL = Decimal("20.00")


@dataclass(frozen=True)
class Plan:
    """How many of each problem to plant, over all offices (round robin)."""

    unreplied: int = 2
    late_replies: int = 4
    overdue_callbacks: int = 2
    cash_held: int = 1
    shortfalls: int = 1
    receipt_gaps: int = 1
    private_jobs: int = 1


@dataclass(frozen=True)
class Planted:
    """One planted problem: the alert the flows must record for it and the report row the tally must show."""

    kind: str  # the alert kind (a private job: the tally's kind; no flow alerts on it)
    office: str
    reference: str  # request, order, handover, receipt number or report reference
    alert_key: str | None  # the outbox dedupe key the flows record; None when only the tally finds it
    tally_kind: str | None  # the kind of the report's finding row; None when the report shows it in a figure
    tally_reference: str | None
    what: str  # a line for people, in Chinese


@dataclass(frozen=True)
class OfficeFigures:
    """The generator's own count of one office's month, in the report's terms."""

    office: str
    requests: int = 0
    orders: int = 0
    completed: int = 0
    accepted: int = 0
    receipts: int = 0
    revenue_cash: Decimal = Decimal("0.00")
    revenue_electronic: Decimal = Decimal("0.00")
    phone_requests: int = 0
    phone_replied_in_time: int = 0
    rework: int = 0
    callbacks_done: int = 0


@dataclass(frozen=True)
class GeneratedMonth:
    """What was built: the month, its offices, the moment it ends, the planted problems and the figures."""

    month: str
    offices: tuple[str, ...]
    start: datetime
    end: datetime  # local midnight after the month's last day: "as of the month's end"
    last_working_day: date
    seed: int
    planted: tuple[Planted, ...]
    figures: tuple[OfficeFigures, ...]

    def total(self) -> OfficeFigures:
        out: dict = defaultdict(int)
        for f in self.figures:
            for name in OfficeFigures.__dataclass_fields__:
                if name != "office":
                    out[name] += getattr(f, name)
        return OfficeFigures(office="*", **out)

    def tally_counts(self) -> dict[str, int]:
        """The report's findings by kind that the planted problems must produce."""
        counts: dict[str, int] = defaultdict(int)
        for p in self.planted:
            if p.tally_kind is not None:
                counts[p.tally_kind] += 1
        return dict(counts)


@dataclass
class _Job:
    office: str
    number: str
    order: str
    day: date
    received: datetime
    channel: str
    price: tuple
    description: str
    resident: str
    phone: str
    address: str
    community: str
    clerk: str
    worker: str
    reply_after: timedelta | None = None  # None: walk-in or never replied
    open_order: bool = False  # left scheduled for next month
    method: str = "cash"
    skip_callback: bool = False
    hold_cash: bool = False
    collected: datetime | None = None

    @property
    def category(self) -> str:
        return self.price[1]

    @property
    def fee(self) -> Decimal:
        return self.price[3]


def _month_days(month: str) -> list[date]:
    year, mon = (int(x) for x in month.split("-"))
    day, days = date(year, mon, 1), []
    while day.month == mon:
        days.append(day)
        day += timedelta(days=1)
    return days


class _Builder:
    """Runs the month as a queue of timed events, each a desk operation, in one transaction per day."""

    def __init__(self, sessions: sessionmaker[Session], calendar: BusinessCalendar, rng: random.Random,
                 callback_workdays: int) -> None:
        self.sessions, self.cal, self.rng, self.callback_workdays = sessions, calendar, rng, callback_workdays
        self.queue: list[tuple[datetime, int, Callable[[Session], None]]] = []
        self.seq = 0
        self.figures: dict[str, dict] = {}

    def at(self, moment: datetime, action: Callable[[Session], None]) -> None:
        self.seq += 1
        heapq.heappush(self.queue, (moment, self.seq, action))

    def count(self, office: str, name: str, by: int | Decimal = 1) -> None:
        self.figures[office][name] += by

    def run(self, until: datetime) -> None:
        """Every event before `until`, a day's events per transaction; later ones are dropped (next month)."""
        while self.queue and self.queue[0][0] < until:
            day = self.cal.local(self.queue[0][0]).date()
            with self.sessions() as s, s.begin():
                while self.queue and self.queue[0][0] < until and self.cal.local(self.queue[0][0]).date() == day:
                    _, _, action = heapq.heappop(self.queue)
                    action(s)
        self.queue.clear()


def generate_month(sessions: sessionmaker[Session], *, calendar: BusinessCalendar, month: str = "2026-10",
                   offices: int = 2, orders_per_office: int = 150, seed: int = 7, plan: Plan = Plan(),
                   callback_workdays: int = 2, setup_at: datetime | None = None) -> GeneratedMonth:
    """Build `month` for `offices` offices (codes D1, D2, ...) with about `orders_per_office` jobs each.

    The ledger must not already hold these offices. Returns the planted problems and the generator's figures.
    """
    rng = random.Random(seed)
    days = _month_days(month)
    start = calendar.at(days[0], time(0))
    end = calendar.at(days[-1] + timedelta(days=1), time(0))
    working = [d for d in days if calendar.is_working_day(d)]
    last = working[-1]
    b = _Builder(sessions, calendar, rng, callback_workdays)
    codes = [f"D{i + 1}" for i in range(offices)]
    communities: dict[str, list[str]] = {}
    with sessions() as s, s.begin():
        when = setup_at or calendar.at(days[0], time(0)) - timedelta(days=1)
        for code, item_fee in ((p[0], p) for p in PRICES):
            desk.set_price(s, code=code, category=item_fee[1], name=item_fee[2], fee=item_fee[3], at=when)
        for i, office in enumerate(codes):
            desk.add_office(s, code=office, name=OFFICE_NAMES[i % len(OFFICE_NAMES)] + (
                f"{i // len(OFFICE_NAMES) + 1}" if i >= len(OFFICE_NAMES) else ""), at=when)
            communities[office] = []
            for k in range(2):
                community = f"{office}-C{k + 1}"
                desk.add_community(s, office=office, code=community,
                                   name=COMMUNITY_NAMES[(2 * i + k) % len(COMMUNITY_NAMES)], at=when)
                communities[office].append(community)
            for suffix, department, role, _ in STAFF:
                desk.add_staff(s, code=f"{office}-{suffix}", name=_person(rng), office=office,
                               department=department, role=role, at=when)
            b.figures[office] = defaultdict(int)

    # -- plan every job first: receipt books are sized from what each worker will collect ------------------
    jobs: list[_Job] = []
    weights = [1.0 if calendar.is_working_day(d) else 0.35 for d in days]
    workers_for = {cat: [s for s, _, _, cats in STAFF if cat in cats] for cat in CATEGORY_WEIGHTS}
    categories = [c for c, w in CATEGORY_WEIGHTS.items() for _ in range(w)]
    for office in codes:
        per_day: dict[date, int] = defaultdict(int)
        for d in rng.choices(days, weights=weights, k=orders_per_office):
            per_day[d] += 1
        for d in days:
            for n in range(per_day[d]):
                cat = rng.choice(categories)
                price = rng.choice([p for p in PRICES if p[1] == cat])
                received = calendar.at(d, time(8, 40)) + timedelta(minutes=rng.randrange(0, 290))
                channel = "phone" if rng.random() < 0.55 else "walk_in"
                stamp = f"{d:%Y%m%d}"
                job = _Job(office=office, number=f"R-{office}-{stamp}-{n + 1:03d}",
                           order=f"WO-{office}-{stamp}-{n + 1:03d}", day=d, received=received, channel=channel,
                           price=price, description=rng.choice(price[4]), resident=_resident(rng),
                           phone=f"1{rng.choice('3589')}{rng.randrange(10**9):09d}", address=_address(rng),
                           community=rng.choice(communities[office]), clerk=f"{office}-{rng.choice(('CS1', 'CS2'))}",
                           worker=f"{office}-{rng.choice(workers_for[cat])}",
                           reply_after=timedelta(minutes=rng.randrange(2, 9)) if channel == "phone" else None,
                           method=rng.choices([m for m, _ in METHODS], weights=[w for _, w in METHODS])[0])
                # the last working day's afternoon: scheduled for next month, not done by the month's end
                job.open_order = d == last and received.astimezone(calendar.tz).time() >= time(13, 0)
                jobs.append(job)

    planted = _plant(jobs, plan, calendar, rng, codes, last, working)

    # -- receipt books: per worker and week, exactly what they will use (plus a skipped number if planted) -----
    collecting = [j for j in jobs if not j.open_order]
    by_book: dict[tuple[str, int], list[_Job]] = defaultdict(list)
    for j in collecting:
        by_book[(j.worker, j.day.isocalendar()[1])].append(j)
    gap_books = [key for key, js in sorted(by_book.items()) if len(js) >= 3][:plan.receipt_gaps]
    serials: dict[str, int] = defaultdict(int)
    receipt_of: dict[str, str] = {}
    for key in sorted(by_book):
        worker, _week = key
        office = worker.split("-")[0]
        js = sorted(by_book[key], key=lambda j: j.received)
        skip = 1 if key in gap_books else None
        count = len(js) + (1 if skip is not None else 0)
        first = serials[office] + 1
        serials[office] += count
        prefix = codes.index(office) + 1
        numbers = [f"{prefix}{first + i:06d}" for i in range(count)]
        if skip is not None:
            gap_number = numbers.pop(skip)
            planted.append(Planted(RECEIPT_GAP.name, office, gap_number, RECEIPT_GAP.key(gap_number), RECEIPT_GAP.name,
                                   gap_number, f"收据 {gap_number} 被跳号({worker} 的票本)"))
        for j, number in zip(js, numbers):
            receipt_of[j.order] = number
        issued = calendar.at(js[0].day, time(8, 0))
        b.at(issued, lambda s, w=worker, f=f"{prefix}{first:06d}", c=count, o=office, t=issued:
             desk.issue_receipts(s, by=f"{o}-CS1", to=w, first=f, count=c, at=t))

    # -- the jobs as timed desk operations ------------------------------------------------------------------
    for j in jobs:
        _schedule_job(b, j, receipt_of.get(j.order), end, last)

    # -- the day's cash to finance at 17:00, per collector ----------------------------------------------------
    cash_by_day: dict[tuple[str, date], list[_Job]] = defaultdict(list)
    for j in collecting:
        if j.method == "cash" and not j.hold_cash:
            cash_by_day[(j.worker, j.day)].append(j)
    shortfall_days = _shortfall_handovers(cash_by_day, plan, working, codes)
    for (worker, d), js in sorted(cash_by_day.items()):
        office = worker.split("-")[0]
        numbers = [receipt_of[j.order] for j in js]
        total = sum((j.fee for j in js), Decimal("0.00"))
        number = f"H-{worker}-{d:%Y%m%d}"
        short = (worker, d) in shortfall_days
        counted = total - SHORTFALL if short else total
        if short:
            planted.append(Planted(CASH_SHORTFALL.name, office, number, CASH_SHORTFALL.key(number),
                                   HANDOVER_SHORTFALL.name, number,
                                   f"交款 {number} 点收少了 {SHORTFALL} 元(应交 {total})"))
        handed = max(calendar.at(d, time(17, 0)), max(j.collected for j in js) + timedelta(minutes=5))
        b.at(handed,
             lambda s, w=worker, o=office, n=numbers, c=counted, t=handed, h=number:
             desk.handover(s, by=w, cashier=f"{o}-FC1", receipts=n, counted=c, at=t, number=h))

    # -- private jobs: engineering records work CS never registered -------------------------------------------
    for k in range(plan.private_jobs):
        office = codes[k % len(codes)]
        d = working[len(working) // 2 + k]
        ref = f"DR-{office}-{d:%Y%m%d}-P{k + 1}"
        planted.append(Planted(PRIVATE_JOB.name, office, ref, None, PRIVATE_JOB.name, ref,
                               f"工程部记录了一单客服未登记的活({ref})"))
        b.at(calendar.at(d, time(16, 0)),
             lambda s, o=office, r=ref, t=calendar.at(d, time(16, 0)):
             desk.department_report(s, by=f"{o}-ENS", department="engineering", worker=f"{o}-PL2",
                                    address="5栋1单元302", description="私下更换水龙头", at=t,
                                    fee=Decimal("100.00"), reference=r))

    b.run(until=end)
    figures = tuple(OfficeFigures(office=o, **b.figures[o]) for o in codes)
    return GeneratedMonth(month=month, offices=tuple(codes), start=start, end=end, last_working_day=last,
                          seed=seed, planted=tuple(sorted(planted, key=lambda p: (p.kind, p.office, p.reference))),
                          figures=figures)


def _plant(jobs: list[_Job], plan: Plan, calendar: BusinessCalendar, rng: random.Random, codes: list[str],
           last: date, working: list[date]) -> list[Planted]:
    planted: list[Planted] = []
    taken: set[str] = set()

    def pick(office: str, test, day: date | None = None) -> _Job | None:
        pool = [j for j in jobs if j.office == office and j.number not in taken and test(j)]
        if not pool and day is not None:
            # a small month may have no job that day: bring one over from earlier in the month
            pool = [j for j in jobs if j.office == office and j.number not in taken and j.day < day
                    and not j.open_order]
            if pool:
                _move(rng.choice(pool), day)
                pool = [j for j in jobs if j.office == office and j.number not in taken and test(j)]
        if not pool:
            return None
        job = rng.choice(pool)
        taken.add(job.number)
        return job

    def _move(j: _Job, day: date) -> None:
        moved = sum(1 for other in jobs if other.day == day and other.office == j.office)
        clock = calendar.local(j.received).time()
        j.day, j.received = day, calendar.at(day, min(clock, time(12, 0)))
        j.number = f"R-{j.office}-{day:%Y%m%d}-{moved + 1:03d}"
        j.order = f"WO-{j.office}-{day:%Y%m%d}-{moved + 1:03d}"
        j.open_order = False

    for k in range(plan.unreplied):
        office = codes[k % len(codes)]
        j = pick(office, lambda j: j.day == last and j.channel == "phone" and j.open_order)
        if j is None:  # too few afternoon calls on the last day: make one
            j = pick(office, lambda j: j.day == last and j.open_order) or pick(office, lambda j: j.day == last, last)
            if j is None:
                continue
            j.channel, j.open_order = "phone", True
        j.received = max(j.received, calendar.at(last, time(13, 0)))
        j.reply_after = None
        planted.append(Planted(REPLY_OVERDUE.name, office, j.number, REPLY_OVERDUE.key(j.number), None,
                               None, f"电话登记 {j.number} 一直未回复业主"))
    for k in range(plan.late_replies):
        office = codes[k % len(codes)]
        j = pick(office, lambda j: j.channel == "phone" and j.reply_after is not None and j.day < last)
        if j is not None:
            j.reply_after = timedelta(minutes=25 + rng.randrange(20))
    callback_day = calendar.working_days_before(last, 3)
    for k in range(plan.overdue_callbacks):
        office = codes[k % len(codes)]
        j = pick(office, lambda j: j.day == callback_day and not j.open_order, callback_day)
        if j is None:
            continue
        j.skip_callback = True
        planted.append(Planted(CALLBACK_OVERDUE.name, office, j.order, CALLBACK_OVERDUE.key(j.order, 1),
                               CALLBACK_MISSING.name, j.order, f"通知单 {j.order} 验收后逾期未回访"))
    held_day = calendar.working_days_before(last, 1)
    for k in range(plan.cash_held):
        office = codes[k % len(codes)]
        j = pick(office, lambda j: j.day == held_day and not j.open_order, held_day)
        if j is None:
            continue
        j.method, j.hold_cash = "cash", True
        planted.append(Planted(CASH_UNHANDED.name, office, j.order,
                               CASH_UNHANDED.key(j.worker, held_day.isoformat()), CASH_UNHANDED.name, j.order,
                               f"{j.worker} 收的现金({j.order})过夜未交财务"))
    return planted


def _shortfall_handovers(cash_by_day: dict, plan: Plan, working: list[date], codes: list[str]) -> set:
    chosen = set()
    middle = working[len(working) // 2:]
    for k in range(plan.shortfalls):
        office = codes[k % len(codes)]
        for d in middle[k:]:
            keys = sorted(key for key in cash_by_day if key[1] == d and key[0].startswith(f"{office}-")
                          and key not in chosen)
            if keys:
                chosen.add(keys[0])
                break
    return chosen


def _schedule_job(b: _Builder, j: _Job, receipt: str | None, end: datetime, last: date) -> None:
    cal, rng, office = b.cal, b.rng, j.office
    fig = b.count

    def register(s: Session) -> None:
        desk.register(s, office=office, by=j.clerk, channel=j.channel, resident=j.resident, address=j.address,
                      phone=j.phone, category=j.category, description=j.description, at=j.received,
                      price=j.price[0], community=j.community, number=j.number)
        fig(office, "requests")
        if j.channel == "phone":
            fig(office, "phone_requests")

    b.at(j.received, register)
    if j.reply_after is not None:
        def reply(s: Session) -> None:
            desk.reply(s, request=j.number, by=j.clerk, at=j.received + j.reply_after)
            if j.reply_after <= timedelta(minutes=10):
                fig(office, "phone_replied_in_time")
        b.at(j.received + j.reply_after, reply)
    elif j.channel == "phone":
        return  # never replied: the call was not followed up at all
    issued = j.received + (j.reply_after or timedelta(0)) + timedelta(minutes=rng.randrange(5, 15))
    if j.open_order:
        scheduled = cal.at(cal.next_working_day(last), time(9, 0)) + timedelta(minutes=rng.randrange(0, 240))
    else:
        scheduled = issued + timedelta(minutes=rng.randrange(60, 120))

    def issue(s: Session) -> None:
        desk.issue_order(s, request=j.number, by=j.clerk, worker=j.worker, scheduled=scheduled, at=issued,
                         number=j.order)
        fig(office, "orders")

    b.at(issued, issue)
    if j.open_order:
        return
    # most jobs finish by the agreed time, some run over
    completed = scheduled + timedelta(minutes=rng.randrange(-45, 15))
    accepted = completed + timedelta(minutes=rng.randrange(5, 15))
    collected = j.collected = accepted + timedelta(minutes=3)
    _finish(b, j.order, office, j.worker, j.resident, completed, accepted, rework=False)

    def collect(s: Session) -> None:
        desk.collect(s, order=j.order, by=j.worker, receipt=receipt, amount=j.fee, method=j.method, at=collected)
        fig(office, "receipts")
        fig(office, "revenue_cash" if j.method == "cash" else "revenue_electronic", j.fee)

    b.at(collected, collect)
    department = "engineering" if j.category in ("plumbing", "electrical") else "cleaning"
    b.at(completed + timedelta(minutes=30),
         lambda s: desk.department_report(s, by=f"{office}-{SUPERVISOR[department]}", department=department,
                                          worker=j.worker, address=j.address, description=j.description,
                                          at=completed + timedelta(minutes=30), order=j.order, fee=j.fee,
                                          reference=f"DR-{j.order[3:]}"))
    if not j.skip_callback:
        _callback(b, j.order, office, j.clerk, j.worker, j.resident, accepted, end, last)


def _finish(b: _Builder, order: str, office: str, worker: str, resident: str, completed: datetime,
            accepted: datetime, *, rework: bool) -> None:
    def complete(s: Session) -> None:
        desk.complete(s, order=order, by=worker, at=completed)
        b.count(office, "completed")

    def accept(s: Session) -> None:
        desk.accept(s, order=order, signed_by=resident, at=accepted, calendar=b.cal,
                    callback_workdays=b.callback_workdays)
        b.count(office, "accepted")

    b.at(completed, complete)
    b.at(accepted, accept)


def _callback(b: _Builder, order: str, office: str, clerk: str, worker: str, resident: str, accepted: datetime,
              end: datetime, last: date) -> None:
    """CS calls back on the next working day; unreachable means once more the day after; unsatisfied, a rework."""
    cal, rng = b.cal, b.rng
    day = cal.next_working_day(cal.local(accepted).date())
    when = cal.at(day, time(9, 30)) + timedelta(minutes=rng.randrange(0, 150))
    roll = rng.random()
    # a rework chain needs a few working days: only early enough in the month
    late = day > cal.working_days_before(last, 4)
    outcome = "unreachable" if roll < 0.05 else "unsatisfied" if roll < 0.11 and not late else "satisfied"

    def call(s: Session) -> None:
        result = desk.callback(s, order=order, by=clerk, outcome=outcome, at=when, calendar=cal,
                               callback_workdays=b.callback_workdays)
        b.count(office, "callbacks_done")
        if outcome == "unsatisfied":
            rework = result.rework_order
            b.count(office, "rework")
            b.count(office, "orders")
            completed = rework.scheduled_for - timedelta(minutes=30)
            accepted_rework = completed + timedelta(minutes=10)
            _finish(b, rework.number, office, worker, resident, completed, accepted_rework, rework=True)
            _callback(b, rework.number, office, clerk, worker, resident, accepted_rework, end, last)

    b.at(when, call)
    if outcome == "unreachable":
        again = cal.at(cal.next_working_day(day), time(10, 0))
        b.at(again, lambda s: (desk.callback(s, order=order, by=clerk, outcome="satisfied", at=again, calendar=cal,
                                             callback_workdays=b.callback_workdays),
                               b.count(office, "callbacks_done")))


def _person(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + rng.choice(GIVEN)


def _resident(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + rng.choice(TITLES) if rng.random() < 0.5 else _person(rng)


def _address(rng: random.Random) -> str:
    return f"{rng.randrange(1, 19)}栋{rng.randrange(1, 4)}单元{rng.randrange(1, 27)}{rng.randrange(1, 5):02d}"
