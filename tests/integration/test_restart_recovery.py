"""Crash and restart an engine on the simulated exchange; and a store / Redis outage through the engine.

Crash: engine A quotes on an ExchangeVenue, gets partial fills, and dies
without a clean stop (its last records never reach the store, its quotes stay
at the venue, the venue keeps filling them). Engine B is built on the same
venue and store: it must recover the open orders, count no fill twice, hold a
position equal to the exact sum of the venue's fills, and `mmkit history`'s
ledger must agree with the venue's own record.

Outage: with PostgreSQL and Redis configured, both go away mid-run; trading
continues, the outage is counted, and the queued records arrive afterwards
with no gap in the recorder's sequence.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.engine import make_url

from mmkit.app.assembly import assemble
from mmkit.app.config import StoreSection
from mmkit.app.engine import Engine
from mmkit.app.history_cmd import summarize, write_csv
from mmkit.app.persistence import attach_persistence, default_store_url
from mmkit.app.persistence_iterator import Persistence
from mmkit.app.recovery import InstanceLedger
from mmkit.clock import Clock, ClockMode
from mmkit.connector import load_venue_rules
from mmkit.model import NS_PER_MS, ZERO, Fill, Side
from mmkit.sim import ConstantLatency, ExchangeVenue
from mmkit.store import schema
from mmkit.store.redis_state import read_hot_state
from mmkit.testing.harness import DEFAULT_START_NS, Harness, ScriptedFairValue
from strategies.simple import SimpleConfig, SimpleController

pytestmark = pytest.mark.integration

# The store suite's fixtures (real servers, fail-not-skip under CI), loaded from its conftest.
_spec = importlib.util.spec_from_file_location("_store_fixtures", Path(__file__).parent / "store" / "conftest.py")
assert _spec is not None and _spec.loader is not None
_store_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_store_fixtures)
pg_admin_url = _store_fixtures.pg_admin_url
pg_url = _store_fixtures.pg_url
pg_admin = _store_fixtures.pg_admin
throwaway_redis = _store_fixtures.throwaway_redis
wait_until = _store_fixtures.wait_until

SYMBOL = "BTC-PYUSD"
INSTANCE = "crash"
MS = NS_PER_MS


class VenueTime:
    """The venue outlives every engine: its clock follows whichever engine is running."""

    def __init__(self) -> None:
        self.ns = DEFAULT_START_NS

    def __call__(self) -> int:
        return self.ns


class Run:
    """One engine process on the shared venue and store, ticked in BACKTEST time."""

    def __init__(self, venue: ExchangeVenue, time: VenueTime, tmp_path: Path) -> None:
        self.time = time
        self.clock = Clock(ClockMode.BACKTEST, tick_ns=100 * MS, start_ns=time.ns)
        self.fair = ScriptedFairValue()
        controller = SimpleController(SimpleConfig(half_spread_bps=D(10), order_size=D("0.01")))
        self.engine: Engine = assemble(self.clock, venue, SYMBOL, controller, fair_source=self.fair)
        self.persistence: Persistence = attach_persistence(self.engine, StoreSection(), INSTANCE, tmp_path)

    async def start(self) -> None:
        await self.engine.start()
        self.fair.set("60000", 1.0, self.clock.now_ns)
        self.clock.start()

    def tick(self, count: int = 1) -> None:
        for _ in range(count):
            ts = self.clock.now_ns + self.clock.tick_ns
            self.time.ns = ts
            self.clock.tick_once(ts)


def exchange(time: VenueTime) -> ExchangeVenue:
    venue = ExchangeVenue(
        load_venue_rules("sim"), time, latency=ConstantLatency(entry=20 * MS, response=30 * MS),
        initial_balances={"BTC": D(10), "PYUSD": D(1_000_000)},
    )
    venue.quote_around(D(60000), D(100), D("0.5"), levels=2)  # makers behind our quotes
    return venue


def signed(fills: list[Fill]) -> D:
    return sum((f.qty * f.side.sign for f in fills), ZERO)


async def test_crash_then_restart_recovers_orders_and_counts_no_fill_twice(tmp_path: Path) -> None:
    time = VenueTime()
    venue = exchange(time)
    a = Run(venue, time, tmp_path)
    await a.start()
    a.tick(5)
    venue.take(Side.SELL, D("0.004"))  # partial fill of our bid
    a.tick(5)
    assert a.persistence.recorder.flush()
    # From here A's records never reach the store: the process is about to die.
    a.persistence.recorder.record_fill = lambda fill: False  # type: ignore[method-assign]
    a.persistence.recorder.record_order = lambda *args, **kw: False  # type: ignore[method-assign]
    venue.take(Side.BUY, D("0.003"))  # partial fill of our ask: A sees it, the store never does
    a.tick(3)
    venue.take(Side.SELL, D("0.002"))  # bid fill on its way back (30 ms response leg) when A dies
    assert venue.fills and a.engine.position != signed(venue.fills)
    del a  # SIGKILL: no stop, no cancel, no flush
    time.ns += 2_000 * MS
    venue.take(Side.SELL, D("0.001"))  # a fill while nobody runs
    assert venue.balances()  # the venue holds on with our resting orders
    open_at_venue = {r.client_id for r in await venue.fetch_open_orders(SYMBOL)}
    assert open_at_venue, "the dead engine's quotes are still resting"

    b = Run(venue, time, tmp_path)
    await b.engine.start()
    assert b.persistence.recovery is not None and b.persistence.recovery.missed_fills >= 2
    assert {o.client_id for o in b.engine.orders.open_orders()} == open_at_venue  # recovered
    assert b.engine.position == signed(venue.fills)  # exact, before the first tick
    b.fair.set("60000", 1.0, b.clock.now_ns)
    b.clock.start()
    b.tick(10)  # the venue re-delivers what A never drained: duplicates, dropped
    venue.take(Side.BUY, D("0.002"))
    b.tick(5)
    fills = venue.fills
    assert b.engine.position == signed(fills)
    assert b.engine.pnl.position() == signed(fills)
    assert b.engine.pnl.trade_count() == len(fills)
    assert b.engine.inventory.fill_count == len(fills)
    b.engine.pull_quotes()
    for _ in range(20):
        if b.engine.open_order_count() == 0:
            break
        b.tick()
    b.clock.stop()
    assert b.persistence.close() == 0

    url = default_store_url(StoreSection(), INSTANCE, tmp_path)
    ledger = InstanceLedger(url, INSTANCE)
    try:
        stored = ledger.fills()
        assert ledger.open_orders() == []
        assert len(ledger.session_ids()) == 2
    finally:
        ledger.close()
    assert sorted((s.fill.trade_id, s.fill.side, s.fill.price, s.fill.qty) for s in stored) == sorted(
        (f.trade_id, f.side, f.price, f.qty) for f in fills
    )
    summary = summarize(stored, "session")
    assert sum(s.trades for s in summary) == len(fills)
    assert sum(s.buy_qty - s.sell_qty for s in summary) == signed(fills)
    assert write_csv(tmp_path / "fills.csv", stored) == len(fills)


async def test_postgresql_and_redis_outage_during_a_run(
    pg_url: str,
    pg_admin: psycopg.Connection[Any],
    throwaway_redis: Any,
    wait_until: Callable[[Callable[[], bool], float], bool],
    tmp_path: Path,
) -> None:
    h = Harness(SimpleController(SimpleConfig(half_spread_bps=D(10), order_size=D("0.01"))))
    store = StoreSection(url=pg_url, redis_url=throwaway_redis.url)
    p = attach_persistence(h.engine, store, INSTANCE, tmp_path, recorder_options={"retry_max_s": 0.2})
    await h.engine.start()
    h.set_fair("60000")
    h.tick(3)
    assert p.recorder.flush()

    database = make_url(pg_url).database
    pg_admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
    pg_admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (database,))
    throwaway_redis.kill()
    for k in range(12):  # trading goes on: fills, re-quotes, PnL snapshots, all queued
        bid = next(o for o in h.venue.open_orders if o.side is Side.BUY)
        h.venue.fill(bid.client_id, "0.001")
        h.set_fair(str(60000 + 10 * k))
        h.tick(3)
    assert len(h.venue.fills) == 12 and h.position == D("0.012")
    assert h.quotes(), "still quoting during the outage"
    assert wait_until(lambda: p.recorder.stats().outages >= 1, 10.0)
    assert wait_until(lambda: p.redis is not None and p.redis.stats().outages >= 1, 10.0)
    assert p.recorder.stats().backlog > 0

    pg_admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
    throwaway_redis.start()
    h.tick()
    assert wait_until(lambda: p.recorder.stats().backlog == 0, 15.0)
    assert wait_until(lambda: p.redis is not None and p.redis.stats().connected, 10.0)
    assert p.redis is not None and p.redis.flush(5.0)
    hot = read_hot_state(throwaway_redis.url, INSTANCE)
    assert hot.positions == {f"sim:{h.symbol}": D("0.012")}
    assert hot.heartbeat is not None
    h.stop()
    assert p.close() == 0
    assert p.recorder.stats().outages == 1

    engine = create_engine(pg_url)
    try:
        with engine.connect() as conn:
            seqs: list[int] = []
            for table in (schema.orders, schema.fills, schema.pnl_snapshots):
                seqs += [r[0] for r in conn.execute(select(table.c.seq))]
            fill_ids = [r[0] for r in conn.execute(select(schema.fills.c.trade_id))]
            order_rows = conn.execute(select(schema.orders.c.seq)).all()
    finally:
        engine.dispose()
    seqs.sort()
    assert seqs == list(range(seqs[0], seqs[-1] + 1)), "a gap in the recorded history"
    assert sorted(fill_ids) == sorted(f.trade_id for f in h.venue.fills)
    assert len(order_rows) == p.stats().orders_recorded
