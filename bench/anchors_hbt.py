"""hftbacktest's side of bench/compare_anchors.py: its converter, and the maker as hftbacktest is meant to run.

Needs hftbacktest 2.4.4 (the ``[anchors]`` or ``[validate]`` extra).

* Conversion: hftbacktest's own ``binancefutures.convert`` (gzip lines ->
  JSON -> event rows -> timestamp and order correction -> ``.npz``). It reads
  the futures stream, whose messages carry fields the spot recording lacks
  (``T`` on diffs and the REST snapshot, ``X`` on trades);
  :func:`futures_shaped` adds them, untimed, and leaves out the
  ``bookTicker`` lines (73 % of the lines), which the converter would parse
  only to drop: its figure is its best case on the lines it uses, while
  mmkit's first read takes the whole files.
* Maker: the loop is compiled with numba (``@njit``), as hftbacktest's own
  examples run it; the first call in a process pays the compilation, so the
  figure is the second run in the same process ("warm", issue 16). The book
  stream is mmkit's sequenced recording converted by
  ``bench.validate_hftbacktest.to_hftbacktest`` (the same book both engines
  see), settings from :func:`bench.anchors_settings.hftbacktest_settings`.
"""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from hftbacktest import BUY, GTC, LIMIT, SELL, BacktestAsset, HashMapMarketDepthBacktest
from hftbacktest.data.utils import binancefutures
from numba import njit

from bench.anchors_settings import MakerSpec, hftbacktest_settings, quote_ticks

_quote = njit(cache=False)(quote_ticks)  # the very function mmkit's and Nautilus's makers call


def futures_shaped(source: Path, target: Path) -> int:
    """Copy a spot recording's depth, trade and snapshot lines with the fields hftbacktest's futures converter
    requires; returns the lines written."""
    written = 0
    with gzip.open(source, "rb") as src, gzip.open(target, "wb", compresslevel=1) as out:
        for line in src:
            stamp, _, body = line.partition(b" ")
            message = json.loads(body)
            data = message.get("data")
            if data is None:  # the REST depth snapshot: no exchange time in spot's; the receive time in ms
                message.setdefault("T", int(stamp) // 1_000_000)
            elif "lastUpdateId" not in data:
                stream = message.get("stream", "")
                if "@depth" in stream:
                    data.setdefault("T", data["E"])
                elif "@trade" in stream:
                    data.setdefault("X", "MARKET")
                else:  # bookTicker: the converter would parse and drop it (no 't' option); left out
                    continue
            out.write(stamp + b" " + json.dumps(message, separators=(",", ":")).encode() + b"\n")
            written += 1
    return written


def convert(prepared: Sequence[Path], out_dir: Path) -> float:
    """Seconds for hftbacktest's converter to turn each prepared file into an ``.npz`` in ``out_dir``."""
    began = time.perf_counter()
    for path in prepared:
        binancefutures.convert(str(path), output_filename=str(out_dir / (path.name + ".npz")),
                               buffer_size=2_000_000)
    return time.perf_counter() - began


@njit
def _maker(hbt: Any, offset_ticks: int, qty: float, tick: float, elapse_ns: int) -> tuple[int, int]:
    """Every ``elapse_ns``: bid/ask at mid ∓ offset; cancel an order at a stale price, place where none rests."""
    next_id = 1
    code = 0
    while True:
        code = hbt.elapse(elapse_ns)
        if code != 0:
            break
        hbt.clear_inactive_orders(0)
        depth = hbt.depth(0)
        if not (np.isfinite(depth.best_bid) and np.isfinite(depth.best_ask)):
            continue
        best_bid, best_ask = depth.best_bid_tick, depth.best_ask_tick
        if best_bid >= best_ask:
            continue
        bid, ask = _quote(best_bid, best_ask, offset_ticks)
        have_bid = False
        have_ask = False
        values = hbt.orders(0).values()
        while values.has_next():
            order = values.get()
            want = bid if order.side == BUY else ask
            if order.side == BUY:
                have_bid = True
            else:
                have_ask = True
            if order.cancellable and order.price_tick != want:
                hbt.cancel(0, order.order_id, False)
        if not have_bid:
            hbt.submit_buy_order(0, next_id, bid * tick, qty, GTC, LIMIT, False)
            next_id += 1
        if not have_ask:
            hbt.submit_sell_order(0, next_id, ask * tick, qty, GTC, LIMIT, False)
            next_id += 1
    return next_id - 1, code


def build(data: np.ndarray, spec: MakerSpec) -> Any:
    """hftbacktest's backtester on ``data`` with :func:`hftbacktest_settings` (not yet run)."""
    s = hftbacktest_settings(spec)
    asset = (
        BacktestAsset()
        .data([data])
        .linear_asset(1.0)
        .constant_order_latency(s["entry_latency_ns"], s["response_latency_ns"])
        .power_prob_queue_model(s["queue_power"])
        .no_partial_fill_exchange()  # partial_fill_exchange stops with InvalidOrderStatus in 2.4.4
        .trading_value_fee_model(s["maker_fee"], s["taker_fee"])
        .tick_size(s["tick_size"])
        .lot_size(s["lot_size"])
    )
    return HashMapMarketDepthBacktest([asset])


def run_maker(data: np.ndarray, spec: MakerSpec) -> dict[str, Any]:
    """One maker run on a new backtester: the compiled loop timed alone (construction apart)."""
    s = hftbacktest_settings(spec)
    began = time.perf_counter()
    hbt = build(data, spec)
    built = time.perf_counter()
    orders, code = _maker(hbt, s["offset_ticks"], s["order_qty"], s["tick_size"], s["elapse_ns"])
    done = time.perf_counter()
    state = hbt.state_values(0)
    fills = int(state.num_trades)
    hbt.close()
    if code != 1:  # 1: end of data; anything else is an error hftbacktest stopped on
        raise RuntimeError(f"hftbacktest stopped with code {code}")
    return {"build_s": built - began, "run_s": done - built, "fills": fills, "orders": int(orders)}


__all__ = ["BUY", "SELL", "build", "convert", "futures_shaped", "run_maker"]
