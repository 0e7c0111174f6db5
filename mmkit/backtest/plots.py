"""Charts of a backtest, as PNG files (matplotlib, Agg backend: no display needed).

Three charts a desk looks at first: PnL over time (total and its parts),
inventory against its limits, and our best quotes against the fair mid with
every fill marked (buys ▲ below, sells ▼ above). Time is in seconds since
the start of the run, with the UTC start in the title.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

from mmkit.backtest.sampler import BacktestSampler
from mmkit.model import NS_PER_S, Fill, Side

_SIZE = (11, 4.6)
_DPI = 110


def _pyplot() -> ModuleType:
    """matplotlib's pyplot on the Agg backend, imported on first use.

    Why lazily: importing it costs about half a second, which every ``mmkit``
    command would otherwise pay at start-up, though only the end of a run draws.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot

    return matplotlib.pyplot


def _seconds(ts: Sequence[int], start: int) -> list[float]:
    return [(t - start) / NS_PER_S for t in ts]


def _start_label(start_ns: int) -> str:
    return datetime.fromtimestamp(start_ns / NS_PER_S, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def plot_pnl(sampler: BacktestSampler, path: Path, title: str = "") -> Path:
    start = sampler.ts[0]
    x = _seconds(sampler.ts, start)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=_SIZE)
    ax.plot(x, sampler.total, label="total", color="black", linewidth=1.4)
    ax.plot(x, [r - f for r, f in zip(sampler.realized, sampler.fees, strict=True)],
            label="realized − fees", color="tab:green", linewidth=1.0)
    ax.plot(x, sampler.unrealized, label="unrealized", color="tab:orange", linewidth=1.0)
    ax.axhline(0, color="grey", linewidth=0.6)
    ax.set_xlabel(f"time since start (s) — start {_start_label(start)}")
    ax.set_ylabel("PnL (quote currency)")
    ax.set_title(f"PnL {title}".strip())
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=_DPI)
    plt.close(fig)
    return path


def plot_inventory(sampler: BacktestSampler, path: Path, max_position: float, title: str = "") -> Path:
    start = sampler.ts[0]
    x = _seconds(sampler.ts, start)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=_SIZE)
    ax.plot(x, sampler.position, color="tab:blue", linewidth=1.2, label="position")
    ax.axhline(max_position, color="tab:red", linestyle="--", linewidth=0.9, label=f"±max_position {max_position:g}")
    ax.axhline(-max_position, color="tab:red", linestyle="--", linewidth=0.9)
    ax.axhline(0, color="grey", linewidth=0.6)
    ax.set_xlabel(f"time since start (s) — start {_start_label(start)}")
    ax.set_ylabel("position (base units)")
    ax.set_title(f"Inventory {title}".strip())
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=_DPI)
    plt.close(fig)
    return path


def plot_quotes(sampler: BacktestSampler, fills: Sequence[Fill], path: Path, title: str = "") -> Path:
    start = sampler.ts[0]
    x = _seconds(sampler.ts, start)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=_SIZE)
    ax.plot(x, sampler.mid, color="black", linewidth=0.9, zorder=4, label="fair mid")
    ax.plot(x, sampler.bid, color="tab:green", linewidth=0.9, zorder=3, label="our best bid")
    ax.plot(x, sampler.ask, color="tab:red", linewidth=0.9, zorder=3, label="our best ask")
    dense = len(fills) > 300  # many fills: small, translucent markers so the quote lines stay visible
    styles = ((Side.BUY, "^", "darkgreen", "buy fill"), (Side.SELL, "v", "darkred", "sell fill"))
    for side, marker, color, label in styles:
        chosen = [f for f in fills if f.side is side]
        if chosen:
            ax.scatter([(f.ts_event - start) / NS_PER_S for f in chosen], [float(f.price) for f in chosen],
                       marker=marker, color=color, s=9 if dense else 36, alpha=0.45 if dense else 0.9,
                       linewidths=0, zorder=2,
                       label=f"{label} ({len(chosen)})")
    finite = [v for v in sampler.mid if not math.isnan(v)] + [float(f.price) for f in fills]
    if finite:  # keep far-off quotes from flattening the chart
        low, high = min(finite), max(finite)
        pad = max((high - low) * 0.05, high * 0.0002)
        ax.set_ylim(low - pad, high + pad)
    ax.set_xlabel(f"time since start (s) — start {_start_label(start)}")
    ax.set_ylabel("price (quote currency)")
    ax.set_title(f"Our quotes vs fair mid, fills marked {title}".strip())
    ax.ticklabel_format(axis="y", useOffset=False, style="plain")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), fontsize=8, ncol=5, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=_DPI)
    plt.close(fig)
    return path


def write_plots(
    sampler: BacktestSampler, fills: Sequence[Fill], out_dir: Path, max_position: float, title: str = ""
) -> dict[str, Path]:
    """The three PNGs in ``out_dir``; returns name -> path. Needs at least one sample."""
    if len(sampler) == 0:
        raise ValueError("no samples: the backtest did not tick")
    out_dir.mkdir(parents=True, exist_ok=True)
    return {
        "pnl": plot_pnl(sampler, out_dir / "pnl.png", title),
        "inventory": plot_inventory(sampler, out_dir / "inventory.png", max_position, title),
        "quotes": plot_quotes(sampler, fills, out_dir / "quotes.png", title),
    }
