"""The simulated venues' open-order index: what balances and fetch_open_orders see after fills and rejects."""

from __future__ import annotations

from decimal import Decimal as D

from mmkit.connector import FeeSchedule, rules_for
from mmkit.instrument import IncrementBand, Instrument
from mmkit.model import (
    BookDelta,
    BookSnapshot,
    OrderCancelRejected,
    OrderRequest,
    RejectReason,
    ReplaceRequest,
    Side,
    Trade,
)
from mmkit.sim import ConstantLatency, ReplayBookVenue

MS = 1_000_000


def make() -> tuple[ReplayBookVenue, list[int]]:
    inst = Instrument("rec", "X", "BTC", "USD", (IncrementBand(D(0), D("0.1"), D("0.01")),))
    now = [0]
    rules = rules_for([inst], "rec", fees=FeeSchedule(D(0), D(0)), supports_replace=True)
    venue = ReplayBookVenue(rules, lambda: now[0], book_increments=(D("0.1"), D("0.01")),
                            latency=ConstantLatency(entry=MS, response=MS),
                            initial_balances={"USD": D(1000), "BTC": D(1)})
    venue.simulate_reconnect()
    venue.on_market_event(BookSnapshot("rec", "X", 1, ((D(100), D(3)),), ((D("100.5"), D(2)),), 0, 0))
    return venue, now


async def test_rejected_replace_leaves_the_original_open_and_reserved() -> None:
    venue, now = make()
    venue.place(OrderRequest("a", "rec", "X", Side.BUY, D(1), D(100), post_only=True))
    venue.place(OrderRequest("b", "rec", "X", Side.SELL, D("0.5"), D(101), post_only=True))
    now[0] = 2 * MS
    venue.drain()
    venue.replace(ReplaceRequest("a2", "a", "rec", "X", Side.BUY, D(1), D("100.6")))  # would cross 100.5
    now[0] = 4 * MS
    events = venue.drain()
    assert any(isinstance(e, OrderCancelRejected) and e.reason is RejectReason.POST_ONLY_WOULD_CROSS
               for e in events)
    assert [r.client_id for r in await venue.fetch_open_orders("X")] == ["a", "b"]
    usd = next(b for b in venue.balances() if b.asset == "USD")
    assert usd.available == D(900)


async def test_filled_and_canceled_orders_leave_the_index() -> None:
    venue, now = make()
    venue.place(OrderRequest("a", "rec", "X", Side.BUY, D(1), D(100), post_only=True))
    venue.place(OrderRequest("b", "rec", "X", Side.BUY, D(1), D("99.9"), post_only=True))
    venue.place(OrderRequest("c", "rec", "X", Side.SELL, D(1), D(101), post_only=True))
    now[0] = 2 * MS
    venue.drain()
    venue.on_market_event(Trade("rec", "X", "t1", D("99.9"), D("1"), Side.SELL, 3 * MS, 3 * MS))  # through a: all of it
    venue.cancel("c", "X")
    now[0] = 5 * MS
    venue.drain()
    assert [r.client_id for r in await venue.fetch_open_orders(None)] == ["b"]
    venue.on_market_event(BookDelta("rec", "X", 2, 2, (), ((D("99.8"), D(1)),), 6 * MS, 6 * MS))  # crosses b
    assert await venue.fetch_open_orders(None) == []
    base = next(b for b in venue.balances() if b.asset == "BTC")
    assert base.total == base.available == D(3)
