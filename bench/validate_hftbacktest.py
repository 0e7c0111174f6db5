"""Cross-check mmkit's replay backtest against hftbacktest on the same tape.

One simple maker (one bid and one ask ``HALF_SPREAD_BPS`` from the mid of the
recorded book, ``ORDER_SIZE`` each, re-quoted on a 100 ms tick, cancel then
place when the price changes) runs in both backtesters on the shared Binance
spot BTCUSDT recording, with the settings matched:

* tick 0.01 USDT, lot 0.00001 BTC; maker and taker fee as ``conf/venues/binance.yml``
  says (10 bps, the base tier), read from that file for both engines;
* order latency 2 ms entry + 2 ms response (mmkit's ConstantLatency default
  of setup replay; hftbacktest ``constant_order_latency``);
* queue: mmkit ``ConservativeQueue`` (only trades advance our place; a trade
  through our price fills us whole; at our price, what trades beyond the
  queue ahead fills us, partially if need be) against hftbacktest's
  ``risk_adverse_queue_model`` (only trades advance the queue). hftbacktest's
  ``partial_fill_exchange`` would match mmkit's partial fills, but in 2.4.4
  it stops the run with ``InvalidOrderStatus`` (14) once a partial fill
  exactly exhausts an order (hftbacktest issues #301, #312: the order is left
  in its book as Filled and the next trade fills it again); so
  ``no_partial_fill_exchange`` is used: an order fills whole once the queue
  ahead is consumed, which differs from mmkit only when a trade at our price
  is smaller than our remaining size;
* the same book stream: mmkit's reader and BookSequencer (snapshot after the
  first diffs, stale diffs dropped) produce the events, which are converted
  to hftbacktest's event format here (exchange time = ``ts_event``, local
  time = ``ts_recv``, Binance ``m`` = buyer is maker -> a SELL aggressor);
* mmkit runs with the venue's rate limit lifted (hftbacktest has none), and
  again with it, to show what the limit alone changes.

Prints fills, volume (BTC) and gross PnL (before fees, open position marked
at the last mid) side by side, and the difference. Target: within 20 % on
fills and volume (docs/backtesting.md, "Cross-check with hftbacktest").

Needs the ``[validate]`` extra (``pip install -e '.[validate]'``, hftbacktest
2.4.4). Run: ``PYTHONPATH=. .venv/bin/python -m bench validate_hftbacktest``
"""

from __future__ import annotations

import math
import os
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import numpy as np
from loguru import logger

from mmkit.app.assembly import RiskSettings
from mmkit.app.backtest_cmd import load_events, run_backtest
from mmkit.backtest.replay import ReplayEvent
from mmkit.backtest.sequencing import BookSequencer
from mmkit.connector import load_venue_rules
from mmkit.model import NS_PER_MS, BookDelta, BookSnapshot, Side, Trade
from strategies.simple import SimpleConfig, SimpleController

HALF_SPREAD_BPS = Decimal(2)
ORDER_SIZE = Decimal("0.01")
TICK = 0.01
LOT = 0.00001
#: Maker and taker fee as a fraction of notional, from the venue file mmkit's side uses (never a second copy).
MAKER_FEE = float(load_venue_rules("binance").fees.maker_bps) / 10_000
TAKER_FEE = float(load_venue_rules("binance").fees.taker_bps) / 10_000
LATENCY_NS = 2 * NS_PER_MS
TICK_NS = 100 * NS_PER_MS
TARGET_PCT = 20.0


def _data_dir() -> Path:
    default = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
    return Path(os.environ.get("MMKIT_SHARED_DATA", default)) / "binance_spot_btcusdt"


# -- conversion to hftbacktest's format ------------------------------------------------------------------


def sequenced(events: list[ReplayEvent]) -> list[ReplayEvent]:
    """The book stream as mmkit's replay venue applies it (BookSequencer), trades included, from the snapshot on."""
    out: list[ReplayEvent] = []
    sequencer = BookSequencer(out.append)
    for event in events:
        sequencer(event)  # type: ignore[arg-type]
    first = next(i for i, e in enumerate(out) if isinstance(e, BookSnapshot))
    return out[first:]


def to_hftbacktest(events: list[ReplayEvent]) -> np.ndarray:
    """mmkit events -> hftbacktest's ``event_dtype`` rows, ordered for both its exchange and local queues."""
    from hftbacktest import (
        BUY_EVENT,
        DEPTH_CLEAR_EVENT,
        DEPTH_EVENT,
        DEPTH_SNAPSHOT_EVENT,
        SELL_EVENT,
        TRADE_EVENT,
    )
    from hftbacktest.data.validation import correct_event_order, validate_event_order
    from hftbacktest.types import event_dtype

    both = 0  # correct_event_order adds EXCH_EVENT / LOCAL_EVENT itself (splitting rows where they disagree)
    rows: list[tuple[int, int, int, float, float]] = []
    for e in events:
        if isinstance(e, BookSnapshot):
            if e.bids:
                rows.append((both | DEPTH_CLEAR_EVENT | BUY_EVENT, e.ts_event, e.ts_recv, float(e.bids[-1][0]), 0.0))
            if e.asks:
                rows.append((both | DEPTH_CLEAR_EVENT | SELL_EVENT, e.ts_event, e.ts_recv, float(e.asks[-1][0]), 0.0))
            for side, levels in ((BUY_EVENT, e.bids), (SELL_EVENT, e.asks)):
                rows.extend((both | DEPTH_SNAPSHOT_EVENT | side, e.ts_event, e.ts_recv, float(p), float(q))
                            for p, q in levels)
        elif isinstance(e, BookDelta):
            for side, levels in ((BUY_EVENT, e.bids), (SELL_EVENT, e.asks)):
                rows.extend((both | DEPTH_EVENT | side, e.ts_event, e.ts_recv, float(p), float(q)) for p, q in levels)
        elif isinstance(e, Trade):
            side = BUY_EVENT if e.aggressor is Side.BUY else SELL_EVENT
            rows.append((both | TRADE_EVENT | side, e.ts_event, e.ts_recv, float(e.price), float(e.qty)))
    data = np.zeros(len(rows), event_dtype)
    for i, (ev, exch, local, px, qty) in enumerate(rows):
        data[i]["ev"], data[i]["exch_ts"], data[i]["local_ts"], data[i]["px"], data[i]["qty"] = ev, exch, local, px, qty
    data = correct_event_order(data, np.argsort(data["exch_ts"], kind="mergesort"),
                               np.argsort(data["local_ts"], kind="mergesort"))
    validate_event_order(data)
    return data


# -- the maker in hftbacktest ----------------------------------------------------------------------------


def run_hftbacktest(data: np.ndarray, end_local_ns: int) -> dict[str, Any]:
    """The same maker: each 100 ms, bid/ask at mid ∓ half spread (bid down, ask up to the tick); cancel, then place."""
    from hftbacktest import GTC, LIMIT, BacktestAsset, HashMapMarketDepthBacktest

    asset = (
        BacktestAsset()
        .data([data])
        .linear_asset(1.0)
        .constant_order_latency(LATENCY_NS, LATENCY_NS)
        .risk_adverse_queue_model()
        .no_partial_fill_exchange()  # partial_fill_exchange stops with InvalidOrderStatus (14): see the docstring
        .trading_value_fee_model(MAKER_FEE, TAKER_FEE)
        .tick_size(TICK)
        .lot_size(LOT)
    )
    hbt = HashMapMarketDepthBacktest([asset])
    spread = float(HALF_SPREAD_BPS) / 10_000
    qty = float(ORDER_SIZE)
    next_id = 1
    mid = math.nan
    errors: dict[int, int] = {}
    filled: list[tuple[int, float, int]] = []  # (side, price, exchange time) of each order seen FILLED
    while True:
        code = hbt.elapse(TICK_NS)
        done = hbt.orders(0).values()
        while done.has_next():
            order = done.get()
            if order.status == 3:  # FILLED, seen once: cleared just below
                filled.append((int(order.side), round(order.price, 2), int(order.exch_timestamp)))
        if code == 1 or hbt.current_timestamp > end_local_ns:
            break
        if code != 0:  # an error: hftbacktest does not advance past it
            errors[code] = errors.get(code, 0) + 1
            break
        hbt.clear_inactive_orders(0)
        depth = hbt.depth(0)
        best_bid, best_ask = depth.best_bid, depth.best_ask
        if not (math.isfinite(best_bid) and math.isfinite(best_ask)) or best_bid >= best_ask:
            continue
        mid = (best_bid + best_ask) / 2
        want = {
            True: math.floor(round(mid * (1 - spread) / TICK, 6)) * TICK,
            False: math.ceil(round(mid * (1 + spread) / TICK, 6)) * TICK,
        }
        live: dict[bool, list[Any]] = {True: [], False: []}
        values = hbt.orders(0).values()
        while values.has_next():
            order = values.get()
            live[order.side == 1].append(order)
        for is_buy, price in want.items():
            orders = live[is_buy]
            if not orders:
                submit = hbt.submit_buy_order if is_buy else hbt.submit_sell_order
                submit(0, next_id, round(price, 2), qty, GTC, LIMIT, False)
                next_id += 1
                continue
            for order in orders:
                if order.cancellable and abs(order.price - price) > TICK / 2:
                    hbt.cancel(0, order.order_id, False)
    state = hbt.state_values(0)
    result = {
        "fills": int(state.num_trades),
        "volume": float(state.trading_volume),
        "gross_pnl": float(state.balance + state.position * mid),
        "fees": float(state.fee),
        "position": float(state.position),
        "orders": next_id - 1,
        "errors": errors,
        "filled": filled,
    }
    hbt.close()
    return result


# -- the maker in mmkit ----------------------------------------------------------------------------------


def run_mmkit(events: list[ReplayEvent], end_ns: int, rate_limited: bool) -> dict[str, Any]:
    rules = load_venue_rules("binance")
    if not rate_limited:
        rules = attrs.evolve(rules, rate_limits=())
    controller = SimpleController(SimpleConfig(half_spread_bps=HALF_SPREAD_BPS, order_size=ORDER_SIZE,
                                               min_confidence=0.0))
    result = run_backtest(controller, events, setup="replay", rules=rules, queue="conservative",
                          risk=RiskSettings(), end_ns=end_ns, through_fill="whole")  # hftbacktest's convention
    pnl = result.engine.pnl
    return {
        "fills": len(result.engine.fills),
        "volume": float(pnl.volume_base()),
        "gross_pnl": float(pnl.realized() + pnl.unrealized()),
        "fees": float(pnl.fees()),
        "position": float(pnl.position()),
        "orders": result.sampler.accepted_orders,
        "two_sided_pct": result.report["quoting"]["two_sided_uptime_pct"],
        "filled": [(f.side.sign, float(f.price), f.ts_event) for f in result.engine.fills],
    }


def match_fills(a: list[tuple[int, float, int]], b: list[tuple[int, float, int]], window_ns: int) -> int:
    """Fills of ``a`` with a fill of ``b`` on the same side at the same price within ``window_ns`` (each used once)."""
    unused = list(b)
    common = 0
    for side, price, ts in a:
        for i, (s2, p2, t2) in enumerate(unused):
            if s2 == side and abs(p2 - price) < TICK / 2 and abs(t2 - ts) <= window_ns:
                common += 1
                del unused[i]
                break
    return common


def _diff(a: float, b: float) -> str:
    return "-" if b == 0 else f"{(a - b) / abs(b) * 100:+.1f} %"


def main() -> None:
    logger.remove()
    try:
        import hftbacktest
    except ImportError:
        print("   hftbacktest is not installed: pip install -e '.[validate]' (the [validate] extra)")
        return
    print(f"   hftbacktest {hftbacktest.__version__}")
    began = time.perf_counter()
    events = load_events(_data_dir())
    stream = sequenced(events)
    end_ns = events[-1].ts_recv
    data = to_hftbacktest(stream)
    convert_s = time.perf_counter() - began
    began = time.perf_counter()
    ref = run_hftbacktest(data, end_ns)
    hbt_s = time.perf_counter() - began
    began = time.perf_counter()
    ours = run_mmkit(events, end_ns, rate_limited=False)
    limited = run_mmkit(events, end_ns, rate_limited=True)
    mm_s = time.perf_counter() - began
    print(f"   simple maker, ±{HALF_SPREAD_BPS} bps, {ORDER_SIZE} BTC a side, 100 ms re-quote, tick {TICK}, "
          f"fees {MAKER_FEE * 1e4:g}/{TAKER_FEE * 1e4:g} bps (maker/taker), "
          f"latency {LATENCY_NS / 1e6:g}+{LATENCY_NS / 1e6:g} ms, conservative queue")
    print(f"   {len(stream):,} sequenced events -> {len(data):,} hftbacktest rows (load+convert {convert_s:.1f} s; "
          f"hftbacktest {hbt_s:.1f} s, mmkit x2 {mm_s:.1f} s)")
    print(f"   {'':24s} {'hftbacktest 2.4.4':>18s} {'mmkit (no limit)':>18s} {'diff':>9s} {'mmkit (50/10 s)':>18s}")
    for key, fmt in (("fills", "{:,.0f}"), ("volume", "{:.5f}"), ("gross_pnl", "{:+.2f}"), ("fees", "{:.4f}"),
                     ("position", "{:+.5f}"), ("orders", "{:,.0f}")):
        print(f"   {key:24s} {fmt.format(ref[key]):>18s} {fmt.format(ours[key]):>18s} "
              f"{_diff(ours[key], ref[key]):>9s} {fmt.format(limited[key]):>18s}")
    common = match_fills(ours["filled"], ref["filled"], 1_000 * NS_PER_MS)
    print(f"   same fill in both (side, price, within 1 s): {common}; only mmkit {ours['fills'] - common}, "
          f"only hftbacktest {ref['fills'] - common}; hftbacktest errors {ref['errors'] or 'none'}")
    ok = all(abs(ours[k] - ref[k]) <= TARGET_PCT / 100 * abs(ref[k]) for k in ("fills", "volume"))
    print(f"   fills and volume within {TARGET_PCT:g} %: {'yes' if ok else 'NO (see docs/backtesting.md)'}")


if __name__ == "__main__":
    main()
