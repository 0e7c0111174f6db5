"""Honest performance figures of a run: one definition each, one function each.

Pure functions over what a run leaves behind (its fills, its orders, the
per-tick samples and the mid series); no I/O, no engine. The backtest
report, the live final report and ``mmkit history`` all call these, so the
same session gives the same numbers wherever a person looks.

Modules:

* :mod:`mmkit.analytics.performance`: Sharpe / Sortino on daily PnL (only
  when the span covers :data:`MIN_DAYS_FOR_SHARPE` days), otherwise PnL per
  hour and its standard error; drawdown series.
* :mod:`mmkit.analytics.markouts`: mid move after each fill, in bps, by side.
* :mod:`mmkit.analytics.execution`: fill rate per level, order-to-trade ratio.
* :mod:`mmkit.analytics.quoting`: two-sided / one-sided uptime.
* :mod:`mmkit.analytics.ledger`: realized, unrealized, fees (by currency),
  volume and spread capture of a fill ledger, grouped (session or day).

Units are part of every figure's name (``_bps``, ``_pct``, ``_s``) or
listed in :data:`UNITS` (money is in the quote currency of the instrument).
"""

from mmkit.analytics.performance import MIN_DAYS_FOR_SHARPE

#: Units of the report's figures that do not carry them in their name.
UNITS: dict[str, str] = {
    "pnl.*": "quote currency (e.g. USDT, PYUSD), Decimal text",
    "pnl.pnl_per_hour / pnl_per_hour_se": "quote currency per hour",
    "pnl.sharpe / sortino": "annualized (sqrt(365)) ratio of daily PnL changes, dimensionless",
    "fills.volume_base": "base asset (e.g. BTC)",
    "fills.volume_quote": "quote currency",
    "fills.pnl_per_volume_bps": "basis points of traded notional",
    "fees.by_currency": "each fee in its own currency",
    "fees.total_quote": "quote currency (base-asset fees converted at the fill price)",
    "markouts.*_bps": "basis points of the fill price; positive = the mid moved in our favour",
    "inventory.*": "base asset",
    "quoting.*_pct": "percent of ticks",
    "*_ns": "nanoseconds since the Unix epoch (UTC); *_utc fields are the same instants in ISO 8601",
}

__all__ = ["MIN_DAYS_FOR_SHARPE", "UNITS"]
