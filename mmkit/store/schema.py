"""Tables of the store and the forward migrations that create and evolve them.

One schema serves SQLite (the default, no server) and PostgreSQL. Two rules
make that safe for money and time:

* money is :class:`ExactDecimal`: PostgreSQL ``NUMERIC`` without a fixed scale
  (the value and its scale round-trip exactly), and the exact decimal *text*
  on SQLite, whose NUMERIC affinity would otherwise turn it into a float;
* time is integer nanoseconds in ``BIGINT``.

Migrations are an append-only list: version N's step is never edited once
released; a schema change appends step N+1 with explicit DDL. ``schema_version``
records what was applied, and a database newer than this code is refused
rather than written with an older idea of the tables.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

import attrs
from loguru import logger
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Dialect,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.types import Numeric, TypeDecorator, TypeEngine


class SchemaError(Exception):
    """The database's schema cannot be used by this code (e.g. it is newer)."""


class ExactDecimal(TypeDecorator[Decimal]):
    """Decimal stored without loss: NUMERIC on PostgreSQL, decimal text elsewhere."""

    impl = Text
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(Numeric(asdecimal=True))
        return dialect.type_descriptor(Text())

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if isinstance(value, float):
            raise TypeError(f"float {value!r} reached the store; money must be Decimal")
        number = value if isinstance(value, Decimal) else Decimal(value)
        # Positional text ("0.00000001", not "1E-8"): same value and scale, readable in sqlite3.
        return number if dialect.name == "postgresql" else format(number, "f")

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return value if isinstance(value, Decimal) else Decimal(str(value))


metadata = MetaData()

schema_version = Table(
    "schema_version",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("description", Text, nullable=False),
    Column("applied_ns", BigInteger, nullable=False),
)

# The v1 tables. Later migrations alter them with explicit DDL; these objects
# always describe the *current* shape, used for reads and writes.
sessions = Table(
    "sessions",
    metadata,
    Column("session_id", String(64), primary_key=True),
    Column("instance", String(64), nullable=False),
    Column("started_ns", BigInteger, nullable=False),
    Column("stopped_ns", BigInteger, nullable=True),
    # v3: the order sessions started in, from the store (not the wall clock, which an NTP step or an
    # operator can set back). Nullable: the v3 step numbers rows written before it.
    Column("seq", BigInteger, nullable=True),
)

orders = Table(
    "orders",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("session_id", String(64), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("client_id", String(64), nullable=False),
    Column("venue", String(32), nullable=False),
    Column("symbol", String(32), nullable=False),
    Column("side", String(4), nullable=False),
    Column("price", ExactDecimal(), nullable=True),
    Column("qty", ExactDecimal(), nullable=False),
    Column("filled_qty", ExactDecimal(), nullable=False),
    Column("state", String(32), nullable=False),
    Column("venue_order_id", String(64), nullable=False),
    Column("reason", Text, nullable=False),
    Column("ts_ns", BigInteger, nullable=False),
    Index("ix_orders_venue_client", "venue", "client_id"),
    Index("ix_orders_session_seq", "session_id", "seq"),
)

def _fill_identity_columns() -> list[Column[Any]]:
    """Columns a booked fill and a quarantined one share (new objects each call: a Column belongs to one table).

    Why shared: a quarantined fill must be comparable with the booked ones field by field when an operator
    reviews it, so the two tables must not drift apart.
    """
    return [
        Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
        Column("session_id", String(64), nullable=False),
        Column("seq", BigInteger, nullable=False),
        Column("venue", String(32), nullable=False),
        Column("trade_id", String(64), nullable=False),
        Column("client_id", String(64), nullable=False),
        Column("venue_order_id", String(64), nullable=False),
        Column("symbol", String(32), nullable=False),
        Column("side", String(4), nullable=False),
        Column("price", ExactDecimal(), nullable=False),
        Column("qty", ExactDecimal(), nullable=False),
        Column("fee", ExactDecimal(), nullable=False),
    ]


fills = Table(
    "fills",
    metadata,
    *_fill_identity_columns(),
    Column("fee_currency", String(16), nullable=False),
    Column("liquidity", String(8), nullable=False),
    Column("is_hedge", Boolean, nullable=False),
    Column("ts_event", BigInteger, nullable=False),
    Column("ts_recv", BigInteger, nullable=False),
    # The dedupe key across reconnects and restarts (Hummingbot #2945 must not recur).
    UniqueConstraint("venue", "trade_id", name="uq_fills_venue_trade"),
    Index("ix_fills_venue_symbol_ts", "venue", "symbol", "ts_event"),
    Index("ix_fills_session", "session_id"),
)

hedges = Table(
    "hedges",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("session_id", String(64), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("hedge_id", String(64), nullable=False),
    Column("venue", String(32), nullable=False),
    Column("symbol", String(32), nullable=False),
    Column("side", String(4), nullable=False),
    Column("qty", ExactDecimal(), nullable=False),
    Column("price", ExactDecimal(), nullable=True),
    Column("state", String(32), nullable=False),
    Column("ref", String(128), nullable=False),
    Column("reason", Text, nullable=False),
    Column("ts_ns", BigInteger, nullable=False),
    Index("ix_hedges_venue_hedge", "venue", "hedge_id"),
)

pnl_snapshots = Table(
    "pnl_snapshots",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("session_id", String(64), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("venue", String(32), nullable=False),
    Column("symbol", String(32), nullable=False),
    Column("position", ExactDecimal(), nullable=False),
    Column("avg_price", ExactDecimal(), nullable=True),
    Column("realized", ExactDecimal(), nullable=False),
    Column("unrealized", ExactDecimal(), nullable=False),
    Column("fees", ExactDecimal(), nullable=False),
    Column("mark", ExactDecimal(), nullable=True),
    Column("ts_ns", BigInteger, nullable=False),
    Index("ix_pnl_venue_symbol_ts", "venue", "symbol", "ts_ns"),
)

top_of_book = Table(
    "top_of_book",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("session_id", String(64), nullable=False),
    Column("venue", String(32), nullable=False),
    Column("symbol", String(32), nullable=False),
    Column("bid", ExactDecimal(), nullable=True),
    Column("bid_qty", ExactDecimal(), nullable=True),
    Column("ask", ExactDecimal(), nullable=True),
    Column("ask_qty", ExactDecimal(), nullable=True),
    Column("ts_ns", BigInteger, nullable=False),
    Index("ix_tob_venue_symbol_ts", "venue", "symbol", "ts_ns"),
)

_V1_TABLES = (sessions, orders, fills, hedges, pnl_snapshots, top_of_book)

# ---- quarantined fills (helper "ledger-validation", issue 11) -------------------------------------
# Fills that failed validation (mmkit.orders.validation): never booked, kept here for a person to
# look at. No unique key on (venue, trade_id): a conflicting duplicate shares the id of a booked
# fill, and two bad reports may share one with each other. Created by its own migration step with
# checkfirst, so that renumbering the step at merge time is safe.
quarantined_fills = Table(
    "quarantined_fills",
    metadata,
    *_fill_identity_columns(),
    Column("kind", String(16), nullable=False),
    Column("reason", Text, nullable=False),
    Column("ts_event", BigInteger, nullable=False),
    Column("ts_recv", BigInteger, nullable=False),
    Index("ix_quarantined_fills_venue_trade", "venue", "trade_id"),
)


def _add_quarantined_fills(conn: Connection) -> None:
    quarantined_fills.create(conn, checkfirst=True)


# ---- end of quarantined fills ----------------------------------------------------------------------


def has_column(conn: Connection, table: str, column: str) -> bool:
    return column in {c["name"] for c in inspect(conn).get_columns(table)}


def _add_session_seq(conn: Connection) -> None:
    """``sessions.seq``; sessions stored before it are numbered in start-time order (all they had).

    Idempotent: a new database's v1 step creates the current ``sessions`` table, which has the column.
    """
    if not has_column(conn, sessions.name, "seq"):
        conn.execute(text("ALTER TABLE sessions ADD COLUMN seq BIGINT"))
    t = sessions
    base = int(conn.execute(select(func.coalesce(func.max(t.c.seq), 0))).scalar_one())
    unnumbered = conn.execute(
        select(t.c.session_id).where(t.c.seq.is_(None)).order_by(t.c.started_ns, t.c.session_id)
    ).all()
    for offset, (session_id,) in enumerate(unnumbered, 1):
        conn.execute(update(t).where(t.c.session_id == session_id).values(seq=base + offset))


# ---- venue accounts (v4) ---------------------------------------------------------------------------
# Which venue account an instance's ledger belongs to: a non-secret fingerprint per venue (TrueX
# SenderCompID/TargetCompID/PartyID, a sha256 prefix of an API key; mmkit.app.venue_account), recorded at
# the first start that knows it and checked at every start and by `mmkit reconcile`. A store copied from
# another account is refused rather than reconciled against a venue that no longer knows its orders.
venue_accounts = Table(
    "venue_accounts",
    metadata,
    Column("instance", String(64), primary_key=True),
    Column("venue", String(32), primary_key=True),
    Column("fingerprint", Text, nullable=False),
    Column("session_id", String(64), nullable=False),
    Column("recorded_ns", BigInteger, nullable=False),
)


def _add_venue_accounts(conn: Connection) -> None:
    venue_accounts.create(conn, checkfirst=True)


def next_session_seq(conn: Connection) -> int:
    """The sequence number of a session starting now (one process per instance: mmkit.store.instance_lock)."""
    return int(conn.execute(select(func.coalesce(func.max(sessions.c.seq), 0))).scalar_one()) + 1


@attrs.frozen(slots=True)
class Migration:
    """One forward step. ``apply`` runs inside the transaction that records it."""

    version: int
    description: str
    apply: Callable[[Connection], None]


def _v1_initial(conn: Connection) -> None:
    metadata.create_all(conn, tables=list(_V1_TABLES))


#: Append-only. Never edit a released step; add the next one.
MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "initial schema: sessions, orders, fills, hedges, pnl, tob", _v1_initial),
    Migration(2, "quarantined_fills: fills that failed validation, never booked", _add_quarantined_fills),
    Migration(3, "sessions.seq: sessions ordered by the store, not the wall clock", _add_session_seq),
    Migration(4, "venue_accounts: which venue account each instance's ledger belongs to", _add_venue_accounts),
)

SCHEMA_VERSION = MIGRATIONS[-1].version


def current_version(conn: Connection) -> int:
    """The highest applied version, 0 for an empty database."""
    if not inspect(conn).has_table(schema_version.name):
        return 0
    found = conn.execute(select(schema_version.c.version).order_by(schema_version.c.version.desc())).first()
    return 0 if found is None else int(found[0])


def migrate(engine: Engine, migrations: Sequence[Migration] = MIGRATIONS) -> int:
    """Bring the database up to the last migration; return the version it is at.

    Each step runs in its own transaction together with its ``schema_version``
    row, so a failed step leaves the database at the previous version. A
    database at a version this code does not know is refused.
    """
    versions = [m.version for m in migrations]
    if versions != list(range(1, len(versions) + 1)):
        raise SchemaError(f"migrations must be numbered 1..N without gaps, got {versions}")
    with engine.begin() as conn:
        schema_version.create(conn, checkfirst=True)
        at = current_version(conn)
    latest = versions[-1] if versions else 0
    if at > latest:
        raise SchemaError(f"database schema is at version {at}, newer than this code's {latest}; upgrade mmkit")
    for step in migrations[at:]:
        with engine.begin() as conn:
            step.apply(conn)
            conn.execute(
                schema_version.insert().values(
                    version=step.version, description=step.description, applied_ns=time.time_ns()
                )
            )
        logger.bind(store=engine.url.render_as_string(hide_password=True)).info(
            "store schema migrated to version {} ({})", step.version, step.description
        )
    return max(at, latest)
