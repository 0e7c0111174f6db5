"""Garbage-collector policy for a long run: freeze what is alive, collect the young generation rarely.

Why: what exists when a run starts (the assembled engine, and in a backtest
the whole recording, hundreds of thousands of objects) lives for the whole
run, yet every older-generation pass of the cyclic collector walks it again.
The steady state keeps little of what it allocates, so young passes at the
default threshold (700 allocations) are mostly wasted work too. Measured:
the live decision path (``bench/bench_decision.py``) lost ~0.2 ms to a young
pass every ~18 decisions and ~5 ms to an older one every ~200; a backtest of
the shared recording spent about a fifth of its simulate time in the
collector. Reference counting still frees everything acyclic at once, and
cycles are still collected, only less often.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

#: Allocations (net) between two young-generation passes during a run.
GC_GEN0_THRESHOLD = 50_000


@contextlib.contextmanager
def long_run_gc(gen0_threshold: int = GC_GEN0_THRESHOLD) -> Iterator[None]:
    """Collect once, freeze the survivors out of later scans, raise the young threshold; undo on exit."""
    previous = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(gen0_threshold, *previous[1:])
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*previous)
