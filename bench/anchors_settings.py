"""The one-level maker of issue 16, and its settings as each engine takes them.

One :class:`MakerSpec` (1 level a side, 0.01 BTC, mid ± 5 USDT, probabilistic
queue, 100 ms tick, 2 + 2 ms latency, 10 bps fees, the recording's 0.01 tick
and 0.00001 lot) is converted here to mmkit's, hftbacktest's and
NautilusTrader's parameters, so that "settings matched as far as each allows"
is one tested function per engine rather than constants scattered over three
runners. Where an engine cannot take a setting, the conversion says so in
``unmatched`` (printed by the bench and listed in docs/backtesting.md).

:func:`quote_ticks` is the maker's price rule in integer ticks. It is plain
Python on ints so that the hftbacktest runner compiles the very same function
with numba, and mmkit's and Nautilus's makers call it too: the three quote
the same prices from the same book.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

NS_PER_MS = 1_000_000


@dataclass(frozen=True)
class MakerSpec:
    """The maker being timed (defaults: issue 16's setting on the shared Binance BTCUSDT recording)."""

    order_size: Decimal = Decimal("0.01")
    offset: Decimal = Decimal(5)  # quote currency from the mid, each side
    tick_ms: int = 100
    price_tick: Decimal = Decimal("0.01")
    lot: Decimal = Decimal("0.00001")
    book_size_increment: Decimal = Decimal("0.00000001")  # the recording prints sizes finer than the order lot
    fee_bps: Decimal = Decimal(10)  # maker and taker: conf/venues/binance.yml (VIP 0, 0.1 %)
    entry_latency_ms: int = 2
    response_latency_ms: int = 2
    queue_power: float = 1.0
    seed: int = 7
    #: NautilusTrader has no queue position; its one probabilistic fill knob is the chance that a limit order
    #: fills when the market trades at its price. 0.5 is a stand-in, not calibrated to mmkit's queue.
    nautilus_prob_fill_on_limit: float = 0.5

    def __post_init__(self) -> None:
        for name in ("order_size", "offset", "price_tick", "lot", "book_size_increment"):
            if getattr(self, name) <= 0:
                raise ValueError(f"MakerSpec.{name} must be positive, got {getattr(self, name)}")
        if self.tick_ms <= 0 or self.entry_latency_ms < 0 or self.response_latency_ms < 0 or self.fee_bps < 0:
            raise ValueError("MakerSpec: tick_ms must be positive; latencies and fee_bps not negative")
        if self.queue_power <= 0:
            raise ValueError("MakerSpec.queue_power must be positive")
        if not 0.0 <= self.nautilus_prob_fill_on_limit <= 1.0:
            raise ValueError("MakerSpec.nautilus_prob_fill_on_limit must be within [0, 1]")
        for name, step in (("offset", self.price_tick), ("order_size", self.lot)):
            if getattr(self, name) % step:
                raise ValueError(f"MakerSpec.{name} {getattr(self, name)} is not a multiple of {step}")

    @property
    def offset_ticks(self) -> int:
        return int(self.offset / self.price_tick)

    @property
    def size_lots(self) -> int:
        return int(self.order_size / self.lot)


def quote_ticks(best_bid: int, best_ask: int, offset_ticks: int) -> tuple[int, int]:
    """Bid and ask in ticks: mid ∓ offset, the bid rounded down and the ask up (never tighter than asked)."""
    twice_mid = best_bid + best_ask
    bid = (twice_mid - 2 * offset_ticks) // 2
    ask = -((-(twice_mid + 2 * offset_ticks)) // 2)
    return bid, ask


def precision(step: Decimal) -> int:
    """Decimal places of a tick or lot (0.01 -> 2); a step that is not a power of ten is refused."""
    exponent = step.normalize().as_tuple().exponent
    if not isinstance(exponent, int) or step.normalize() != Decimal(1).scaleb(exponent):
        raise ValueError(f"{step} is not a power of ten")
    return max(0, -exponent)


def mmkit_settings(spec: MakerSpec) -> dict[str, Any]:
    """``run_backtest`` keywords and venue-rule changes for mmkit's setup (a)."""
    return {
        "setup": "replay",
        "queue": "probabilistic",  # ProbabilisticQueue(seed), power 1: a random draw per decrease
        "queue_power": spec.queue_power,
        "seed": spec.seed,
        "tick_ms": spec.tick_ms,
        "latency_ns": (spec.entry_latency_ms * NS_PER_MS, spec.response_latency_ms * NS_PER_MS),
        "fee_bps": spec.fee_bps,
        "lift_rate_limits": True,  # neither reference engine has one
        # hftbacktest's no_partial_fill_exchange fills an order whole when a print or the book passes its price.
        "through_fill": "whole",
        "unmatched": [],
    }


def hftbacktest_settings(spec: MakerSpec) -> dict[str, Any]:
    """Floats and nanoseconds for hftbacktest's ``BacktestAsset`` and the maker loop."""
    return {
        "tick_size": float(spec.price_tick),
        "lot_size": float(spec.lot),
        "order_qty": float(spec.order_size),
        "offset_ticks": spec.offset_ticks,
        "elapse_ns": spec.tick_ms * NS_PER_MS,
        "entry_latency_ns": spec.entry_latency_ms * NS_PER_MS,
        "response_latency_ns": spec.response_latency_ms * NS_PER_MS,
        "maker_fee": float(spec.fee_bps / 10_000),
        "taker_fee": float(spec.fee_bps / 10_000),
        "queue_power": float(spec.queue_power),  # power_prob_queue_model(n): f(x) = x**n, like mmkit's
        "unmatched": [
            "queue: hftbacktest moves the front by the EXPECTED share of a decrease (deterministic), "
            "mmkit draws whether the whole decrease was in front (seeded)",
            "partial fills: no_partial_fill_exchange (partial_fill_exchange stops with InvalidOrderStatus in 2.4.4)",
            "no seed: nothing random in hftbacktest's run",
        ],
    }


def nautilus_settings(spec: MakerSpec) -> dict[str, Any]:
    """Precisions, increments, fees and latency for NautilusTrader's instrument, venue and strategy."""
    latency_ns = spec.entry_latency_ms * NS_PER_MS
    # One size precision per instrument, for the book and the orders alike: the finer of the two, so that no
    # recorded level is rounded away (the orders, 0.01, are on both).
    size_step = min(spec.lot, spec.book_size_increment)
    unmatched = [
        f"latency: one base latency ({latency_ns / NS_PER_MS:g} ms) on every order command; "
        "responses are not delayed (mmkit and hftbacktest add a response leg)",
        "queue: no queue position from L2 data; a limit order at the touch fills when trades reach it, "
        "with FillModel(prob_fill_on_limit) as the only probabilistic part",
        "time: one timestamp per update (the receive time): no feed latency between venue and strategy",
    ]
    if size_step != spec.lot:
        unmatched.append(f"lot: {size_step:f} (one size precision per instrument for book and orders; "
                         f"ours is {spec.lot})")
    return {
        "price_precision": precision(spec.price_tick),
        "size_precision": precision(size_step),
        "price_increment": str(spec.price_tick),
        "size_increment": f"{size_step:f}",
        "order_qty": str(spec.order_size),
        "offset_ticks": spec.offset_ticks,
        "maker_fee": spec.fee_bps / 10_000,
        "taker_fee": spec.fee_bps / 10_000,
        "timer_interval_ns": spec.tick_ms * NS_PER_MS,
        "base_latency_ns": latency_ns,
        "seed": spec.seed,
        "prob_fill_on_limit": spec.nautilus_prob_fill_on_limit,
        "unmatched": unmatched,
    }


__all__ = [
    "MakerSpec",
    "hftbacktest_settings",
    "mmkit_settings",
    "nautilus_settings",
    "precision",
    "quote_ticks",
]
