"""The chase checks against a real ledger built through the desk operations, on SQLite and PostgreSQL."""
from __future__ import annotations

from sqlalchemy import select

from models import desk
from models.chase import queries as chase
from models.chase.facts import ReworkWithoutCallback
from models.ledger.db import transaction
from models.ledger.tables import Callback
from tests.builders import accepted_job, at, order_for, request_for, setup_office
from tests.plans import query_plans


def _callback(s, calendar, order, outcome, when, o):
    return desk.callback(s, order=order, by=o.clerk, outcome=outcome, at=when, calendar=calendar)


# -- phone replies ---------------------------------------------------------------------------------

def test_a_phone_request_unanswered_after_ten_minutes_is_overdue_and_names_its_clerk(engine, calendar):
    with transaction(engine) as s:
        o = setup_office(s)
        req = request_for(s, o, at=at("2026-11-23", "10:00"), phone="13812345678")
        number = req.number
        late = chase.overdue_replies(s, as_of=at("2026-11-23", "10:11"), calendar=calendar)
        early = chase.overdue_replies(s, as_of=at("2026-11-23", "10:09"), calendar=calendar)
    assert early == []
    [found] = late
    assert (found.request_number, found.office, found.phone, found.holder) == (number, "A1", "13812345678", "王客服")
    assert found.due_at == at("2026-11-23", "10:10")
    assert found.overdue_minutes == 1
    assert found.community == "A1 花园小区"


def test_a_walk_in_request_is_never_chased_for_a_reply(engine, calendar):
    with transaction(engine) as s:
        o = setup_office(s)
        request_for(s, o, at=at("2026-11-23", "10:00"), channel="walk_in")
        assert chase.overdue_replies(s, as_of=at("2026-11-23", "15:00"), calendar=calendar) == []


def test_a_reply_given_later_does_not_exist_when_replaying_the_moment_before_it(engine, calendar):
    with transaction(engine) as s:
        o = setup_office(s)
        req = request_for(s, o, at=at("2026-11-23", "10:00"))
        desk.reply(s, request=req, by=o.clerk, at=at("2026-11-23", "10:30"))
        before = chase.overdue_replies(s, as_of=at("2026-11-23", "10:20"), calendar=calendar)
        after = chase.overdue_replies(s, as_of=at("2026-11-23", "10:31"), calendar=calendar)
    assert [r.request_number for r in before] == [req.number]
    assert after == []


def test_a_request_registered_after_the_moment_is_not_seen(engine, calendar):
    with transaction(engine) as s:
        o = setup_office(s)
        request_for(s, o, at=at("2026-11-23", "11:00"))
        assert chase.overdue_replies(s, as_of=at("2026-11-23", "10:59"), calendar=calendar) == []


def test_a_call_taken_just_before_close_is_chased_the_next_working_morning_not_at_night(engine, calendar):
    with transaction(engine) as s:
        o = setup_office(s)
        request_for(s, o, at=at("2026-11-27", "17:25"))  # a Friday
        evening = chase.overdue_replies(s, as_of=at("2026-11-27", "21:00"), calendar=calendar)
        weekend = chase.overdue_replies(s, as_of=at("2026-11-29", "10:00"), calendar=calendar)
        monday = chase.overdue_replies(s, as_of=at("2026-11-30", "08:31"), calendar=calendar)
    assert evening == [] and weekend == []
    assert len(monday) == 1


# -- callbacks ---------------------------------------------------------------------------------------

def test_a_callback_not_done_by_its_due_is_level_one_then_level_two_a_working_day_later(engine, calendar):
    with transaction(engine) as s:
        o = setup_office(s)
        order = accepted_job(s, calendar, o, at=at("2026-11-23", "10:00"))  # accepted Mon 12:10, due Wed 17:30
        levels = {when: [c.level for c in chase.overdue_callbacks(s, as_of=at(*when), calendar=calendar)]
                  for when in [("2026-11-25", "17:00"), ("2026-11-26", "09:00"), ("2026-11-26", "17:29"),
                               ("2026-11-27", "09:00")]}
        [found] = chase.overdue_callbacks(s, as_of=at("2026-11-26", "09:00"), calendar=calendar)
    assert levels == {("2026-11-25", "17:00"): [], ("2026-11-26", "09:00"): [1], ("2026-11-26", "17:29"): [1],
                      ("2026-11-27", "09:00"): [2]}
    assert found.order_number == order.number
    assert found.due_at == at("2026-11-25", "17:30")
    assert found.escalates_at == at("2026-11-26", "17:30")
    assert (found.holder, found.worker, found.resident) == ("王客服", "钱师傅", "刘女士")
    assert found.overdue_minutes == 15 * 60 + 30
    assert not isinstance(found, ReworkWithoutCallback)


def test_a_callback_done_later_is_still_owed_when_replaying_before_it(engine, calendar):
    with transaction(engine) as s:
        o = setup_office(s)
        order = accepted_job(s, calendar, o, at=at("2026-11-23", "10:00"))
        _callback(s, calendar, order, "satisfied", at("2026-11-26", "11:00"), o)
        before = chase.overdue_callbacks(s, as_of=at("2026-11-26", "10:00"), calendar=calendar)
        after = chase.overdue_callbacks(s, as_of=at("2026-11-26", "11:00"), calendar=calendar)
    assert [c.order_number for c in before] == [order.number]
    assert after == []


def test_an_unreachable_resident_makes_a_new_callback_due_the_next_working_day(engine, calendar):
    with transaction(engine) as s:
        o = setup_office(s)
        order = accepted_job(s, calendar, o, at=at("2026-11-23", "10:00"))
        _callback(s, calendar, order, "unreachable", at("2026-11-25", "16:00"), o)
        thursday = chase.overdue_callbacks(s, as_of=at("2026-11-26", "16:00"), calendar=calendar)
        friday = chase.overdue_callbacks(s, as_of=at("2026-11-27", "09:00"), calendar=calendar)
    assert thursday == []
    assert [(c.order_number, c.due_at, c.level) for c in friday] == [(order.number, at("2026-11-26", "17:30"), 1)]


def test_a_rework_order_accepted_without_its_own_callback_is_named_as_rework(engine, calendar):
    with transaction(engine) as s:
        o = setup_office(s)
        order = accepted_job(s, calendar, o, at=at("2026-11-23", "10:00"))
        rework = _callback(s, calendar, order, "unsatisfied", at("2026-11-24", "10:00"), o).rework_order
        desk.complete(s, order=rework, by=o.plumber, at=at("2026-11-24", "15:00"))
        desk.accept(s, order=rework, signed_by="刘女士", at=at("2026-11-24", "15:10"), calendar=calendar)
        found = chase.overdue_callbacks(s, as_of=at("2026-11-27", "09:00"), calendar=calendar)
    assert [(type(c).__name__, c.order_number, c.rework_of, c.level) for c in found] == [
        ("ReworkWithoutCallback", rework.number, order.number, 1)]


def test_an_unsatisfied_callback_with_no_rework_order_is_missing_rework_after_the_allowed_hours(engine, calendar):
    with transaction(engine) as s:
        o = setup_office(s)
        order = accepted_job(s, calendar, o, at=at("2026-11-23", "10:00"))
        # as an imported paper ledger records it: unsatisfied, and nobody issued the rework
        row = s.scalar(select(Callback).where(Callback.order_id == order.id))
        row.done_at, row.outcome = at("2026-11-24", "10:00"), "unsatisfied"
        s.flush()
        within = chase.missing_reworks(s, as_of=at("2026-11-25", "09:59"), calendar=calendar)
        [late] = chase.missing_reworks(s, as_of=at("2026-11-25", "10:30"), calendar=calendar)
    assert within == []
    assert (late.order_number, late.due_at, late.overdue_minutes) == (order.number, at("2026-11-25", "10:00"), 30)


def test_an_unsatisfied_callback_whose_rework_was_issued_is_not_missing_rework(engine, calendar):
    with transaction(engine) as s:
        o = setup_office(s)
        order = accepted_job(s, calendar, o, at=at("2026-11-23", "10:00"))
        _callback(s, calendar, order, "unsatisfied", at("2026-11-24", "10:00"), o)
        assert chase.missing_reworks(s, as_of=at("2026-11-30", "10:00"), calendar=calendar) == []


# -- work orders ----------------------------------------------------------------------------------------

def test_a_work_order_not_completed_by_its_scheduled_time_goes_to_its_department(engine, calendar):
    with transaction(engine) as s:
        o = setup_office(s)
        req = request_for(s, o, at=at("2026-11-23", "09:00"), category="cleaning", channel="walk_in")
        order = order_for(s, o, req, at=at("2026-11-23", "09:10"), scheduled=at("2026-11-23", "11:00"))
        desk.complete(s, order=order, by=o.cleaner, at=at("2026-11-23", "14:00"))
        on_time = chase.overdue_work_orders(s, as_of=at("2026-11-23", "10:59"), calendar=calendar)
        [late] = chase.overdue_work_orders(s, as_of=at("2026-11-23", "11:30"), calendar=calendar)
        done = chase.overdue_work_orders(s, as_of=at("2026-11-23", "14:00"), calendar=calendar)
    assert on_time == [] and done == []
    assert (late.order_number, late.department, late.holder, late.overdue_minutes) == (
        order.number, "cleaning", "吴阿姨", 30)


def test_the_chase_reads_open_items_through_their_partial_indexes(engine, calendar):
    def chase_now() -> None:
        chase.overdue_replies(s, as_of=at("2026-11-23", "10:00"), calendar=calendar)
        chase.chase_callbacks(s, as_of=at("2026-11-23", "10:00"), calendar=calendar)

    with transaction(engine) as s:
        setup_office(s)
        _, plans = query_plans(s, chase_now)
    for index in ("ix_service_requests_open_phone", "ix_service_requests_replied_at", "ix_callbacks_open",
                  "ix_callbacks_done_at", "ix_callbacks_unsatisfied_open", "ix_work_orders_open",
                  "ix_work_orders_completed_at"):
        assert index in plans, index
    assert "SCAN " not in plans and "Seq Scan" not in plans  # no table is read end to end


# -- one office's part of a fanned-out run -------------------------------------------------------------------

def test_an_offices_part_finds_exactly_that_offices_share_of_the_groups_findings(engine, calendar):
    with transaction(engine) as s:
        for code in ("A1", "B1"):
            o = setup_office(s, code)
            request_for(s, o, at=at("2026-11-23", "10:00"))  # a phone call never answered
            accepted_job(s, calendar, o, at=at("2026-11-19", "10:00"))  # its callback overdue since the 23rd
            order_for(s, o, request_for(s, o, at=at("2026-11-20", "09:00"), channel="walk_in"),
                      at=at("2026-11-20", "09:10"))  # never completed
            unsatisfied = accepted_job(s, calendar, o, at=at("2026-11-23", "10:00"))
            row = s.scalar(select(Callback).where(Callback.order_id == unsatisfied.id))
            row.done_at, row.outcome = at("2026-11-24", "10:00"), "unsatisfied"  # and no rework issued
        s.flush()
        moment = at("2026-11-26", "10:00")
        group = chase.chase_callbacks(s, as_of=moment, calendar=calendar)
        replies = chase.overdue_replies(s, as_of=moment, calendar=calendar)
        for code in ("A1", "B1"):
            part = chase.chase_callbacks(s, as_of=moment, calendar=calendar, office=code)
            for name in ("callbacks", "rework_callbacks", "missing_reworks", "overdue_orders"):
                mine = [f for f in getattr(group, name) if f.office == code]
                assert list(getattr(part, name)) == mine, name
            assert part.callbacks and part.missing_reworks and part.overdue_orders
            assert chase.overdue_replies(s, as_of=moment, calendar=calendar, office=code) == [
                r for r in replies if r.office == code] != []
