"""Queue models: conservative vs probabilistic advancement, and the shared fill rules."""

from __future__ import annotations

from decimal import Decimal as D

from mmkit.model import Side
from mmkit.sim.queue import ConservativeQueue, ProbabilisticQueue, QueueModel, QueuePosition, trade_fill_qty


def fill(
    model: QueueModel, pos: QueuePosition, price: str, qty: str, *, aggressor: Side = Side.SELL, leaves: str = "1"
) -> D:
    return trade_fill_qty(model, pos, side=Side.BUY, price=D(100), leaves=D(leaves), trade_price=D(price),
                          trade_qty=D(qty), aggressor=aggressor)


def test_trade_at_price_eats_front_then_fills_partially() -> None:
    model = ConservativeQueue()
    pos = model.on_join(D(3))
    assert fill(model, pos, "100", "2") == 0 and pos.front == D(1)
    assert fill(model, pos, "100", "1.5") == D("0.5") and pos.front == 0
    assert fill(model, pos, "100", "5", leaves="0.5") == D("0.5")


def test_trade_through_price_fills_fully_and_same_side_aggressor_ignored() -> None:
    model = ConservativeQueue()
    pos = model.on_join(D(10))
    assert fill(model, pos, "100", "20", aggressor=Side.BUY) == 0 and pos.front == D(10)
    assert fill(model, pos, "100.5", "20") == 0
    assert fill(model, pos, "99.9", "0.01") == D(1)


def test_conservative_ignores_cancels() -> None:
    model = ConservativeQueue()
    pos = model.on_join(D(5))
    model.on_depth_change(pos, D(5), D(1))
    assert pos.front == D(5)


def test_probabilistic_is_seeded_and_advances_on_cancels() -> None:
    fronts = []
    for _ in range(2):
        model = ProbabilisticQueue(seed=7)
        pos = model.on_join(D(10))
        for _ in range(20):
            model.on_depth_change(pos, D(12), D("11.5"))
        fronts.append(pos.front)
    assert fronts[0] == fronts[1] and fronts[0] < D(10)
    model = ProbabilisticQueue(seed=1)
    assert model.probability_ahead(D(0), D(5)) == 0.0
    assert model.probability_ahead(D(3), D(1)) == 0.75
    assert ProbabilisticQueue(power=2).probability_ahead(D(3), D(1)) == 0.9


def test_probabilistic_ignores_increases() -> None:
    model = ProbabilisticQueue(seed=3)
    pos = model.on_join(D(2))
    model.on_depth_change(pos, D(2), D(4))
    assert pos.front == D(2)
