"""The store against a real PostgreSQL: exact NUMERIC money, dedupe, queries, and an outage mid-run."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from sqlalchemy import select

from mmkit.model import Fill, Liquidity, Side
from mmkit.store import schema
from mmkit.store.queries import StoreQueries
from mmkit.store.recorder import Recorder
from mmkit.store.records import PnLRecord

pytestmark = pytest.mark.integration


def _fill(trade_id: str, side: Side = Side.BUY, qty: str = "0.5", ts: int = 1_700_000_000_000_000_000) -> Fill:
    return Fill(
        venue="truex",
        trade_id=trade_id,
        client_id="c" + trade_id,
        symbol="BTC-PYUSD",
        side=side,
        price=Decimal("100000.01"),
        qty=Decimal(qty),
        fee=Decimal("-0.00012500"),
        fee_currency="PYUSD",
        liquidity=Liquidity.MAKER,
        ts_event=ts,
        ts_recv=ts + 5,
    )


def _order(rec: Recorder, cid: str, state: str, ts: int) -> bool:
    return rec.record_order(
        cid,
        "truex",
        "BTC-PYUSD",
        "BUY",
        price=Decimal("99999.99"),
        qty=Decimal("0.25"),
        filled_qty=Decimal("0"),
        state=state,
        venue_order_id="",
        ts_ns=ts,
    )


def test_round_trip_on_postgresql_is_exact_and_deduped(pg_url: str) -> None:
    rec = Recorder(pg_url, instance="it")
    rec.start()
    _order(rec, "a", "OPEN", 1)
    rec.record_fill(_fill("t1", qty="0.00000001"))
    rec.record_fill(_fill("t1", qty="0.00000001"))
    rec.record_fill(_fill("t2", side=Side.SELL, qty="123456789.123456789"))
    rec.record_pnl(PnLRecord("truex", "BTC-PYUSD", Decimal("-1.50"), Decimal("0"), Decimal("2.000"), Decimal(0), 3))
    assert rec.close() == 0

    restarted = Recorder(pg_url, instance="it")  # migrate on an existing schema is a no-op
    restarted.start()
    restarted.record_fill(_fill("t2", side=Side.SELL, qty="123456789.123456789"))
    assert restarted.close() == 0

    q = StoreQueries(pg_url)
    assert [f.trade_id for f in q.fills()] == ["t1", "t2"]
    assert q.fills()[0] == _fill("t1", qty="0.00000001")
    assert q.position("truex", "BTC-PYUSD") == Decimal("0.00000001") - Decimal("123456789.123456789")
    [pnl] = q.latest_pnl()
    assert pnl.position.as_tuple() == Decimal("-1.50").as_tuple()
    assert pnl.unrealized.as_tuple() == Decimal("2.000").as_tuple()
    assert [o.client_id for o in q.open_orders()] == ["a"]
    assert len(q.sessions()) == 2
    with q.engine.connect() as conn:
        kind = conn.exec_driver_sql(
            "SELECT data_type FROM information_schema.columns WHERE table_name='fills' AND column_name='price'"
        ).scalar_one()
        version = conn.execute(select(schema.schema_version.c.version)).scalars().all()
    assert kind == "numeric"
    assert version == [m.version for m in schema.MIGRATIONS]  # every step applied once, up to SCHEMA_VERSION
    q.close()


def test_postgresql_outage_queues_records_and_delivers_them_in_order(
    pg_url: str, pg_admin: psycopg.Connection[Any], wait_until: Callable[..., bool]
) -> None:
    database = pg_url.rsplit("/", 1)[1]
    rec = Recorder(pg_url, instance="it", connect_timeout_s=1.0, retry_initial_s=0.02, retry_max_s=0.2)
    rec.start()
    _order(rec, "warm", "OPEN", 0)
    assert rec.flush(5.0)

    # The server goes away for this database: live sessions killed, new ones refused.
    pg_admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
    pg_admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (database,))
    for i in range(150):
        assert _order(rec, f"c{i % 10}", "OPEN" if i % 3 else "PARTIALLY_FILLED", 10 + i)
        assert rec.record_fill(_fill(f"t{i}", ts=1_700_000_000_000_000_000 + i))
    assert wait_until(lambda: rec.stats().in_outage)
    assert not rec.flush(0.05)
    during = rec.stats()
    assert during.in_outage and during.outages == 1 and during.backlog == 300

    pg_admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
    assert rec.flush(10.0)
    after = rec.stats()
    assert not after.in_outage and after.backlog == 0 and after.dropped == 0 and after.rejected == 0
    with rec.engine.connect() as conn:
        order_seqs = conn.execute(select(schema.orders.c.seq).order_by(schema.orders.c.id)).scalars().all()
        fill_seqs = conn.execute(select(schema.fills.c.seq).order_by(schema.fills.c.id)).scalars().all()
    assert order_seqs == sorted(order_seqs) and fill_seqs == sorted(fill_seqs)
    assert sorted(order_seqs + fill_seqs) == list(range(2, 303))  # session start is seq 1: no gaps
    assert rec.close() == 0
