"""Replay simulate of the one-level maker against hftbacktest warm, interleaved in one process.

Issue 16's replay target: mmkit's replay simulate of a one-level maker
(setup (a) of ``bench_backtest``: the skewed ladder, one level a side, the
probabilistic queue, 100 ms ticks, the whole shared Binance recording) at no
more than 3x hftbacktest's warm run of a one-level maker on the same tape
(``bench/validate_hftbacktest.py``'s maker on data converted once, its first
run discarded as warm-up; that maker's loop is Python calling hftbacktest,
so it is slower than the ``@njit`` maker of ``bench/compare_anchors.py``,
which is the issue's figure). Runs alternate (hftbacktest, mmkit compiled
core, mmkit compiled without the delivery loop, mmkit pure Python, ...) so that the machine's drift hits all three
alike; min and median of each, wall and CPU time (this process's CPU: on the
shared 2-core machine, other work inflates wall time but hardly CPU time),
and the ratios of the medians are printed.

The pure-Python path is chosen with ``MMKIT_PURE_PYTHON=1``, read when a
backtest builds its venue and sequencer, so both paths run in this one process.
A fourth contender keeps the compiled books and sequencer but delivers the
recorded events through the sinks alone, without the compiled delivery loop
(mmkit/_speedups/_replayloop.pyx): the loop's own gain, in the same run.

Run: ``PYTHONPATH=. .venv/bin/python -m bench bench_replay_core`` (hftbacktest from the
``[validate]`` extra; without it only mmkit's two paths are timed).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from statistics import median
from typing import Any

from loguru import logger

from bench.bench_backtest import RISK, _controller, _data_dir
from mmkit import _speedups
from mmkit.app.backtest_cmd import load_events, run_backtest
from mmkit.backtest import replay as replay_module
from mmkit.backtest.replay import ReplayEvent
from mmkit.backtest.replay_loop import compiled_loop_for

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "7"))
TARGET_RATIO = 3.0


Timed = tuple[float, float, str]  # wall s, CPU s, what the run did


def _mmkit(events: list[ReplayEvent], pure: bool, loop: bool = True) -> Callable[[], Timed]:
    """One mmkit run; ``loop`` False keeps the compiled books and sequencer but delivers through the sinks."""

    def run() -> Timed:
        previous = os.environ.get(_speedups.ENV_PURE)
        os.environ[_speedups.ENV_PURE] = "1" if pure else "0"
        loops: list[Any] = []

        def loop_for(sinks: Any) -> Any:
            found = compiled_loop_for(sinks) if loop else None
            loops.append(found)
            return found

        replay_module.compiled_loop_for = loop_for  # the replay looks it up at its first delivery
        try:
            cpu = time.process_time()
            result = run_backtest(_controller(), events, setup="replay", queue="probabilistic", risk=RISK)
            cpu = time.process_time() - cpu
        finally:
            replay_module.compiled_loop_for = compiled_loop_for
            if previous is None:
                os.environ.pop(_speedups.ENV_PURE, None)
            else:
                os.environ[_speedups.ENV_PURE] = previous
        skipped = result.engine.runner.skipped_ticks
        note = f"fills {result.report['fills']['count']}, idle ticks skipped {skipped}"
        if loops and loops[0] is not None:
            note += f", loop handled {loops[0].handled:,} events, passed {loops[0].passed:,} to the sinks"
        return result.run_s, cpu, note

    return run


def _hftbacktest(events: list[ReplayEvent]) -> Callable[[], Timed] | None:
    try:
        import hftbacktest  # noqa: F401
    except ImportError:
        return None
    from bench.validate_hftbacktest import run_hftbacktest, sequenced, to_hftbacktest

    data = to_hftbacktest(sequenced(events))
    end_ns = events[-1].ts_recv
    run_hftbacktest(data, end_ns)  # warm-up: numba compiles here

    def run() -> Timed:
        began, cpu = time.perf_counter(), time.process_time()
        result = run_hftbacktest(data, end_ns)
        return time.perf_counter() - began, time.process_time() - cpu, f"fills {result['fills']}"

    return run


def main() -> None:
    logger.remove()
    events = load_events(_data_dir(), freeze=True)
    contenders: dict[str, Callable[[], Timed]] = {}
    hbt = _hftbacktest(events)
    if hbt is not None:
        contenders["hftbacktest 2.4.4 warm"] = hbt
    if _speedups.compiled_available():
        contenders["mmkit compiled core"] = _mmkit(events, pure=False)
        contenders["mmkit compiled, no loop"] = _mmkit(events, pure=False, loop=False)
    else:
        print(f"   compiled core not built ({_speedups.import_error()}): timing the pure-Python path only")
    contenders["mmkit pure Python"] = _mmkit(events, pure=True)
    walls: dict[str, list[float]] = {name: [] for name in contenders}
    cpus: dict[str, list[float]] = {name: [] for name in contenders}
    notes: dict[str, str] = {}
    for _ in range(ROUNDS):
        for name, run in contenders.items():
            wall, cpu, note = run()
            walls[name].append(wall)
            cpus[name].append(cpu)
            notes[name] = note
    print(f"   {ROUNDS} interleaved rounds, whole recording, one-level maker, probabilistic queue, 100 ms ticks:")
    for name in contenders:
        wall, cpu = walls[name], cpus[name]
        print(f"     {name:24s} wall min {min(wall):6.3f} s median {median(wall):6.3f} s | "
              f"cpu min {min(cpu):6.3f} s median {median(cpu):6.3f} s  ({notes[name]})")
    base = "hftbacktest 2.4.4 warm"
    for name in contenders:
        if name == base or base not in contenders:
            continue
        ratio = median(walls[name]) / median(walls[base])
        cpu_ratio = median(cpus[name]) / median(cpus[base])
        print(f"     {name}: {ratio:4.1f}x this hftbacktest loop (wall medians; CPU {cpu_ratio:4.1f}x)")
    print(f"     (issue 16's target, <= {TARGET_RATIO:g}x, is against hftbacktest's @njit maker: "
          "bench/compare_anchors.py measures that one)")
    if "mmkit pure Python" in contenders and "mmkit compiled core" in contenders:
        speedup = median(cpus["mmkit pure Python"]) / median(cpus["mmkit compiled core"])
        print(f"     compiled core vs pure Python: {speedup:4.2f}x less CPU (medians)")
    if "mmkit compiled, no loop" in contenders and "mmkit compiled core" in contenders:
        speedup = median(cpus["mmkit compiled, no loop"]) / median(cpus["mmkit compiled core"])
        print(f"     compiled delivery loop vs the sinks alone: {speedup:4.2f}x less CPU (medians)")


if __name__ == "__main__":
    main()
