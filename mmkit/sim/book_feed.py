"""BookFeed: a simulated exchange's public L2 feed, published as changed levels only.

Why: the simulated venue used to re-read the top ``levels`` of its matching
engine after every match and send them as a full snapshot, which the
subscriber's :class:`~mmkit.book.tracker.OrderBookTracker` then rebuilt from
scratch: about a fifth of a simulated backtest for books that change by one
or two levels at a time. The feed now sends what a real venue sends: one
snapshot when a subscriber (re)subscribes, then deltas numbered one by one
(``first_seq == seq``, per symbol) carrying only the levels whose published
size changed (size 0 deletes a level).

What the subscriber holds is always exactly the engine's best ``levels``
levels a side, as the snapshots were:

* the engine records which prices an action touched
  (:meth:`MatchingEngine.watch_changes`); each of them is re-read and sent if
  its size inside the window differs from what was last published;
* the window's edge is the ``levels``-th best price. While it stays put, a
  level that was not touched cannot enter or leave the window. When it moves
  (levels added or removed above it, or a side growing past or shrinking
  below ``levels``), the whole side is compared against what was published,
  so a level sliding in or out of the window is sent too.

A delta with no level is never sent: nothing changed.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from mmkit.model import ZERO, Side
from mmkit.sim.matching import MatchingEngine

__all__ = ["BookFeed", "Levels"]

Levels = tuple[tuple[Decimal, Decimal], ...]


class _SideState:
    """What the subscriber holds of one side: price -> size, and the window's edge when it was sent."""

    __slots__ = ("edge", "levels")

    def __init__(self) -> None:
        self.levels: dict[Decimal, Decimal] = {}
        self.edge: Decimal | None = None


class BookFeed:
    """Snapshots and level deltas of one matching engine's top ``levels`` levels a side."""

    def __init__(self, engine: MatchingEngine, levels: int) -> None:
        if levels < 1:
            raise ValueError(f"levels must be at least 1, got {levels}")
        self.engine = engine
        self.levels = levels
        self.seq = 0
        self._sides = {Side.BUY: _SideState(), Side.SELL: _SideState()}
        engine.watch_changes()

    def snapshot(self) -> tuple[int, Levels, Levels]:
        """(seq, bids, asks): the full window, best first; deltas from now on follow on from ``seq``."""
        self.engine.take_changes()  # what the snapshot shows needs no delta
        self.seq += 1
        out = []
        for side, state in self._sides.items():
            depth = self.engine.depth(side, self.levels)
            state.levels = dict(depth)
            state.edge = self._edge(side)
            out.append(tuple(depth))
        return self.seq, out[0], out[1]

    def delta(self) -> tuple[int, Levels, Levels] | None:
        """(seq, bids, asks) of the levels changed since the last snapshot or delta; None when none did."""
        changed_bids, changed_asks = self.engine.take_changes()
        bids = self._side_delta(Side.BUY, changed_bids)
        asks = self._side_delta(Side.SELL, changed_asks)
        if not bids and not asks:
            return None
        self.seq += 1
        return self.seq, bids, asks

    def _edge(self, side: Side) -> Decimal | None:
        """The worst price inside the window, None while the side has no more levels than the window."""
        if self.engine.levels_count(side) <= self.levels:
            return None
        return self.engine.nth_price(side, self.levels)

    def _side_delta(self, side: Side, changed: Iterable[Decimal]) -> Levels:
        state = self._sides[side]
        edge = self._edge(side)
        if edge != state.edge:
            state.edge = edge
            return self._reconcile(side, state)
        engine, published = self.engine, state.levels
        out: list[tuple[Decimal, Decimal]] = []
        for price in changed:
            inside = edge is None or (price >= edge if side is Side.BUY else price <= edge)
            qty = engine.level_qty(side, price) if inside else ZERO
            if published.get(price, ZERO) != qty:
                out.append((price, qty))
                if qty:
                    published[price] = qty
                else:
                    del published[price]
        out.sort(reverse=side is Side.BUY)
        return tuple(out)

    def _reconcile(self, side: Side, state: _SideState) -> Levels:
        """The window's edge moved: compare the whole window with what was published."""
        window = dict(self.engine.depth(side, self.levels))
        published = state.levels
        out = [(price, qty) for price, qty in window.items() if published.get(price) != qty]
        out.extend((price, ZERO) for price in published if price not in window)
        state.levels = window
        out.sort(reverse=side is Side.BUY)
        return tuple(out)
