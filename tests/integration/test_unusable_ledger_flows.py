"""A flow run by Prefect on a ledger that cannot be used fails with the one-line refusal as its state's message,
logs no traceback, and still tells ops (directly: the outbox is in the ledger that failed)."""
from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from alembic.script import ScriptDirectory

from flows.callbacks import chase_callbacks_flow, chase_replies_flow
from flows.cash import cash_check_flow
from flows.dispatch import dispatch_flow
from flows.runtime import Runtime, using_runtime
from flows.settings import Settings
from flows.tally import monthly_tally_flow
from models.ledger.db import MIGRATIONS_DIR, head_revision

FLOWS = [chase_replies_flow, chase_callbacks_flow, dispatch_flow, cash_check_flow, monthly_tally_flow]


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def logged() -> Iterator[list[logging.LogRecord]]:
    """Every record Prefect's loggers and ours emit meanwhile (Prefect's do not propagate to the root)."""
    handler = Records()
    loggers = [logging.getLogger(name) for name in ("prefect", "bianmin", "")]
    for logger in loggers:
        logger.addHandler(handler)
    yield handler.records
    for logger in loggers:
        logger.removeHandler(handler)


def test_the_head_revision_read_from_the_migration_files_is_alembics():
    assert head_revision() == ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()


@pytest.mark.prefect
@pytest.mark.parametrize("flow", FLOWS, ids=lambda f: f.name)
def test_a_flow_on_an_unmigrated_database_fails_with_one_line_and_no_traceback(tmp_path, prefect_harness, logged,
                                                                               flow):
    empty = tmp_path / "empty.db"
    empty.touch()
    settings = Settings(_env_file=None, data_dir=tmp_path / "var", database_url=f"sqlite:///{empty}", locale="en",
                        outbox_dir=tmp_path / "outbox", reports_dir=tmp_path / "reports")
    rt = Runtime(settings)
    with using_runtime(rt):
        state = flow(return_state=True)
    assert state.is_failed()
    assert state.message == (f"The ledger database sqlite:///{empty} is missing or has no tables yet: "
                             "run `bianmin db upgrade` first")
    with_traceback = [r.getMessage() for r in logged if r.exc_info or "Traceback" in r.getMessage()]
    assert with_traceback == []
    assert any(state.message in r.getMessage() for r in logged)
    # ops hears of it through delivery, the outbox being in the ledger that failed
    told = list(settings.effective_outbox_dir.glob("*ops*"))
    assert told and "db upgrade" in told[0].read_text(encoding="utf-8")
    rt.close()
