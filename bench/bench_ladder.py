"""Decision latency of the skewed ladder alone: context in, 10 targets out.

5 levels a side, inventory skew on (long 2.5 of 5 BTC), TrueX increments,
and a mid that moves past the reprice threshold on every call so that every
call recomputes the whole ladder (the worst case; a held ladder is a cheap
early return). Contexts are built before timing starts: only ``on_tick`` is
measured.
"""

from __future__ import annotations

import random
import statistics
import time
from decimal import Decimal

from mmkit.connector import load_venue_rules
from mmkit.model import FairValue, Fill, Liquidity, Side
from mmkit.risk.inventory import InventoryConfig, InventoryManager
from mmkit.strategy import StrategyContext
from strategies.skewed_ladder import SkewedLadderConfig, SkewedLadderController

CALLS = 20_000
WARMUP = 500


def _contexts(count: int) -> list[StrategyContext]:
    instrument = load_venue_rules("truex").instrument("BTC-PYUSD")
    inventory = InventoryManager(InventoryConfig())
    inventory.on_fill(
        Fill("truex", "seed", "seed", "BTC-PYUSD", Side.BUY, Decimal(98000), Decimal("2.5"), Decimal(0), "PYUSD",
             Liquidity.MAKER, 0, 0)
    )  # fmt: skip
    rng = random.Random(7)
    mid = Decimal(98000)
    out = []
    for i in range(count):
        # Each step is 3..15 ticks ($0.30..$1.50) up or down: always past the 2-tick reprice threshold.
        mid += Decimal(rng.randint(3, 15)) * Decimal("0.1") * rng.choice((1, -1))
        out.append(
            StrategyContext(
                now_ns=i * 100_000_000,
                instrument=instrument,
                book=None,
                fair=FairValue(price=mid, confidence=0.9, ts=i * 100_000_000, sources=3),
                position=inventory.position,
                inventory=inventory,
            )
        )
    return out


def main() -> None:
    controller = SkewedLadderController(SkewedLadderConfig(levels=5))
    contexts = _contexts(CALLS + WARMUP)
    for ctx in contexts[:WARMUP]:
        controller.on_tick(ctx)
    samples: list[int] = []
    quotes = 0
    for ctx in contexts[WARMUP:]:
        began = time.perf_counter_ns()
        targets = controller.on_tick(ctx)
        samples.append(time.perf_counter_ns() - began)
        quotes += len(targets)
    samples.sort()
    p50 = samples[len(samples) // 2] / 1000
    p99 = samples[int(len(samples) * 0.99)] / 1000
    mean = statistics.fmean(samples) / 1000
    print(f"   skewed ladder on_tick, {CALLS} calls, 5 levels a side, skew on, mid moving every call")
    print(f"   p50 {p50:.1f} us   p99 {p99:.1f} us   mean {mean:.1f} us   max {samples[-1] / 1000:.1f} us")
    print(f"   targets per call: {quotes / CALLS:.2f}")


if __name__ == "__main__":
    main()
