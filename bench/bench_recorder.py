"""Recorder throughput: fills/s persisted to SQLite and to PostgreSQL, and the hot-path cost of enqueueing.

PostgreSQL is measured when MMKIT_TEST_PG_URL is set (``. var/services/env``);
a scratch database is created and dropped.
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from decimal import Decimal

import psycopg
from sqlalchemy.engine import make_url

from mmkit.model import Fill, Liquidity, Side
from mmkit.store.recorder import Recorder

N_FILLS = 20_000


def _fills(n: int) -> list[Fill]:
    base = 1_700_000_000_000_000_000
    return [
        Fill(
            venue="truex",
            trade_id=f"T{i}",
            client_id=f"C{i % 500}",
            symbol="BTC-PYUSD",
            side=Side.BUY if i % 2 else Side.SELL,
            price=Decimal("100000.01") + i % 7,
            qty=Decimal("0.00012345"),
            fee=Decimal("-0.0000031"),
            fee_currency="PYUSD",
            liquidity=Liquidity.MAKER,
            ts_event=base + i,
            ts_recv=base + i + 1000,
        )
        for i in range(n)
    ]


def _measure(label: str, url: str, fills: list[Fill]) -> None:
    rec = Recorder(url, instance="bench", batch_max=1000)
    rec.start()
    began = time.perf_counter()
    for fill in fills:
        rec.record_fill(fill)
    enqueued = time.perf_counter()
    ok = rec.flush(120.0)
    done = time.perf_counter()
    stats = rec.stats()
    rec.close()
    per_call_us = (enqueued - began) / len(fills) * 1e6
    print(
        f"   {label:<10} {len(fills) / (done - began):>9,.0f} fills/s persisted "
        f"({len(fills)} fills, batch<=1000, flushed={ok}, written={stats.written}); "
        f"record_fill() on the tick: {per_call_us:.1f} us/call"
    )


def main() -> None:
    fills = _fills(N_FILLS)
    with tempfile.TemporaryDirectory() as tmp:
        _measure("sqlite", f"sqlite:///{tmp}/bench.sqlite", fills)
    admin = os.environ.get("MMKIT_TEST_PG_URL")
    if not admin:
        print("   postgresql: not measured (set MMKIT_TEST_PG_URL, e.g. `. var/services/env`)")
        return
    name = f"mmkit_bench_{uuid.uuid4().hex[:8]}"
    conninfo = make_url(admin).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        _measure("postgresql", make_url(admin).set(database=name).render_as_string(hide_password=False), fills)
    finally:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
