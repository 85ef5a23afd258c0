"""The service ledger's tables: one typed declarative Base, UTC timestamps, Decimal money."""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    MetaData,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from models.texts import TEXTS

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

CATEGORIES = ("plumbing", "electrical", "cleaning", "greening")
OUT_OF_SCOPE_CATEGORIES = ("appliance", "renovation")
DEPARTMENTS = ("cs", "engineering", "cleaning", "finance", "administration")
ROLES = ("clerk", "supervisor", "manager", "worker", "cashier")
CHANNELS = ("walk_in", "phone")
PAYMENT_METHODS = ("cash", "wechat", "alipay", "card")
RECEIPT_STATES = ("issued", "used", "voided", "returned")
CALLBACK_OUTCOMES = ("satisfied", "unsatisfied", "unreachable")
# who may use the web console; what each may see and do is decided in console/access.py
USER_ROLES = ("cs-clerk", "cs-supervisor", "cs-manager", "finance-manager", "engineering-supervisor",
              "cleaning-supervisor", "administration", "admin")


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on every backend (SQLite stores naive UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the ledger stores aware times only")
        if value.tzinfo is not timezone.utc:
            value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def bind_processor(self, dialect: Any) -> Any:
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)
        # one step instead of three (ours, then SQLAlchemy's SQLite DATETIME formatting through a dict): an import
        # writes a few of these per row. isoformat(" ", "microseconds") of a UTC datetime is SQLite DATETIME's
        # storage format ("%04d-%02d-%02d %02d:%02d:%02d.%06d", 26 characters: the year is always 4 digits) followed
        # by "+00:00", so the stored text is the same
        utc = timezone.utc

        def process(value: datetime | None) -> str | None:
            if value is None:
                return None
            tz = value.tzinfo
            if tz is None:
                raise ValueError(f"naive datetime {value!r}: the ledger stores aware times only")
            if tz is not utc:
                value = value.astimezone(utc)
            return value.isoformat(" ", "microseconds")[:26]  # without its "+00:00"

        return process

    def result_processor(self, dialect: Any, coltype: Any) -> Any:
        if dialect.name != "sqlite":
            return super().result_processor(dialect, coltype)
        # SQLite hands back the stored text, naive UTC: parsed with the offset written after it, the datetime is
        # made aware in C. SQLAlchemy's parse (the same datetime.fromisoformat) and then ours with
        # .replace(tzinfo=utc) cost 1.6 us a value against 0.2 us, and a check reads a few per finding, the tally
        # several per job. Text that is not in the stored form (an offset already, a date alone) and anything
        # else takes the general path, with the same result as before
        parse = datetime.fromisoformat
        general = super().result_processor(dialect, coltype)  # SQLite's parse, then process_result_value

        def process(value: Any) -> datetime | None:
            if value.__class__ is str:
                try:
                    parsed = parse(value + "+00:00")
                except ValueError:
                    parsed = None
                if parsed is not None and parsed.tzinfo is not None:  # a date alone reads "+00:00" as its time
                    return parsed
            return general(value)

        return process

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


Money = Numeric(12, 2, asdecimal=True)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), Decimal: Money, dict[str, Any]: JSON}


class Office(Base):
    __tablename__ = "offices"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))


class Community(Base):
    __tablename__ = "communities"
    id: Mapped[int] = mapped_column(primary_key=True)
    office_id: Mapped[int] = mapped_column(ForeignKey("offices.id"), index=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    office: Mapped[Office] = relationship(lazy="raise")


class Department(Base):
    __tablename__ = "departments"
    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name_zh: Mapped[str] = mapped_column(String(64))
    name_en: Mapped[str] = mapped_column(String(64))


class Staff(Base):
    __tablename__ = "staff"
    __table_args__ = (CheckConstraint(f"role IN {ROLES}", name="role"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    office_id: Mapped[int] = mapped_column(ForeignKey("offices.id"), index=True)
    department: Mapped[str] = mapped_column(ForeignKey("departments.code"))
    role: Mapped[str] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(default=True)
    office: Mapped[Office] = relationship(lazy="raise")


class PriceItem(Base):
    __tablename__ = "price_items"
    __table_args__ = (CheckConstraint(f"category IN {CATEGORIES}", name="category"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    category: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200))
    fee: Mapped[Decimal]


class ServiceRequest(Base):
    """登记表: one resident's request as CS registered it."""

    __tablename__ = "service_requests"
    __table_args__ = (
        CheckConstraint(f"channel IN {CHANNELS}", name="channel"),
        CheckConstraint(f"category IN {CATEGORIES}", name="category"),
        # the open phone replies are what chase-replies reads every 5 minutes
        Index("ix_service_requests_open_phone", "received_at",
              postgresql_where=text("channel = 'phone' AND replied_at IS NULL"),
              sqlite_where=text("channel = 'phone' AND replied_at IS NULL")),
        # replaying a past moment must see replies given after it as "not yet replied"
        Index("ix_service_requests_replied_at", "replied_at",
              postgresql_where=text("replied_at IS NOT NULL"), sqlite_where=text("replied_at IS NOT NULL")),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(40), unique=True)
    office_id: Mapped[int] = mapped_column(ForeignKey("offices.id"), index=True)
    community_id: Mapped[int | None] = mapped_column(ForeignKey("communities.id"))
    channel: Mapped[str] = mapped_column(String(16))
    received_at: Mapped[datetime] = mapped_column(index=True)
    received_by_id: Mapped[int] = mapped_column(ForeignKey("staff.id"))
    resident_name: Mapped[str] = mapped_column(String(100))
    address: Mapped[str] = mapped_column(String(300))
    phone: Mapped[str] = mapped_column(String(40))
    category: Mapped[str] = mapped_column(String(16))
    description: Mapped[str] = mapped_column(Text)
    preferred_at: Mapped[datetime | None]
    price_item_id: Mapped[int | None] = mapped_column(ForeignKey("price_items.id"))
    agreed_fee: Mapped[Decimal]
    expected_result: Mapped[str | None] = mapped_column(Text)
    replied_at: Mapped[datetime | None]
    replied_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    office: Mapped[Office] = relationship(lazy="raise")
    community: Mapped[Community | None] = relationship(lazy="raise")
    received_by: Mapped[Staff] = relationship(lazy="raise", foreign_keys=[received_by_id])


_UNPAID = "accepted_at IS NOT NULL AND paid_at IS NULL AND rework_of_id IS NULL AND fee > 0"


class WorkOrder(Base):
    """通知单: the notice in three copies (finance, department, archive) is one row seen three ways."""

    __tablename__ = "work_orders"
    __table_args__ = (
        Index("ix_work_orders_open", "scheduled_for",
              postgresql_where=text("completed_at IS NULL"),
              sqlite_where=text("completed_at IS NULL")),
        Index("ix_work_orders_accepted_month", "accepted_at", "department", "fee"),
        # replaying a past moment must see work completed after it as still open
        Index("ix_work_orders_completed_at", "completed_at",
              postgresql_where=text("completed_at IS NOT NULL"), sqlite_where=text("completed_at IS NOT NULL")),
        # the cash check's fees not collected: accepted chargeable jobs the desk has not seen paid (few),
        # plus, when replaying, those paid after the moment replayed
        Index("ix_work_orders_unpaid", "accepted_at",
              postgresql_where=text(_UNPAID), sqlite_where=text(_UNPAID)),
        Index("ix_work_orders_paid_at", "paid_at",
              postgresql_where=text("paid_at IS NOT NULL"), sqlite_where=text("paid_at IS NOT NULL")),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(40), unique=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("service_requests.id"), index=True)
    office_id: Mapped[int] = mapped_column(ForeignKey("offices.id"), index=True)
    department: Mapped[str] = mapped_column(ForeignKey("departments.code"))
    worker_id: Mapped[int] = mapped_column(ForeignKey("staff.id"), index=True)
    issued_at: Mapped[datetime]
    issued_by_id: Mapped[int] = mapped_column(ForeignKey("staff.id"))
    scheduled_for: Mapped[datetime]
    completed_at: Mapped[datetime | None]
    completed_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    accepted_at: Mapped[datetime | None]
    accepted_by: Mapped[str | None] = mapped_column(String(100))
    fee: Mapped[Decimal]
    rework_of_id: Mapped[int | None] = mapped_column(ForeignKey("work_orders.id"), index=True)
    # when the desk recorded the fee collected (its receipt's collected_at); empty for rows loaded otherwise,
    # which the cash check then verifies against the receipts
    paid_at: Mapped[datetime | None]
    request: Mapped[ServiceRequest] = relationship(lazy="raise")
    worker: Mapped[Staff] = relationship(lazy="raise", foreign_keys=[worker_id])
    rework_of: Mapped[WorkOrder | None] = relationship(lazy="raise", remote_side=[id])


class ReceiptBook(Base):
    __tablename__ = "receipt_books"
    id: Mapped[int] = mapped_column(primary_key=True)
    office_id: Mapped[int] = mapped_column(ForeignKey("offices.id"), index=True)
    holder_id: Mapped[int] = mapped_column(ForeignKey("staff.id"), index=True)
    issued_by_id: Mapped[int] = mapped_column(ForeignKey("staff.id"))
    issued_at: Mapped[datetime]
    first_serial: Mapped[int]
    count: Mapped[int]


_HANDOVER_TO_VERIFY = "counted_amount <> declared_amount OR origin IS NULL"


class CashHandover(Base):
    __tablename__ = "cash_handovers"
    __table_args__ = (
        # the handovers the cash check must re-add: a count that differs from the declared sum (the desk
        # declares the sum of the receipts covered, which never change afterwards), or rows the desk did not write
        Index("ix_cash_handovers_to_verify", "confirmed_at",
              postgresql_where=text(_HANDOVER_TO_VERIFY), sqlite_where=text(_HANDOVER_TO_VERIFY)),
        # replaying a past evening must see handovers confirmed after it, or never, as not made
        Index("ix_cash_handovers_confirmed_at", "confirmed_at"),
        Index("ix_cash_handovers_unconfirmed", "handed_at",
              postgresql_where=text("confirmed_at IS NULL"), sqlite_where=text("confirmed_at IS NULL")),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(40), unique=True)
    office_id: Mapped[int] = mapped_column(ForeignKey("offices.id"), index=True)
    handed_by_id: Mapped[int] = mapped_column(ForeignKey("staff.id"), index=True)
    received_by_id: Mapped[int] = mapped_column(ForeignKey("staff.id"))
    handed_at: Mapped[datetime] = mapped_column(index=True)
    # finance's confirmation is what counts: a handover recorded by the cashier is confirmed then
    confirmed_at: Mapped[datetime | None]
    declared_amount: Mapped[Decimal]
    counted_amount: Mapped[Decimal]
    # 'desk' when written by models.desk (declared = the receipts' sum); empty for rows loaded any other way
    origin: Mapped[str | None] = mapped_column(String(16))


class Receipt(Base):
    __tablename__ = "receipts"
    __table_args__ = (
        CheckConstraint(f"state IN {RECEIPT_STATES}", name="state"),
        CheckConstraint(f"method IS NULL OR method IN {PAYMENT_METHODS}", name="method"),
        Index("ix_receipts_cash_open", "collected_at",
              postgresql_where=text("method = 'cash' AND handover_id IS NULL AND state = 'used'"),
              sqlite_where=text("method = 'cash' AND handover_id IS NULL AND state = 'used'")),
        Index("ix_receipts_collected_month", "collected_at", "method", "amount"),
        # the desk never writes one leaf twice nor pays one order twice: the database makes sure of it, so a
        # double use needs a row written some other way (legacy), and the check reads only those
        Index("uq_receipts_desk_serial", "book_id", "serial", unique=True,
              postgresql_where=text("origin = 'desk'"), sqlite_where=text("origin = 'desk'")),
        Index("uq_receipts_desk_paid_order", "order_id", unique=True,
              postgresql_where=text("state = 'used' AND origin = 'desk'"),
              sqlite_where=text("state = 'used' AND origin = 'desk'")),
        Index("ix_receipts_legacy_used", "collected_at",
              postgresql_where=text("state = 'used' AND origin IS NULL"),
              sqlite_where=text("state = 'used' AND origin IS NULL")),
        # blank numbers (few: the books in workers' hands) for gaps and unreturned numbers
        Index("ix_receipts_blank", "book_id", "serial",
              postgresql_where=text("state = 'issued'"), sqlite_where=text("state = 'issued'")),
        # replaying a past evening: numbers voided or returned after it were still blank then
        Index("ix_receipts_retired_at", "state_changed_at",
              postgresql_where=text("collected_at IS NULL AND state_changed_at IS NOT NULL"),
              sqlite_where=text("collected_at IS NULL AND state_changed_at IS NOT NULL")),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(40), unique=True)
    serial: Mapped[int] = mapped_column(index=True)
    book_id: Mapped[int] = mapped_column(ForeignKey("receipt_books.id"), index=True)
    state: Mapped[str] = mapped_column(String(16), default="issued")
    order_id: Mapped[int | None] = mapped_column(ForeignKey("work_orders.id"), index=True)
    amount: Mapped[Decimal | None]
    method: Mapped[str | None] = mapped_column(String(16))
    collected_at: Mapped[datetime | None]
    collected_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"), index=True)
    reason: Mapped[str | None] = mapped_column(Text)
    state_changed_at: Mapped[datetime | None]
    handover_id: Mapped[int | None] = mapped_column(ForeignKey("cash_handovers.id"), index=True)
    # 'desk' when the row was written by models.desk; empty for rows loaded any other way (legacy data)
    origin: Mapped[str | None] = mapped_column(String(16))
    book: Mapped[ReceiptBook] = relationship(lazy="raise")


_UNSATISFIED_OPEN = "coalesce(outcome, '') = 'unsatisfied' AND rework_order_id IS NULL"


class Callback(Base):
    """回访: one row per return visit due; `done_at` empty while it is still owed."""

    __tablename__ = "callbacks"
    __table_args__ = (
        CheckConstraint(f"outcome IS NULL OR outcome IN {CALLBACK_OUTCOMES}", name="outcome"),
        Index("ix_callbacks_open", "due_at",
              postgresql_where=text("done_at IS NULL"),
              sqlite_where=text("done_at IS NULL")),
        # replaying a past moment must see callbacks done after it as still owed
        Index("ix_callbacks_done_at", "done_at",
              postgresql_where=text("done_at IS NOT NULL"), sqlite_where=text("done_at IS NOT NULL")),
        # chase-callbacks looks for unsatisfied callbacks that never got their rework order
        Index("ix_callbacks_unsatisfied", "done_at",
              postgresql_where=text("outcome = 'unsatisfied'"),
              sqlite_where=text("outcome = 'unsatisfied'")),
        # ... of which only those without the rework desk.callback links at once can lack one. The outcome is
        # tested through coalesce() so that a query written the same way can only use this index: both planners
        # would otherwise take the one above (every unsatisfied callback ever) for as cheap
        Index("ix_callbacks_unsatisfied_open", "done_at",
              postgresql_where=text(_UNSATISFIED_OPEN), sqlite_where=text(_UNSATISFIED_OPEN)),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("work_orders.id"), index=True)
    created_at: Mapped[datetime]
    due_at: Mapped[datetime] = mapped_column(index=True)
    done_at: Mapped[datetime | None]
    done_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    outcome: Mapped[str | None] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(Text)
    rework_order_id: Mapped[int | None] = mapped_column(ForeignKey("work_orders.id"))
    order: Mapped[WorkOrder] = relationship(lazy="raise", foreign_keys=[order_id])


class DepartmentReport(Base):
    """A department's own record of work done, for the monthly reconciliation."""

    __tablename__ = "department_reports"
    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(String(60), unique=True)
    office_id: Mapped[int] = mapped_column(ForeignKey("offices.id"), index=True)
    department: Mapped[str] = mapped_column(ForeignKey("departments.code"))
    reported_by_id: Mapped[int] = mapped_column(ForeignKey("staff.id"))
    worker_id: Mapped[int] = mapped_column(ForeignKey("staff.id"), index=True)
    reported_at: Mapped[datetime] = mapped_column(index=True)
    address: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text)
    order_id: Mapped[int | None] = mapped_column(ForeignKey("work_orders.id"), index=True)
    fee: Mapped[Decimal | None]


class Alert(Base):
    """The outbox: written in the transaction that found it, delivered from here after."""

    __tablename__ = "alerts"
    __table_args__ = (
        Index("ix_alerts_pending", "next_attempt_at",
              postgresql_where=text("sent_at IS NULL AND resolved_at IS NULL"),
              sqlite_where=text("sent_at IS NULL AND resolved_at IS NULL")),
        # a detector resolves among the open alerts of its kinds, not the whole history
        Index("ix_alerts_open", "kind", "office",
              postgresql_where=text("resolved_at IS NULL"), sqlite_where=text("resolved_at IS NULL")),
        # resolved alerts whose "resolved" line is still owed to someone who was told
        Index("ix_alerts_resolved_unnoticed", "resolved_at",
              postgresql_where=text("resolved_at IS NOT NULL AND resolved_notified_at IS NULL"),
              sqlite_where=text("resolved_at IS NOT NULL AND resolved_notified_at IS NULL")),
        # half of each page kept free: a dispatch's claim (claimed_by/claimed_until, in no index) then
        # rewrites a row in its own page as a HOT update instead of copying the whole row, payload
        # included, to another page and adding entries to every index (claim 440 -> 51 ms per 10k)
        {"postgresql_with": {"fillfactor": 50}},
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    # no index of their own: every query by kind or office asks for open alerts, which ix_alerts_open serves,
    # and each index is one more entry to write for every row a dispatch marks sent (a non-HOT update)
    kind: Mapped[str] = mapped_column(String(40))
    office: Mapped[str | None] = mapped_column(String(32))
    order_number: Mapped[str | None] = mapped_column(String(40))
    severity: Mapped[int] = mapped_column(default=1)
    level: Mapped[int] = mapped_column(default=1)
    tag: Mapped[str] = mapped_column(String(120))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    first_seen: Mapped[datetime]
    last_seen: Mapped[datetime]
    last_notified_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    resolved_notified_at: Mapped[datetime | None]
    acked_at: Mapped[datetime | None]
    acked_by: Mapped[str | None] = mapped_column(String(100))
    acked_level: Mapped[int | None]
    next_attempt_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None]
    claimed_by: Mapped[str | None] = mapped_column(String(80))
    claimed_until: Mapped[datetime | None]


class AlertSilence(Base):
    __tablename__ = "alert_silences"
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    office: Mapped[str | None] = mapped_column(String(32))
    starts_at: Mapped[datetime]
    until: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(Text)
    # one alert row's key (alerts.dedupe_key) when the silence is for that alert only; empty: the whole kind
    alert_key: Mapped[str | None] = mapped_column(String(200))


class User(Base):
    """Someone who logs in to the web console. `offices` empty means every office; `staff_code` is who the desk
    records as acting when this user records a reply or a callback (the desk's operations take a staff member)."""

    __tablename__ = "users"
    __table_args__ = (CheckConstraint(f"role IN {USER_ROLES}", name="role"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    login: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(32))
    offices: Mapped[list[str]] = mapped_column(JSON, default=list)
    staff_code: Mapped[str | None] = mapped_column(String(32))
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime]
    last_login_at: Mapped[datetime | None]
    # failed logins since the last good one: each one slows the next attempt (console/auth.py)
    failed_logins: Mapped[int] = mapped_column(default=0)
    last_failed_at: Mapped[datetime | None]


class ReportRun(Base):
    __tablename__ = "report_runs"
    __table_args__ = (UniqueConstraint("month", "office", "version", name="uq_report_runs_month_office_version"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    month: Mapped[str] = mapped_column(String(7))
    office: Mapped[str] = mapped_column(String(32))
    version: Mapped[int]
    content_hash: Mapped[str] = mapped_column(String(64))
    file_path: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    # a send in progress: who claimed it and until when (a run that died leaves a claim that expires)
    send_claimed_by: Mapped[str | None] = mapped_column(String(64))
    send_claimed_until: Mapped[datetime | None]
    summary: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # where the send went: one entry per apprise tag, its services named without secrets
    sent_to: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)


SIGNOFF_PARTIES = ("cs", "finance", "engineering", "cleaning")
SIGNOFF_STATES = ("awaiting-signoff", "sent")
SIGNOFF_ANSWERS = ("confirm", "dispute")


class Signoff(Base):
    """One month's sign-off by the departments (procedure 4.3): the version they answer, and when it ends."""

    __tablename__ = "signoffs"
    __table_args__ = (CheckConstraint(f"state IN {SIGNOFF_STATES}", name="state"),)
    month: Mapped[str] = mapped_column(String(7), primary_key=True)
    version: Mapped[int]  # the group report's version now awaiting answers
    state: Mapped[str] = mapped_column(String(20))
    opened_at: Mapped[datetime]
    deadline_at: Mapped[datetime]
    final_version: Mapped[int | None]
    final_sent_at: Mapped[datetime | None]
    # at the final: the parties that had not confirmed and the disputes still open (empty when all confirmed)
    final_marks: Mapped[dict[str, Any]] = mapped_column(default=dict)


class SignoffView(Base):
    """What one party saw of one version: the hash of its view, so a new version resets only changed parties."""

    __tablename__ = "signoff_views"
    __table_args__ = (UniqueConstraint("month", "version", "party", name="uq_signoff_views_month_version_party"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    month: Mapped[str] = mapped_column(String(7))
    version: Mapped[int]
    party: Mapped[str] = mapped_column(String(16))
    view_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]


class SignoffAnswer(Base):
    """A party's confirmation or dispute of one version; a dispute never changes the ledger."""

    __tablename__ = "signoff_answers"
    __table_args__ = (CheckConstraint(f"answer IN {SIGNOFF_ANSWERS}", name="answer"),
                      Index("ix_signoff_answers_month_party", "month", "party"))
    id: Mapped[int] = mapped_column(primary_key=True)
    month: Mapped[str] = mapped_column(String(7))
    version: Mapped[int]
    party: Mapped[str] = mapped_column(String(16))
    answer: Mapped[str] = mapped_column(String(10))
    by_ref: Mapped[str] = mapped_column(String(100))  # the staff code or console login given
    by_name: Mapped[str] = mapped_column(String(100))
    by_role: Mapped[str] = mapped_column(String(40))
    at: Mapped[datetime]
    recorded_at: Mapped[datetime]
    note: Mapped[str | None] = mapped_column(Text)
    order_number: Mapped[str | None] = mapped_column(String(40))


FLOW_RUN_RESULTS = ("running", "completed", "failed", "crashed")


class FlowRun(Base):
    """A flow run's heartbeat: which flow, for which window, how it ended, and the Prefect run it was."""

    __tablename__ = "flow_runs"
    __table_args__ = (CheckConstraint(f"result IN {FLOW_RUN_RESULTS}", name="result"),
                      Index("ix_flow_runs_flow_started_at", "flow", "started_at"))
    id: Mapped[int] = mapped_column(primary_key=True)
    flow: Mapped[str] = mapped_column(String(60))
    scope: Mapped[str] = mapped_column(String(60), default="*")
    window_end: Mapped[datetime | None]  # the run's as_of: the moment it evaluated
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    result: Mapped[str] = mapped_column(String(16))
    prefect_run_id: Mapped[str | None] = mapped_column(String(64), index=True)
    worker: Mapped[str | None] = mapped_column(String(120))  # host and process, or the Prefect worker's name
    message: Mapped[str | None] = mapped_column(Text)


class FlowWatermark(Base):
    __tablename__ = "flow_watermarks"
    flow: Mapped[str] = mapped_column(String(60), primary_key=True)
    scope: Mapped[str] = mapped_column(String(60), primary_key=True, default="*")
    window_end: Mapped[datetime]
    updated_at: Mapped[datetime]


class AuditEvent(Base):
    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_entity", "entity", "entity_ref"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(index=True)
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(40))
    entity: Mapped[str] = mapped_column(String(40))
    entity_ref: Mapped[str] = mapped_column(String(60))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)


# department code -> its name (zh_CN, en), from the catalogue
DEPARTMENT_NAMES = {code: TEXTS[f"department.{code}"] for code in ("cs", "engineering", "cleaning", "finance",
                                                                     "administration")}
