"""Garbage-collector policy, in one place: for a long run, and while a recording's events are built.

For a long run: freeze what is alive, collect the young generation rarely.

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


def collections() -> tuple[int, ...]:
    """Passes of the collector so far in this process, per generation (young first): a run logs the difference.

    Why: the decision-latency target depends on no older pass running on the
    tick path; the count over a real run says whether it held.
    """
    return tuple(int(generation["collections"]) for generation in gc.get_stats())


@contextlib.contextmanager
def gc_paused(*, freeze: bool = False) -> Iterator[None]:
    """Pause the cyclic garbage collector while many objects are built (a recording parsed, encoded or loaded).

    Why: that allocates millions of small acyclic objects (dicts, lists,
    tuples, events) that reference counting frees on its own, yet every few
    hundred allocations the collector walks everything alive, the growing
    event list included; that cost a quarter of the parse. Callers never
    yield while it is paused (the consumer's code never runs with it off),
    and the previous state is restored.

    ``freeze``, for a caller about to run what it built under
    :func:`long_run_gc` (a backtest on a recording): move everything alive
    into the permanent generation on the way out (``gc.freeze``, a list
    splice) rather than let the next young pass walk the new objects and
    older passes walk them again. On the shared recording that was about
    0.1 s at the end of the load and 0.07 s in the collection before the run.
    It is the caller's choice because it touches the whole process: the end
    of :func:`long_run_gc` hands everything back (``gc.unfreeze``), and
    reference counting frees frozen objects as usual.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if freeze:
            gc.freeze()
        if was_enabled:
            gc.enable()
