"""The business calendar: China's statutory holidays and make-up working days, plus the company's overrides.

Pure: every question takes the date or time it is about; nothing here reads the clock.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import holidays

from models import texts


class CalendarError(ValueError):
    """The override file cannot be read as a calendar."""


@dataclass(frozen=True)
class CalendarOverride:
    """The company's own days: extra days off, extra working days, and years declared complete."""

    days_off: frozenset[date] = frozenset()
    working_days: frozenset[date] = frozenset()
    complete_years: frozenset[int] = frozenset()
    source: str | None = None


@dataclass(frozen=True)
class CalendarGap:
    """A year whose make-up working days (调休) are not in the calendar data yet."""

    year: int
    override_file: str | None

    def message(self, locale: str) -> str:
        where = self.override_file or "BIANMIN_CALENDAR_OVERRIDE"
        return texts.render("calendar.gap", locale, year=self.year, where=where)


def load_override(path: Path | str | None) -> CalendarOverride:
    """Read a calendar override TOML file; no path means no overrides."""
    if path is None:
        return CalendarOverride()
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise CalendarError(f"calendar override file not found: {path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise CalendarError(f"calendar override file {path} is not valid TOML: {exc}") from exc

    def days(section: str) -> frozenset[date]:
        table = data.get(section, {})
        if not isinstance(table, dict):
            raise CalendarError(f"{path}: [{section}] must be a table of \"YYYY-MM-DD\" = \"reason\"")
        out = set()
        for key in table:
            try:
                out.add(date.fromisoformat(str(key)))
            except ValueError as exc:
                raise CalendarError(f"{path}: [{section}] {key!r} is not a date (YYYY-MM-DD)") from exc
        return frozenset(out)

    years = data.get("complete_years", [])
    if not isinstance(years, list) or not all(isinstance(y, int) for y in years):
        raise CalendarError(f"{path}: complete_years must be a list of years, e.g. [2027]")
    return CalendarOverride(days("days_off"), days("working_days"), frozenset(years), str(path))


@dataclass
class BusinessCalendar:
    """Working days and times in one timezone.

    `gaps_touched` collects the years without make-up-day data that a question relied on,
    so the caller can warn once per command instead of guessing silently.
    """

    timezone: str = "Asia/Shanghai"
    override: CalendarOverride = field(default_factory=CalendarOverride)
    work_start: time = time(8, 30)
    work_end: time = time(17, 30)
    gaps_touched: set[int] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.tz = ZoneInfo(self.timezone)
        self._china = holidays.China()
        self._years_with_data: dict[int, bool] = {}

    # -- days ---------------------------------------------------------------
    def year_has_makeup_data(self, year: int) -> bool:
        if year not in self._years_with_data:
            _ = date(year, 1, 1) in self._china  # populates the year (holidays expands on lookup)
            in_library = any(d.year == year for d in self._china.weekend_workdays)
            declared = year in self.override.complete_years or any(
                d.year == year for d in self.override.working_days)
            self._years_with_data[year] = in_library or declared
        return self._years_with_data[year]

    def gaps(self, years: set[int] | range) -> list[CalendarGap]:
        """The years among `years` whose make-up working days are missing."""
        return [CalendarGap(y, self.override.source) for y in sorted(years) if not self.year_has_makeup_data(y)]

    def is_working_day(self, day: date) -> bool:
        if day in self.override.working_days:
            return True
        if day in self.override.days_off:
            return False
        if day.weekday() >= 5 and not self.year_has_makeup_data(day.year):
            self.gaps_touched.add(day.year)
        return self._china.is_working_day(day)

    def next_working_day(self, day: date) -> date:
        """The first working day strictly after `day`."""
        day += timedelta(days=1)
        while not self.is_working_day(day):
            day += timedelta(days=1)
        return day

    def previous_working_day(self, day: date) -> date:
        """The last working day strictly before `day`."""
        day -= timedelta(days=1)
        while not self.is_working_day(day):
            day -= timedelta(days=1)
        return day

    def working_days_before(self, day: date, n: int) -> date:
        """The n-th working day before `day` (n >= 0; 0 means `day` itself)."""
        for _ in range(n):
            day = self.previous_working_day(day)
        return day

    def working_day_on_or_after(self, day: date) -> date:
        return day if self.is_working_day(day) else self.next_working_day(day)

    def add_working_days(self, day: date, n: int) -> date:
        """The n-th working day after `day` (n >= 0; 0 means `day` itself if working, else the next)."""
        if n <= 0:
            return self.working_day_on_or_after(day)
        for _ in range(n):
            day = self.next_working_day(day)
        return day

    def working_days_between(self, start: date, end: date) -> int:
        """Working days in (start, end]: how many working days have passed since `start`."""
        count, day = 0, start
        while day < end:
            day += timedelta(days=1)
            count += self.is_working_day(day)
        return count

    # -- times --------------------------------------------------------------
    def local(self, moment: datetime) -> datetime:
        if moment.tzinfo is None:
            raise ValueError(f"naive datetime {moment!r}: pass an aware time")
        return moment.astimezone(self.tz)

    def at(self, day: date, clock: time) -> datetime:
        """The aware moment of `clock` local time on `day`."""
        return datetime.combine(day, clock, tzinfo=self.tz)

    def is_working_time(self, moment: datetime) -> bool:
        local = self.local(moment)
        return self.is_working_day(local.date()) and self.work_start <= local.time() < self.work_end

    def last_working_time(self, moment: datetime) -> datetime:
        """`moment` itself when in working hours, else the end of the last working period before it."""
        if self.is_working_time(moment):
            return moment
        local = self.local(moment)
        day = local.date()
        if self.is_working_day(day) and local.time() >= self.work_end:
            return self.at(day, self.work_end)
        return self.at(self.previous_working_day(day), self.work_end)

    def working_time_before(self, moment: datetime, span: timedelta) -> datetime:
        """The moment `span` of working time (working hours of working days only) before `moment`."""
        local = self.local(moment)
        remaining, day = span, local.date()
        for _ in range(400):  # a year of days off in a row is not a calendar, it is a bug
            if self.is_working_day(day):
                start = self.at(day, self.work_start)
                end = min(self.at(day, self.work_end), local)
                if end > start:
                    if end - start >= remaining:
                        return end - remaining
                    remaining -= end - start
            day -= timedelta(days=1)
        return moment - span

    def next_working_time(self, moment: datetime) -> datetime:
        """`moment` itself when in working hours, else the start of the next working period."""
        local = self.local(moment)
        if self.is_working_day(local.date()):
            if local.time() < self.work_start:
                return self.at(local.date(), self.work_start)
            if local.time() < self.work_end:
                return local
        return self.at(self.next_working_day(local.date()), self.work_start)
