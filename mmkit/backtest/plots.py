"""The tearsheet's charts as plotly figures (JSON-ready dicts; the page draws them with plotly.js).

Why plotly rather than PNGs: a trader zooms into the minute where the
inventory hit its limit, hovers a fill to read its price and time, and hides
a series to see the one behind it; a PNG allows none of that. The figures
are plain dicts (``{"data": [...], "layout": {...}}``) built from the
per-tick samples, so building them needs no browser and no plotly import;
times are UTC ISO strings (plotly shows them as dates).

Long runs are thinned to at most :data:`MAX_POINTS` points per line (each
kept point is the last sample of its stride, plus every bucket's extreme
for PnL and inventory so that spikes survive); fills are never thinned.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

from mmkit.analytics.performance import drawdown
from mmkit.backtest.sampler import BacktestSampler
from mmkit.model import Fill, Side

MAX_POINTS = 4000
_FONT = {"family": "system-ui, sans-serif", "size": 12}


def _iso(ts_ns: int) -> str:
    from mmkit.backtest.report import utc_iso

    return utc_iso(ts_ns) or ""


def iso_times(ts: Sequence[int], idx: Sequence[int]) -> list[str]:
    """``utc_iso(ts[i])`` for each index, the same text; the date and time part formatted once per second.

    Why: the samples are 100 ms apart and each chart's x axis has up to
    :data:`MAX_POINTS` of them; one ``datetime`` and ``strftime`` per point
    was most of the time it took to build the figures (0.1 s a backtest).
    """
    out: list[str] = []
    append = out.append
    last_second = -1
    prefix = ""
    for i in idx:
        ts_ns = ts[i]
        if ts_ns < 0:  # before the epoch: the general path
            append(_iso(ts_ns))
            continue
        second, milli = divmod(ts_ns // 1_000_000, 1000)
        if second != last_second:
            last_second = second
            prefix = time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(second))
        append(f"{prefix}{milli:03d}Z")
    return out


def thin_indices(n: int, values: Sequence[float] | None = None, max_points: int = MAX_POINTS) -> list[int]:
    """Indices of at most about ``max_points`` samples; with ``values``, each stride's min and max too."""
    if n <= max_points:
        return list(range(n))
    stride = math.ceil(n / (max_points // (3 if values is not None else 1)))
    keep: set[int] = {0, n - 1}
    for start in range(0, n, stride):
        end = min(n, start + stride)
        keep.add(end - 1)
        if values is not None:
            window = range(start, end)
            finite = [i for i in window if not math.isnan(values[i])]
            if finite:
                keep.add(min(finite, key=lambda i: values[i]))
                keep.add(max(finite, key=lambda i: values[i]))
    return sorted(keep)


def _pick(values: Sequence[float], idx: Sequence[int]) -> list[float | None]:
    """Values at ``idx`` with NaN as None (a gap in the line, valid JSON)."""
    return [None if math.isnan(values[i]) else round(values[i], 8) for i in idx]


def _layout(title: str, y_title: str, **extra: Any) -> dict[str, Any]:
    layout: dict[str, Any] = {
        "title": {"text": title},
        "font": _FONT,
        "xaxis": {"title": {"text": "time (UTC)"}, "type": "date"},
        "yaxis": {"title": {"text": y_title}, "exponentformat": "none", "separatethousands": True},
        "hovermode": "x unified",
        "legend": {"orientation": "h", "y": -0.2},
        "margin": {"l": 70, "r": 20, "t": 50, "b": 60},
        "height": 420,
    }
    layout.update(extra)
    return layout


def equity_figure(sampler: BacktestSampler, unit: str = "quote currency") -> dict[str, Any]:
    """Total PnL and its parts (top) and the drawdown from the running peak (bottom), in ``unit`` (the ledger's)."""
    total = list(sampler.total)
    idx = thin_indices(len(total), total)
    x = iso_times(sampler.ts, idx)
    net_realized = [r - f for r, f in zip(sampler.realized, sampler.fees, strict=True)]
    dd = drawdown(total)
    data = [
        {"type": "scatter", "mode": "lines", "name": "total PnL", "x": x, "y": _pick(total, idx),
         "line": {"color": "black", "width": 1.6}},
        {"type": "scatter", "mode": "lines", "name": "realized − fees", "x": x, "y": _pick(net_realized, idx),
         "line": {"color": "#2a9d3a", "width": 1}},
        {"type": "scatter", "mode": "lines", "name": "unrealized", "x": x, "y": _pick(sampler.unrealized, idx),
         "line": {"color": "#e07b00", "width": 1}},
        *_funding_trace(sampler, x, idx),
        {"type": "scatter", "mode": "lines", "name": "drawdown", "x": x,
         "y": [None if v is None else -v for v in _pick(dd, idx)],
         "fill": "tozeroy", "line": {"color": "#c0392b", "width": 1}, "xaxis": "x", "yaxis": "y2"},
    ]
    layout = _layout("Equity and drawdown", f"PnL ({unit})", height=520)
    layout["yaxis"]["domain"] = [0.34, 1.0]
    layout["xaxis"]["anchor"] = "y2"  # the time axis under the drawdown panel, not between the two
    layout["yaxis2"] = {"domain": [0.0, 0.24], "title": {"text": "drawdown"}, "exponentformat": "none"}
    return {"data": data, "layout": layout}


def _funding_trace(sampler: BacktestSampler, x: list[str], idx: Sequence[int]) -> list[dict[str, Any]]:
    """The funding booked so far, when the run books funding (total = realized − fees + unrealized + funding);
    nothing otherwise, so every other tearsheet stays as it was."""
    funding = sampler.funding
    if funding is None:
        return []
    return [{"type": "scatter", "mode": "lines", "name": "funding", "x": x, "y": _pick(funding, idx),
             "line": {"color": "#7b3fb4", "width": 1}}]


def inventory_figure(sampler: BacktestSampler, max_position: float) -> dict[str, Any]:
    """Position against ±max_position (base asset)."""
    position = list(sampler.position)
    idx = thin_indices(len(position), position)
    x = iso_times(sampler.ts, idx)
    ends = [x[0], x[-1]] if x else []
    data = [
        {"type": "scatter", "mode": "lines", "name": "position", "x": x, "y": _pick(position, idx),
         "line": {"color": "#1f6fb4", "width": 1.3}},
        {"type": "scatter", "mode": "lines", "name": f"+max_position {max_position:g}", "x": ends,
         "y": [max_position, max_position], "line": {"color": "#c0392b", "dash": "dash", "width": 1}},
        {"type": "scatter", "mode": "lines", "name": f"−max_position {max_position:g}", "x": ends,
         "y": [-max_position, -max_position], "line": {"color": "#c0392b", "dash": "dash", "width": 1}},
    ]
    return {"data": data, "layout": _layout("Inventory against limits", "position (base asset)")}


def quotes_figure(sampler: BacktestSampler, fills: Sequence[Fill]) -> dict[str, Any]:
    """Our best bid and ask against the fair mid, every fill marked (buys ▲, sells ▼)."""
    n = len(sampler)
    idx = thin_indices(n)
    x = iso_times(sampler.ts, idx)
    data: list[dict[str, Any]] = [
        {"type": "scatter", "mode": "lines", "name": "fair mid", "x": x, "y": _pick(sampler.mid, idx),
         "line": {"color": "black", "width": 1}},
        {"type": "scatter", "mode": "lines", "name": "our best bid", "x": x, "y": _pick(sampler.bid, idx),
         "line": {"color": "#2a9d3a", "width": 1}, "connectgaps": False},
        {"type": "scatter", "mode": "lines", "name": "our best ask", "x": x, "y": _pick(sampler.ask, idx),
         "line": {"color": "#c0392b", "width": 1}, "connectgaps": False},
    ]
    for side, symbol, color in ((Side.BUY, "triangle-up", "#145a1f"), (Side.SELL, "triangle-down", "#7b1111")):
        chosen = [f for f in fills if f.side is side and not f.is_hedge]
        data.append({
            "type": "scatter", "mode": "markers", "name": f"{side.value.lower()} fills ({len(chosen)})",
            "x": [_iso(f.ts_recv) for f in chosen], "y": [float(f.price) for f in chosen],
            "text": [f"{f.qty} @ {f.price} ({f.liquidity.value.lower()})" for f in chosen],
            "marker": {"symbol": symbol, "color": color, "size": 7 if len(chosen) > 300 else 10,
                       "opacity": 0.6 if len(chosen) > 300 else 0.9},
        })
    return {"data": data, "layout": _layout("Our quotes against the fair mid, fills marked", "price (quote currency)")}


def markout_figure(markouts: Mapping[str, Any]) -> dict[str, Any]:
    """Mean markout (bps) against the horizon (s), for buys, sells and all fills."""
    horizons = list(markouts.get("horizons_s", []))
    colors = {"buy": "#2a9d3a", "sell": "#c0392b", "all": "black"}
    data = [
        {"type": "scatter", "mode": "lines+markers", "name": f"{side} (n at 1 s: {_n_at(markouts, side, 1)})",
         "x": horizons, "y": markouts[side]["mean_bps"], "line": {"color": colors[side]}}
        for side in ("buy", "sell", "all") if side in markouts
    ]
    layout = _layout("Markouts: mid move after our fills", "mean markout (bps, + = in our favour)")
    layout["xaxis"] = {"title": {"text": "seconds after the fill"}, "type": "linear"}
    layout["hovermode"] = "closest"
    return {"data": data, "layout": layout}


def _n_at(markouts: Mapping[str, Any], side: str, horizon: int) -> int:
    horizons = list(markouts.get("horizons_s", []))
    return markouts[side]["n"][horizons.index(horizon)] if horizon in horizons else 0


HEALTH_FIELDS = ("gaps", "resyncs", "events_refused", "crossed")


def data_health_figure(health: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Per recorded book: gaps, resyncs, refused events and crossed books (counts), invalid time (% of span)."""
    books = list(health)
    data: list[dict[str, Any]] = [
        {"type": "bar", "name": field, "x": books, "y": [health[b].get(field, 0) for b in books]}
        for field in HEALTH_FIELDS
    ]
    data.append({"type": "scatter", "mode": "markers", "name": "invalid book (% of span)", "x": books,
                 "y": [health[b].get("invalid_pct", 0) for b in books], "yaxis": "y2",
                 "marker": {"symbol": "diamond", "size": 12, "color": "#c0392b"}})
    layout = _layout("Data health per recorded book", "count", barmode="group", hovermode="closest")
    layout["xaxis"] = {"title": {"text": "book"}, "type": "category"}
    layout["yaxis2"] = {"title": {"text": "invalid book (% of span)"}, "overlaying": "y", "side": "right",
                        "rangemode": "tozero"}
    return {"data": data, "layout": layout}


def tearsheet_figures(
    report: Mapping[str, Any], sampler: BacktestSampler, fills: Sequence[Fill]
) -> dict[str, dict[str, Any]]:
    """Chart id -> figure, in page order (data health only when the report carries it)."""
    if len(sampler) == 0:
        raise ValueError("no samples: the run did not tick")
    max_position = float(report.get("inventory", {}).get("max_position") or 0)
    figures = {
        "equity": equity_figure(sampler, (report.get("pnl") or {}).get("unit") or "quote currency"),
        "inventory": inventory_figure(sampler, max_position),
        "quotes": quotes_figure(sampler, fills),
    }
    if "markouts" in report:
        figures["markouts"] = markout_figure(report["markouts"])
    if report.get("data_health"):
        figures["data_health"] = data_health_figure(report["data_health"])
    return figures
