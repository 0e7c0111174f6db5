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
