"""Queue-position models for replay backtests: when does OUR order fill in a recorded book?

In a replay our orders join a recorded book that cannot react to them: we
only see aggregated level sizes and public trades, never who was ahead of us.
A queue model estimates the quantity ahead of our order (``front``) and turns
public trades into our fills. The fill rules (shared by every model):

* A trade at a price *through* ours (below our bid, above our ask) must have
  gone through our level first: our order fills at its own price, at most
  the print's quantity (the replay venue's ``through_fill`` "tape"; "whole",
  hftbacktest's convention, fills it completely: :mod:`mmkit.sim.through_fill`).
  :func:`trade_fill_qty` gives the uncapped answer for one order alone.
* A trade at *our* price by an aggressor on the other side consumes the queue
  front first; only the traded quantity beyond ``front`` fills us (partially).
  A trade at our price whose aggressor is on our side traded the other book
  side and does not touch our queue.
* The recorded book crossing strictly through our price (best ask below our
  bid) fills us, at most what it displays through our price ("tape"); that
  check lives in the replay venue.

Models differ only in what a *decrease* of the displayed size at our level
(not explained by trades, i.e. cancels) does to ``front``:

* :class:`ConservativeQueue`: nothing. Only trades advance us. This is the
  pessimistic bound: every cancel is assumed to come from behind us.
* :class:`ProbabilisticQueue`: a decrease of ``d`` is taken from in front of
  us with probability ``p = f(front) / (f(front) + f(back))``, ``f(x) = x**power``,
  where ``back`` is the displayed size behind us; drawn from a seeded RNG so
  a backtest is reproducible. ``power=1`` means each displayed unit is equally
  likely to be the one canceled; ``power>1`` attributes cancels more strongly
  to whichever segment is larger.

Increases of the displayed size always join behind us.
"""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Protocol, runtime_checkable

import attrs

from mmkit.model import ZERO, Side

__all__ = [
    "ConservativeQueue",
    "ProbabilisticQueue",
    "QueueModel",
    "QueuePosition",
    "trade_fill_qty",
]


@attrs.define(slots=True)
class QueuePosition:
    """Estimated displayed quantity ahead of our order at its price level."""

    front: Decimal


@runtime_checkable
class QueueModel(Protocol):
    """Pluggable estimate of our queue position."""

    def on_join(self, level_qty: Decimal) -> QueuePosition:
        """Our order joins a level that displays ``level_qty`` (all of it is ahead of us)."""

    def on_trade_at_price(self, pos: QueuePosition, trade_qty: Decimal, leaves: Decimal) -> Decimal:
        """A trade of ``trade_qty`` at our price against our side: return how much of it fills us."""

    def on_depth_change(self, pos: QueuePosition, prev_qty: Decimal, new_qty: Decimal) -> None:
        """The displayed size at our level moved from ``prev_qty`` to ``new_qty`` (net of trades)."""


class _TradeConsumesFront:
    """Shared rule: a trade at our price eats the front first, the rest fills us."""

    def on_join(self, level_qty: Decimal) -> QueuePosition:
        return QueuePosition(ZERO if level_qty < ZERO else level_qty)  # max(level_qty, ZERO) without the call

    def on_trade_at_price(self, pos: QueuePosition, trade_qty: Decimal, leaves: Decimal) -> Decimal:
        if trade_qty <= pos.front:
            pos.front -= trade_qty
            return ZERO
        beyond = trade_qty - pos.front
        pos.front = ZERO
        return min(beyond, leaves)


class ConservativeQueue(_TradeConsumesFront):
    """Only trades at our price advance us; cancels are assumed to be behind us."""

    def on_depth_change(self, pos: QueuePosition, prev_qty: Decimal, new_qty: Decimal) -> None:
        return None


class ProbabilisticQueue(_TradeConsumesFront):
    """Cancels advance us with probability ``f(front)/(f(front)+f(back))``, ``f(x)=x**power``; seeded."""

    def __init__(self, seed: int = 0, power: float = 1.0) -> None:
        if power <= 0:
            raise ValueError("power must be positive")
        self.power = power
        self._rng = random.Random(seed)

    def probability_ahead(self, front: Decimal, back: Decimal) -> float:
        """Probability that a cancel came from in front of us (0 when nothing is ahead)."""
        f_front = float(front) ** self.power
        f_back = float(max(back, ZERO)) ** self.power
        if f_front <= 0:
            return 0.0
        return f_front / (f_front + f_back)

    def on_depth_change(self, pos: QueuePosition, prev_qty: Decimal, new_qty: Decimal) -> None:
        decrease = prev_qty - new_qty
        if decrease <= 0 or pos.front <= 0:
            return
        back = prev_qty - pos.front
        if self._rng.random() < self.probability_ahead(pos.front, back):
            pos.front = max(pos.front - decrease, ZERO)


def trade_fill_qty(
    model: QueueModel,
    pos: QueuePosition,
    *,
    side: Side,
    price: Decimal,
    leaves: Decimal,
    trade_price: Decimal,
    trade_qty: Decimal,
    aggressor: Side | None,
) -> Decimal:
    """How much of our resting order (``side`` at ``price``) a public trade fills."""
    if leaves <= 0:
        return ZERO
    through = trade_price < price if side is Side.BUY else trade_price > price
    if through:
        return leaves
    if trade_price != price or aggressor is side:
        return ZERO
    return model.on_trade_at_price(pos, trade_qty, leaves)
