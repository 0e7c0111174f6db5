"""MatchingEngine: price-time priority, partial fills, post-only, replace, validation."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import pytest

from mmkit.instrument import IncrementBand, Instrument
from mmkit.model import RejectReason, Side, TimeInForce
from mmkit.sim.matching import MatchingEngine, SimOrder


@pytest.fixture
def engine() -> MatchingEngine:
    inst = Instrument(
        "sim", "BTC-PYUSD", "BTC", "PYUSD",
        (IncrementBand(D(0), D("0.10"), D("0.0001")), IncrementBand(D(100000), D("0.50"), D("0.00001"))),
        min_notional=D(10),
    )
    return MatchingEngine(inst)


def order(oid: str, side: Side, price: str | None, qty: str, owner: str = "o", **kw: Any) -> SimOrder:
    return SimOrder(oid, owner, "c" + oid, side, None if price is None else D(price), D(qty), **kw)


def test_price_time_priority_at_one_level(engine: MatchingEngine) -> None:
    engine.submit(order("a", Side.SELL, "100.0", "1"), 1)
    engine.submit(order("b", Side.SELL, "100.0", "1"), 2)
    engine.submit(order("c", Side.SELL, "100.0", "1"), 3)
    res = engine.submit(order("t", Side.BUY, "100.0", "1.5"), 4)
    assert [(e.maker_order_id, e.qty) for e in res.executions] == [("a", D(1)), ("b", D("0.5"))]
    assert res.executions[1].maker_leaves == D("0.5")
    assert res.resting is None
    assert engine.queue_ahead("b") == 0 and engine.queue_ahead("c") == D("0.5")
    assert engine.best_ask() == (D("100.0"), D("1.5"))


def test_walk_the_book_prints_at_maker_prices(engine: MatchingEngine) -> None:
    engine.submit(order("a", Side.SELL, "100.2", "1"), 1)
    engine.submit(order("b", Side.SELL, "100.0", "1"), 2)
    engine.submit(order("c", Side.SELL, "100.1", "1"), 3)
    res = engine.submit(order("t", Side.BUY, "100.1", "3"), 4)
    assert [(e.price, e.maker_order_id) for e in res.executions] == [(D("100.0"), "b"), (D("100.1"), "c")]
    assert res.resting is not None and res.resting.leaves_qty == D(1) and res.resting.price == D("100.1")
    assert engine.best_bid() == (D("100.1"), D(1))
    assert engine.best_ask() == (D("100.2"), D(1))
    assert [e.trade_id for e in res.executions] == ["T1", "T2"]
    assert res.executions[-1].taker_leaves == D(1)


def test_partial_fill_then_rest_and_depth(engine: MatchingEngine) -> None:
    engine.submit(order("a", Side.BUY, "99.0", "2"), 1)
    engine.submit(order("b", Side.BUY, "99.0", "1"), 2)
    engine.submit(order("c", Side.BUY, "98.5", "1"), 3)
    assert engine.depth(Side.BUY) == [(D("99.0"), D(3)), (D("98.5"), D(1))]
    assert engine.depth(Side.BUY, 1) == [(D("99.0"), D(3))]
    res = engine.submit(order("t", Side.SELL, "99.0", "0.5"), 4)
    assert res.executions[0].maker_order_id == "a"
    got = engine.get("a")
    assert got is not None and got.leaves_qty == D("1.5") and got.filled_qty == D("0.5")


def test_market_and_ioc_remainders_are_canceled(engine: MatchingEngine) -> None:
    engine.submit(order("a", Side.SELL, "100.0", "1"), 1)
    res = engine.submit(order("m", Side.BUY, None, "1.5"), 2)
    assert res.accepted and res.canceled_qty == D("0.5") and res.resting is None
    engine.submit(order("b", Side.SELL, "100.0", "1"), 3)
    res = engine.submit(order("i", Side.BUY, "100.0", "2", tif=TimeInForce.IOC), 4)
    assert res.canceled_qty == D(1) and engine.get("i") is None


def test_fok_executes_fully_or_not_at_all(engine: MatchingEngine) -> None:
    engine.submit(order("a", Side.SELL, "100.0", "1"), 1)
    res = engine.submit(order("f", Side.BUY, "100.0", "2", tif=TimeInForce.FOK), 2)
    assert res.executions == () and res.canceled_qty == D(2)
    assert engine.best_ask() == (D("100.0"), D(1))


def test_post_only_that_would_cross_is_rejected(engine: MatchingEngine) -> None:
    engine.submit(order("a", Side.SELL, "100.0", "1"), 1)
    res = engine.submit(order("p", Side.BUY, "100.0", "1", post_only=True), 2)
    assert not res.accepted and res.reject_reason is RejectReason.POST_ONLY_WOULD_CROSS
    assert engine.get("p") is None and engine.best_ask() == (D("100.0"), D(1))
    ok = engine.submit(order("q", Side.BUY, "99.9", "1", post_only=True), 3)
    assert ok.accepted and ok.resting is not None


@pytest.mark.parametrize(
    ("price", "qty", "reason"),
    [("100.05", "1", RejectReason.INVALID_PRICE), ("100.0", "0.00005", RejectReason.INVALID_QTY),
     ("100.0", "0.05", RejectReason.MIN_NOTIONAL), ("100.0", "0", RejectReason.INVALID_QTY)],
)
def test_rules_rejects(engine: MatchingEngine, price: str, qty: str, reason: RejectReason) -> None:
    res = engine.submit(order("x", Side.BUY, price, qty), 1)
    assert not res.accepted and res.reject_reason is reason
    assert len(engine) == 0


def test_replace_down_in_size_keeps_priority(engine: MatchingEngine) -> None:
    engine.submit(order("a", Side.SELL, "100.0", "2"), 1)
    engine.submit(order("b", Side.SELL, "100.0", "1"), 2)
    res = engine.replace("a", "a2", "ca2", D("100.0"), D("1"), 3)
    assert res.accepted and res.resting is not None and res.resting.ts_ns == 1
    assert engine.get("a") is None and engine.queue_ahead("a2") == 0
    fill = engine.submit(order("t", Side.BUY, "100.0", "1"), 4)
    assert fill.executions[0].maker_order_id == "a2" and fill.executions[0].maker_client_id == "ca2"


def test_replace_up_in_size_or_price_loses_priority(engine: MatchingEngine) -> None:
    engine.submit(order("a", Side.SELL, "100.0", "1"), 1)
    engine.submit(order("b", Side.SELL, "100.0", "1"), 2)
    res = engine.replace("a", "a", "ca2", D("100.0"), D("2"), 3)
    assert res.accepted and res.resting is not None and res.resting.ts_ns == 3
    assert engine.queue_ahead("a") == D(1)
    engine.replace("b", "b2", "cb2", D("100.1"), D("1"), 4)
    assert engine.queue_ahead("a") == 0 and engine.best_ask() == (D("100.0"), D(2))


def test_replace_counts_filled_part_and_can_cross(engine: MatchingEngine) -> None:
    engine.submit(order("a", Side.SELL, "100.0", "2"), 1)
    engine.submit(order("t", Side.BUY, "100.0", "0.5"), 2)
    bad = engine.replace("a", "a2", "ca2", D("100.0"), D("0.5"), 3)
    assert not bad.accepted and bad.reject_reason is RejectReason.INVALID_QTY
    ok = engine.replace("a", "a2", "ca2", D("100.0"), D("1"), 3)
    assert ok.resting is not None and ok.resting.leaves_qty == D("0.5") and ok.resting.qty == D(1)
    engine.submit(order("bid", Side.BUY, "99.0", "1"), 4)
    crossed = engine.replace("a2", "a3", "ca3", D("99.0"), D("1"), 5)
    assert [e.maker_order_id for e in crossed.executions] == ["bid"]
    assert crossed.executions[0].taker_order_id == "a3" and crossed.resting is None


def test_post_only_replace_that_would_cross_is_rejected_and_order_stands(engine: MatchingEngine) -> None:
    engine.submit(order("a", Side.SELL, "100.0", "1", post_only=True), 1)
    engine.submit(order("bid", Side.BUY, "99.0", "1"), 2)
    res = engine.replace("a", "a2", "ca2", D("99.0"), D("1"), 3)
    assert res.reject_reason is RejectReason.POST_ONLY_WOULD_CROSS
    assert engine.get("a") is not None


def test_cancel_and_unknown(engine: MatchingEngine) -> None:
    engine.submit(order("a", Side.BUY, "99.0", "1", owner="me"), 1)
    assert engine.orders_of("me")[0].order_id == "a"
    assert engine.cancel("a", 2) is not None
    assert engine.cancel("a", 3) is None
    assert engine.cancel("nope", 3) is None
    assert engine.best_bid() is None and engine.orders_of("me") == []
    res = engine.replace("nope", "n2", "c", D("99.0"), D(1), 4)
    assert res.reject_reason is RejectReason.UNKNOWN_ORDER


def test_market_order_on_empty_book_is_rejected(engine: MatchingEngine) -> None:
    res = engine.submit(order("m", Side.BUY, None, "1"), 1)
    assert not res.accepted and res.reject_reason is RejectReason.OTHER


def _filled(engine: MatchingEngine) -> MatchingEngine:
    engine.watch_changes()
    for index, (side, price, owner) in enumerate([
        (Side.BUY, "99.0", "m"), (Side.BUY, "99.0", "us"), (Side.BUY, "98.0", "m"), (Side.SELL, "101.0", "m"),
        (Side.SELL, "101.0", "us"), (Side.SELL, "102.0", "m"),
    ]):
        engine.submit(order(f"o{index}", side, price, "1", owner=owner), index)
    engine.take_changes()
    return engine


def test_cancel_owner_is_cancelling_each_of_orders_of(engine: MatchingEngine) -> None:
    """The makers' bulk cancel leaves the same book and reports the same changed levels as one cancel each."""
    other = _filled(MatchingEngine(engine.instrument))
    one_by_one = _filled(engine)
    for resting in one_by_one.orders_of("m"):
        one_by_one.cancel(resting.order_id, 9)
    assert other.cancel_owner("m") == 4
    assert other.take_changes() == one_by_one.take_changes()
    for side in (Side.BUY, Side.SELL):
        assert other.depth(side) == one_by_one.depth(side) == [(D("99.0") if side is Side.BUY else D("101.0"), D(1))]
    assert [o.order_id for o in other.orders_of("us")] == ["o1", "o4"] and other.orders_of("m") == []
    assert other.mid() == one_by_one.mid() == D("100.0")
    assert other.cancel_owner("m") == 0
