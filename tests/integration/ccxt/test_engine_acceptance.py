"""Issue 5 acceptance through the real engine: ccxt reference prices and hedging, offline.

The engine is built from a config by :func:`mmkit.app.build.build` in paper mode (``mmkit start
--paper``): the quoting venue is the configured venue's rules (TrueX) on the simulated exchange
(:class:`mmkit.sim.exchange_venue.ExchangeVenue`); the reference prices come from three
:class:`connectors.ccxt.CcxtConnector` built by ``from_config`` (real ccxt.pro code) aimed at the
local mock of Kraken, Coinbase and Gemini; hedges go to the mock Kraken through a fourth one. It
runs under :func:`mmkit.app.lifecycle.run_live`, the very start/tick/stop sequence of ``mmkit
start``, on a REALTIME clock with a 20 ms tick and a 300 ms staleness limit.

What is checked is what the desk sees: the simulated venue's own open orders (not the order
tracker's belief), the mock Kraken's order book of record, the engine's inventory and PnL ledger.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import json
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from mmkit.app.build import BuiltEngine, build
from mmkit.app.config import ConfigOverrides, load_engine_config
from mmkit.app.lifecycle import run_live
from mmkit.app.outcome import EXIT_OK
from mmkit.clock import Clock, ClockMode
from mmkit.model import NS_PER_MS, OrderStatusReport, OrderType, Side
from mmkit.pricing.aggregator import PriceAggregator
from mmkit.risk.hedge import HedgeExecutor
from mmkit.risk.inventory import InventoryManager
from mmkit.sim.exchange_venue import ExchangeVenue
from tests.integration.ccxt.mock_venue import CCXT_STATIC, MockVenueServer, gemini_markets

pytestmark = [pytest.mark.integration, pytest.mark.shared_data]

D = Decimal
TICK_MS = 20
STALE_MS = 300
#: Scheduling slack on top of "staleness + one tick" for this loaded 2-core machine. It also
#: covers the <= 30 ms between the last book update a venue sent and the moment it went silent.
SLACK_MS = 150
SYMBOL = "BTC-PYUSD"
KRAKEN_FEE = D("0.0026")
BASES = {"kraken": D("63300.0"), "coinbase": D("63301.00"), "gemini": D("63299.00")}


# --------------------------------------------------------------------------
# config: what a desk would write, pointed at the mock venues
# --------------------------------------------------------------------------


def _source_settings(server: MockVenueServer, venue: str, markets_dir: Path) -> dict[str, Any]:
    all_urls: dict[str, dict[str, Any]] = {
        "kraken": {
            "api": {
                "public": f"{server.http}/kraken",
                "private": f"{server.http}/kraken",
                "ws": {"publicV2": f"{server.ws}/kraken/v2", "privateV2": f"{server.ws}/kraken/v2-auth"},
            }
        },
        "coinbase": {"api": {"ws": f"{server.ws}/coinbase/ws"}},
        "gemini": {"api": {"ws": f"{server.ws}/gemini"}},
    }
    urls = all_urls[venue]
    return {
        "profile": venue,
        "urls": urls,
        "markets_file": str(markets_dir / f"{venue}.json"),
        # ccxt's own throttle at Kraken's real pace (QueryOrders every 3 s) would make the test slow.
        "ccxt_options": {"rateLimit": 5},
        # The watchdog fires after the aggregator's staleness: a silent venue is caught by staleness.
        "stale_s": 1.0,
        "backoff_initial_s": 0.02,
        "backoff_max_s": 0.1,
        "poll_interval_s": 0.05,
    }


def write_config(tmp_path: Path, server: MockVenueServer, tick_ms: int) -> Path:
    markets_dir = tmp_path / "markets"
    markets_dir.mkdir()
    for venue in ("kraken", "coinbase"):
        (markets_dir / f"{venue}.json").write_text((CCXT_STATIC / "markets" / f"{venue}.json").read_text())
    (markets_dir / "gemini.json").write_text(json.dumps(gemini_markets()))
    ccxt = "connectors.ccxt:CcxtConnector"
    hedge_settings = {
        **_source_settings(server, "kraken", markets_dir),
        "api_key": "${MMKIT_TEST_KRAKEN_KEY}",
        "secret_key": "${MMKIT_TEST_KRAKEN_SECRET}",
    }
    data = {
        "engine": {"instance": "ccxt-acceptance", "tick_ms": tick_ms, "output_dir": str(tmp_path / "var")},
        # The production venue; --paper runs its rules on the simulated exchange instead of connecting.
        "venue": {"connector": "connectors.truex:TrueXConnector", "rules": "truex", "symbol": SYMBOL},
        "reference": {
            "staleness_ms": STALE_MS,
            "reprice_threshold_bps": "1",
            "sources": [
                {"name": "kraken", "connector": ccxt, "symbol": "BTC/USD", "rules": "kraken",
                 "settings": _source_settings(server, "kraken", markets_dir)},
                {"name": "coinbase", "connector": ccxt, "symbol": "BTC-USD", "rules": "coinbase",
                 "settings": _source_settings(server, "coinbase", markets_dir)},
                {"name": "gemini", "connector": ccxt, "symbol": "BTCUSD", "rules": "gemini",
                 "settings": _source_settings(server, "gemini", markets_dir)},
            ],
        },
        "strategy": {
            "controller": "strategies.simple:SimpleController",
            "params": {"half_spread_bps": "2", "order_size": "0.8"},
        },
        "risk": {
            "inventory": {"max_position": "5", "hedge_threshold": "2", "hedge_target": "1.5",
                          "emergency_position": "6"},
        },
        "hedge": {
            "enabled": True,
            "venue": {"connector": ccxt, "rules": "kraken", "symbol": "BTC/USD", "settings": hedge_settings},
            "params": {"limit_timeout_ms": 200, "min_qty": "0.001", "max_qty": "1"},
        },
    }
    path = tmp_path / "acceptance.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


# --------------------------------------------------------------------------
# fixtures and helpers
# --------------------------------------------------------------------------


@pytest.fixture
async def market(server: MockVenueServer) -> AsyncIterator[dict[str, Decimal]]:
    """Keep every venue's book moving around its base (a live venue updates many times a second).

    The test moves the market by changing the bases in the returned mapping.
    """
    bases = dict(BASES)

    async def wiggle() -> None:
        step = 0
        while True:
            step += 1
            for venue, base in bases.items():
                await server.set_mid(venue, base + D(step % 3))
            await asyncio.sleep(0.03)

    task = asyncio.get_running_loop().create_task(wiggle())
    yield bases
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


class Running:
    """A built engine running under ``run_live`` in a task; ``stop()`` returns its exit code."""

    def __init__(self, built: BuiltEngine) -> None:
        self.built = built
        self.out = io.StringIO()
        self.task = asyncio.get_running_loop().create_task(run_live(built, run_for_s=60, quiet=True, out=self.out))

    @property
    def venue(self) -> ExchangeVenue:
        venue = self.built.engine.venue
        assert isinstance(venue, ExchangeVenue)
        return venue

    @property
    def aggregator(self) -> PriceAggregator:
        source = self.built.engine.runner.fair_source
        assert isinstance(source, PriceAggregator)
        return source

    @property
    def hedge(self) -> HedgeExecutor:
        assert self.built.hedge is not None
        return self.built.hedge

    @property
    def clock(self) -> Clock:
        return self.built.engine.clock

    async def venue_orders(self) -> list[OrderStatusReport]:
        """Our open orders as the simulated exchange knows them (it acts on what has arrived by now)."""
        self.venue.advance(self.clock.now_ns)
        return await self.venue.fetch_open_orders(SYMBOL)

    async def stop(self) -> int:
        self.clock.request_stop()
        return await asyncio.wait_for(self.task, timeout=15)


@pytest.fixture
def tick_ms() -> int:
    return TICK_MS


@pytest.fixture
async def engine(
    tmp_path: Path,
    server: MockVenueServer,
    market: dict[str, Decimal],
    monkeypatch: pytest.MonkeyPatch,
    tick_ms: int,
) -> AsyncIterator[Running]:
    """The engine ``mmkit start --paper`` would run for the config, started under ``run_live``."""
    monkeypatch.setenv("MMKIT_TEST_KRAKEN_KEY", "test-key")
    monkeypatch.setenv("MMKIT_TEST_KRAKEN_SECRET", base64.b64encode(b"s" * 64).decode())
    loaded = load_engine_config(write_config(tmp_path, server, tick_ms), ConfigOverrides(paper=True))
    built = build(loaded, Clock(ClockMode.REALTIME, tick_ns=loaded.config.engine.tick_ms * NS_PER_MS))
    running = Running(built)
    try:
        yield running
    finally:
        if not running.task.done():
            running.clock.request_stop()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(running.task, timeout=15)


async def until(condition: Callable[[], Any], timeout_s: float, what: str) -> float:
    """Poll ``condition`` (sync or async) every 5 ms; returns the seconds it took, fails after the timeout."""
    loop = asyncio.get_running_loop()
    began = loop.time()
    while True:
        result = condition()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return loop.time() - began
        if loop.time() - began > timeout_s:
            raise AssertionError(f"not within {timeout_s} s: {what}")
        await asyncio.sleep(0.005)


async def two_sided(run: Running) -> bool:
    return {o.side for o in await run.venue_orders()} == {Side.BUY, Side.SELL}


# --------------------------------------------------------------------------
# the acceptance
# --------------------------------------------------------------------------


async def test_losing_reference_venues_lowers_confidence_then_pulls_quotes(
    engine: Running, server: MockVenueServer
) -> None:
    runner = engine.built.engine.runner
    await until(lambda: runner.last_fair.sources == 3, 5.0, "all three reference venues priced")
    await until(lambda: two_sided(engine), 2.0, "two-sided quotes at the venue")
    full = runner.last_fair
    assert full.confidence > 0.9

    server.hang("gemini")
    await until(lambda: runner.last_fair.sources == 2, STALE_MS / 1000 + 1.0, "gemini aged out")
    degraded = runner.last_fair
    assert 0 < degraded.confidence < full.confidence
    assert engine.aggregator.fresh_venues() == ["coinbase", "kraken"]
    quoting_ticks = runner.stats.quoting_ticks
    await asyncio.sleep(0.2)  # the others carry on: still quoting, still priced by two venues
    assert runner.stats.quoting_ticks > quoting_ticks
    assert {t.side for t in runner.stats.last_targets} == {Side.BUY, Side.SELL}
    assert runner.last_fair.sources == 2 and runner.last_fair.confidence > 0
    assert await two_sided(engine)

    server.hang("kraken")
    server.hang("coinbase")
    pulled_after = await until(
        lambda: _no_orders(engine), STALE_MS / 1000 + 2.0, "the venue's open orders all cancelled"
    )
    assert runner.last_fair.price is None and runner.last_fair.confidence == 0.0
    # Gone within one tick of the staleness limit (+ SLACK_MS for scheduling on 2 shared cores).
    assert pulled_after <= (STALE_MS + TICK_MS + SLACK_MS) / 1000, f"quotes pulled after {pulled_after:.3f} s"
    assert runner.stats.last_targets == ()

    assert await engine.stop() == EXIT_OK, engine.out.getvalue()


async def _no_orders(run: Running) -> bool:
    return not await run.venue_orders()


async def test_position_past_threshold_hedges_once_then_falls_back_to_market(
    engine: Running, server: MockVenueServer
) -> None:
    core = engine.built.engine
    await until(lambda: engine.hedge.touch(Side.SELL) is not None, 5.0, "Kraken's book tracked for the touch")
    kraken_bid = engine.hedge.touch(Side.SELL)
    assert kraken_bid is not None
    server.market_fill_price = D("63280.0")

    # Our bids on the quoting venue get hit, 0.8 BTC at a time, until we are long past the 2 BTC threshold.
    while core.inventory.position <= D(2):
        before = core.inventory.position
        await until(lambda: _hit_our_bid(engine), 10.0, "a taker hitting a resting bid of ours")
        await until(_moved_from(core.inventory, before), 10.0, "the fill booked by the engine")
    assert core.pnl.position(hedge=False) == D("2.4")  # the quoting book (hedges go to their own book)

    await until(
        lambda: core.inventory.position == D("1.5") and not engine.hedge.working, 5.0, "hedged back to 1.5"
    )
    await asyncio.sleep(0.3)  # nothing more may go out once hedged

    sent = engine.hedge.orders_sent
    assert [o.order_type for o in sent] == [OrderType.LIMIT, OrderType.MARKET]  # one hedge, then its fallback
    assert [(o.side, o.qty) for o in sent] == [(Side.SELL, D("0.9")), (Side.SELL, D("0.9"))]
    # Marketable (through Kraken's bid) but no further than the 10 bp protection (+ the market's wiggle).
    assert sent[0].price is not None
    assert kraken_bid * (1 - D("0.0010")) - D(3) <= sent[0].price < kraken_bid
    kraken_orders = list(server.kraken_orders.values())
    assert [(o.ordertype, o.status) for o in kraken_orders] == [("limit", "canceled"), ("market", "closed")]
    assert core.inventory.position == D("1.5") < D(2)

    # The PnL ledger: the quoting book and the hedge book are kept apart, with the hedge's fee.
    pnl = core.pnl
    books = pnl.by_venue()
    assert books["truex"]["quote_position"] == D("2.4") and "hedge_position" not in books["truex"]
    assert books["kraken"]["hedge_position"] == D("-0.9") and "quote_position" not in books["kraken"]
    hedge_fee = D("0.9") * D("63280.0") * KRAKEN_FEE
    assert pnl.fees(hedge=True) == hedge_fee
    assert pnl.trade_count(hedge=True) == 1 and pnl.trade_count(hedge=False) == 3
    mark = pnl.mark_price
    assert mark is not None
    assert pnl.unrealized(hedge=True) == D("-0.9") * (mark - D("63280.0"))
    assert pnl.total(hedge=True) == pnl.realized(hedge=True) - hedge_fee + pnl.unrealized(hedge=True)
    assert all(f.is_hedge for f in engine.hedge.hedge_fills)
    assert core.inventory.position == core.fill_position()

    assert await engine.stop() == EXIT_OK, engine.out.getvalue()
    assert not [o for o in server.kraken_orders.values() if o.status == "open"]


async def _hit_our_bid(run: Running) -> bool:
    """A taker sells into our resting bid at its price; False when there was none to hit.

    The engine re-prices its bid every tick while the market wiggles, so the bid read here may have
    moved lower by the time the taker arrives (it then reaches nothing): the caller tries again.
    """
    bid = await _our_bid(run)
    if bid is None or bid.price is None:
        return False
    return bool(run.venue.take(Side.SELL, bid.qty - bid.filled_qty, bid.price))


def _moved_from(inventory: InventoryManager, before: Decimal) -> Callable[[], bool]:
    return lambda: inventory.position > before


async def _our_bid(run: Running) -> OrderStatusReport | None:
    return next((o for o in await run.venue_orders() if o.side is Side.BUY), None)


# A longer tick here: a wake-up is only counted as such when it comes before the next regular tick,
# and a 20 ms period on a busy loop leaves little room between the two. The wake is what makes the
# engine re-price a reference move without waiting up to a whole period.
@pytest.mark.parametrize("tick_ms", [200])
async def test_reference_move_past_reprice_threshold_wakes_the_clock(
    engine: Running, market: dict[str, Decimal]
) -> None:
    runner = engine.built.engine.runner
    await until(lambda: runner.last_fair.sources == 3, 5.0, "all three reference venues priced")
    await until(lambda: two_sided(engine), 2.0, "two-sided quotes at the venue")
    await asyncio.sleep(0.1)
    old = runner.last_fair.price
    assert old is not None
    woken, wakes = engine.clock.woken_ticks, engine.aggregator.wakes

    for venue in market:  # +60 on every venue: about 9.5 bps, far past the 1 bp reprice threshold
        market[venue] += D(60)
    await until(lambda: engine.aggregator.wakes > wakes, 1.0, "the aggregator asked for a wake-up")
    await until(lambda: engine.clock.woken_ticks > woken, 1.0, "a woken tick")
    assert engine.clock.tick_ns == 200 * NS_PER_MS
    await until(lambda: (runner.last_fair.price or old) > old + D(50), 1.0, "the engine priced the move")
    await until(lambda: _bid_above(engine, old), 1.0, "the bid re-priced above the old fair")

    assert await engine.stop() == EXIT_OK, engine.out.getvalue()


async def _bid_above(run: Running, price: Decimal) -> bool:
    bid = await _our_bid(run)
    return bid is not None and bid.price is not None and bid.price > price
