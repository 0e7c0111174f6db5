"""Setup (a) through the real engine: our bid joins a recorded book and fills only after the queue ahead trades.

Synthetic recorded events (a snapshot, then trades at our price) are replayed
into the BACKTEST clock; the order goes out through the live executor and
order tracker, the venue's conservative queue model decides the fills, and
fills reach the engine's position and the venue balances the engine sees.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal as D

import pytest

from mmkit.app.assembly import RiskSettings
from mmkit.app.backtest_setups import QueueName, ReplayVenueSetup, build_replay_venue_setup
from mmkit.backtest.replay import ReplayEvent
from mmkit.clock import Clock, ClockMode
from mmkit.connector import load_venue_rules
from mmkit.model import NS_PER_MS, NS_PER_S, BookSnapshot, Fill, Liquidity, Side, TargetQuote, Trade
from mmkit.sim.latency import ConstantLatency
from mmkit.sim.queue import ConservativeQueue
from mmkit.strategy import Controller, StrategyContext

T0 = 1_700_000_000 * NS_PER_S
BID = D("100.00")


class FixedBid(Controller):
    """Wants to buy 0.2 in total at 100.00 (the recorded best bid), as one resting order.

    The target shrinks with each fill, so the executor keeps the order (and
    its queue position) instead of topping it back up.
    """

    def __init__(self) -> None:
        super().__init__()
        self.left = D("0.2")

    def on_fill(self, fill: Fill) -> None:
        self.left -= fill.qty

    def on_tick(self, ctx: StrategyContext) -> Sequence[TargetQuote]:
        return [TargetQuote(side=Side.BUY, level=0, price=BID, qty=self.left)] if self.left > 0 else []


def trade(n: int, qty: str, at_s: float, price: D = BID, aggressor: Side = Side.SELL) -> Trade:
    ts = T0 + int(at_s * NS_PER_S)
    return Trade("binance", "BTCUSDT", f"t{n}", price, D(qty), aggressor, ts_event=ts - NS_PER_MS, ts_recv=ts)


def events() -> list[ReplayEvent]:
    snapshot = BookSnapshot(
        "binance", "BTCUSDT", 10,
        bids=((BID, D("0.5")), (D("99.90"), D("1"))),
        asks=((D("100.10"), D("1")), (D("100.20"), D("1"))),
        ts_event=T0, ts_recv=T0,
    )
    return [
        snapshot,
        trade(1, "0.3", 1.0),  # 0.5 ahead -> 0.2 ahead, nothing for us
        trade(2, "0.1", 1.5, price=D("100.10"), aggressor=Side.BUY),  # other side: irrelevant to our bid
        trade(3, "0.3", 2.0),  # 0.2 ahead consumed, 0.1 left over fills us partially
        trade(4, "0.05", 3.0),  # queue ahead is empty: all of it is ours
        trade(5, "0.2", 4.0),  # the rest (0.05) of our order
    ]


async def started(rec: list[ReplayEvent]) -> tuple[Clock, ReplayVenueSetup]:
    clock = Clock(ClockMode.BACKTEST, tick_ns=100 * NS_PER_MS, start_ns=T0)
    setup = build_replay_venue_setup(
        clock, FixedBid(), rec, load_venue_rules("binance"), "BTCUSDT",
        risk=RiskSettings(kill_switch=None), queue=ConservativeQueue(),
        latency=ConstantLatency(entry=2 * NS_PER_MS, response=2 * NS_PER_MS),
        initial_balances={"USDT": D(1000), "BTC": D(0)}, staleness_ns=60 * NS_PER_S,
    )
    await setup.engine.start()
    clock.start()
    return clock, setup


def run_to(clock: Clock, seconds: float) -> None:
    end = T0 + int(seconds * NS_PER_S)
    while clock.now_ns + clock.tick_ns <= end:
        clock.tick_once(clock.now_ns + clock.tick_ns)


async def test_bid_fills_only_after_displayed_size_ahead_has_traded() -> None:
    clock, setup = await started(events())
    engine, venue = setup.engine, setup.venue
    run_to(clock, 0.5)
    (order,) = engine.orders.open_orders("BTCUSDT")
    assert order.is_live and order.price == BID
    assert venue.queue_front(order.client_id) == D("0.5")  # joined behind the displayed 0.5

    run_to(clock, 1.9)
    assert engine.fills == []  # 0.3 traded, 0.2 still ahead of us
    assert venue.queue_front(order.client_id) == D("0.2")

    run_to(clock, 2.5)
    assert [(f.qty, f.price, f.liquidity) for f in engine.fills] == [(D("0.1"), BID, Liquidity.MAKER)]
    assert venue.queue_front(order.client_id) == D(0)

    run_to(clock, 4.5)
    assert [f.qty for f in engine.fills] == [D("0.1"), D("0.05"), D("0.05")]
    assert engine.position == D("0.2")
    assert engine.open_order_count() == 0
    assert setup.engine.fills[-1].client_id == order.client_id  # one order, never re-queued


async def test_partial_fill_changes_position_and_balance() -> None:
    clock, setup = await started(events()[:4])
    engine = setup.engine
    run_to(clock, 2.5)
    (fill,) = engine.fills
    assert fill.qty == D("0.1")
    assert engine.position == D("0.1")
    assert engine.pnl.position() == D("0.1")
    fee = fill.fee
    assert fee == D("0.1") * BID * D(10) / D(10_000)  # binance.yml: maker 10 bps (the base tier)
    # The venue's balance events reached the engine's user stream.
    btc = engine.stream.balance("binance", "BTC")
    usdt = engine.stream.balance("binance", "USDT")
    assert btc is not None and btc.total == D("0.1")
    assert usdt is not None and usdt.total == D(1000) - D("0.1") * BID - fee
    # The order is still live for the rest (0.1 of 0.2), and reserves it.
    (order,) = engine.orders.open_orders("BTCUSDT")
    assert order.remaining == D("0.1")
    assert usdt.available == usdt.total - D("0.1") * BID


@pytest.mark.parametrize("queue_name", ["conservative", "probabilistic"])
async def test_depth_drop_without_trades(queue_name: QueueName) -> None:
    """A displayed-size decrease with no trade never advances the conservative queue."""
    from mmkit.app.backtest_setups import queue_model
    from mmkit.model import BookDelta

    drop = BookDelta("binance", "BTCUSDT", 11, 11, bids=((BID, D("0.1")),), asks=(),
                     ts_event=T0 + NS_PER_S - NS_PER_MS, ts_recv=T0 + NS_PER_S)
    rec = [*events()[:1], drop]
    clock = Clock(ClockMode.BACKTEST, tick_ns=100 * NS_PER_MS, start_ns=T0)
    setup = build_replay_venue_setup(clock, FixedBid(), rec, load_venue_rules("binance"), "BTCUSDT",
                                     risk=RiskSettings(kill_switch=None), queue=queue_model(queue_name, seed=3),
                                     initial_balances={"USDT": D(1000), "BTC": D(0)}, staleness_ns=60 * NS_PER_S)
    await setup.engine.start()
    clock.start()
    run_to(clock, 0.5)
    (order,) = setup.engine.orders.open_orders("BTCUSDT")
    run_to(clock, 1.5)
    front = setup.venue.queue_front(order.client_id)
    assert front is not None
    if queue_name == "conservative":
        assert front == D("0.5")
    else:
        assert front <= D("0.5")  # some of the 0.4 cancelled may have been ahead of us
    assert setup.engine.fills == []
