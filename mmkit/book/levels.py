"""The integer core of an order book: (price ticks -> size lots) per side, and the best prices.

Why a core apart from :class:`mmkit.book.book.OrderBook`: this is the part
every recorded level update goes through, so it has a compiled twin
(``mmkit._speedups._levels.CLevels``, Cython, levels in C hash maps) with the
same methods and the same results. :func:`mmkit._speedups.levels_class` picks one; the book keeps
the Decimal edge (conversion, BookView) in Python around either.

Why dicts plus lazily-cleaned heaps: a level update is then one dict write
(plus a heap push only when a *new* price appears), and the top of book is the
heap root once stale roots (prices no longer in the dict) have been popped.
That is O(1) amortized per update with no sort per delta. Stale entries deep
in a heap are harmless; the heaps are rebuilt from the dicts when their
entries outnumber the book's levels four times over, which bounds memory.

Why a window: a deep book churns far from the top (on the shared Binance
recording three quarters of the new bid prices appear more than 1,000 ticks
below the best), and a heap push is about 40 % of a level update. So a heap
holds only the prices on the good side of a bound set ``HEAP_WINDOW_TICKS``
from the best when it was last built (bids: a floor, asks: a ceiling); deeper
levels live in the dict alone. The invariant: every live price within the
bound is in the heap. So a live heap root is the best price, and a heap with
no live entry left means every live level lies beyond the bound. It is then
rebuilt from the dict around the new best (O(levels)), which happens once per
``HEAP_WINDOW_TICKS`` the top travels past the bound.
"""

from __future__ import annotations

import heapq
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from mmkit.model import Side

#: Integer level as stored inside the book: (price in ticks, size in lots).
IntLevel = tuple[int, int]

#: Rebuild a heap once it holds this many times more entries than live levels (plus slack).
COMPACT_FACTOR = 4
COMPACT_SLACK = 1024
#: How far from the best price (ticks) a heap holds levels when it is built (see the module docstring).
HEAP_WINDOW_TICKS = 1000
#: Bounds that admit every price (an empty book, before its first rebuild).
NO_FLOOR = -1
NO_CEILING = sys.maxsize


class PyLevels:
    """Both sides of a book in integers, pure Python (the reference the compiled core is tested against).

    ``bids`` and ``asks`` map price (ticks) to size (lots); read them, never
    write them (the heaps would miss a new price). Callers that must work on
    either core use the methods (the compiled core keeps its levels in C).
    """

    __slots__ = ("_ask_ceiling", "_ask_heap", "_bid_floor", "_bid_heap", "_window", "asks", "bids")

    def __init__(self, window: int = HEAP_WINDOW_TICKS) -> None:
        if window <= 0:
            raise ValueError(f"heap window must be positive ticks, got {window}")
        self._window = window
        # Bids: price -> size, heap of *negated* prices (heapq is a min-heap). Asks: price -> size, heap of prices.
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}
        self._bid_heap: list[int] = []
        self._ask_heap: list[int] = []
        # Every live bid >= the floor is in the bid heap, every live ask <= the ceiling in the ask heap.
        self._bid_floor = NO_FLOOR
        self._ask_ceiling = NO_CEILING

    @property
    def bounds(self) -> tuple[int, int]:
        """(bid floor, ask ceiling) of the heap windows (for tests of the window logic)."""
        return self._bid_floor, self._ask_ceiling

    @property
    def heap_entries(self) -> int:
        """Entries in both heaps, stale ones included (for tests of the compaction)."""
        return len(self._bid_heap) + len(self._ask_heap)

    def clear(self) -> None:
        self.bids.clear()
        self.asks.clear()
        self._bid_heap.clear()
        self._ask_heap.clear()
        self._bid_floor = NO_FLOOR
        self._ask_ceiling = NO_CEILING

    def set_levels(self, bids: Iterable[IntLevel], asks: Iterable[IntLevel]) -> None:
        """Replace every level (zero sizes are left out), heaps rebuilt once."""
        self.bids = {p: q for p, q in bids if q}
        self.asks = {p: q for p, q in asks if q}
        self._rebuild_bid_heap()
        self._rebuild_ask_heap()

    def apply(self, bids: Iterable[IntLevel], asks: Iterable[IntLevel]) -> None:
        """The hot path: a size replaces the level, size 0 deletes it (a missing level: no-op)."""
        book = self.bids
        heap = self._bid_heap
        floor = self._bid_floor
        for price, size in bids:
            if size:
                if price >= floor and price not in book:
                    heapq.heappush(heap, -price)
                book[price] = size
            else:
                book.pop(price, None)
        book = self.asks
        heap = self._ask_heap
        ceiling = self._ask_ceiling
        for price, size in asks:
            if size:
                if price <= ceiling and price not in book:
                    heapq.heappush(heap, price)
                book[price] = size
            else:
                book.pop(price, None)
        if len(self._bid_heap) + len(heap) > COMPACT_FACTOR * (len(self.bids) + len(book)) + COMPACT_SLACK:
            self._rebuild_bid_heap()
            self._rebuild_ask_heap()

    def apply_watched(
        self, bids: Sequence[IntLevel], asks: Sequence[IntLevel], watched: Sequence[tuple[bool, int]]
    ) -> tuple[list[int | None], int | None, int | None]:
        """:meth:`apply`, telling what each watched level showed before the diff changed it, and the new best.

        Why one call: the replay venue asks this of every recorded diff while an order of ours rests
        (``watched``: (is bid, price ticks) of each of our levels); the answers are, per watched level,
        :func:`size_before_last_change` of the diff's levels of that side (None when the diff does not
        list it), then the best bid and best ask after the diff, read in that order.
        """
        befores: list[int | None] = [
            size_before_last_change(bids if is_bid else asks, tick, (self.bids if is_bid else self.asks).get(tick, 0))
            for is_bid, tick in watched
        ]
        self.apply(bids, asks)
        return befores, self.best_bid(), self.best_ask()

    def _rebuild_bid_heap(self) -> None:
        """The bid heap anew: every live bid within the window below the best."""
        book = self.bids
        floor = max(book) - self._window if book else NO_FLOOR
        self._bid_floor = floor
        self._bid_heap = [-p for p in book if p >= floor]
        heapq.heapify(self._bid_heap)

    def _rebuild_ask_heap(self) -> None:
        """The ask heap anew: every live ask within the window above the best."""
        book = self.asks
        ceiling = min(book) + self._window if book else NO_CEILING
        self._ask_ceiling = ceiling
        self._ask_heap = [p for p in book if p <= ceiling]
        heapq.heapify(self._ask_heap)

    def best_bid(self) -> int | None:
        """Best bid price in ticks, popping stale heap roots on the way (amortized O(1))."""
        book = self.bids
        heap = self._bid_heap
        while heap:
            price = -heap[0]
            if price in book:
                return price
            heapq.heappop(heap)
        if not book:
            return None
        self._rebuild_bid_heap()  # every live bid lies below the floor: move the window down
        return -self._bid_heap[0]

    def best_ask(self) -> int | None:
        """Best ask price in ticks (amortized O(1))."""
        book = self.asks
        heap = self._ask_heap
        while heap:
            price = heap[0]
            if price in book:
                return price
            heapq.heappop(heap)
        if not book:
            return None
        self._rebuild_ask_heap()  # every live ask lies above the ceiling: move the window up
        return self._ask_heap[0]

    def size_at(self, side: Side, price: int) -> int:
        """Size displayed at ``price`` (ticks) on ``side``, in lots; 0 where there is no level."""
        return (self.bids if side is Side.BUY else self.asks).get(price, 0)

    def count(self, side: Side) -> int:
        """Number of levels on ``side``."""
        return len(self.bids if side is Side.BUY else self.asks)

    def levels(self, side: Side, depth: int | None = None) -> list[IntLevel]:
        """The best ``depth`` levels of ``side`` (all when None), best first."""
        book = self.bids if side is Side.BUY else self.asks
        if depth is None:
            return [(p, book[p]) for p in sorted(book, reverse=side is Side.BUY)]
        pick = heapq.nlargest if side is Side.BUY else heapq.nsmallest
        return [(p, book[p]) for p in pick(depth, book)]

    def is_crossed(self) -> bool:
        """True when the best bid is at or above the best ask (crossed or locked)."""
        bid = self.best_bid()
        if bid is None:
            return False
        ask = self.best_ask()
        return ask is not None and bid >= ask


# -- scans of one diff's levels (the replay venue's per-diff questions; compiled twins in _levels.pyx) --------


def size_before_last_change(levels: Iterable[IntLevel], price: int, current: int) -> int | None:
    """What ``price`` displayed just before ``levels`` last changed it (``current``: before the diff).

    None when ``levels`` does not list ``price``. A price listed twice changes twice: the answer is the
    size before its last listing, which is what the level went from when the diff's effect settled.
    """
    levels = tuple(levels)
    if price not in dict(levels):  # most diffs do not list it: one C-built dict says so
        return None
    before = current
    for level_price, size in levels:
        if level_price == price:
            before = current
            current = size
    return before


def drop_listed(table: dict[int, Any], levels: Iterable[IntLevel]) -> None:
    """Remove from ``table`` every price ``levels`` lists (a key-set intersection, not a pop per level)."""
    if table:
        for price in table.keys() & dict(levels).keys():
            del table[price]
