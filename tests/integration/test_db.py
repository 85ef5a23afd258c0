"""The engine's transactions: writers serialise, long reads never hold up the desk; what times and JSON are stored as."""
import json
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select, text
from sqlalchemy.dialects.sqlite import DATETIME
from sqlalchemy.dialects.sqlite import dialect as sqlite_dialect
from sqlalchemy.exc import StatementError

from models.ledger.db import json_serializer, make_engine, read_only, transaction
from models.ledger.tables import AuditEvent, Office, UTCDateTime

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


def _written(engine, at: datetime, after: dict) -> tuple[object, str, datetime]:
    """Write one audit event; what the database holds (its time as stored, its payload as text) and reads back."""
    with transaction(engine) as s:
        s.add(AuditEvent(at=at, actor="S000001", action="register", entity="service_request", entity_ref="R-1",
                         after=after))
    with transaction(engine) as s:
        stored, payload = s.execute(text("SELECT at, CAST(after AS TEXT) FROM audit_events")).one()
        return stored, payload, s.scalars(select(AuditEvent.at)).one()


def test_an_aware_time_is_stored_as_its_utc_moment_and_read_back_aware_in_utc(engine):
    shanghai = timezone(timedelta(hours=8))
    stored, _, read = _written(engine, datetime(2026, 10, 9, 10, 0, 5, 120, tzinfo=shanghai), {})
    moment = datetime(2026, 10, 9, 2, 0, 5, 120)
    if engine.dialect.name == "sqlite":
        # the text SQLAlchemy's own SQLite DATETIME writes for the naive UTC moment
        assert stored == DATETIME().bind_processor(engine.dialect)(moment) == "2026-10-09 02:00:05.000120"
    else:
        assert stored == moment.replace(tzinfo=timezone.utc)
    assert read == moment.replace(tzinfo=timezone.utc) and read.tzinfo is timezone.utc


def test_a_time_already_in_utc_is_stored_the_same_as_the_moment_in_another_zone(engine):
    _, _, read = _written(engine, AT, {})
    assert read == AT.astimezone(timezone(timedelta(hours=-5))) and read.tzinfo is timezone.utc


def test_a_naive_time_is_refused_and_nothing_is_written(engine):
    with pytest.raises(StatementError, match="naive datetime"):
        _written(engine, AT.replace(tzinfo=None), {})
    with transaction(engine) as s:
        assert s.scalars(select(AuditEvent)).all() == []


def test_a_json_payload_is_stored_as_the_text_json_dumps_gives(engine):
    after = {"number": "R-1", "fee": "80.00", "resident": "王芳 \"小王\"", "at": None, "codes": [1, 2.5, True]}
    _, payload, _ = _written(engine, AT, after)
    assert payload == json.dumps(after) == json_serializer(after)


def test_the_json_serializer_writes_what_json_dumps_writes_and_refuses_what_it_refuses():
    for value in (None, "x", 3, [], {}, {"k": 1e300, "n": -0.0, "nested": {"list": [None, False, "中"]}}):
        assert json_serializer(value) == json.dumps(value)
    with pytest.raises(TypeError, match="not JSON serializable"):
        json_serializer({"when": AT})


@pytest.mark.parametrize("moment", [datetime(1, 1, 1, tzinfo=timezone.utc), datetime(999, 12, 31, 23, 59, 59, 999999,
                                    tzinfo=timezone.utc), datetime(2026, 3, 1, tzinfo=timezone(timedelta(hours=8))),
                                    datetime(9999, 12, 31, 23, 59, 59, 1, tzinfo=timezone.utc)])
def test_sqlite_gets_the_text_its_datetime_type_writes_for_the_utc_moment_in_any_year(moment):
    dialect = sqlite_dialect()
    written = UTCDateTime().bind_processor(dialect)(moment)
    assert written == DATETIME().bind_processor(dialect)(moment.astimezone(timezone.utc).replace(tzinfo=None))


@pytest.mark.parametrize("stored", [
    "2026-10-09 02:00:05.000120", "2026-10-09 02:00:05", "2026-10-09 02:00", "2026-10-09T02:00:05",
    "2026-10-09 10:00:05.000120+08:00", "2026-10-08 21:00:05-05:00", "2026-10-09 02:00:05Z", "2026-10-09",
    "0001-01-01 00:00:00.000000", "9999-12-31 23:59:59.999999"])
def test_sqlite_text_reads_back_as_the_moment_sqlalchemys_own_datetime_reads_made_aware_in_utc(stored):
    dialect = sqlite_dialect()
    expected = DATETIME().result_processor(dialect, None)(stored)
    expected = expected.replace(tzinfo=timezone.utc) if expected.tzinfo is None else expected.astimezone(timezone.utc)

    read = UTCDateTime().dialect_impl(dialect).result_processor(dialect, None)(stored)

    assert read == expected and read.tzinfo is timezone.utc


def test_sqlite_reads_a_missing_time_as_none_and_refuses_text_that_is_no_time():
    dialect = sqlite_dialect()
    read = UTCDateTime().dialect_impl(dialect).result_processor(dialect, None)
    assert read(None) is None
    with pytest.raises(ValueError):
        read("yesterday")
