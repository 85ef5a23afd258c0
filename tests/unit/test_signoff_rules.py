"""The sign-off's pure rules: the deadline from the calendar, whose answer stands on which version, how a
dispute ends, when reminders and the overdue notice are due, and who may answer."""
from __future__ import annotations

from datetime import date

import pytest

from models.errors import DomainError
from models.signoff.facts import Answer, SignoffStatus
from models.signoff.rules import (
    deadline,
    decide_answer,
    dispute_lines,
    overdue_notice_day,
    party_of_role,
    party_of_staff,
    party_states,
    reminder_parties,
)
from tests.builders import at

SAME = {"cs": "c", "finance": "f", "engineering": "e", "cleaning": "k"}


def answer(party, version, kind="confirm", when="2026-11-02", **more):
    return Answer(party, version, kind, f"{party}-boss", f"{party} name", "role", at(when, "10:00"), **more)


def status_of(answers, views, version=1, **more):
    return SignoffStatus("2026-10", version, more.pop("state", "awaiting-signoff"), at("2026-11-05", "00:00"),
                         party_states(answers, views, version), dispute_lines(answers, views, version), **more)


def test_the_deadline_is_the_end_of_the_third_working_day_of_the_next_month(calendar):
    assert deadline("2026-10", calendar=calendar, workdays=3) == at("2026-11-05", "00:00")  # Mon 2 .. Wed 4 Nov
    assert overdue_notice_day(at("2026-11-05", "00:00"), calendar=calendar) == date(2026, 11, 3)


def test_across_the_national_day_holiday_the_deadline_counts_working_days_from_the_calendar(calendar):
    # 1-7 October off; 8, 9 and the make-up Saturday 10 October are the first three working days
    assert deadline("2026-09", calendar=calendar, workdays=3) == at("2026-10-11", "00:00")
    assert deadline("2026-09", calendar=calendar, workdays=1) == at("2026-10-09", "00:00")


def test_a_confirmation_stands_on_a_new_version_only_where_that_partys_view_did_not_change():
    views = {1: SAME, 2: {**SAME, "finance": "f2"}}
    states = {p.party: p for p in party_states([answer("finance", 1), answer("engineering", 1)], views, 2)}
    assert (states["engineering"].state, states["engineering"].carried) == ("confirmed", True)
    assert (states["finance"].state, states["finance"].reset) == ("awaiting", True)
    assert states["cs"].state == states["cleaning"].state == "awaiting"


def test_a_dispute_is_corrected_by_a_version_that_changes_its_view_or_withdrawn_by_a_later_confirmation():
    views = {1: SAME, 2: {**SAME, "finance": "f2"}}
    given = [answer("finance", 1, "dispute", note="少记一笔"), answer("cs", 1, "dispute", note="回访",
                                                                   when="2026-11-02"),
             answer("cs", 2, when="2026-11-03")]
    ended = {d.party: (d.ended, d.ended_in) for d in dispute_lines(given, views, 2)}
    assert ended == {"finance": ("corrected", 2), "cs": ("withdrawn", None)}
    assert dispute_lines([answer("cleaning", 1, "dispute", note="x")], views, 2)[0].ended == "open"


def test_reminders_go_on_working_days_after_the_draft_to_those_who_have_not_answered(calendar):
    status = status_of([answer("cs", 1), answer("finance", 1, "dispute", note="x")], {1: SAME})
    opened = at("2026-11-02", "08:00")
    assert reminder_parties(status, as_of=at("2026-11-02", "12:00"), opened_at=opened, calendar=calendar) == ()
    assert reminder_parties(status, as_of=at("2026-11-03", "08:00"), opened_at=opened, calendar=calendar) == (
        "engineering", "cleaning")
    assert reminder_parties(status, as_of=at("2026-11-07", "08:00"), opened_at=opened, calendar=calendar) == ()


@pytest.mark.parametrize("department, role, party", [
    ("finance", "manager", "finance"), ("finance", "cashier", None), ("engineering", "supervisor", "engineering"),
    ("cleaning", "manager", "cleaning"), ("cs", "supervisor", None), ("cs", "manager", "cs"),
    ("administration", "manager", None)])
def test_each_party_is_confirmed_by_its_manager_or_supervisor(department, role, party):
    assert party_of_staff(department, role) == party


def test_console_roles_answer_for_their_party_only():
    assert [party_of_role(r) for r in ("cs-manager", "finance-manager", "engineering-supervisor",
                                       "cleaning-supervisor", "cs-supervisor", "administration")] == [
        "cs", "finance", "engineering", "cleaning", None, None]


@pytest.mark.parametrize("changes, code", [
    ({"party": "legal"}, "signoff_bad_party"), ({"by_party": "cs"}, "signoff_wrong_party"),
    ({"version": 1}, "signoff_not_current"), ({"answer": "dispute", "note": "  "}, "signoff_note_required")])
def test_an_answer_the_procedure_does_not_allow_is_refused(changes, code):
    status = status_of([], {1: SAME, 2: SAME}, version=2)
    given = dict(month="2026-10", party="finance", by_party="finance", by="fin", version=None, answer="confirm",
                 note=None) | changes
    with pytest.raises(DomainError) as refused:
        decide_answer(status, **given)
    assert refused.value.code == code


def test_no_answer_is_taken_once_the_final_went_or_before_the_draft():
    sent = status_of([], {1: SAME}, state="sent", final_version=1)
    for status, code in ((sent, "signoff_closed"), (None, "signoff_none")):
        with pytest.raises(DomainError) as refused:
            decide_answer(status, month="2026-10", party="cs", by_party="cs", by="x", version=None,
                          answer="confirm", note=None)
        assert refused.value.code == code
