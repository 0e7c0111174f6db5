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
