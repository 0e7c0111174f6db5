"""The synthetic takers' model, fitted per run on the recording's own trade tape.

Why: a simulated venue's PnL is decided by its taker flow, and a flow made of
fixed fudge factors (the takers used to copy half of the prints at a fifth of
their size) can make any strategy look good. The flow of a recorded run is
now *fitted* on that run's tape and nothing else:

* every recorded trade with an aggressor side is placed by its distance from
  the recorded mid at that moment, in bps on the aggressor's side (a buy
  printed 1 bps above the mid is 1 bps away; a print on the passive side of
  the mid counts as 0), into the buckets of :data:`BIN_EDGES_BPS`;
* per bucket the fit keeps the arrival rate (trades per second of the run's
  window), the share of buys, and the size and distance distributions as
  quantiles (:data:`QUANTILES`, nearest rank on the recorded values, so every
  knot is a size or distance the tape really printed).

:class:`mmkit.sim.taker_model.FittedTakers` draws the takers from the fit
and nothing else: arrivals at the fitted rate, each one a print of the fitted
tape resampled whole (its side, its distance from the mid, its size), so every
figure of the table is reproduced in expectation, sizes and distances keep
their joint shape, no taker is bigger than the largest recorded print of its
bucket, and none reaches further from the mid than the farthest print of the
tape (plus ``reach_bps`` when a run asks for more, and the report says so).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any, NamedTuple

import attrs

#: Upper edges (bps from the mid) of the distance buckets; the last bucket is open.
BIN_EDGES_BPS: tuple[float, ...] = (0.5, 1.0, 2.0, 5.0, 10.0, 25.0)
#: Percentiles kept of each bucket's sizes and distances (0 and 100: the smallest and largest printed).
QUANTILES: tuple[int, ...] = (0, 10, 25, 50, 75, 90, 100)

NS_PER_S = 1_000_000_000


def bucket_of(distance_bps: float) -> int:
    """Index of the bucket holding ``distance_bps`` (>= 0)."""
    for index, edge in enumerate(BIN_EDGES_BPS):
        if distance_bps < edge:
            return index
    return len(BIN_EDGES_BPS)


def bucket_label(index: int) -> str:
    lo = 0.0 if index == 0 else BIN_EDGES_BPS[index - 1]
    if index == len(BIN_EDGES_BPS):
        return f">= {lo:g} bps"
    return f"{lo:g}-{BIN_EDGES_BPS[index]:g} bps"


class TapePrint(NamedTuple):
    """One recorded trade as the fit sees it: when, how much, which side took, and the mid at that moment.

    A named tuple: a recording has tens of thousands of them, built before every run.
    """

    ts_ns: int
    price: Decimal
    qty: Decimal
    buy: bool
    mid: Decimal

    @property
    def distance_bps(self) -> float:
        """Distance from the mid on the aggressor's side, in bps (0 for a print on the passive side)."""
        away = (self.price - self.mid) if self.buy else (self.mid - self.price)
        return max(float(away / self.mid) * 10_000.0, 0.0)


@attrs.frozen
class BucketFit:
    """The fitted flow of one distance bucket."""

    index: int
    trades: int
    rate_per_s: float
    buy_share: float
    #: Sizes at :data:`QUANTILES` (recorded values, base units).
    size_q: tuple[Decimal, ...]
    #: Distances from the mid at :data:`QUANTILES` (bps).
    distance_q: tuple[float, ...]
    #: Every print of the bucket as (buy, distance bps, size), in recorded order: what the takers resample.
    samples: tuple[tuple[bool, float, Decimal], ...] = attrs.field(default=(), repr=False)

    @property
    def label(self) -> str:
        return bucket_label(self.index)


@attrs.frozen
class TapeFit:
    """The whole fitted table: per bucket rate, side and size/distance quantiles, over ``window_ns``."""

    window_ns: int
    buckets: tuple[BucketFit, ...]
    #: Trades with an aggressor side that printed while the recorded book had no mid (not in the fit).
    without_mid: int = 0
    #: Trades that carry no aggressor side (not in the fit: their direction is unknown).
    without_side: int = 0

    @property
    def trades(self) -> int:
        return sum(b.trades for b in self.buckets)

    @property
    def rate_per_s(self) -> float:
        return sum(b.rate_per_s for b in self.buckets)

    @property
    def max_distance_bps(self) -> float:
        """The farthest print from the mid in the tape: no taker reaches beyond it (plus an explicit reach)."""
        return max((b.distance_q[-1] for b in self.buckets), default=0.0)

    def to_json(self) -> dict[str, Any]:
        """Everything of the fit, exactly, as JSON data (:meth:`from_json` gives an equal fit back).

        For the recording cache: floats round-trip exactly through JSON's
        ``repr``, sizes are kept as their Decimal text (same digits, same exponent).
        """
        return {
            "window_ns": self.window_ns, "without_mid": self.without_mid, "without_side": self.without_side,
            "buckets": [
                {"index": b.index, "trades": b.trades, "rate_per_s": b.rate_per_s, "buy_share": b.buy_share,
                 "size_q": [str(q) for q in b.size_q], "distance_q": list(b.distance_q),
                 "buy": [int(buy) for buy, _, _ in b.samples], "distance": [d for _, d, _ in b.samples],
                 "size": [str(size) for _, _, size in b.samples]}
                for b in self.buckets
            ],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TapeFit:
        """The fit :meth:`to_json` wrote (raises KeyError, TypeError or ValueError on anything else)."""
        buckets = []
        for b in data["buckets"]:
            sizes: dict[str, Decimal] = {}  # equal texts share one Decimal, as the recording's prints do
            samples = tuple(
                (bool(buy), float(distance), sizes.setdefault(size, Decimal(size)))
                for buy, distance, size in zip(b["buy"], b["distance"], b["size"], strict=True)
            )
            if len(samples) != b["trades"]:
                raise ValueError(f"bucket {b['index']}: {len(samples)} samples for {b['trades']} trades")
            buckets.append(BucketFit(
                index=int(b["index"]), trades=int(b["trades"]), rate_per_s=float(b["rate_per_s"]),
                buy_share=float(b["buy_share"]), size_q=tuple(Decimal(q) for q in b["size_q"]),
                distance_q=tuple(float(q) for q in b["distance_q"]), samples=samples,
            ))
        return cls(int(data["window_ns"]), tuple(buckets), without_mid=int(data["without_mid"]),
                   without_side=int(data["without_side"]))

    def as_dict(self) -> dict[str, Any]:
        """The table for report.json (sizes as exact strings, rates and distances rounded for reading)."""
        return {
            "window_s": round(self.window_ns / NS_PER_S, 3),
            "tape_trades": self.trades,
            "tape_rate_per_s": round(self.rate_per_s, 4),
            "tape_trades_without_mid": self.without_mid,
            "tape_trades_without_side": self.without_side,
            "max_distance_bps": round(self.max_distance_bps, 4),
            "quantiles": list(QUANTILES),
            "bins": [
                {
                    "distance": b.label,
                    "tape_trades": b.trades,
                    "tape_rate_per_s": round(b.rate_per_s, 4),
                    "buy_share": round(b.buy_share, 4),
                    "size_q": [str(q) for q in b.size_q],
                    "distance_q_bps": [round(q, 4) for q in b.distance_q],
                }
                for b in self.buckets
            ],
        }


def quantiles(sorted_values: Sequence[Any], percents: Iterable[int] = QUANTILES) -> tuple[Any, ...]:
    """Nearest-rank percentiles of already sorted values (each one is a value of the sample)."""
    if not sorted_values:
        raise ValueError("no values to take quantiles of")
    last = len(sorted_values) - 1
    return tuple(sorted_values[min(last, max(0, -(-p * len(sorted_values) // 100) - 1))] for p in percents)


def fit_tape(prints: Iterable[TapePrint], window_ns: int, *, without_mid: int = 0, without_side: int = 0) -> TapeFit:
    """Fit the taker table on ``prints`` observed over ``window_ns`` of recorded time."""
    if window_ns <= 0:
        raise ValueError(f"the fit needs a positive window, got {window_ns} ns")
    by_bucket: dict[int, list[TapePrint]] = {}
    distances: dict[int, list[float]] = {}
    for trade in prints:
        if trade.mid <= 0 or trade.qty <= 0:
            raise ValueError(f"a tape print needs a positive mid and size: {trade}")
        distance = trade.distance_bps
        index = bucket_of(distance)
        by_bucket.setdefault(index, []).append(trade)
        distances.setdefault(index, []).append(distance)
    seconds = window_ns / NS_PER_S
    buckets = []
    for index in sorted(by_bucket):
        trades = by_bucket[index]
        buckets.append(BucketFit(
            index=index,
            trades=len(trades),
            rate_per_s=len(trades) / seconds,
            buy_share=sum(1 for t in trades if t.buy) / len(trades),
            size_q=quantiles(sorted(t.qty for t in trades)),
            distance_q=quantiles(sorted(distances[index])),
            samples=tuple((t.buy, d, t.qty) for t, d in zip(trades, distances[index], strict=True)),
        ))
    return TapeFit(window_ns, tuple(buckets), without_mid=without_mid, without_side=without_side)


def format_flow(flow: dict[str, Any]) -> str:
    """Terminal block: the fitted table, and what the takers drawn from it sent and filled."""
    lines = [
        "── synthetic taker flow, fitted on this run's recorded tape ──",
        f"  {flow['tape_trades']:,} prints over {flow['window_s']:,.1f} s ({flow['tape_rate_per_s']:.3f}/s; "
        f"{flow['tape_trades_without_mid']:,} without a recorded mid and {flow['tape_trades_without_side']:,} "
        f"without a side left out); farthest print {flow['max_distance_bps']} bps from the mid",
        f"  takers reach {flow['reach_bps']} bps beyond the fitted distances; participation {flow['participation']} "
        f"of the fitted rate; each taker a recorded print resampled whole (takers: arrivals; fills: their executions)",
        f"  {'distance':>12}  {'rate/s':>8}  {'buy %':>5}  {'max bps':>7}  {'takers':>7}  {'fills':>6}  "
        "size p10 / p50 / p90 / max",
    ]
    for row in flow["bins"]:
        q = row["size_q"]
        sizes = f"{q[1]} / {q[3]} / {q[5]} / {q[-1]}"
        lines.append(
            f"  {row['distance']:>12}  {row['tape_rate_per_s']:>8.3f}  {100 * row['buy_share']:>5.1f}  "
            f"{row['distance_q_bps'][-1]:>7.3f}  {row.get('takers_sent', 0):>7,}  {row.get('taker_fills', 0):>6,}  "
            f"{sizes}"
        )
    return "\n".join(lines)


__all__ = [
    "BIN_EDGES_BPS", "QUANTILES", "BucketFit", "TapeFit", "TapePrint", "bucket_label", "bucket_of", "fit_tape",
    "format_flow", "quantiles",
]
