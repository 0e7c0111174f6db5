"""The decision path's worst case alone: a full re-quote of a 16-order ladder (16 replaces).

``bench_decision --live-like`` has its max at this decision (issue 16: max <
2 ms, and the VM has spells 1.4-3x slower than quiet). Here it is timed on its
own: the ladder of ``bench_decision`` (8 levels a side, FakeConnector with
auto-ack, no rate limits) alternates between two references one tick apart,
so every decision replaces all 16 orders; the acks are drained outside the
timed part, as in ``bench_decision``. Figures are thread CPU time per decision
(min, median, p99), and the same split into the executor's part and the
connector's part (the FakeConnector's ``replace`` timed on its own, by
wrapping it), so that a change can be judged on the part it touches.

Runs unchanged against another checkout's ``mmkit`` (interleaved A/B): it uses
only the public API that ``bench_decision`` uses.
"""

from __future__ import annotations

import gc
import statistics
import sys
import time
from decimal import Decimal
from typing import Any

ROUNDS = 3000
WARMUP = 200


def main() -> None:
    sys.path.insert(0, ".")  # run from a checkout's root: its bench package and mmkit (A/B against main)
    from loguru import logger

    from bench.bench_decision import TICK, _setup, controller

    logger.remove()
    fake, _tracker, stream, executor = _setup()
    real_replace = fake.replace
    connector_ns = [0]

    def timed_replace(request: Any) -> None:
        began = time.thread_time_ns()
        real_replace(request)
        connector_ns[0] += time.thread_time_ns() - began

    refs = (Decimal("60000.00"), Decimal("60000.00") + TICK)
    now = 0

    def rounds(count: int) -> tuple[list[int], list[int]]:
        nonlocal now
        out: list[int] = []
        conn: list[int] = []
        for i in range(count + WARMUP):
            now += 100_000_000
            fake.now_ns = now
            connector_ns[0] = 0
            began = time.thread_time_ns()
            actions = executor.reconcile(controller(refs[i % 2]), now)
            elapsed = time.thread_time_ns() - began
            stream.process(fake.drain())
            if len(fake.actions) > 5_000:
                fake.clear_records()
                fake.purge_closed()
            if len(actions) != 16:
                raise SystemExit(f"decision {i} sent {len(actions)} actions, not 16")
            if i >= WARMUP:
                out.append(elapsed)
                conn.append(connector_ns[0])
        return out, conn

    gc.collect()
    gc.freeze()
    total, _ = rounds(ROUNDS)  # unwrapped: the figure to compare
    fake.replace = timed_replace  # type: ignore[method-assign]
    wrapped, conn = rounds(ROUNDS)  # the connector's share (each timed call adds two clock reads)
    fake.replace = real_replace  # type: ignore[method-assign]
    gc.unfreeze()

    def fig(values: list[int]) -> str:
        ordered = sorted(values)
        p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
        return (f"min {ordered[0] / 1000:6.1f}  median {statistics.median(ordered) / 1000:6.1f}  "
                f"p99 {p99 / 1000:6.1f} us")

    own = [t - c for t, c in zip(wrapped, conn, strict=True)]
    print(f"   full re-quote (16 replaces), {ROUNDS} decisions, thread CPU per decision")
    print(f"   decision (controller + reconcile + connector): {fig(total)}")
    print("   second pass, FakeConnector.replace timed per call (adds 32 clock reads a decision):")
    print(f"     FakeConnector.replace x16:                   {fig(conn)}")
    print(f"     the rest (controller + executor + tracker):  {fig(own)}")


if __name__ == "__main__":
    main()
