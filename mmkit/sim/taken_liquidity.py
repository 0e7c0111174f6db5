"""What our orders took from a recorded book, until the recording next changes each level.

Why: the recorded venue cannot change the recording, so after one of our
orders takes a displayed level the recorded book still shows it. Reading it
again as liquidity made fills that could not have happened: a second order
took the same lot, and the rest of a crossing order, resting at its limit,
was filled in full as a maker "because the book crossed it" by the very
levels it had just emptied (buying 5 where 2 were offered). This ledger
keeps, per recorded level, the quantity we took from it; what a level can
still give is its displayed size less that. When the recording lists the
level again (a diff, a snapshot), its new size is the venue's word and the
ledger forgets the level: the recording never shows our trades, so this is
the best that can be known (documented in docs/backtesting.md, "Fill
assumptions").
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from typing import Any

from mmkit.book.book import IntLevel, OrderBook
from mmkit.model import ZERO, Level, Side

__all__ = ["TakenLiquidity"]


class TakenLiquidity:
    """Per (symbol, book side) and price in the book's ticks: the quantity our orders took there.

    ``tables`` is one dict for the ledger's life, mutated in place and empty
    exactly when nothing is taken (the compiled replay loop holds it and
    hands every diff to the Python path while it is not empty).
    """

    def __init__(self, drop_listed: Callable[[dict[int, Any], Sequence[IntLevel]], None]) -> None:
        self.tables: dict[tuple[str, Side], dict[int, Decimal]] = {}
        self._drop_listed = drop_listed

    def __bool__(self) -> bool:
        return bool(self.tables)

    def holds(self, symbol: str) -> bool:
        """Whether anything is taken from either side of ``symbol``'s book."""
        tables = self.tables
        return bool(tables) and ((symbol, Side.BUY) in tables or (symbol, Side.SELL) in tables)

    def take(self, symbol: str, side: Side, tick: int, qty: Decimal) -> None:
        """Our order took ``qty`` displayed at ``tick`` on the ``side`` of the book (asks: SELL)."""
        table = self.tables.setdefault((symbol, side), {})
        table[tick] = table.get(tick, ZERO) + qty

    def left(self, book: OrderBook, symbol: str, side: Side, tick: int) -> Decimal:
        """What the level at ``tick`` still offers us: its displayed size less what we took (never below 0)."""
        lots = book.size_at_int(side, tick)
        displayed = book.size_to_decimal(lots) if lots else ZERO
        table = self.tables.get((symbol, side))
        taken = ZERO if table is None else table.get(tick, ZERO)
        return max(displayed - taken, ZERO)

    def available(self, book: OrderBook, symbol: str, side: Side, levels: list[Level]) -> list[Level]:
        """``levels`` (displayed, on ``side``, best first) less what we took; emptied levels left out."""
        table = self.tables.get((symbol, side))
        if not table:
            return levels
        out: list[Level] = []
        for price, size in levels:
            tick = book.tick_of(price)
            taken = ZERO if tick is None else table.get(tick, ZERO)
            if size > taken:
                out.append((price, size - taken))
        return out

    def best(self, book: OrderBook, symbol: str, side: Side) -> int | None:
        """The best tick of ``side`` that still offers something (None: that side is empty or all taken)."""
        table = self.tables.get((symbol, side))
        best = book.best_bid_int() if side is Side.BUY else book.best_ask_int()
        if not table or best is None or best not in table:
            return best
        for tick, lots in book.iter_levels_int(side):
            taken = table.get(tick)
            if taken is None or book.size_to_decimal(lots) > taken:
                return tick
        return None

    def forget_listed(self, symbol: str, bids: Sequence[IntLevel], asks: Sequence[IntLevel]) -> None:
        """A recorded diff listed these levels: their new displayed sizes replace what we took there."""
        for side, levels in ((Side.BUY, bids), (Side.SELL, asks)):
            key = (symbol, side)
            table = self.tables.get(key)
            if table and levels:
                self._drop_listed(table, levels)
                if not table:
                    del self.tables[key]

    def forget(self, symbol: str, sides: Iterable[Side] = (Side.BUY, Side.SELL)) -> None:
        """A recorded snapshot replaced ``symbol``'s book: nothing we took there is shown any more."""
        for side in sides:
            self.tables.pop((symbol, side), None)
