"""The figures of a finished run: one dict (``report.json``), one text table, the trader's files.

Money figures (PnL parts, drawdown, fees, volumes) come from the exact fill
ledger (:class:`PnLTracker`) and are written as Decimal strings; statistics
over time (uptime, markouts, PnL per hour) come from the per-tick samples of
:class:`BacktestSampler` through :mod:`mmkit.analytics`, where each figure
is defined once. Nothing in the figures depends on wall time, so the same
inputs and seed give the same ``report.json`` (``provenance`` apart, which
names the code and data that produced it).

Figure names are stable: other tools (sweeps) rank runs by them. Units are in
the names (``_bps``, ``_pct``, ``_s``, ``_ns``, ``_quote``) or in
``report["units"]``; docs/backtesting.md ("Metrics") defines each one.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import subprocess
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs

import mmkit
from mmkit.analytics import UNITS
from mmkit.analytics.execution import OrderRow, attach_fills, fill_rate_by_level, order_to_trade
from mmkit.analytics.ledger import fee_in_quote
from mmkit.analytics.markouts import headline, markout_table
from mmkit.analytics.performance import risk_adjusted
from mmkit.analytics.quoting import touch_distance_bps, uptime
from mmkit.backtest import inverse
from mmkit.backtest.sampler import BacktestSampler
from mmkit.model import NS_PER_S, ZERO, Fill, Liquidity, Side
from mmkit.risk.pnl import PnLTracker
from mmkit.risk.settlement import Settlement

BPS = Decimal(10_000)


def _round(value: float | None, digits: int = 4) -> float | None:
    if value is None or math.isnan(value):
        return None
    return round(value, digits)


def _share(flags: Sequence[bool]) -> float | None:
    return None if not flags else sum(flags) / len(flags)


def utc_iso(ts_ns: int | None) -> str | None:
    """``2026-12-06T16:58:45.123Z`` (ms precision) for ns since the epoch."""
    if ts_ns is None:
        return None
    moment = datetime.fromtimestamp(ts_ns // 1_000_000 / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def human_duration(seconds: float) -> str:
    """``1 d 02:03:04`` / ``02:03:04.5``: a span a person reads at a glance."""
    whole = timedelta(seconds=round(seconds, 1))
    days, rest = whole.days, whole - timedelta(days=whole.days)
    hours, rem = divmod(rest.total_seconds(), 3600)
    minutes, secs = divmod(rem, 60)
    text = f"{int(hours):02d}:{int(minutes):02d}:{secs:04.1f}"
    return f"{days} d {text}" if days else text


def fee_figures(fills: Sequence[Fill], base_asset: str = "BTC", settlement: Settlement | None = None
                ) -> dict[str, Any]:
    """Fees by currency as charged, and in the quote currency (total, maker, taker, bps of notional).

    ``settlement`` (an inverse contract's) gives the quote notional of a fill (contracts x contract size).
    """
    by_currency: dict[str, Decimal] = {}
    for f in fills:
        by_currency[f.fee_currency] = by_currency.get(f.fee_currency, ZERO) + f.fee
    total = sum((fee_in_quote(f, base_asset) for f in fills), ZERO)
    maker = sum((fee_in_quote(f, base_asset) for f in fills if f.liquidity is Liquidity.MAKER), ZERO)
    if settlement is not None and settlement.inverse:
        notional = sum((settlement.notional_quote(f.price, f.qty) for f in fills), ZERO)
    else:
        notional = sum((f.notional for f in fills), ZERO)
    return {
        "by_currency": {c: str(v) for c, v in sorted(by_currency.items())},
        "total_quote": str(total),
        "maker_quote": str(maker),
        "taker_quote": str(total - maker),
        "bps_of_notional": None if notional == 0 else str((total / notional * BPS).quantize(Decimal("0.0001"))),
    }


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
    volume_quote = sum((f.notional for f in fills), ZERO)
    buys = [f for f in fills if f.side is Side.BUY]
    sells = [f for f in fills if f.side is Side.SELL]
    mean_pos = sum(positions) / n if n else None
    std_pos = math.sqrt(sum((p - mean_pos) ** 2 for p in positions) / n) if n and mean_pos is not None else None
    capture = pnl.avg_spread_capture_bps()
    duration_s = (sampler.ts[-1] - sampler.ts[0]) / NS_PER_S if n > 1 else 0.0
    total = pnl.total()
    orders = list(sampler.orders.values())
    attach_fills(orders, fills)
    markouts = markout_table(fills, sampler.ts, sampler.mid)
    markouts["headline"] = headline(markouts)
    report: dict[str, Any] = dict(meta or {})
    report.update(
        {
            "start_ns": sampler.ts[0] if n else None,
            "end_ns": sampler.ts[-1] if n else None,
            "start_utc": utc_iso(sampler.ts[0]) if n else None,
            "end_utc": utc_iso(sampler.ts[-1]) if n else None,
            "duration_s": round(duration_s, 3),
            "duration": human_duration(duration_s),
            "ticks": n,
            "units": UNITS,
            "pnl": {
                "total": str(total),
                "realized": str(pnl.realized()),
                "unrealized": str(pnl.unrealized()),
                "fees": str(pnl.fees()),
                "maker_fees": str(sum((f.fee for f in fills if f.liquidity is Liquidity.MAKER), ZERO)),
                "taker_fees": str(sum((f.fee for f in fills if f.liquidity is Liquidity.TAKER), ZERO)),
                "mark_price": None if pnl.mark_price is None else str(pnl.mark_price),
                "max_drawdown": str(pnl.max_drawdown),
                **(risk_adjusted(sampler.ts, sampler.total, total) if n else {"sharpe": None, "sortino": None,
                                                                              "sharpe_note": "no samples"}),
            },
            "fills": {
                "count": len(fills),
                "buys": len(buys),
                "sells": len(sells),
                "maker": sum(1 for f in fills if f.liquidity is Liquidity.MAKER),
                "taker": sum(1 for f in fills if f.liquidity is Liquidity.TAKER),
                "volume_base": str(filled_qty),
                "volume_quote": str(volume_quote),
                "pnl_per_volume_bps": (
                    None if volume_quote == 0 else str((total / volume_quote * BPS).quantize(Decimal("0.0001")))
                ),
                "accepted_orders": sampler.accepted_orders,
                "accepted_qty": str(sampler.accepted_qty),
                "fill_ratio": _round(float(filled_qty / sampler.accepted_qty) if sampler.accepted_qty else None),
                "spread_capture_bps": None if capture is None else str(capture.quantize(Decimal("0.0001"))),
                "order_messages": sampler.order_messages,
                "order_to_trade": order_to_trade(sampler.order_messages, len(fills)),
                "fill_rate_by_level": fill_rate_by_level(orders, fills),
            },
            "fees": fee_figures(fills),
            "markouts": markouts,
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
                **uptime(bids, asks),
                "touch_distance_bps": touch_distance_bps(sampler.mid, bids, asks),
            },
        }
    )
    if pnl.settlement.inverse:
        _inverse_figures(report, sampler, fills, pnl)
    if counters:
        counters = dict(counters)
        if "quoting_ticks" in counters:  # ticks with quoting *enabled*; uptime is in "quoting"
            counters["quoting_enabled_ticks"] = counters.pop("quoting_ticks")
        report["counters"] = counters
        problems = counters.get("problems")
        if problems:
            # At the top level too, where the page's red box and a sweep look: a run whose controller or an
            # iterator failed (exit 4) had them in its counters only, and its tearsheet read as a clean run.
            # A verdict reached after the run (data health, orders left open) rewrites the complete list here.
            report["problems"] = list(problems)
    return report


def _inverse_figures(report: dict[str, Any], sampler: BacktestSampler, fills: Sequence[Fill], pnl: PnLTracker) -> None:
    """An inverse contract's figures in place of the linear ones: coin PnL from the engine, volumes, units."""
    settlement = pnl.settlement
    section = inverse.pnl_section(pnl, fills)
    n = len(sampler)
    total = pnl.total()
    rates = (risk_adjusted(sampler.ts, sampler.total, total, quantum=inverse.COIN_QUANTUM) if n
             else {"sharpe": None, "sortino": None, "sharpe_note": "no samples"})
    report["instrument"] = inverse.instrument_section(settlement)
    report["units"] = {**report["units"], **inverse.inverse_units(settlement)}
    report["pnl"] = {**section, **rates}
    report["fills"].update(inverse.fill_volumes(pnl, fills, total))
    report["fees"] = fee_figures(fills, settlement.base, settlement)


def write_json(report: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(report, indent=2, sort_keys=False, default=str) + "\n", encoding="utf-8")


# -- provenance ---------------------------------------------------------------------------------------------


def git_commit(start: Path | None = None) -> str | None:
    """The commit of the source tree mmkit runs from (None outside a git checkout or without git)."""
    where = start or Path(mmkit.__file__).resolve().parent
    try:
        done = subprocess.run(
            ["git", "-C", str(where), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = done.stdout.strip()
    return commit if done.returncode == 0 and len(commit) == 40 else None


def data_files(paths: Iterable[Path]) -> list[dict[str, Any]]:
    """Each recording file (directories expanded) with its size in bytes and SHA-256."""
    files: list[Path] = []
    for path in paths:
        files.extend(sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path])
    out = []
    for file in files:
        digest = hashlib.sha256()
        with file.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        out.append({"path": str(file), "bytes": file.stat().st_size, "sha256": digest.hexdigest()})
    return out


def parameters_of(config: object) -> dict[str, Any] | None:
    """A controller config (attrs, dataclass or dict) as JSON-ready values (Decimals as text)."""
    if config is None:
        return None
    if attrs.has(type(config)):
        raw = attrs.asdict(config)  # type: ignore[arg-type]
    elif isinstance(config, dict):
        raw = dict(config)
    else:
        raw = {k: v for k, v in vars(config).items() if not k.startswith("_")}
    result = json.loads(json.dumps(raw, default=str))
    return result if isinstance(result, dict) else None


def provenance(
    *, parameters: dict[str, Any] | None, data: Iterable[Path] = (), risk: dict[str, Any] | None = None
) -> dict[str, Any]:
    """What produced a report: strategy parameters, mmkit version and git commit, data files with checksums."""
    return {
        "mmkit_version": mmkit.__version__,
        "git_commit": git_commit(),
        "parameters": parameters,
        "risk": risk,
        "data_files": data_files(data),
    }


# -- trader's files -----------------------------------------------------------------------------------------

FILL_COLUMNS = (
    "ts_utc", "ts_event", "ts_recv", "venue", "symbol", "side", "price", "qty", "notional", "fee", "fee_currency",
    "liquidity", "is_hedge", "client_id", "venue_order_id", "trade_id", "level", "mid_at_fill",
    "markout_1s_bps", "markout_10s_bps", "markout_60s_bps",
)
ORDER_COLUMNS = (
    "client_id", "side", "level", "price", "qty", "filled_qty", "state", "created_utc", "created_ns",
    "accepted_ns", "ended_ns", "lifetime_s", "replaces", "replaced_by", "reason",
)


def _num(value: float | None, digits: int = 4) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def write_fills_csv(path: Path, fills: Sequence[Fill], sampler: BacktestSampler | None,
                    orders: Sequence[OrderRow] = (), contract_size: Decimal | None = None) -> int:
    """One row per fill, money as exact decimal text, with its level and markouts; returns the row count.

    ``contract_size`` (an inverse contract's): the notional column is ``qty x contract_size`` (quote), not price x qty.
    """
    from mmkit.analytics.markouts import fill_markout, mid_at

    level_of = {o.client_id: o.level for o in orders}
    ts = sampler.ts if sampler is not None else []
    mid = sampler.mid if sampler is not None else []
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(FILL_COLUMNS)
        for f in fills:
            level = level_of.get(f.client_id)
            writer.writerow([
                utc_iso(f.ts_event), f.ts_event, f.ts_recv, f.venue, f.symbol, f.side.value, format(f.price, "f"),
                format(f.qty, "f"), format(f.notional if contract_size is None else f.qty * contract_size, "f"),
                format(f.fee, "f"), f.fee_currency, f.liquidity.value,
                int(f.is_hedge), f.client_id, f.venue_order_id, f.trade_id, "" if level is None else level,
                _num(mid_at(ts, mid, f.ts_recv) if ts else None, 8),
                *(_num(fill_markout(f, ts, mid, h)) for h in (1, 10, 60)),
            ])
    return len(fills)


def write_orders_csv(path: Path, orders: Sequence[OrderRow]) -> int:
    """One row per order we placed (replacements are orders of their own); returns the row count."""
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(ORDER_COLUMNS)
        for o in orders:
            start = o.accepted_ns or o.created_ns
            lifetime = "" if o.ended_ns is None or not start else f"{(o.ended_ns - start) / NS_PER_S:.3f}"
            writer.writerow([
                o.client_id, o.side.value, "" if o.level is None else o.level,
                "" if o.price is None else format(o.price, "f"), format(o.qty, "f"), format(o.filled_qty, "f"),
                o.state, utc_iso(o.created_ns) if o.created_ns else "", o.created_ns, o.accepted_ns or "",
                o.ended_ns or "", lifetime, o.replaces, o.replaced_by, o.reason,
            ])
    return len(orders)


def write_run_outputs(
    report: dict[str, Any],
    sampler: BacktestSampler,
    fills: Sequence[Fill],
    out_dir: Path,
    *,
    title: str,
) -> dict[str, Path]:
    """report.json, fills.csv, orders.csv and the tearsheet report.html in ``out_dir``; returns name -> path.

    The one writer of a run's outputs, for the backtest and the live run alike.
    All four or none: each is written to a hidden temporary file first, and
    only when every one is complete are they renamed into place. Why: on a
    full disk the tearsheet (5 MB) was cut off half-written after the other
    three, and a directory that held an earlier run's files got a mix of two
    runs; a reader cannot tell either from a good set. An OSError (the disk,
    permissions) leaves the directory as it was and goes to the caller.
    """
    from mmkit.backtest.html import write_tearsheet

    out_dir.mkdir(parents=True, exist_ok=True)
    orders = list(sampler.orders.values())
    attach_fills(orders, fills)
    names = ("report.json", "fills.csv", "orders.csv", "report.html")
    paths = {name: out_dir / name for name in names}
    drafts = {name: out_dir / f".{name}.{os.getpid()}.tmp" for name in names}
    try:
        write_json(report, drafts["report.json"])
        instrument = report.get("instrument") or {}
        contract_size = Decimal(instrument["contract_size"]) if instrument.get("inverse") else None
        write_fills_csv(drafts["fills.csv"], fills, sampler, orders, contract_size)
        write_orders_csv(drafts["orders.csv"], orders)
        write_tearsheet(report, sampler, fills, drafts["report.html"], title=title)
        for name in names:
            os.replace(drafts[name], paths[name])
    finally:
        for draft in drafts.values():
            draft.unlink(missing_ok=True)
    return paths


def write_backtest_outputs(
    report: dict[str, Any], sampler: BacktestSampler, engine: Any, out_dir: Path
) -> dict[str, Path]:
    """A backtest's outputs: :func:`write_run_outputs` after adding ``provenance`` to ``report`` (in place).

    ``engine``: the run's :class:`mmkit.app.engine.Engine` (duck-typed: ``fills``, ``runner.controller``,
    ``inventory.config``), so this module needs nothing from the app layer.
    """
    data = [Path(report["data"])] if report.get("data") else []
    inventory = getattr(engine.inventory, "config", None)
    report["provenance"] = provenance(
        parameters=parameters_of(getattr(engine.runner.controller, "config", None)),
        data=data,
        risk=parameters_of(inventory),
    )
    title = f"mmkit backtest — {report.get('strategy', '')} on {report.get('venue', '')}:{report.get('symbol', '')}"
    return write_run_outputs(report, sampler, engine.fills, out_dir, title=title)


def _pct(value: object) -> str:
    return "-" if value is None else f"{float(str(value)) * 100:.1f} %"


def _or_dash(value: object, suffix: str = "") -> str:
    return "-" if value is None else f"{value}{suffix}"


def _in_quote_rows(pnl: dict[str, Any]) -> list[tuple[str, object]]:
    """An inverse contract's coin PnL converted at the mark (no rows for a linear report)."""
    q = pnl.get("in_quote")
    if not q:
        return []
    return [(f"PnL total in {q['unit']} at {q['at_price'] or '-'}", _or_dash(q.get("total")))]


def _latency_rows(latency: dict[str, Any] | None) -> list[tuple[str, str]]:
    """The latency the run assumed (entry / response legs), when the report states it."""
    if not latency or "entry_ms" not in latency:
        return []
    note = ", per action" if latency.get("by_action") else ", the same for every message (no jitter)"
    return [("latency entry / response", f"{latency['entry_ms']:g} / {latency['response_ms']:g} ms{note}")]


def format_table(report: dict[str, Any]) -> str:
    """A compact text table of the headline figures, for the terminal."""
    p, f, i, q = report["pnl"], report["fills"], report["inventory"], report["quoting"]
    m = report.get("markouts", {}).get("headline", {})
    sharpe = p.get("sharpe")
    rows = [
        ("setup", report.get("setup", "-")),
        ("strategy", report.get("strategy", "-")),
        ("span", f"{report.get('start_utc') or '-'} + {report.get('duration', report['duration_s'])}, "
                 f"{report['ticks']} ticks"),
        *_latency_rows(report.get("latency_ms")),
        (f"PnL total ({p.get('unit', 'quote ccy')})", p["total"]),
        ("  realized", p["realized"]),
        ("  unrealized", p["unrealized"]),
        ("  fees", p["fees"]),
        *_in_quote_rows(p),
        (f"max drawdown ({p.get('unit', 'quote ccy')})", p["max_drawdown"]),
        ("PnL per hour ± s.e.", f"{_or_dash(p.get('pnl_per_hour'))} ± {_or_dash(p.get('pnl_per_hour_se'))}"),
        ("Sharpe (daily, annualized)", sharpe if sharpe is not None else f"- ({p.get('sharpe_note') or 'n/a'})"),
        ("fills", f"{f['count']} ({f['buys']} buys, {f['sells']} sells; {f['maker']} maker)"),
        ("volume", f"{f['volume_base']} base / {f['volume_quote']} quote"),
        ("PnL per volume", _or_dash(f.get("pnl_per_volume_bps"), " bps")),
        ("fill ratio", _pct(f["fill_ratio"])),
        ("order-to-trade", _or_dash(f.get("order_to_trade"))),
        ("spread capture", _or_dash(f["spread_capture_bps"], " bps")),
        ("markout 1 s / 10 s / 60 s (bps)",
         " / ".join(_or_dash(m.get(f"all_{h}s_bps")) for h in (1, 10, 60))),
        ("inventory final / min / max", f"{i['final']} / {i['min']} / {i['max']}"),
        ("inventory mean / mean |x| / std", f"{i['mean']} / {i['mean_abs']} / {i['std']}"),
        ("time at limits", _pct(i["time_at_limits"])),
        ("quote uptime (two-sided)", _pct(q["uptime"])),
        ("quote uptime (any side)", _pct(q["one_sided_uptime"])),
    ]
    width = max(len(k) for k, _ in rows)
    lines = ["══ backtest report ══"] + [f"  {k.ljust(width)}  {v}" for k, v in rows]
    return "\n".join(lines)
