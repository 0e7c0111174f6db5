"""The simplest correct answer to "which opposite levels does a limit order cross", for the venue tests."""

from __future__ import annotations

from decimal import Decimal

from mmkit.model import Side

Level = tuple[Decimal, Decimal]


def naive_levels_through(book: dict[Side, dict[Decimal, Decimal]], side: Side, limit: Decimal | None) -> list[Level]:
    """Opposite-side levels of ``book`` a ``side`` order priced ``limit`` takes, best first, by a sorted walk."""
    opposite = book[side.opposite]
    out = []
    for price in sorted(opposite, reverse=side is Side.SELL):
        if limit is not None and (price > limit if side is Side.BUY else price < limit):
            break
        out.append((price, opposite[price]))
    return out
