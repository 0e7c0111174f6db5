"""Decision latency of the skewed ladder: alone, then through the executor.

5 levels a side, inventory skew on (long 2.5 of 5 BTC), TrueX increments,
and a mid that moves past the reprice threshold on every call so that every
call recomputes the whole ladder (the worst case; a held ladder is a cheap
early return). Contexts are built before timing starts.

Two figures:

* ``on_tick`` alone (the controller's own cost);
* the decision path the issue's target is about: ``on_tick`` ->
  ``Executor.reconcile`` (TrueX rules, price band around the mid) -> actions
  handed to the FakeConnector (auto-ack). As in ``bench_decision``, the round
  is drained and settled outside the timed part, and rate limits and the
  duplicate guard are lifted so that every call really acts (every level is
  replaced on every call). Target: p99 < 1 ms.

GC is set up as ``mmkit.app.lifecycle.run_live`` does before the clock runs.
"""

from __future__ import annotations

import random
import statistics
import time
from decimal import Decimal

import attrs

from mmkit.connector import load_venue_rules
from mmkit.execution.executor import Executor
from mmkit.execution.rate_limiter import RateLimiter
from mmkit.gc_policy import long_run_gc
from mmkit.model import FairValue, Fill, Liquidity, Side
from mmkit.orders.tracker import ClientOrderTracker
from mmkit.risk.inventory import InventoryConfig, InventoryManager
from mmkit.strategy import StrategyContext
from mmkit.stream import UserStreamTracker
from mmkit.testing.fake_connector import FakeConnector
from strategies.skewed_ladder import SkewedLadderConfig, SkewedLadderController

CALLS = 20_000
WARMUP = 500
SYMBOL = "BTC-PYUSD"


def _contexts(count: int) -> list[StrategyContext]:
    instrument = load_venue_rules("truex").instrument(SYMBOL)
    inventory = InventoryManager(InventoryConfig())
    inventory.on_fill(
        Fill("truex", "seed", "seed", SYMBOL, Side.BUY, Decimal(98000), Decimal("2.5"), Decimal(0), "PYUSD",
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
                now_ns=(i + 1) * 100_000_000,
                instrument=instrument,
                book=None,
                fair=FairValue(price=mid, confidence=0.9, ts=(i + 1) * 100_000_000, sources=3),
                position=inventory.position,
                inventory=inventory,
            )
        )
    return out


def _pct(values: list[int], p: float) -> float:
    return values[min(len(values) - 1, int(p * len(values)))] / 1000


def _print(label: str, samples: list[int]) -> None:
    samples.sort()
    mean = statistics.fmean(samples) / 1000
    print(
        f"   {label}: p50 {_pct(samples, 0.5):.1f} us   p99 {_pct(samples, 0.99):.1f} us   "
        f"mean {mean:.1f} us   max {samples[-1] / 1000:.1f} us"
    )


def bench_controller_alone(contexts: list[StrategyContext]) -> None:
    controller = SkewedLadderController(SkewedLadderConfig(levels=5))
    for ctx in contexts[:WARMUP]:
        controller.on_tick(ctx)
    samples: list[int] = []
    quotes = 0
    with long_run_gc():  # GC as run_live sets it after start-up
        for ctx in contexts[WARMUP:]:
            began = time.perf_counter_ns()
            targets = controller.on_tick(ctx)
            samples.append(time.perf_counter_ns() - began)
            quotes += len(targets)
    print(f"   skewed ladder on_tick alone, {CALLS} calls, 5 levels a side, skew on, mid moving every call")
    _print("on_tick           ", samples)
    print(f"   targets per call: {quotes / CALLS:.2f}")


def bench_decision_path(contexts: list[StrategyContext]) -> None:
    rules = attrs.evolve(load_venue_rules("truex"), rate_limits=(), duplicate_order_window_ns=0)
    fake = FakeConnector(rules, validate=False)  # the executor has validated every target already
    tracker = ClientOrderTracker(fake)
    stream = UserStreamTracker(tracker)
    executor = Executor(fake, tracker, rules.instrument(SYMBOL), rules, RateLimiter.from_rules(rules))
    controller = SkewedLadderController(SkewedLadderConfig(levels=5))
    wall: list[int] = []
    cpu: list[int] = []  # thread CPU time: separates our cost from a busy machine's scheduling
    actions_total = 0
    with long_run_gc():  # GC as run_live sets it after start-up
        for i, ctx in enumerate(contexts):
            fake.now_ns = ctx.now_ns
            began, began_cpu = time.perf_counter_ns(), time.thread_time_ns()
            actions = executor.reconcile(controller.on_tick(ctx), ctx.now_ns, ctx.fair.price)
            elapsed, elapsed_cpu = time.perf_counter_ns() - began, time.thread_time_ns() - began_cpu
            stream.process(fake.drain())
            if len(fake.actions) > 5_000:  # keep the fake's recordings from growing the heap without bound
                fake.clear_records()
                fake.purge_closed()
            if i >= WARMUP:
                wall.append(elapsed)
                cpu.append(elapsed_cpu)
                actions_total += len(actions)
    print("   ladder -> Executor.reconcile -> FakeConnector (TrueX rules, every level repriced every call)")
    _print("decision (wall)   ", wall)
    _print("decision (cpu)    ", cpu)
    print(f"   actions per call: {actions_total / CALLS:.2f}   live orders at end: {len(tracker.open_orders())}")
    print(f"   target p99 < 1000 us: {'OK' if _pct(wall, 0.99) < 1000 else 'MISSED'}")


def main() -> None:
    from loguru import logger

    logger.remove()  # measure the decision path, not log formatting
    contexts = _contexts(CALLS + WARMUP)
    bench_controller_alone(contexts)
    bench_decision_path(contexts)


if __name__ == "__main__":
    main()
