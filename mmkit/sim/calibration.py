"""What the recorded trade tape shows, by distance from the mid: the yardstick of the synthetic takers.

Why: a simulated venue's PnL is decided by its taker flow. The flow of
:class:`mmkit.sim.flow.SyntheticMarket` is driven trade by trade by the
recorded tape; this records, over the run, how far from the reference mid
the tape's trades printed (bps, on the aggressor's side), how often
(trades per second of the span) and how big, next to the synthetic takers
it sent and what they filled. The report prints the table, so a reader sees
that the flow never reached beyond what the tape shows (the takers' reach
beyond a print is 0 bps in backtests unless ``taker_reach_bps`` says
otherwise, and then the report says so).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

#: Upper edges (bps from the mid) of the distance bins; the last bin is open.
BIN_EDGES_BPS: tuple[float, ...] = (0.5, 1.0, 2.0, 5.0, 10.0, 25.0)


def _bin(distance_bps: float) -> int:
    for index, edge in enumerate(BIN_EDGES_BPS):
        if distance_bps < edge:
            return index
    return len(BIN_EDGES_BPS)


def _label(index: int) -> str:
    lo = 0.0 if index == 0 else BIN_EDGES_BPS[index - 1]
    if index == len(BIN_EDGES_BPS):
        return f">= {lo:g} bps"
    return f"{lo:g}-{BIN_EDGES_BPS[index]:g} bps"


class TapeStats:
    """Per distance bin: tape trades, their size, and the synthetic takers sent and filled."""

    def __init__(self) -> None:
        size = len(BIN_EDGES_BPS) + 1
        self.trades = [0] * size
        self.qty = [Decimal(0)] * size
        self.max_qty = [Decimal(0)] * size
        self.takers = [0] * size
        self.taker_fills = [0] * size
        self.max_distance_bps = 0.0

    def on_trade(self, price: Decimal, qty: Decimal, buy: bool, mid: Decimal) -> int:
        """Count one tape trade; returns its bin (for :meth:`on_taker`)."""
        distance = float((price - mid) / mid) * 10_000.0
        if not buy:
            distance = -distance
        distance = max(distance, 0.0)  # a print on the passive side of the mid counts as at the mid
        self.max_distance_bps = max(self.max_distance_bps, distance)
        index = _bin(distance)
        self.trades[index] += 1
        self.qty[index] += qty
        self.max_qty[index] = max(self.max_qty[index], qty)
        return index

    def on_taker(self, index: int, fills: int) -> None:
        self.takers[index] += 1
        self.taker_fills[index] += fills

    def as_dict(self, span_ns: int) -> dict[str, Any]:
        """The table for report.json: one row per bin that saw a trade."""
        span_s = max(span_ns / 1e9, 1e-9)
        rows = []
        for index, count in enumerate(self.trades):
            if not count:
                continue
            rows.append({
                "distance": _label(index),
                "tape_trades": count,
                "tape_rate_per_s": round(count / span_s, 4),
                "tape_mean_qty": str((self.qty[index] / count).quantize(Decimal("0.00000001"))),
                "tape_max_qty": str(self.max_qty[index]),
                "takers_sent": self.takers[index],
                "taker_fills": self.taker_fills[index],
            })
        return {"bins": rows, "tape_trades": sum(self.trades), "max_distance_bps": round(self.max_distance_bps, 3)}


def format_flow(flow: dict[str, Any]) -> str:
    """Terminal block: the fitted taker flow next to the tape."""
    lines = ["── synthetic taker flow, fitted on the recorded tape ──",
             f"  reach beyond a print {flow['reach_bps']} bps, participation {flow['participation']}, "
             f"size {flow['size_scale']} x tape (cap {flow['max_taker_qty']}); tape trades {flow['tape_trades']:,}, "
             f"farthest print {flow['max_distance_bps']} bps from mid"]
    for row in flow["bins"]:
        lines.append(f"  {row['distance']:>12}  tape {row['tape_trades']:>6,} ({row['tape_rate_per_s']:.3f}/s, "
                     f"mean {row['tape_mean_qty']}, max {row['tape_max_qty']})  takers {row['takers_sent']:>6,}  "
                     f"fills {row['taker_fills']:>6,}")
    return "\n".join(lines)


__all__ = ["BIN_EDGES_BPS", "TapeStats", "format_flow"]
