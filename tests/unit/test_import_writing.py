"""The import's two ways of inserting a batch on SQLite store the same values.

executemany binds each row; the whole-statement way sends the processed rows as one JSON array to
`INSERT ... SELECT ... FROM json_each(?)`, which runs without the GIL. Each stored value and its SQLite type are
compared, and values JSON would not give back unchanged are shown to take executemany.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import JSON, Column, Integer, MetaData, Numeric, String, Table, Text, select, text

from models.db import make_engine
from models.ledger_import import _insert_statements
from models.tables import UTCDateTime

metadata = MetaData()
ROWS = Table("rows", metadata, Column("id", Integer, primary_key=True), Column("n", Integer),
             Column("name", String(100)), Column("note", Text), Column("fee", Numeric(12, 2)),
             Column("at", UTCDateTime), Column("doc", JSON))

CST = timezone(timedelta(hours=8))
AWKWARD = [
    {"n": 0, "name": "王芳", "note": "", "fee": Decimal("80.00"), "at": datetime(2026, 10, 3, 14, 5, tzinfo=CST),
     "doc": {"after": {"agreed_fee": "80.00", "office": "O001"}}},
    {"n": -7, "name": 'say "hi"\\ \'quoted\'', "note": "line\nbreak\ttab", "fee": Decimal("0.01"),
     "at": datetime(2026, 1, 1, 0, 0, 0, 1, tzinfo=timezone.utc), "doc": None},
    {"n": 2**62, "name": "😀 emoji ＆ 全角", "note": None, "fee": Decimal("12.34"), "at": None, "doc": [1, "二", None]},
    {"n": None, "name": "0123", "note": "3.50", "fee": Decimal("99999999.99"),
     "at": datetime(2026, 12, 31, 23, 59, 59, tzinfo=CST), "doc": "just text"},
    {"n": 1, "name": "null", "note": "true", "fee": None, "at": datetime(2026, 6, 1, 8, 0, tzinfo=CST), "doc": {}},
]


@pytest.fixture
def engine(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'writing.db'}")
    metadata.create_all(engine)
    yield engine
    engine.dispose()


def stored(engine, rows: list[dict], *, whole_statement: bool) -> list[tuple]:
    with engine.begin() as conn:
        conn.execute(ROWS.delete())
        for statement in _insert_statements(conn.dialect, ROWS, rows, {}, whole_statement=whole_statement):
            statement.run(conn)
        columns = [c.name for c in ROWS.columns]
        picture = ", ".join(f"quote({c}), typeof({c})" for c in columns)
        return [tuple(r) for r in conn.execute(text(f"SELECT {picture} FROM rows ORDER BY id"))]


def test_rows_sent_as_one_json_statement_are_stored_exactly_as_executemany_stores_them(engine):
    assert stored(engine, AWKWARD, whole_statement=True) == stored(engine, AWKWARD, whole_statement=False)


def test_the_json_statement_is_used_for_plain_values_and_reads_back_through_the_orm_types(engine):
    with engine.begin() as conn:
        statements = _insert_statements(conn.dialect, ROWS, AWKWARD, {}, whole_statement=True)
        for statement in statements:
            statement.run(conn)
        back = conn.execute(select(ROWS.c.n, ROWS.c.fee, ROWS.c.at, ROWS.c.doc).order_by(ROWS.c.id)).all()

    assert [s.sql.split(" SELECT ")[1].endswith("FROM json_each(?) ORDER BY key") for s in statements] == [True]
    assert [tuple(r) for r in back] == [(r["n"], r["fee"], r["at"], r["doc"]) for r in AWKWARD]


def test_times_remembered_from_an_earlier_batch_are_stored_as_a_fresh_conversion_stores_them(engine):
    at = AWKWARD[0]["at"]
    memo = {}
    with engine.begin() as conn:
        _insert_statements(conn.dialect, ROWS, AWKWARD[:2], memo, whole_statement=True)  # batch 1 converts `at`
    assert memo[id(at)][0] is at

    # batch 2 meets the same object again, and an equal time that is another object
    again = [dict(AWKWARD[0]), {**AWKWARD[1], "at": at + timedelta(0)}]
    with engine.begin() as conn:
        conn.execute(ROWS.delete())
        for statement in _insert_statements(conn.dialect, ROWS, again, memo, whole_statement=True):
            statement.run(conn)
        remembered = conn.execute(text("SELECT quote(at), typeof(at) FROM rows ORDER BY id")).all()
    fresh = [r[10:12] for r in stored(engine, again, whole_statement=False)]

    assert [tuple(r) for r in remembered] == fresh


def test_a_remembered_text_is_used_only_for_the_very_object_it_was_made_from(engine):
    row = dict(AWKWARD[0])
    impostor = datetime(1999, 1, 1, tzinfo=timezone.utc)
    memo = {id(row["at"]): (impostor, "1999-01-01 00:00:00.000000")}  # as if an id had been taken over

    with engine.begin() as conn:
        for statement in _insert_statements(conn.dialect, ROWS, [row], memo, whole_statement=True):
            statement.run(conn)
        [(at,)] = conn.execute(select(ROWS.c.at)).all()

    assert at == row["at"]


@pytest.mark.parametrize("awkward", [{"n": 2**63}, {"note": "nul\x00inside"}],
                         ids=["integer beyond 64 bits", "text holding a NUL"])
def test_values_json_would_not_give_back_unchanged_take_executemany(engine, awkward):
    rows = [dict(AWKWARD[0]), {**AWKWARD[1], **awkward}]
    with engine.connect() as conn:
        statements = _insert_statements(conn.dialect, ROWS, rows, {}, whole_statement=True)

    assert [s.sql.startswith("INSERT INTO rows (n, name, note, fee, at, doc) VALUES") for s in statements] == [True]
    assert isinstance(statements[0].params, list) and len(statements[0].params) == 2


@pytest.mark.parametrize("url, overlaps", [
    ("sqlite:///{tmp}/ledger.db", True),
    ("sqlite://", False),                                   # in memory: one database per connection
    ("sqlite:///:memory:", False),
    ("postgresql://postgres@127.0.0.1:5432/ledger", False),  # no gain measured there
])
def test_registrations_are_decided_one_batch_ahead_only_on_an_sqlite_file(tmp_path, url, overlaps):
    from types import SimpleNamespace

    from sqlalchemy.orm import sessionmaker

    from models.ledger_import import KINDS, _can_overlap

    engine = make_engine(url.format(tmp=tmp_path))
    try:
        assert _can_overlap(sessionmaker(engine), SimpleNamespace(kind=KINDS["requests"])) is overlaps
        assert _can_overlap(sessionmaker(engine), SimpleNamespace(kind=KINDS["orders"])) is False
    finally:
        engine.dispose()
