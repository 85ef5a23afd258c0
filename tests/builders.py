"""Small builders on top of the desk operations, for every test that needs a ledger with something in it.

They call models.desk (so the data obeys the procedure) and flush but never commit: wrap them in
`with transaction(engine) as s:` like any caller. Times are Asia/Shanghai unless an offset is given.

    with transaction(engine) as s:
        a1 = setup_office(s)
        order = accepted_job(s, calendar, a1, at=at("2026-09-30", "10:00"))
        receipts = give_receipts(s, a1, first="000101", count=5)
        collect_fee(s, a1, order, receipt=receipts[0], at=at("2026-09-30", "12:30"))
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import desk
from models.calendar import BusinessCalendar
from models.ledger.tables import AuditEvent, Receipt, ServiceRequest, WorkOrder

TZ = ZoneInfo("Asia/Shanghai")
PRICES = {  # code: (category, name, fee)
    "PLUMB-TAP": ("plumbing", "更换水龙头 tap replacement", Decimal("80.00")),
    "ELEC-SOCKET": ("electrical", "更换插座 socket replacement", Decimal("50.00")),
    "CLEAN-DEEP": ("cleaning", "深度保洁 deep cleaning", Decimal("200.00")),
    "GREEN-TRIM": ("greening", "庭院修剪 garden trimming", Decimal("120.00")),
}
PRICE_FOR = {category: code for code, (category, _, _) in PRICES.items()}


def at(day: str, clock: str = "09:00") -> datetime:
    """An aware Asia/Shanghai moment: at("2026-09-30", "18:00")."""
    return datetime.fromisoformat(f"{day}T{clock}").replace(tzinfo=TZ)


@dataclass(frozen=True)
class OfficeCodes:
    """The codes of one office's people and places, as setup_office created them."""

    office: str
    community: str
    clerk: str
    cs_supervisor: str
    cs_manager: str
    eng_supervisor: str
    plumber: str
    electrician: str
    cleaning_supervisor: str
    cleaner: str
    cashier: str
    finance_manager: str
    admin: str

    @classmethod
    def of(cls, office: str) -> OfficeCodes:
        """The codes setup_office gives an office's people, for an office set up elsewhere."""
        return cls(office=office, community=f"{office}-C1",
                   **{field: f"{office}-{suffix}" for field, (suffix, *_rest) in PEOPLE.items()})

    def worker_for(self, category: str) -> str:
        return {"plumbing": self.plumber, "electrical": self.electrician}.get(category) or self.cleaner

    def supervisor_for(self, department: str) -> str:
        return {"engineering": self.eng_supervisor, "cleaning": self.cleaning_supervisor,
                "cs": self.cs_supervisor, "finance": self.finance_manager}[department]


def setup_office(s: Session, code: str = "A1", *, at: datetime | None = None) -> OfficeCodes:
    """An office with one community, its CS desk, engineering and cleaning crews, a cashier, and the price list."""
    when = at or datetime(2026, 1, 1, 8, 0, tzinfo=TZ)
    desk.add_office(s, code=code, name=f"第{code}服务处 Office {code}", at=when)
    desk.add_community(s, office=code, code=f"{code}-C1", name=f"{code} 花园小区", at=when)
    codes = {}
    for field, (suffix, name, department, role) in PEOPLE.items():
        codes[field] = f"{code}-{suffix}"
        desk.add_staff(s, code=codes[field], name=name, office=code, department=department, role=role, at=when)
    for price_code, (category, name, fee) in PRICES.items():
        desk.set_price(s, code=price_code, category=category, name=name, fee=fee, at=when)
    return OfficeCodes(office=code, community=f"{code}-C1", **codes)


# field of OfficeCodes -> (code suffix, name, department, role) of the people setup_office hires
PEOPLE = {
    "clerk": ("CS1", "王客服", "cs", "clerk"),
    "cs_supervisor": ("CSS", "李主管", "cs", "supervisor"),
    "cs_manager": ("CSM", "张经理", "cs", "manager"),
    "eng_supervisor": ("ENS", "赵工长", "engineering", "supervisor"),
    "plumber": ("PL1", "钱师傅", "engineering", "worker"),
    "electrician": ("EL1", "孙师傅", "engineering", "worker"),
    "cleaning_supervisor": ("CLS", "周主管", "cleaning", "supervisor"),
    "cleaner": ("CL1", "吴阿姨", "cleaning", "worker"),
    "cashier": ("FC1", "郑出纳", "finance", "cashier"),
    "finance_manager": ("FM1", "冯经理", "finance", "manager"),
    "admin": ("AD1", "陈行政", "administration", "clerk"),
}


def request_for(s: Session, o: OfficeCodes, *, at: datetime, channel: str = "phone", category: str = "plumbing",
                fee: Decimal | None = None, resident: str = "刘女士", phone: str = "13812345678",
                address: str = "3栋2单元501", description: str = "厨房水龙头漏水",
                number: str | None = None) -> ServiceRequest:
    """A registered request; fee from the builders' price list unless given."""
    return desk.register(s, office=o.office, by=o.clerk, channel=channel, resident=resident, address=address,
                         phone=phone, category=category, description=description, at=at,
                         price=None if fee is not None else PRICE_FOR[category], fee=fee,
                         community=o.community, number=number)


def order_for(s: Session, o: OfficeCodes, request: ServiceRequest, *, at: datetime,
              scheduled: datetime | None = None, worker: str | None = None) -> WorkOrder:
    """The work order for a request, to the category's worker, scheduled an hour later unless given."""
    return desk.issue_order(s, request=request, by=o.clerk, worker=worker or o.worker_for(request.category),
                            scheduled=scheduled or at + timedelta(hours=1), at=at)


def accepted_job(s: Session, calendar: BusinessCalendar, o: OfficeCodes, *, at: datetime, channel: str = "phone",
                 category: str = "plumbing", fee: Decimal | None = None, phone: str = "13812345678",
                 resident: str = "刘女士", callback_workdays: int = 2) -> WorkOrder:
    """register (at) → reply (+5 min, phone) → issue (+10 min) → complete (+2 h) → accept (+2 h 10): the WorkOrder.

    The acceptance is at `at` + 2h10m; the callback row it opens is due per rules.callback_due.
    """
    req = request_for(s, o, at=at, channel=channel, category=category, fee=fee, phone=phone, resident=resident)
    if channel == "phone":
        desk.reply(s, request=req, by=o.clerk, at=at + timedelta(minutes=5))
    order = order_for(s, o, req, at=at + timedelta(minutes=10))
    desk.complete(s, order=order, by=o.worker_for(category), at=at + timedelta(hours=2))
    return desk.accept(s, order=order, signed_by=resident, at=at + timedelta(hours=2, minutes=10),
                       calendar=calendar, callback_workdays=callback_workdays)


def give_receipts(s: Session, o: OfficeCodes, *, to: str | None = None, first: str = "000101", count: int = 10,
                  at: datetime | None = None) -> list[str]:
    """A receipt book handed by the CS clerk to `to` (default the plumber): its numbers."""
    book = desk.issue_receipts(s, by=o.clerk, to=to or o.plumber, first=first, count=count,
                               at=at or datetime(2026, 1, 1, 8, 30, tzinfo=TZ))
    width = len(first)
    return [f"{book.first_serial + i:0{width}d}" for i in range(count)]


def collect_fee(s: Session, o: OfficeCodes, order: WorkOrder, *, receipt: str, at: datetime,
                amount: Decimal | None = None, method: str = "cash", by: str | None = None,
                reason: str | None = None) -> Receipt:
    """The order's agreed fee (or `amount`) collected on `receipt` by its worker (or `by`)."""
    collector = by or o.worker_for(_category(s, order))
    return desk.collect(s, order=order, by=collector, receipt=receipt,
                        amount=order.fee if amount is None else amount, method=method, at=at, reason=reason)


def hand_over(s: Session, o: OfficeCodes, *, receipts: list[str], at: datetime, by: str | None = None,
              counted: Decimal | None = None):
    """Cash of `receipts` handed to the office's cashier; counted defaults to the sum collected."""
    rows = s.scalars(select(Receipt).where(Receipt.number.in_(receipts))).all()
    total = sum((r.amount for r in rows), Decimal("0.00"))
    return desk.handover(s, by=by or o.plumber, cashier=o.cashier, receipts=receipts,
                         counted=total if counted is None else counted, at=at)


def _category(s: Session, order: WorkOrder) -> str:
    return s.get(ServiceRequest, order.request_id).category


def ledger_picture(engine) -> tuple[list[dict], list[dict]]:
    """Every request as written (all columns but the id) by number, and every audit event after set-up, in order."""
    columns = [c for c in ServiceRequest.__table__.columns if c.name != "id"]
    events = [c for c in AuditEvent.__table__.columns if c.name != "id"]
    with engine.connect() as conn:
        requests = [dict(r._mapping) for r in conn.execute(select(*columns).order_by(ServiceRequest.number))]
        audits = [dict(r._mapping) for r in conn.execute(select(*events).where(AuditEvent.actor != "setup")
                                                         .order_by(AuditEvent.id))]
    return requests, audits
