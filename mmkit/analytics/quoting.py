"""Quote uptime from per-tick samples of our best bid and ask.

A tick counts as **two-sided** when we had a live bid *and* a live ask at
its end, **one-sided or better** when at least one side was live. The old
``quoting_ticks`` counted every tick on which quoting was *enabled*, whether
or not any order rested, which read 100 % while the book was quoted on both
sides 15 % of the time; it survives as ``quoting_enabled_ticks``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


def uptime(bid: Sequence[float], ask: Sequence[float]) -> dict[str, Any]:
    """Tick counts and percentages of two-sided and any-side quoting (NaN = no live order on that side)."""
    n = len(bid)
    two = sum(1 for b, a in zip(bid, ask, strict=True) if not (math.isnan(b) or math.isnan(a)))
    any_side = sum(1 for b, a in zip(bid, ask, strict=True) if not (math.isnan(b) and math.isnan(a)))
    return {
        "ticks": n,
        "two_sided_ticks": two,
        "any_side_ticks": any_side,
        "two_sided_uptime_pct": None if n == 0 else round(100 * two / n, 3),
        "any_side_uptime_pct": None if n == 0 else round(100 * any_side / n, 3),
    }


def touch_distance_bps(mid: Sequence[float], bid: Sequence[float], ask: Sequence[float]) -> dict[str, Any]:
    """How far our best bid and best ask rested from the fair mid, in bps, over the ticks each side was live.

    Why: a run with few or no fills is mostly a run quoted too far away, and
    nothing else in the report says how far. Per side: the ticks counted, the
    nearest and the median distance (positive = on our side of the mid; a
    negative one is a quote through the mid). None for a side never live.
    """
    def side(prices: Sequence[float], sign: float) -> dict[str, Any] | None:
        distances = sorted(sign * (m - p) / m * 10_000 for m, p in zip(mid, prices, strict=True)
                           if not (math.isnan(m) or math.isnan(p)) and m > 0)
        if not distances:
            return None
        n = len(distances)
        middle = distances[n // 2] if n % 2 else (distances[n // 2 - 1] + distances[n // 2]) / 2
        return {"ticks": n, "min": round(distances[0], 4), "median": round(middle, 4)}

    return {"bid": side(bid, 1.0), "ask": side(ask, -1.0)}
