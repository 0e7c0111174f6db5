"""The tearsheet: one self-contained ``report.html`` a trader opens, zooms and mails.

Built from a jinja2 template (``templates/tearsheet.html.j2``) with the
plotly figures of :mod:`mmkit.backtest.plots`; plotly.js itself is embedded
in the page, so it works offline and from an archive years later (no CDN,
no external file). Times are shown as UTC ISO and durations as h:m:s; every
figure carries its unit.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

from mmkit.backtest.plots import HEALTH_FIELDS, tearsheet_figures
from mmkit.backtest.report import utc_iso
from mmkit.backtest.sampler import BacktestSampler
from mmkit.model import Fill

#: The headline figures: (label, section, key, unit).
HEADLINE: tuple[tuple[str, str, str, str], ...] = (
    ("PnL total", "pnl", "total", "quote ccy"),
    ("PnL per hour", "pnl", "pnl_per_hour", "quote ccy / h"),
    ("± standard error", "pnl", "pnl_per_hour_se", "quote ccy / h"),
    ("max drawdown", "pnl", "max_drawdown", "quote ccy"),
    ("fills", "fills", "count", ""),
    ("volume", "fills", "volume_quote", "quote ccy"),
    ("PnL per volume", "fills", "pnl_per_volume_bps", "bps"),
    ("fees", "fees", "total_quote", "quote ccy"),
    ("spread capture", "fills", "spread_capture_bps", "bps"),
    ("order-to-trade", "fills", "order_to_trade", "msgs / fill"),
    ("two-sided uptime", "quoting", "two_sided_uptime_pct", "% of ticks"),
    ("final inventory", "inventory", "final", "base"),
)


@cache
def _environment() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("mmkit.backtest", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["dash"] = lambda v: "–" if v is None or v == "" else v
    env.filters["utc"] = utc_iso
    return env


@cache
def plotly_js() -> str:
    """plotly.js, minified, to inline in the page (about 4.8 MB)."""
    from plotly.offline import get_plotlyjs

    return str(get_plotlyjs())


def _inverse_unit(section: str, key: str, unit: str, coin: str) -> str:
    """An inverse contract's headline units: PnL in its coin, inventory in contracts (volume, fees stay quote)."""
    if section == "pnl":
        return unit.replace("quote ccy", coin)
    return "contracts" if (section, key) == ("inventory", "final") else unit


def _script_json(value: object) -> str:
    """JSON safe inside a <script> element (no ``</script>`` can close it early)."""
    return json.dumps(value, default=str).replace("</", "<\\/")


def render_tearsheet(
    report: Mapping[str, Any], sampler: BacktestSampler, fills: Sequence[Fill], title: str = "mmkit backtest"
) -> str:
    """The page as a string."""
    figures = tearsheet_figures(report, sampler, fills)
    coin = (report.get("pnl") or {}).get("unit")  # set for an inverse contract only (mmkit.backtest.inverse)
    headline = [
        (label, report.get(section, {}).get(key), _inverse_unit(section, key, unit, coin) if coin else unit)
        for label, section, key, unit in HEADLINE
        if isinstance(report.get(section), Mapping)
    ]
    provenance = report.get("provenance") or {}
    return str(_environment().get_template("tearsheet.html.j2").render(
        title=title,
        report=report,
        headline=headline,
        figures_json=_script_json(figures),
        chart_ids=list(figures),
        health=report.get("data_health") or {},
        health_fields=("snapshots", "diffs_applied", *HEALTH_FIELDS, "invalid_ns", "invalid_pct"),
        provenance=provenance,
        parameters=provenance.get("parameters") or report.get("parameters") or {},
        plotly_js=plotly_js(),
        fills_shown=list(fills)[:200],
        fill_count=len(fills),
    ))


def write_tearsheet(
    report: Mapping[str, Any], sampler: BacktestSampler, fills: Sequence[Fill], path: Path,
    title: str = "mmkit backtest",
) -> Path:
    path.write_text(render_tearsheet(report, sampler, fills, title), encoding="utf-8")
    return path
