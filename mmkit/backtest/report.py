"""The figures of a finished backtest: one dict (JSON), one text table.

Money figures (PnL parts, drawdown, fees, volumes) come from the exact fill
ledger (:class:`PnLTracker`) and are written as Decimal strings; statistics
over time (Sharpe, inventory, uptime) come from the per-tick samples of
:class:`BacktestSampler`. Nothing here depends on wall time, so the same
inputs and seed give a byte-identical ``report.json``.

Definitions (also in docs/backtesting.md):

* **fill ratio**: filled quantity / quantity of our accepted orders.
* **spread capture**: quantity-weighted ``side · (mid − price) / mid`` in bps
  at each fill (positive = we bought below / sold above the fair mid).
* **Sharpe**: mean / stdev of the 1-second changes of total PnL, times
  ``sqrt(seconds per year)``; None when PnL never moved. On a run of
  minutes it is a description of the run, not a forecast.
* **time at limits**: share of ticks with ``|position| >= max_position``.
* **quote uptime**: share of ticks with a live bid *and* a live ask
  (``one_sided_uptime``: at least one of them).
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from mmkit.backtest.sampler import BacktestSampler
from mmkit.model import NS_PER_S, ZERO, Fill, Liquidity, Side
from mmkit.risk.pnl import PnLTracker

SECONDS_PER_YEAR = 365 * 24 * 3600


def _round(value: float | None, digits: int = 4) -> float | None:
    if value is None or math.isnan(value):
        return None
    return round(value, digits)


def sharpe_per_second(ts: Sequence[int], total: Sequence[float]) -> float | None:
    """Annualized Sharpe of 1-second PnL changes, from per-tick samples of total PnL."""
    if len(ts) < 2:
        return None
    seconds: list[float] = []
    start = ts[0]
    bucket = 0
    last = total[0]
    for t, value in zip(ts, total, strict=True):
        b = (t - start) // NS_PER_S
        if b != bucket:
            seconds.append(last)
            bucket = b
        last = value
    seconds.append(last)
    changes = [b - a for a, b in itertools.pairwise(seconds)]
    if len(changes) < 2:
        return None
    mean = sum(changes) / len(changes)
    var = sum((c - mean) ** 2 for c in changes) / (len(changes) - 1)
    if var <= 0:
        return None
    return mean / math.sqrt(var) * math.sqrt(SECONDS_PER_YEAR)


def _share(flags: Sequence[bool]) -> float | None:
    return None if not flags else sum(flags) / len(flags)


def build_report(
    sampler: BacktestSampler,
    fills: Sequence[Fill],
    pnl: PnLTracker,
    *,
    max_position: Decimal,
    meta: dict[str, Any] | None = None,
    counters: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """All report figures as a JSON-ready dict (Decimals as strings, floats rounded)."""
    n = len(sampler)
    positions = list(sampler.position)
    limit = float(max_position)
    bids, asks = sampler.bid, sampler.ask
    two_sided = [not (math.isnan(bids[i]) or math.isnan(asks[i])) for i in range(n)]
    one_sided = [not (math.isnan(bids[i]) and math.isnan(asks[i])) for i in range(n)]
    filled_qty = sum((f.qty for f in fills), ZERO)
    buys = [f for f in fills if f.side is Side.BUY]
    sells = [f for f in fills if f.side is Side.SELL]
    mean_pos = sum(positions) / n if n else None
    std_pos = math.sqrt(sum((p - mean_pos) ** 2 for p in positions) / n) if n and mean_pos is not None else None
    capture = pnl.avg_spread_capture_bps()
    duration_s = (sampler.ts[-1] - sampler.ts[0]) / NS_PER_S if n > 1 else 0.0
    report: dict[str, Any] = dict(meta or {})
    report.update(
        {
            "start_ns": sampler.ts[0] if n else None,
            "end_ns": sampler.ts[-1] if n else None,
            "duration_s": round(duration_s, 3),
            "ticks": n,
            "pnl": {
                "total": str(pnl.total()),
                "realized": str(pnl.realized()),
                "unrealized": str(pnl.unrealized()),
                "fees": str(pnl.fees()),
                "maker_fees": str(sum((f.fee for f in fills if f.liquidity is Liquidity.MAKER), ZERO)),
                "taker_fees": str(sum((f.fee for f in fills if f.liquidity is Liquidity.TAKER), ZERO)),
                "mark_price": None if pnl.mark_price is None else str(pnl.mark_price),
                "max_drawdown": str(pnl.max_drawdown),
                "sharpe": _round(sharpe_per_second(sampler.ts, sampler.total), 3),
            },
            "fills": {
                "count": len(fills),
                "buys": len(buys),
                "sells": len(sells),
                "maker": sum(1 for f in fills if f.liquidity is Liquidity.MAKER),
                "taker": sum(1 for f in fills if f.liquidity is Liquidity.TAKER),
                "volume_base": str(filled_qty),
                "volume_quote": str(sum((f.notional for f in fills), ZERO)),
                "accepted_orders": sampler.accepted_orders,
                "accepted_qty": str(sampler.accepted_qty),
                "fill_ratio": _round(float(filled_qty / sampler.accepted_qty) if sampler.accepted_qty else None),
                "spread_capture_bps": None if capture is None else str(capture.quantize(Decimal("0.0001"))),
            },
            "inventory": {
                "final": str(pnl.position()),
                "min": _round(min(positions)) if n else None,
                "max": _round(max(positions)) if n else None,
                "mean": _round(mean_pos),
                "mean_abs": _round(sum(abs(p) for p in positions) / n) if n else None,
                "std": _round(std_pos),
                "max_position": str(max_position),
                "time_at_limits": _round(_share([abs(p) >= limit for p in positions])),
            },
            "quoting": {
                "uptime": _round(_share(two_sided)),
                "one_sided_uptime": _round(_share(one_sided)),
            },
        }
    )
    if counters:
        report["counters"] = counters
    return report


def write_json(report: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(report, indent=2, sort_keys=False) + "\n", encoding="utf-8")


def _pct(value: object) -> str:
    return "-" if value is None else f"{float(str(value)) * 100:.1f} %"


def format_table(report: dict[str, Any]) -> str:
    """A compact text table of the headline figures, for the terminal."""
    p, f, i, q = report["pnl"], report["fills"], report["inventory"], report["quoting"]
    rows = [
        ("setup", report.get("setup", "-")),
        ("strategy", report.get("strategy", "-")),
        ("span", f"{report['duration_s']} s, {report['ticks']} ticks"),
        ("PnL total", p["total"]),
        ("  realized", p["realized"]),
        ("  unrealized", p["unrealized"]),
        ("  fees", p["fees"]),
        ("max drawdown", p["max_drawdown"]),
        ("Sharpe (1 s, annualized)", "-" if p["sharpe"] is None else p["sharpe"]),
        ("fills", f"{f['count']} ({f['buys']} buys, {f['sells']} sells; {f['maker']} maker)"),
        ("volume", f"{f['volume_base']} base / {f['volume_quote']} quote"),
        ("fill ratio", _pct(f["fill_ratio"])),
        ("spread capture", "-" if f["spread_capture_bps"] is None else f"{f['spread_capture_bps']} bps"),
        ("inventory final / min / max", f"{i['final']} / {i['min']} / {i['max']}"),
        ("inventory mean / mean |x| / std", f"{i['mean']} / {i['mean_abs']} / {i['std']}"),
        ("time at limits", _pct(i["time_at_limits"])),
        ("quote uptime (two-sided)", _pct(q["uptime"])),
        ("quote uptime (any side)", _pct(q["one_sided_uptime"])),
    ]
    width = max(len(k) for k, _ in rows)
    lines = ["══ backtest report ══"] + [f"  {k.ljust(width)}  {v}" for k, v in rows]
    return "\n".join(lines)
