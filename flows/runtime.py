"""The one composition root: builds engine, calendar and notifier from Settings, once per process."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from flows.settings import Settings
from models.calendar import BusinessCalendar, load_override
from models.ledger.db import LedgerUnusable, open_ledger, read_only, session_factory


@dataclass
class Runtime:
    """What a command or flow needs, wired from settings. Tests build one with their own settings."""

    settings: Settings = field(default_factory=Settings)

    @cached_property
    def engine(self) -> Engine:
        # checked once, where every command and flow first touches the ledger: a database that is down, missing or
        # not migrated is one LedgerUnusable line naming the URL (password masked), never a traceback halfway
        return open_ledger(self.settings.effective_database_url)

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        return session_factory(self.engine)

    @cached_property
    def read_sessions(self) -> sessionmaker[Session]:
        """Sessions for long read-only work (the monthly reconciliation): they never block the desk's writes."""
        return session_factory(read_only(self.engine))

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


# the ledger, digests, reports and rejects hold residents' names and phones: owner-only files (0600) and folders
# (0700). Process-wide, so set by bianmin's own entry points only, never on importing a module.
PRIVATE_UMASK = 0o077


def keep_files_private() -> None:
    """Make every file and folder this process creates from now on readable by its owner only."""
    os.umask(PRIVATE_UMASK)


# The process's one runtime: the CLI's commands and the flows both read it. Installed by `set_runtime` (a test, the
# demo) or `using_runtime`, else built from Settings() on first use.
_installed: Runtime | None = None


def current_runtime() -> Runtime:
    """The process's runtime: the one installed, else one built from Settings() now and kept.

    Building it is where a flow run by a Prefect worker (a process bianmin did not start) begins.
    """
    global _installed
    if _installed is None:
        keep_files_private()
        _installed = Runtime(Settings())
    return _installed


def installed_runtime() -> Runtime | None:
    """The process's runtime if one was installed or built already; never builds one."""
    return _installed


def set_runtime(rt: Runtime | None) -> None:
    """Install `rt` as the process's runtime (None: build one from Settings() on next use). Tests hand the CLI
    and the flows a runtime built from their own settings this way."""
    global _installed
    _installed = rt


class using_runtime:
    """Install `rt` as the process's runtime for a block, then put back the one before."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self._previous: Runtime | None = None

    def __enter__(self) -> Runtime:
        self._previous = installed_runtime()
        set_runtime(self.rt)
        return self.rt

    def __exit__(self, *exc) -> None:
        set_runtime(self._previous)


def ledger_refusal(rt: Runtime) -> Any:
    """What a flow's body returns first when the ledger cannot be used: a Failed state whose message is the
    one-line refusal (an exception would have Prefect log a traceback for the flow and for each task); else None."""
    try:
        rt.engine
    except LedgerUnusable as exc:
        from prefect.states import Failed

        return Failed(message=exc.message(rt.settings.locale))
    return None
