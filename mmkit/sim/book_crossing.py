"""The recorded levels an order priced ``limit`` would take: the replay venue's one read of a crossing book.

Why a module of its own: the replay venue reads it when an order of ours
arrives crossing (it takes as taker) and when the recorded book moves
through a resting order of ours (what was offered through its price caps
its fill); both are a question about the book alone.
"""

from __future__ import annotations

from decimal import Decimal

from mmkit.book.book import OrderBook
from mmkit.model import Level, Side

_BUY, _SELL = Side.BUY, Side.SELL

#: An order crossing the opposite best by fewer ticks than this reads the sizes at those ticks.
_PROBE_SPAN = 64


def _reads_ticks(span: int, levels: int) -> bool:
    """Whether the ``span + 1`` ticks are read one by one rather than a side of ``levels`` levels ranked.

    A read per tick costs about as much as one level's share of the ranking: read when the ticks are
    few, or no more than the levels.
    """
    return span < _PROBE_SPAN or span <= levels


def levels_through(book: OrderBook, side: Side, limit: Decimal | None, limit_tick: int | None) -> list[Level]:
    """Opposite-side levels (Decimal, best first) through ``limit``, given too in the book's ticks (None: off the grid).

    On the grid the limit is compared in ticks (the same order as the
    prices: a tick is ``increment x tick`` exactly); off it, in Decimal.
    An order that crosses by fewer ticks than the opposite side has levels
    (nearly every one that crosses) reads the sizes at those ticks instead
    of ranking that side's levels (``iter_levels_int``, a Python-level
    pass over every level, ~0.3 ms at Binance depth): the book keeps no
    empty level, so the ticks with a size are exactly its levels there.
    """
    buy = side is _BUY
    if limit_tick is not None:
        best = book.best_ask_int() if buy else book.best_bid_int()
        if best is None:
            return []
        span = limit_tick - best if buy else best - limit_tick
        if span < 0:
            return []  # the opposite best is beyond the limit: most orders
        if _reads_ticks(span, book.ask_count if buy else book.bid_count):
            opposite, step = (_SELL, 1) if buy else (_BUY, -1)
            size_at, to_price, to_size = book.size_at_int, book.price_to_decimal, book.size_to_decimal
            return [
                (to_price(tick), to_size(lots))
                for tick in range(best, limit_tick + step, step)
                if (lots := size_at(opposite, tick))
            ]

    def beyond(tick: int) -> bool:
        if limit is None:
            return False
        if limit_tick is not None:
            return tick > limit_tick if buy else tick < limit_tick
        price = book.price_to_decimal(tick)
        return price > limit if buy else price < limit

    # Most orders do not cross: the opposite best says so before the book is walked.
    best = book.best_ask_int() if buy else book.best_bid_int()
    if best is None or beyond(best):
        return []
    taken: list[Level] = []
    for tick, lots in book.iter_levels_int(_SELL if buy else _BUY):
        if beyond(tick):
            break
        taken.append((book.price_to_decimal(tick), book.size_to_decimal(lots)))
    return taken
