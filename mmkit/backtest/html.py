"""The tearsheet: one self-contained ``report.html`` a trader opens, zooms and mails.

Built from a jinja2 template (``templates/tearsheet.html.j2``) with the
plotly figures of :mod:`mmkit.backtest.plots`; plotly.js itself is embedded
in the page, so it works offline and from an archive years later (no CDN,
no external file). Times are shown as UTC ISO and durations as h:m:s; every
figure carries its unit.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
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
    ("of which funding", "pnl", "funding", "quote ccy"),  # shown only when the run booked funding
    ("PnL per hour", "pnl", "pnl_per_hour", "quote ccy / h"),
    ("± standard error", "pnl", "pnl_per_hour_se", "quote ccy / h"),
    ("max drawdown", "pnl", "max_drawdown", "quote ccy"),
    ("fills", "fills", "count", ""),
    ("volume", "fills", "volume_quote", "quote ccy"),
    ("PnL per volume", "fills", "pnl_per_volume_bps", "bps"),
    ("fees", "fees", "total_quote", "quote ccy"),
    ("spread capture", "fills", "spread_capture_bps", "bps"),
    ("order-to-trade", "fills", "order_to_trade", "msgs / fill"),
    ("orders rejected", "rejections", "orders", "by the venue"),
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


def plotly_js_path() -> Path:
    """The minified plotly.js the plotly package ships (what ``plotly.offline.get_plotlyjs`` reads).

    Found without importing plotly: importing it costs about 0.1 s and its
    modules stay in memory, and the page needs only this one file.
    """
    spec = importlib.util.find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("plotly is not installed: the tearsheet embeds its plotly.min.js")
    return Path(next(iter(spec.submodule_search_locations))) / "package_data" / "plotly.min.js"


@cache
def plotly_js() -> str:
    """plotly.js, minified, to inline in the page (about 4.8 MB); read once per process."""
    return plotly_js_path().read_text(encoding="utf-8")


#: Stands for plotly.js in the rendered page while it is written: the bundle is copied from its file instead.
_PLOTLY_MARK = "\x00mmkit-plotly-js\x00"


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
    return _render(report, sampler, fills, title, plotly_js())


def _render(
    report: Mapping[str, Any], sampler: BacktestSampler, fills: Sequence[Fill], title: str, js: str
) -> str:
    figures = tearsheet_figures(report, sampler, fills)
    coin = (report.get("pnl") or {}).get("unit")  # set for an inverse contract only (mmkit.backtest.inverse)
    headline = [
        (label, report.get(section, {}).get(key), _inverse_unit(section, key, unit, coin) if coin else unit)
        for label, section, key, unit in HEADLINE
        if isinstance(report.get(section), Mapping) and (key != "funding" or key in report[section])
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
        plotly_js=js,
        fills_shown=list(fills)[:200],
        fill_count=len(fills),
    ))


def write_tearsheet(
    report: Mapping[str, Any], sampler: BacktestSampler, fills: Sequence[Fill], path: Path,
    title: str = "mmkit backtest",
) -> Path:
    """The page in ``path``, byte for byte :func:`render_tearsheet`'s text in UTF-8.

    Why not write that string: plotly.js is 4.8 of the page's ~5 MB. Copied
    from its file between the rendered halves, it is never decoded, joined
    into the page and encoded again (three copies in memory at the end of a
    live run, whose resident size is watched; ~0.03 s in a backtest).
    """
    head, mark, tail = _render(report, sampler, fills, title, _PLOTLY_MARK).partition(_PLOTLY_MARK)
    if not mark:
        raise RuntimeError("the tearsheet template lost its plotly.js slot")
    with path.open("wb") as out, plotly_js_path().open("rb") as js:
        out.write(head.encode("utf-8"))
        shutil.copyfileobj(js, out)
        out.write(tail.encode("utf-8"))
    return path
