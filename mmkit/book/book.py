"""An L2 order book: Decimal at its edge, integers inside.

Why integers: the book is the hottest loop of the engine (every venue diff
lands here), and Python ints hash and compare several times faster than
Decimals. Prices are stored as multiples of ``price_increment`` and sizes as
multiples of ``size_increment``; conversion happens only where a caller asks
for a Decimal (best_bid, depth, vwap...), or once per level in
:meth:`OrderBook.apply_delta`.

The integer levels and best prices live in a core (:mod:`mmkit.book.levels`:
dicts plus windowed heaps; a sortedcontainers book measured 3-4x slower on the
recorded Binance stream, see bench/bench_book.py), which has a compiled twin
picked by :func:`mmkit._speedups.levels_class` (``MMKIT_PURE_PYTHON=1`` keeps
the pure one). Both give the same levels and best prices after every update
(tests/unit/book/test_levels_equivalence.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from decimal import Decimal

from mmkit._speedups import levels_class
from mmkit.book.levels import HEAP_WINDOW_TICKS, IntLevel
from mmkit.model import BookDelta, BookSnapshot, Level, ScaledLevels, Side

__all__ = ["HEAP_WINDOW_TICKS", "IntLevel", "OffGridError", "OrderBook"]


class OffGridError(ValueError):
    """A price or size is not a whole multiple of the book's resolution.

    Raised rather than rounded: silently moving a level would make the book
    disagree with the venue without anyone noticing.
    """


#: Entries a scaler remembers before it starts over (prices wander; a bound keeps memory flat).
_MEMO_SIZE = 1 << 16


class _Scaler:
    """Exact Decimal <-> int conversion for one increment, memoized by value.

    Why a memo: a recorded stream repeats its prices and sizes (the shared
    Binance recording converts 600k Decimals with ~77k distinct values), and
    a dict hit costs a tenth of the exact conversion. Keys are values, so
    Decimal("1.5") and Decimal("1.50") share an entry, which is sound because
    the result is the same integer. Only successful conversions are kept.
    """

    __slots__ = ("_exp", "increment", "memo", "what")

    def __init__(self, increment: Decimal, what: str) -> None:
        if not isinstance(increment, Decimal) or increment <= 0:
            raise ValueError(f"{what} increment must be a positive Decimal, got {increment!r}")
        self.increment = increment
        self.what = what
        # A power of ten (0.01, 0.00000001, 1) converts by shifting the exponent: exact and fast.
        normalized = increment.normalize()
        _sign, digits, exponent = normalized.as_tuple()
        self._exp: int | None = -int(exponent) if digits == (1,) else None
        self.memo: dict[Decimal, int] = {}

    def to_int(self, value: Decimal) -> int:
        memo = self.memo
        as_int = memo.get(value)
        if as_int is not None:
            return as_int
        scaled = value.scaleb(self._exp) if self._exp is not None else value / self.increment
        as_int = int(scaled)
        if as_int != scaled:
            raise OffGridError(f"{self.what} {value} is not a multiple of {self.increment}")
        if len(memo) >= _MEMO_SIZE:
            memo.clear()
        memo[value] = as_int
        return as_int

    def to_decimal(self, value: int) -> Decimal:
        return self.increment * value


class OrderBook:
    """One instrument's L2 book; implements :class:`mmkit.strategy.BookView`.

    ``Side.BUY`` is the bid side and ``Side.SELL`` the ask side throughout.
    The book itself does not judge sequence numbers; :class:`OrderBookTracker`
    does. ``seq`` is whatever the last snapshot/delta said.
    """

    __slots__ = (
        "_levels",
        "_price",
        "_size",
        "seq",
        "symbol",
        "ts_event",
        "venue",
    )

    def __init__(
        self,
        price_increment: Decimal,
        size_increment: Decimal,
        venue: str = "",
        symbol: str = "",
    ) -> None:
        self._price = _Scaler(price_increment, "price")
        self._size = _Scaler(size_increment, "size")
        self.venue = venue
        self.symbol = symbol
        #: The integer levels and best prices (pure or compiled core: same results, see the module docstring).
        self._levels = levels_class()()
        #: Sequence number of the last snapshot or delta applied (-1: none yet).
        self.seq = -1
        #: Venue time of the last snapshot or delta applied (0: none yet).
        self.ts_event = 0

    # ------------------------------------------------------------------ properties

    @property
    def price_increment(self) -> Decimal:
        return self._price.increment

    @property
    def size_increment(self) -> Decimal:
        return self._size.increment

    @property
    def bid_count(self) -> int:
        return self._levels.count(Side.BUY)

    @property
    def ask_count(self) -> int:
        return self._levels.count(Side.SELL)

    def __repr__(self) -> str:
        return (
            f"OrderBook({self.venue}:{self.symbol} seq={self.seq} bid={self.best_bid()} ask={self.best_ask()} "
            f"levels={self.bid_count}/{self.ask_count})"
        )

    # ------------------------------------------------------------------ conversion

    def price_to_int(self, price: Decimal) -> int:
        return self._price.to_int(price)

    def tick_of(self, price: Decimal) -> int | None:
        """``price`` in ticks, or None when it is off the grid (a memo hit inline: a replay asks per trade)."""
        scaler = self._price
        tick = scaler.memo.get(price)
        if tick is not None:
            return tick
        try:
            return scaler.to_int(price)
        except OffGridError:
            return None

    def size_to_int(self, size: Decimal) -> int:
        return self._size.to_int(size)

    def price_to_decimal(self, price: int) -> Decimal:
        return self._price.to_decimal(price)

    def size_to_decimal(self, size: int) -> Decimal:
        return self._size.to_decimal(size)

    def _levels_to_int(self, levels: Iterable[Level]) -> list[IntLevel]:
        price, size = self._price, self._size
        price_memo, size_memo = price.memo, size.memo
        # Memo hits inline (most levels); a miss goes through the checked conversion.
        out = [
            (
                p_int if (p_int := price_memo.get(p)) is not None else price.to_int(p),
                q_int if (q_int := size_memo.get(q)) is not None else size.to_int(q),
            )
            for p, q in levels
        ]
        for p, q in out:
            if q < 0 or p <= 0:
                raise ValueError(f"invalid level price={p} size={q} (ticks/lots) in {self.venue}:{self.symbol}")
        return out

    # ------------------------------------------------------------------ updates

    def clear(self) -> None:
        """Forget every level (e.g. when the tracker invalidates the book)."""
        self._levels.clear()
        self.seq = -1
        self.ts_event = 0

    def copy(self) -> OrderBook:
        """A new book with this one's grid, venue, symbol, levels, ``seq`` and ``ts_event``.

        Why: a replay backtest keeps the recorded venue's book and the reference tracker's book as one
        object while they are in lockstep (:mod:`mmkit.backtest.shared_book`), and hands the venue a copy
        the moment they may diverge. The copy has its own scalers (fresh memos: a memo is only a cache)
        and its own levels core of the same kind (pure or compiled).
        """
        twin = OrderBook(self._price.increment, self._size.increment, venue=self.venue, symbol=self.symbol)
        core = self._levels
        twin._levels = type(core)()
        twin._levels.set_levels(core.levels(Side.BUY), core.levels(Side.SELL))
        twin.seq = self.seq
        twin.ts_event = self.ts_event
        return twin

    def same_levels(self, other: OrderBook) -> bool:
        """True when ``other`` is on the same grid and shows exactly the same levels (``seq``, time not compared)."""
        if self._price.increment != other._price.increment or self._size.increment != other._size.increment:
            return False
        ours, theirs = self._levels, other._levels
        return all(
            ours.count(side) == theirs.count(side) and ours.levels(side) == theirs.levels(side)
            for side in (Side.BUY, Side.SELL)
        )

    def _on_grid(self, scaled: ScaledLevels | None) -> bool:
        """True when ``scaled`` (a reader's pre-scaled levels) is on this book's grid and can be used as is."""
        if scaled is None:
            return False
        price, size = scaled.price_increment, scaled.size_increment
        ours_price, ours_size = self._price.increment, self._size.increment
        return (price is ours_price or price == ours_price) and (size is ours_size or size == ours_size)

    def int_levels(self, event: BookSnapshot | BookDelta) -> tuple[Sequence[IntLevel], Sequence[IntLevel]]:
        """``event``'s (bids, asks) in this book's ticks and lots.

        Its :class:`ScaledLevels` as they are when they are on this book's grid
        (the reader checked them); otherwise each Decimal level is converted
        and checked here, and :class:`OffGridError` is raised before anything
        is applied.
        """
        scaled = event.scaled
        if scaled is not None and (
            (scaled.price_increment is self._price.increment and scaled.size_increment is self._size.increment)
            or self._on_grid(scaled)
        ):
            return scaled.bids, scaled.asks
        return self._levels_to_int(event.bids), self._levels_to_int(event.asks)

    def apply_snapshot(self, snapshot: BookSnapshot) -> None:
        """Replace the whole book with ``snapshot`` (zero-size levels in a snapshot are ignored)."""
        bids, asks = self.int_levels(snapshot)
        self.set_snapshot_int(bids, asks, snapshot.seq)
        self.ts_event = snapshot.ts_event

    def set_snapshot_int(self, bids: Iterable[IntLevel], asks: Iterable[IntLevel], seq: int) -> None:
        """Integer form of :meth:`apply_snapshot`: replace every level, heaps rebuilt once."""
        self._levels.set_levels(bids, asks)
        self.seq = seq

    def apply_delta(self, delta: BookDelta) -> None:
        """Apply one venue diff: a size replaces the level, size 0 deletes it (missing level: no-op).

        A delta carrying :class:`ScaledLevels` on this book's grid is applied
        from those integers (the reader checked them); otherwise each Decimal
        level is converted and checked here.
        """
        bids, asks = self.int_levels(delta)
        self._levels.apply(bids, asks)
        self.seq = delta.seq
        self.ts_event = delta.ts_event

    def apply_levels_int(self, bids: Iterable[IntLevel], asks: Iterable[IntLevel], seq: int | None = None) -> None:
        """The hot path: apply integer (price, size) levels; size 0 deletes.

        No validation here (callers convert through the checked Decimal path or
        a trusted parser): this loop is what the benchmark measures.
        """
        self._levels.apply(bids, asks)
        if seq is not None:
            self.seq = seq

    def apply_watched_int(
        self, bids: Sequence[IntLevel], asks: Sequence[IntLevel], seq: int, watched: Sequence[tuple[bool, int]]
    ) -> tuple[list[int | None], int | None, int | None]:
        """:meth:`apply_levels_int` for a caller that watches some levels: see ``PyLevels.apply_watched``.

        Returns, per watched (is bid, price ticks), what the level showed just before the diff last
        changed it (None: not listed), then the best bid and ask after the diff (ticks).
        """
        answer: tuple[list[int | None], int | None, int | None] = self._levels.apply_watched(bids, asks, watched)
        self.seq = seq
        return answer

    # ------------------------------------------------------------------ top of book (int)

    def best_bid_int(self) -> int | None:
        """Best bid price in ticks (amortized O(1))."""
        return self._levels.best_bid()

    def best_ask_int(self) -> int | None:
        """Best ask price in ticks (amortized O(1))."""
        return self._levels.best_ask()

    def size_at_int(self, side: Side, price: int) -> int:
        """Size displayed at ``price`` (ticks) on ``side``, in lots; 0 where there is no level."""
        return self._levels.size_at(side, price)

    def best_bid_level_int(self) -> IntLevel | None:
        price = self.best_bid_int()
        return None if price is None else (price, self._levels.size_at(Side.BUY, price))

    def best_ask_level_int(self) -> IntLevel | None:
        price = self.best_ask_int()
        return None if price is None else (price, self._levels.size_at(Side.SELL, price))

    def is_crossed(self) -> bool:
        """True when the best bid is at or above the best ask (crossed or locked).

        A venue's own book is never locked, so for a tracker either state means
        we have missed or misapplied an update.
        """
        return self._levels.is_crossed()

    # ------------------------------------------------------------------ BookView (Decimal)

    def _to_level(self, level: IntLevel | None) -> Level | None:
        if level is None:
            return None
        return (self._price.to_decimal(level[0]), self._size.to_decimal(level[1]))

    def best_bid(self) -> Level | None:
        return self._to_level(self.best_bid_level_int())

    def best_ask(self) -> Level | None:
        return self._to_level(self.best_ask_level_int())

    def mid(self) -> Decimal | None:
        bid = self.best_bid_int()
        ask = self.best_ask_int()
        if bid is None or ask is None:
            return None
        return self._price.to_decimal(bid + ask) / 2

    def spread(self) -> Decimal | None:
        """Best ask minus best bid (negative when crossed), None if a side is empty."""
        bid = self.best_bid_int()
        ask = self.best_ask_int()
        if bid is None or ask is None:
            return None
        return self._price.to_decimal(ask - bid)

    def iter_levels_int(self, side: Side) -> Iterator[IntLevel]:
        """Levels of ``side`` from the best outwards.

        Tries the top 32 by partial selection first (what quoting usually
        needs), then falls back to one full sort only if the caller reads on.
        """
        core = self._levels
        first = core.levels(side, 32)
        yield from first
        if len(first) < core.count(side):
            yield from core.levels(side)[len(first) :]

    def levels_int(self, side: Side, levels: int | None = None) -> list[IntLevel]:
        """The best ``levels`` levels of ``side`` (all when None), best first, in ticks/lots."""
        result: list[IntLevel] = self._levels.levels(side, levels)
        return result

    def depth(self, side: Side, levels: int) -> list[Level]:
        to_px, to_sz = self._price.to_decimal, self._size.to_decimal
        return [(to_px(p), to_sz(q)) for p, q in self.levels_int(side, levels)]

    def _walk(self, side: Side, qty: Decimal) -> tuple[Decimal, Decimal] | None:
        """Take ``qty`` from ``side``: (notional, worst price), or None if the side is too thin."""
        if qty <= 0:
            raise ValueError(f"quantity must be positive, got {qty}")
        remaining = qty
        notional = Decimal(0)
        to_px, to_sz = self._price.to_decimal, self._size.to_decimal
        for price_int, size_int in self.iter_levels_int(side):
            price = to_px(price_int)
            take = min(remaining, to_sz(size_int))
            notional += price * take
            remaining -= take
            if remaining <= 0:
                return notional, price
        return None

    def vwap(self, side: Side, qty: Decimal) -> Decimal | None:
        """Average price to take ``qty`` from ``side`` (BUY side = bids), None if too thin."""
        walked = self._walk(side, qty)
        return None if walked is None else walked[0] / qty

    def price_for_volume(self, side: Side, qty: Decimal) -> Decimal | None:
        """Worst price reached when taking ``qty`` from ``side``, None if too thin."""
        walked = self._walk(side, qty)
        return None if walked is None else walked[1]
