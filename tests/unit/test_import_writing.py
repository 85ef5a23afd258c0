"""The import's multi-row INSERTs on SQLite store what executemany stores.

`_insert_statements` puts each value through its column's bind processor and sends the rows up to 1,024 at a
time as one `INSERT ... VALUES (...), (...)`, every value bound. Each stored value and its SQLite type are compared
with what SQLAlchemy's own executemany of the same rows stores, and a value executemany refuses is refused alike.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import JSON, Column, Integer, MetaData, Numeric, String, Table, Text, insert, select, text

from models.ledger.db import make_engine
from models.imports.writers import _ROWS_PER_INSERT, _insert_statements, _statement_sizes
from models.ledger.tables import UTCDateTime

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
    {"n": 2**63 - 1, "name": "😀 emoji ＆ 全角", "note": None, "fee": Decimal("12.34"), "at": None,
     "doc": [1, "二", None]},
    {"n": None, "name": "0123", "note": "3.50", "fee": Decimal("99999999.99"),
     "at": datetime(2026, 12, 31, 23, 59, 59, tzinfo=CST), "doc": "just text"},
    {"n": 1, "name": "null", "note": "nul\x00inside", "fee": None, "at": datetime(2026, 6, 1, 8, 0, tzinfo=CST),
     "doc": {}},
    {"n": -2**63, "name": "?", "note": "(?, ?)", "fee": Decimal("-1.5"), "at": None, "doc": {"q": "?"}},
]


@pytest.fixture
def engine(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'writing.db'}")
    metadata.create_all(engine)
    yield engine
    engine.dispose()


def stored(engine, rows: list[dict], *, ours: bool) -> list[tuple]:
    """Each stored row as SQLite quotes its values, with their types: inserted by `_insert_statements` (ours) or
    by SQLAlchemy's executemany."""
    with engine.begin() as conn:
        conn.execute(ROWS.delete())
        if ours:
            for statement in _insert_statements(conn.dialect, ROWS, rows, {}):
                statement.run(conn)
        else:
            conn.execute(insert(ROWS), rows)
        columns = [c.name for c in ROWS.columns]
        picture = ", ".join(f"quote({c}), typeof({c})" for c in columns)
        return [tuple(r) for r in conn.execute(text(f"SELECT {picture} FROM rows ORDER BY id"))]


def test_rows_sent_in_one_multi_row_statement_are_stored_exactly_as_executemany_stores_them(engine):
    assert stored(engine, AWKWARD, ours=True) == stored(engine, AWKWARD, ours=False)


def test_many_rows_go_in_statements_of_1024_in_file_order_and_read_back_through_the_orm_types(engine):
    rows = [{**AWKWARD[n % len(AWKWARD)], "name": f"row {n}"} for n in range(2 * _ROWS_PER_INSERT + 7)]
    with engine.begin() as conn:
        statements = _insert_statements(conn.dialect, ROWS, rows, {})
        for statement in statements:
            statement.run(conn)
        back = conn.execute(select(ROWS.c.n, ROWS.c.name, ROWS.c.fee, ROWS.c.at, ROWS.c.doc)
                            .order_by(ROWS.c.id)).all()

    assert [len(s.params) // 6 for s in statements] == [_ROWS_PER_INSERT, _ROWS_PER_INSERT, 7]  # 7 < 64
    assert all(s.sql.startswith("INSERT INTO rows (n, name, note, fee, at, doc) VALUES (?, ?, ?, ?, ?, ?), ")
               for s in statements[:2])
    assert [tuple(r) for r in back] == [(r["n"], r["name"], r["fee"], r["at"], r["doc"]) for r in rows]
    assert stored(engine, rows, ours=True) == stored(engine, rows, ours=False)


@pytest.mark.parametrize("rows, most, sizes", [
    (0, 1024, []), (1, 1024, [1]), (64, 1024, [64]), (1024, 1024, [1024]), (1025, 1024, [1024, 1]),
    (2600, 1024, [1024, 1024, 512, 40]), (1000, 1024, [960, 40]), (100, 7, [7] * 14 + [2]),
])
def test_a_batch_is_cut_into_full_statements_then_a_multiple_of_64_rows_then_the_rest(rows, most, sizes):
    assert _statement_sizes(rows, most) == sizes


def test_an_integer_executemany_refuses_is_refused_by_the_multi_row_statement_too(engine):
    rows = [dict(AWKWARD[0]), {**AWKWARD[1], "n": 2**63}]
    with pytest.raises(OverflowError):
        stored(engine, rows, ours=False)
    with engine.begin() as conn:
        conn.execute(insert(ROWS), [{"n": 5}])
    with pytest.raises(OverflowError):
        stored(engine, rows, ours=True)

    with engine.connect() as conn:  # the refused statement's transaction took none of its rows
        assert conn.execute(select(ROWS.c.n)).scalars().all() == [5]


def test_times_remembered_from_an_earlier_batch_are_stored_as_a_fresh_conversion_stores_them(engine):
    at = AWKWARD[0]["at"]
    memo = {}
    with engine.begin() as conn:
        _insert_statements(conn.dialect, ROWS, AWKWARD[:2], memo)  # batch 1 converts `at`
    assert memo[id(at)][0] is at

    # batch 2 meets the same object again, and an equal time that is another object
    again = [dict(AWKWARD[0]), {**AWKWARD[1], "at": at + timedelta(0)}]
    with engine.begin() as conn:
        conn.execute(ROWS.delete())
        for statement in _insert_statements(conn.dialect, ROWS, again, memo):
            statement.run(conn)
        remembered = conn.execute(text("SELECT quote(at), typeof(at) FROM rows ORDER BY id")).all()
    fresh = [r[10:12] for r in stored(engine, again, ours=False)]

    assert [tuple(r) for r in remembered] == fresh


def test_a_remembered_text_is_used_only_for_the_very_object_it_was_made_from(engine):
    row = dict(AWKWARD[0])
    impostor = datetime(1999, 1, 1, tzinfo=timezone.utc)
    memo = {id(row["at"]): (impostor, "1999-01-01 00:00:00.000000")}  # as if an id had been taken over

    with engine.begin() as conn:
        for statement in _insert_statements(conn.dialect, ROWS, [row], memo):
            statement.run(conn)
        [(at,)] = conn.execute(select(ROWS.c.at)).all()

    assert at == row["at"]


@pytest.mark.parametrize("url, overlaps", [
    ("sqlite:///{tmp}/ledger.db", True),
    ("sqlite://", False),                                   # in memory: one database per connection
    ("sqlite:///:memory:", False),
    ("postgresql://postgres@127.0.0.1:5432/ledger", False),  # no gain measured there
])
def test_registrations_are_decided_one_batch_ahead_only_on_an_sqlite_file(tmp_path, url, overlaps):
    from types import SimpleNamespace

    from sqlalchemy.orm import sessionmaker

    from models.imports import KINDS
    from models.imports.pipeline import _can_overlap

    engine = make_engine(url.format(tmp=tmp_path))
    try:
        assert _can_overlap(sessionmaker(engine), SimpleNamespace(kind=KINDS["requests"])) is overlaps
        assert _can_overlap(sessionmaker(engine), SimpleNamespace(kind=KINDS["orders"])) is False
    finally:
        engine.dispose()
