"""SkewedLadderController's per-call memos (confidence verdict, level sizes) give the uncached answers."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from mmkit.model import Side
from mmkit.strategy import StrategyContext
from strategies.skewed_ladder import SkewedLadderConfig, SkewedLadderController

ContextFactory = Callable[..., StrategyContext]


def test_confidence_verdict_follows_every_change(make_ctx: ContextFactory) -> None:
    ctrl = SkewedLadderController()
    seen = []
    for confidence in (0.9, 0.9, 0.29, 0.29, 0.3, 0.0, 0.3):
        seen.append(bool(ctrl.on_tick(make_ctx("50000", confidence=confidence))))
    assert seen == [True, True, False, False, True, False, True]


def test_level_sizes_decay_from_the_config(make_ctx: ContextFactory) -> None:
    cfg = SkewedLadderConfig(levels=4, base_size=Decimal("0.02"), size_decay=Decimal("0.5"))
    quotes = SkewedLadderController(cfg).on_tick(make_ctx("50000"))
    bid_sizes = [q.qty for q in sorted(quotes, key=lambda q: q.level) if q.side is Side.BUY]
    assert bid_sizes == [Decimal("0.0200"), Decimal("0.0100"), Decimal("0.0050"), Decimal("0.0025")]


def count_ladders(ctrl: SkewedLadderController) -> list[int]:
    """Wrap ``ctrl._ladder`` so that each (re)computation of the ladder is counted."""
    calls = [0]
    inner = ctrl._ladder

    def counted(*args: object) -> object:
        calls[0] += 1
        return inner(*args)  # type: ignore[arg-type]

    ctrl._ladder = counted  # type: ignore[method-assign, assignment]
    return calls


def test_the_very_same_mid_keeps_the_ladder_and_a_move_from_it_reprices(make_ctx: ContextFactory) -> None:
    ctrl = SkewedLadderController()
    calls = count_ladders(ctrl)
    ctx = make_ctx("50000")
    first = ctrl.on_tick(ctx)
    assert ctrl.on_tick(ctx) == first and ctrl.on_tick(make_ctx("50000")) == first
    assert calls == [1]
    assert ctrl.on_tick(make_ctx("50000.20")) != first  # two ticks of 0.10 away
    assert calls == [2]


def test_a_zero_threshold_reprices_on_every_tick_even_at_the_same_mid(make_ctx: ContextFactory) -> None:
    ctrl = SkewedLadderController(SkewedLadderConfig(reprice_threshold_ticks=Decimal(0)))
    calls = count_ladders(ctrl)
    ctx = make_ctx("50000")
    quotes = [ctrl.on_tick(ctx) for _ in range(3)]
    assert calls == [3]
    assert quotes[0] == quotes[1] == quotes[2]
