"""The business calendar against the published calendars, the company's overrides, and years without data."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta

import chinese_calendar
import holidays
import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.calendar import BusinessCalendar, CalendarError, load_override

CAL = BusinessCalendar()


def every_day(first: date, last: date):
    day = first
    while day <= last:
        yield day
        day += timedelta(days=1)


def test_every_day_from_2010_to_2026_agrees_with_chinesecalendar():
    disagreements = [d for d in every_day(date(2010, 1, 1), date(2026, 12, 31))
                     if CAL.is_working_day(d) != chinese_calendar.is_workday(d)]
    assert disagreements == []


def test_python_holidays_china_agrees_with_chinesecalendar_over_the_same_years():
    china = holidays.China(years=range(2010, 2027))
    disagreements = [d for d in every_day(date(2010, 1, 1), date(2026, 12, 31))
                     if china.is_working_day(d) != chinese_calendar.is_workday(d)]
    assert disagreements == []


@pytest.mark.parametrize("day", [date(2026, 10, d) for d in range(1, 8)])
def test_national_day_week_2026_is_off(day):
    assert not CAL.is_working_day(day)


@pytest.mark.parametrize("day", [date(2026, 9, 20), date(2026, 10, 10), date(2026, 2, 14), date(2026, 2, 28)])
def test_weekend_make_up_days_of_2026_are_working_days(day):
    assert day.weekday() >= 5
    assert CAL.is_working_day(day)


def test_next_working_day_after_national_day_eve_is_october_8th():
    assert CAL.next_working_day(date(2026, 9, 30)) == date(2026, 10, 8)


def test_two_working_days_after_friday_13_february_2026_is_the_24th():
    assert CAL.add_working_days(date(2026, 2, 13), 2) == date(2026, 2, 24)


def write(tmp_path, text: str):
    path = tmp_path / "calendar.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_override_file_adds_company_days_off_and_extra_working_days(tmp_path):
    path = write(tmp_path, '[days_off]\n"2026-09-29" = "company anniversary"\n'
                           '[working_days]\n"2026-10-03" = "stocktaking"\n')
    cal = BusinessCalendar(override=load_override(path))
    assert not cal.is_working_day(date(2026, 9, 29)) and CAL.is_working_day(date(2026, 9, 29))
    assert cal.is_working_day(date(2026, 10, 3)) and not CAL.is_working_day(date(2026, 10, 3))
    assert cal.next_working_day(date(2026, 9, 28)) == date(2026, 9, 30)


def test_an_override_file_that_is_not_a_calendar_is_refused_with_its_name(tmp_path):
    path = write(tmp_path, '[days_off]\n"tomorrow" = "?"\n')
    with pytest.raises(CalendarError, match="calendar.toml"):
        load_override(path)


def test_a_missing_override_file_is_refused():
    with pytest.raises(CalendarError, match="not found"):
        load_override("/nonexistent/bianmin-calendar.toml")


def test_a_2027_weekend_question_is_remembered_as_a_gap_naming_the_year_and_override_file(tmp_path):
    path = write(tmp_path, '[days_off]\n"2026-12-31" = "year end"\n')
    cal = BusinessCalendar(override=load_override(path))
    cal.add_working_days(date(2027, 3, 5), 2)  # Friday: crosses a 2027 weekend
    gaps = cal.gaps(cal.gaps_touched)
    assert [g.year for g in gaps] == [2027]
    for locale in ("en", "zh_CN"):
        message = gaps[0].message(locale)
        assert "2027" in message and str(path) in message


def test_a_2026_weekend_question_leaves_no_gap():
    cal = BusinessCalendar()
    cal.add_working_days(date(2026, 3, 6), 5)
    assert cal.gaps(cal.gaps_touched) == []


def test_declaring_2027_complete_in_the_override_file_silences_the_gap(tmp_path):
    path = write(tmp_path, 'complete_years = [2027]\n')
    cal = BusinessCalendar(override=load_override(path))
    cal.add_working_days(date(2027, 3, 5), 2)
    assert cal.gaps(cal.gaps_touched) == []


days = st.dates(min_value=date(2010, 1, 1), max_value=date(2026, 11, 30))


@given(days, days, st.integers(min_value=0, max_value=15))
def test_add_working_days_is_monotone_in_the_start_day(a, b, n):
    early, late = sorted((a, b))
    assert CAL.add_working_days(early, n) <= CAL.add_working_days(late, n)


@given(days, st.integers(min_value=0, max_value=15), st.integers(min_value=0, max_value=15))
def test_add_working_days_is_monotone_in_the_count_and_lands_on_a_working_day(day, m, n):
    fewer, more = sorted((m, n))
    assert CAL.add_working_days(day, fewer) <= CAL.add_working_days(day, more)
    assert CAL.is_working_day(CAL.add_working_days(day, more))


@given(days, st.integers(min_value=1, max_value=15))
def test_n_working_days_later_is_exactly_n_working_days_between(day, n):
    assert CAL.working_days_between(day, CAL.add_working_days(day, n)) == n


def test_the_working_day_before_national_day_week_2026_is_september_30th():
    assert CAL.previous_working_day(date(2026, 10, 8)) == date(2026, 9, 30)


@given(days, st.integers(min_value=1, max_value=15))
def test_n_working_days_before_agrees_with_chinesecalendar(day, n):
    assert CAL.working_days_before(day, n) == chinese_calendar.find_workday(-n, day)


@given(days)
def test_zero_working_days_before_a_day_is_the_day_itself(day):
    assert CAL.working_days_before(day, 0) == day


TZ = CAL.tz
moments = st.datetimes(min_value=datetime(2010, 2, 1), max_value=datetime(2026, 11, 30)).map(
    lambda m: m.replace(tzinfo=TZ))


def working_time_between(first: datetime, last: datetime) -> timedelta:
    """Working hours (08:30-17:30 of chinesecalendar's working days) between two moments, day by day."""
    total, day = timedelta(0), first.date()
    while day <= last.date():
        if chinese_calendar.is_workday(day):
            start = max(first, datetime.combine(day, time(8, 30), tzinfo=TZ))
            end = min(last, datetime.combine(day, time(17, 30), tzinfo=TZ))
            total += max(end - start, timedelta(0))
        day += timedelta(days=1)
    return total


@given(moments, st.integers(min_value=1, max_value=60 * 9 * 15))
def test_working_time_before_leaves_exactly_that_much_working_time_by_chinesecalendar(moment, minutes):
    span = timedelta(minutes=minutes)
    before = CAL.working_time_before(moment, span)
    assert before < moment
    assert working_time_between(before, moment) == span
    assert chinese_calendar.is_workday(before.date()) and time(8, 30) <= before.time() <= time(17, 30)


@given(moments)
def test_the_last_working_time_is_the_moment_itself_or_the_close_of_chinesecalendars_last_working_day(moment):
    last = CAL.last_working_time(moment)
    working = chinese_calendar.is_workday(moment.date()) and time(8, 30) <= moment.time() < time(17, 30)
    if working:
        assert last == moment
    else:
        day = moment.date() if chinese_calendar.is_workday(moment.date()) and moment.time() >= time(17, 30) \
            else chinese_calendar.find_workday(-1, moment.date())
        assert last == datetime.combine(day, time(17, 30), tzinfo=TZ)
