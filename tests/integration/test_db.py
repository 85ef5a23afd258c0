"""The engine's transactions: writers serialise, long reads never hold up the desk."""
from datetime import datetime, timezone

import pytest
from sqlalchemy import select

from models.db import make_engine, read_only, transaction
from models.tables import Office

AT = datetime(2026, 10, 9, 2, 0, tzinfo=timezone.utc)


def test_a_write_commits_while_a_long_read_only_transaction_is_open(db_url):
    engine = make_engine(db_url, connect_args={"timeout": 1} if db_url.startswith("sqlite") else {})
    try:
        with transaction(read_only(engine)) as reader:
            assert reader.scalars(select(Office)).all() == []
            # a second connection writes and commits while the reader's snapshot is still open
            with transaction(engine) as writer:
                writer.add(Office(code="A1", name="第一服务处"))
            assert reader.scalars(select(Office.code)).all() in ([], ["A1"])  # snapshot or read-committed
        with transaction(engine) as s:
            assert s.scalars(select(Office.code)).all() == ["A1"]
    finally:
        engine.dispose()


def test_sqlite_refuses_an_unknown_begin_mode(db_url):
    if not db_url.startswith("sqlite"):
        pytest.skip("the begin mode is SQLite's")
    engine = make_engine(db_url).execution_options(sqlite_begin="EXCLUSIVE; DROP TABLE offices")
    try:
        with pytest.raises(ValueError, match="sqlite_begin"):
            with transaction(engine) as s:
                s.scalars(select(Office)).all()
    finally:
        engine.dispose()
