"""Fair-value update (3 venues) -> clock wake-up latency.

What is timed: one ``PriceAggregator.on_book`` call that moves the fair value
past the reprice threshold, from entry until the ``wake`` callback runs (the
lead passes ``clock.wake``, so this is the price-to-tick trigger latency).
Also timed: an update that does *not* wake (the common case) and ``fair()``.
"""

from __future__ import annotations

import time
from decimal import Decimal

from mmkit.pricing.aggregator import AggregatorConfig, PriceAggregator

N = 20_000


def _pct(samples: list[int], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1_000


def main() -> None:
    woke_at: list[int] = []
    agg = PriceAggregator(AggregatorConfig(reprice_bps=Decimal(1)), wake=lambda: woke_at.append(time.perf_counter_ns()))
    venues = ("kraken", "coinbase", "gemini")
    base = Decimal("63300.0")
    half = Decimal("0.5")
    for venue in venues:
        agg.update(venue, base - half, base + half, 0)

    wake_latency: list[int] = []
    quiet: list[int] = []
    ts = 1
    for i in range(N):
        # alternate a ~6 bp move of one venue (fair moves ~2 bp: wakes) with a 0.01 bp jiggle (does not)
        mid = base + (Decimal("40") if i % 2 else Decimal(0))
        venue = venues[i % 3]
        woke_before = len(woke_at)
        began = time.perf_counter_ns()
        agg.on_book(venue, mid - half, mid + half, ts)
        ended = time.perf_counter_ns()
        if len(woke_at) > woke_before:
            wake_latency.append(woke_at[-1] - began)
        else:
            quiet.append(ended - began)
        jiggle = mid + Decimal("0.05")
        began = time.perf_counter_ns()
        agg.on_book(venue, jiggle - half, jiggle + half, ts)
        quiet.append(time.perf_counter_ns() - began)
        ts += 1_000

    fair_ns: list[int] = []
    for _ in range(N):
        began = time.perf_counter_ns()
        agg.fair(ts)
        fair_ns.append(time.perf_counter_ns() - began)

    print(
        f"   update -> wake (3 venues), {len(wake_latency)} wakes: "
        f"p50 {_pct(wake_latency, 0.5):.1f} us, p99 {_pct(wake_latency, 0.99):.1f} us, "
        f"max {max(wake_latency) / 1000:.1f} us"
    )
    print(
        f"   update without wake, {len(quiet)} updates: p50 {_pct(quiet, 0.5):.1f} us, p99 {_pct(quiet, 0.99):.1f} us"
    )
    print(f"   fair(): p50 {_pct(fair_ns, 0.5):.1f} us, p99 {_pct(fair_ns, 0.99):.1f} us")


if __name__ == "__main__":
    main()
