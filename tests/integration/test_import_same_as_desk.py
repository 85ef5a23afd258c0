"""The import and the desk decide alike: the same rows through both give the same ledger, refusals and audit trail.

Each test feeds one list of registrations (some the desk must refuse) to the desk, one operation after another in
its own transaction as a clerk would, takes a picture of the ledger, empties it back to its set-up, imports the
same rows from a CSV file, and compares: the rows written, the audit events in order, and which rows were refused
and why. On both backends.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import delete, select

from models import desk
from models.ledger.db import session_factory, transaction
from models.errors import DomainError
from models.imports import import_ledger
from models.ledger.tables import AuditEvent, ServiceRequest, Staff
from tests.builders import TZ, ledger_picture, setup_office

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=TZ)
HEADER = ["登记号", "服务处", "小区", "登记时间", "登记人", "接待方式", "业主姓名", "住址", "联系方式", "类别",
          "报修内容", "方便维修的时间", "费用", "价目", "效果", "回复时间", "回复人"]
CHANNEL = {"phone": "来电", "walk_in": "来访"}


@dataclass(frozen=True)
class Registration:
    """One line of a clerk's register, in the desk's terms."""

    number: str
    received: str
    by: str = "A1-CS1"
    office: str = "A1"
    channel: str = "phone"
    category: str = "plumbing"
    fee: str | None = None
    price: str | None = "PLUMB-TAP"
    community: str | None = "A1-C1"
    preferred: str | None = None
    expected: str | None = None
    replied: str | None = None
    replied_by: str | None = None

    def cells(self) -> list[str]:
        return [self.number, self.office, self.community or "", self.received, self.by, CHANNEL[self.channel],
                f"业主{self.number}", f"3栋{self.number[-2:]}室", "13812345678", self.category, "漏水",
                self.preferred or "", self.fee or "", self.price or "", self.expected or "", self.replied or "",
                self.replied_by or ""]


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace(" ", "T")).replace(tzinfo=TZ)


def at_the_desk(engine, rows: list[Registration]) -> list[tuple[str, str]]:
    """Each row registered (and replied to) in its own transaction; the refused rows' numbers and reasons."""
    refused = []
    for r in rows:
        try:
            with transaction(engine) as s:
                if not _present(s, r.number):
                    desk.register(s, office=r.office, by=r.by, channel=r.channel, resident=f"业主{r.number}",
                                  address=f"3栋{r.number[-2:]}室", phone="13812345678", category=r.category,
                                  description="漏水", at=moment(r.received), price=r.price,
                                  fee=Decimal(r.fee) if r.fee else None,
                                  preferred=moment(r.preferred) if r.preferred else None,
                                  expected_result=r.expected, community=r.community, number=r.number)
                request = s.scalar(select(ServiceRequest).where(ServiceRequest.number == r.number))
                if r.replied and r.channel == "phone" and request.replied_at is None:
                    by = r.replied_by or s.get(Staff, request.received_by_id)  # as the import: else who received it
                    desk.reply(s, request=request, by=by, at=moment(r.replied))
        except DomainError as error:
            refused.append((r.number, error.code))
    return refused


def _present(s, number: str) -> bool:
    return s.scalar(select(ServiceRequest.id).where(ServiceRequest.number == number)) is not None


def by_import(engine, calendar, folder: Path, rows: list[Registration], name: str = "登记表.csv"):
    path = folder / name
    path.write_text("\n".join(",".join(line) for line in [HEADER, *(r.cells() for r in rows)]) + "\n",
                    encoding="utf-8-sig")
    result = import_ledger(session_factory(engine), path, calendar=calendar, now=NOW, batch_size=4)
    return result, [(r.cells[0], r.code) for r in result.rejects]


def back_to_set_up(engine) -> None:
    with engine.begin() as conn:
        conn.execute(delete(AuditEvent).where(AuditEvent.actor != "setup"))
        conn.execute(delete(ServiceRequest))


@pytest.fixture
def offices(engine):
    with transaction(engine) as s:
        setup_office(s, "A1")
        setup_office(s, "B1")
        s.scalar(select(Staff).where(Staff.code == "A1-CSS")).active = False  # left the company


REGISTER = [
    Registration("R-01", "2026-10-12 09:00", replied="2026-10-12 09:05"),
    Registration("R-02", "2026-10-12 09:01", channel="walk_in", category="cleaning", price="CLEAN-DEEP",
                 preferred="2026-10-14 14:00", expected="干净"),
    Registration("R-03", "2026-10-12 09:02", fee="95", price=None, community=None, replied="2026-10-12 09:04",
                 replied_by="A1-CSM"),
    Registration("R-04", "2026-10-12 09:03", fee="70.5", replied="2026-10-12 09:02"),  # reply before registering
    Registration("R-05", "2026-10-12 09:04", by="A1-ENS"),  # engineering cannot register
    Registration("R-06", "2026-10-12 09:05", by="B1-CS1"),  # another office's clerk
    Registration("R-07", "2026-10-12 09:06", category="appliance", price=None, fee="50"),  # out of scope
    Registration("R-08", "2026-10-12 09:07", price=None),  # no fee and no price
    Registration("R-09", "2026-10-12 09:08", price="GREEN-TRIM"),  # a price of another category
    Registration("R-10", "2026-10-12 09:09", price="NO-SUCH-PRICE"),
    Registration("R-11", "2026-10-12 09:10", community="B1-C1"),  # another office's community
    Registration("R-12", "2026-10-12 09:11", by="A1-CSS"),  # inactive
    Registration("R-13", "2026-10-12 09:12", replied="2026-10-12 09:20", replied_by="A1-PL1"),  # a plumber replies
    Registration("R-14", "2026-10-12 09:13", channel="walk_in", category="electrical", price="ELEC-SOCKET",
                 fee="45"),
    Registration("R-01", "2026-10-12 09:00", replied="2026-10-12 09:30"),  # again: already there and replied
    Registration("R-15", "2026-10-12 09:14", office="B1", by="B1-CS1", community="B1-C1",
                 replied="2026-10-12 09:16"),
]


def test_registrations_and_replies_give_the_same_ledger_refusals_and_audit_trail_at_the_desk_and_by_import(
        engine, calendar, offices, tmp_path):
    refused_at_desk = at_the_desk(engine, REGISTER)
    desk_ledger = ledger_picture(engine)
    back_to_set_up(engine)

    result, refused_by_import = by_import(engine, calendar, tmp_path, REGISTER)

    assert refused_by_import == refused_at_desk
    assert [code for _, code in refused_at_desk] == [
        "before_event", "cs_only", "wrong_office", "out_of_scope", "fee_needed", "price_category", "not_found",
        "community_office", "staff_inactive", "cs_only"]
    assert ledger_picture(engine) == desk_ledger
    requests, audits = desk_ledger
    assert [r["number"] for r in requests] == ["R-01", "R-02", "R-03", "R-14", "R-15"]
    assert [(a["action"], a["entity_ref"]) for a in audits] == [
        ("register", "R-01"), ("reply", "R-01"), ("register", "R-02"), ("register", "R-03"), ("reply", "R-03"),
        ("register", "R-14"), ("register", "R-15"), ("reply", "R-15")]
    assert (result.kept, result.present, result.rejected) == (5, 1, 10)


def test_replies_to_requests_already_in_the_ledger_give_the_same_ledger_at_the_desk_and_by_import(
        engine, calendar, offices, tmp_path):
    unanswered = [Registration(f"R-{n:02d}", f"2026-10-12 09:{n:02d}") for n in range(1, 7)]
    answers = [Registration(f"R-{n:02d}", f"2026-10-12 09:{n:02d}", replied=f"2026-10-12 09:{n + 30:02d}",
                            replied_by="A1-CSM" if n % 2 else None) for n in range(1, 7)]
    answers[2] = Registration("R-03", "2026-10-12 09:03", replied="2026-10-12 08:00")  # before its registration
    answers.append(Registration("R-02", "2026-10-12 09:02", replied="2026-10-12 10:00"))  # replied just above

    at_the_desk(engine, unanswered)
    refused_at_desk = at_the_desk(engine, answers)
    desk_ledger = ledger_picture(engine)
    back_to_set_up(engine)

    by_import(engine, calendar, tmp_path, unanswered, "登记表.csv")
    result, refused_by_import = by_import(engine, calendar, tmp_path, answers, "登记表 回复.csv")

    assert refused_by_import == refused_at_desk == [("R-03", "before_event")]
    assert ledger_picture(engine) == desk_ledger
    replied = {r["number"]: r["replied_at"] for r in desk_ledger[0]}
    assert [n for n, when in replied.items() if when is not None] == ["R-01", "R-02", "R-04", "R-05", "R-06"]
    assert (result.kept, result.present, result.rejected) == (5, 1, 1)
