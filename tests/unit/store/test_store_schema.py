"""Schema and migrations: exact money, versioning, refusing a newer database."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import Column, Connection, Integer, MetaData, Table, inspect, select

from mmkit.store import schema
from mmkit.store.db import create_store_engine
from mmkit.store.schema import MIGRATIONS, SCHEMA_VERSION, Migration, SchemaError, current_version, migrate


def test_fresh_database_is_migrated_to_latest_and_has_all_tables(sqlite_url: str) -> None:
    engine = create_store_engine(sqlite_url)
    assert migrate(engine) == SCHEMA_VERSION
    names = set(inspect(engine).get_table_names())
    assert {"schema_version", "sessions", "orders", "fills", "hedges", "pnl_snapshots", "top_of_book"} <= names
    with engine.connect() as conn:
        rows = conn.execute(select(schema.schema_version.c.version)).all()
    assert [r[0] for r in rows] == [m.version for m in MIGRATIONS]


def test_migrate_twice_is_a_no_op(sqlite_url: str) -> None:
    engine = create_store_engine(sqlite_url)
    migrate(engine)
    migrate(engine)
    with engine.connect() as conn:
        assert len(conn.execute(select(schema.schema_version)).all()) == len(MIGRATIONS)


def test_a_new_step_is_applied_once_on_an_existing_database(sqlite_url: str) -> None:
    engine = create_store_engine(sqlite_url)
    migrate(engine)
    extra = Table("extra_v2", MetaData(), Column("x", Integer))
    calls: list[int] = []

    def v2(conn: Connection) -> None:
        calls.append(2)
        extra.create(conn)

    steps = (*MIGRATIONS, Migration(len(MIGRATIONS) + 1, "add extra", v2))
    assert migrate(engine, steps) == len(MIGRATIONS) + 1
    assert migrate(engine, steps) == len(MIGRATIONS) + 1
    assert calls == [2]
    assert inspect(engine).has_table("extra_v2")


def test_a_failing_step_leaves_the_previous_version(sqlite_url: str) -> None:
    engine = create_store_engine(sqlite_url)
    migrate(engine)

    def broken(conn: Connection) -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        migrate(engine, (*MIGRATIONS, Migration(len(MIGRATIONS) + 1, "broken", broken)))
    with engine.connect() as conn:
        assert current_version(conn) == len(MIGRATIONS)


def test_database_newer_than_code_is_refused(sqlite_url: str) -> None:
    engine = create_store_engine(sqlite_url)
    migrate(engine, (*MIGRATIONS, Migration(len(MIGRATIONS) + 1, "future", lambda conn: None)))
    with pytest.raises(SchemaError, match="newer than this code"):
        migrate(engine)


def test_migrations_must_be_contiguous(sqlite_url: str) -> None:
    engine = create_store_engine(sqlite_url)
    with pytest.raises(SchemaError, match="without gaps"):
        migrate(engine, (Migration(1, "a", lambda c: None), Migration(3, "c", lambda c: None)))


@pytest.mark.parametrize("text", ["0.00000001", "123456789012345678.123456789012345678", "-0.50", "100000.010", "0"])
def test_money_round_trips_exactly_with_its_scale(sqlite_url: str, text: str) -> None:
    engine = create_store_engine(sqlite_url)
    migrate(engine)
    table = schema.pnl_snapshots
    value = Decimal(text)
    with engine.begin() as conn:
        conn.execute(
            table.insert().values(
                session_id="s",
                seq=1,
                venue="v",
                symbol="x",
                position=value,
                realized=value,
                unrealized=value,
                fees=value,
                ts_ns=1,
            )
        )
        raw = conn.exec_driver_sql("SELECT position, typeof(position) FROM pnl_snapshots").one()
        back = conn.execute(select(table.c.position)).scalar_one()
    assert raw[1] == "text"  # never REAL: SQLite must not turn money into a float
    assert back.as_tuple() == value.as_tuple()  # same digits and same exponent
    assert isinstance(back, Decimal)


def test_float_money_is_refused(sqlite_url: str) -> None:
    engine = create_store_engine(sqlite_url)
    migrate(engine)
    with pytest.raises(Exception, match="float"), engine.begin() as conn:
        conn.execute(
            schema.pnl_snapshots.insert().values(
                session_id="s",
                seq=1,
                venue="v",
                symbol="x",
                position=0.1,
                realized=0,
                unrealized=0,
                fees=0,
                ts_ns=1,
            )
        )


def test_in_memory_sqlite_and_unknown_backends_are_refused() -> None:
    with pytest.raises(ValueError, match="in-memory"):
        create_store_engine("sqlite://")
    with pytest.raises(ValueError, match="unsupported"):
        create_store_engine("mysql://u@h/db")
