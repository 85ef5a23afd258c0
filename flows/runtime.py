"""The one composition root: builds engine, calendar and notifier from Settings, once per process."""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from flows.settings import Settings
from models.calendar import BusinessCalendar, load_override
from models.db import make_engine, session_factory

if TYPE_CHECKING:
    pass


@dataclass
class Runtime:
    """What a command or flow needs, wired from settings. Tests build one with their own settings."""

    settings: Settings = field(default_factory=Settings)

    @cached_property
    def engine(self) -> Engine:
        return make_engine(self.settings.effective_database_url)

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        return session_factory(self.engine)

    @cached_property
    def calendar(self) -> BusinessCalendar:
        s = self.settings
        return BusinessCalendar(timezone=s.timezone, override=load_override(s.calendar_override),
                                work_start=s.work_start, work_end=s.work_end)

    def calendar_warnings(self) -> list[str]:
        """One message per year without make-up-day data that this process's questions relied on."""
        cal = self.calendar
        return [gap.message(self.settings.locale) for gap in cal.gaps(cal.gaps_touched)]

    def close(self) -> None:
        if "engine" in self.__dict__:
            self.engine.dispose()
