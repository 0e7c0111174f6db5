"""Risk-adjusted performance: Sharpe and Sortino only when they mean something.

A Sharpe ratio annualized from one-second PnL changes over ten minutes is a
large, confident-looking number that forecasts nothing: intraday PnL of a
market maker is autocorrelated (inventory carries), its distribution changes
with the hour, and ``sqrt(31 million)`` magnifies any drift. So:

* **Sharpe / Sortino** are computed on **daily** PnL changes (UTC days) and
  annualized with ``sqrt(365)`` (crypto trades every day), and only when the
  span covers at least :data:`MIN_DAYS_FOR_SHARPE` days. Below that they are
  ``None`` and ``sharpe_note`` says why.
* **PnL per hour** (total PnL / span in hours) is always given, with its
  **standard error**: the PnL is cut into equal buckets (60 s, or shorter on a
  short run so that there are at least 30), ``se = stdev(bucket changes) /
  sqrt(n) · (3600 / bucket seconds)``. It assumes independent buckets, which
  understates the error when inventory carries PnL from one bucket to the
  next: read it as a lower bound.

PnL here is money in the ledger's unit (the quote currency; the base coin of an
inverse contract), not a return on capital: the
Sharpe is of daily PnL, which ranks runs of one strategy but is not an
investor's Sharpe (there is no capital base in a backtest).
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from mmkit.model import NS_PER_S

#: Fewest days (span of the run) for which a daily Sharpe / Sortino is reported.
MIN_DAYS_FOR_SHARPE = 20
DAYS_PER_YEAR = 365
NS_PER_DAY = 86_400 * NS_PER_S
NS_PER_HOUR = 3_600 * NS_PER_S
#: Fewest buckets behind the PnL-per-hour standard error (shorter buckets on short runs).
MIN_BUCKETS = 30
DEFAULT_BUCKET_S = 60
CENT = Decimal("0.01")


def bucket_ends(ts: Sequence[int], values: Sequence[float], bucket_ns: int) -> list[float]:
    """The value at each whole-bucket boundary ``ts[0] + k·bucket_ns`` (k = 0 … complete buckets).

    The value at a boundary is the last sample at or before it, so changes are over equal times; a
    trailing partial bucket is left out.
    """
    if not ts:
        return []
    start = ts[0]
    complete = (ts[-1] - start) // bucket_ns
    return [values[bisect.bisect_right(ts, start + k * bucket_ns) - 1] for k in range(complete + 1)]


def changes(series: Sequence[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(series)]


def _mean_std(values: Sequence[float]) -> tuple[float, float] | None:
    if len(values) < 2:
        return None
    mean = sum(values) / len(values)
    var = sum((v - mean) ** 2 for v in values) / (len(values) - 1)
    return mean, math.sqrt(var)


def daily_sharpe_sortino(daily: Sequence[float]) -> tuple[float | None, float | None]:
    """Annualized Sharpe and Sortino of daily PnL changes (None where undefined)."""
    stats = _mean_std(daily)
    if stats is None:
        return None, None
    mean, std = stats
    sharpe = mean / std * math.sqrt(DAYS_PER_YEAR) if std > 0 else None
    downside = math.sqrt(sum(min(0.0, d) ** 2 for d in daily) / len(daily))
    sortino = mean / downside * math.sqrt(DAYS_PER_YEAR) if downside > 0 else None
    return sharpe, sortino


def pnl_rate(ts: Sequence[int], total: Sequence[float], final_total: Decimal, quantum: Decimal = CENT
             ) -> dict[str, Any]:
    """PnL per hour (exact, from ``final_total``) and its standard error (from the sampled series).

    Both are rounded to ``quantum``: a cent of a quote currency, or a satoshi for an inverse contract's
    coin PnL (where a cent of BTC would round every run to 0).
    """
    if len(ts) < 2 or ts[-1] <= ts[0]:
        return {"pnl_per_hour": None, "pnl_per_hour_se": None, "se_bucket_s": None, "se_buckets": 0}
    span_ns = ts[-1] - ts[0]
    per_hour = (final_total * NS_PER_HOUR / span_ns).quantize(quantum)
    span_s = span_ns / NS_PER_S
    bucket_s = DEFAULT_BUCKET_S if span_s / DEFAULT_BUCKET_S >= MIN_BUCKETS else max(1, int(span_s // MIN_BUCKETS))
    diffs = changes(bucket_ends(ts, total, bucket_s * NS_PER_S))
    stats = _mean_std(diffs)
    se = None if stats is None else stats[1] / math.sqrt(len(diffs)) * (3600 / bucket_s)
    return {
        # Positional text ("0.00000000", not "0E-8"); for a cent quantum the same text str() gives.
        "pnl_per_hour": format(per_hour, "f"),
        "pnl_per_hour_se": None if se is None else format(Decimal(repr(se)).quantize(quantum), "f"),
        "se_bucket_s": bucket_s,
        "se_buckets": len(diffs),
    }


def risk_adjusted(
    ts: Sequence[int], total: Sequence[float], final_total: Decimal, min_days: int = MIN_DAYS_FOR_SHARPE,
    quantum: Decimal = CENT,
) -> dict[str, Any]:
    """Sharpe / Sortino (daily, or None with ``sharpe_note``), PnL per hour and its standard error."""
    span_days = (ts[-1] - ts[0]) / NS_PER_DAY if len(ts) > 1 else 0.0
    out: dict[str, Any] = {"span_days": round(span_days, 4), "sharpe_min_days": min_days}
    if span_days >= min_days:
        daily = changes(bucket_ends(ts, total, NS_PER_DAY))
        sharpe, sortino = daily_sharpe_sortino(daily)
        out.update(
            sharpe=None if sharpe is None else round(sharpe, 3),
            sortino=None if sortino is None else round(sortino, 3),
            sharpe_note=None if sharpe is not None else "daily PnL never varied: the ratio is undefined",
            sharpe_days=len(daily),
        )
    else:
        out.update(
            sharpe=None,
            sortino=None,
            sharpe_note=(
                f"span {span_days * 24:.2f} h is under {min_days} days: a Sharpe annualized from intraday "
                "changes forecasts nothing; read pnl_per_hour and its standard error instead"
            ),
            sharpe_days=0,
        )
    out.update(pnl_rate(ts, total, final_total, quantum))
    return out


def drawdown(total: Sequence[float]) -> list[float]:
    """Distance of each sample below the running peak of ``total`` (>= 0; 0 at a new high)."""
    peak = -math.inf
    out: list[float] = []
    for value in total:
        peak = max(peak, value)
        out.append(peak - value)
    return out
