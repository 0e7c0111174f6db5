"""Markouts: how the mid moved after each of our fills.

For a fill at time ``t`` (when the engine learned of it, ``ts_recv``, on the
run's clock, which is also the time base of the mid samples) and a horizon
``h``, the markout is ``side · (mid(t + h) − price) / price · 10 000`` bps,
where ``mid(x)`` is the last sampled mid at or before ``x``. Positive means
the market moved our way (we bought and the mid rose above our price); a
maker whose markouts turn negative with the horizon is being picked off
(adverse selection). Horizon 0 is the edge at the fill against the mid.

Fills whose horizon runs past the last sample are left out of that horizon
(the count ``n`` says how many were used).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from typing import Any

from mmkit.model import NS_PER_S, Fill, Side

#: The headline horizons (seconds).
HORIZONS_S: tuple[int, ...] = (1, 10, 60)
#: The horizons of the markout curve (seconds).
CURVE_HORIZONS_S: tuple[int, ...] = (0, 1, 2, 5, 10, 20, 30, 60)


def mid_at(ts: Sequence[int], mid: Sequence[float], t: int) -> float | None:
    """The last sampled mid at or before ``t`` (None before the first sample or where it was unknown)."""
    i = bisect.bisect_right(ts, t) - 1
    if i < 0:
        return None
    value = mid[i]
    return None if math.isnan(value) else value


def fill_markout(fill: Fill, ts: Sequence[int], mid: Sequence[float], horizon_s: float) -> float | None:
    """One fill's markout at one horizon, in bps (None when the mid is unknown or past the samples)."""
    if not ts:
        return None
    at = fill.ts_recv + int(horizon_s * NS_PER_S)
    if at > ts[-1]:
        return None
    later = mid_at(ts, mid, at)
    price = float(fill.price)
    if later is None or price <= 0:
        return None
    return fill.side.sign * (later - price) / price * 10_000


def _mean(values: Sequence[float]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def markout_table(
    fills: Sequence[Fill], ts: Sequence[int], mid: Sequence[float], horizons_s: Sequence[int] = CURVE_HORIZONS_S
) -> dict[str, Any]:
    """Mean markout (bps) and fill count per horizon, for buys, sells and all fills.

    Returns ``{"horizons_s": [...], "buy": {"mean_bps": [...], "n": [...]}, "sell": ..., "all": ...}``
    (lists aligned with ``horizons_s``), quote fills only (hedges are left out).
    """
    quote_fills = [f for f in fills if not f.is_hedge]
    out: dict[str, Any] = {"horizons_s": list(horizons_s)}
    # each fill's markouts once (a bisect each), then grouped by side
    values = [[fill_markout(f, ts, mid, h) for h in horizons_s] for f in quote_fills]
    groups = {
        "buy": [v for f, v in zip(quote_fills, values, strict=True) if f.side is Side.BUY],
        "sell": [v for f, v in zip(quote_fills, values, strict=True) if f.side is Side.SELL],
        "all": values,
    }
    for name, rows in groups.items():
        means: list[float | None] = []
        counts: list[int] = []
        for i in range(len(horizons_s)):
            column = [value for row in rows if (value := row[i]) is not None]
            means.append(_mean(column))
            counts.append(len(column))
        out[name] = {"mean_bps": means, "n": counts}
    return out


def headline(table: dict[str, Any], horizons_s: Sequence[int] = HORIZONS_S) -> dict[str, float | None]:
    """``{"buy_1s_bps": .., "sell_1s_bps": .., "all_1s_bps": .., ...}`` from a :func:`markout_table`."""
    out: dict[str, float | None] = {}
    index = {h: i for i, h in enumerate(table["horizons_s"])}
    for h in horizons_s:
        for side in ("buy", "sell", "all"):
            i = index.get(h)
            out[f"{side}_{h}s_bps"] = None if i is None else table[side]["mean_bps"][i]
    return out
