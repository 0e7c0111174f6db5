"""Replay simulate of the one-level maker against hftbacktest warm, interleaved in one process.

Issue 16's replay target: mmkit's replay simulate of a one-level maker
(setup (a) of ``bench_backtest``: the skewed ladder, one level a side, the
probabilistic queue, 100 ms ticks, the whole shared Binance recording) at no
more than 3x hftbacktest's warm run of a one-level maker on the same tape
(``bench/validate_hftbacktest.py``'s maker on data converted once, its first
run discarded as warm-up). Runs alternate (hftbacktest, mmkit compiled core,
mmkit pure Python, ...) so that the machine's drift hits all three alike;
min and median of each and the ratios of the medians are printed.

The pure-Python path is chosen with ``MMKIT_PURE_PYTHON=1``, read when a
backtest builds its venue and sequencer, so both paths run in this one process.

Run: ``PYTHONPATH=. .venv/bin/python -m bench bench_replay_core`` (hftbacktest from the
``[validate]`` extra; without it only mmkit's two paths are timed).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from statistics import median

from loguru import logger

from bench.bench_backtest import RISK, _controller, _data_dir
from mmkit import _speedups
from mmkit.app.backtest_cmd import load_events, run_backtest
from mmkit.backtest.replay import ReplayEvent

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "7"))
TARGET_RATIO = 3.0


def _mmkit(events: list[ReplayEvent], pure: bool) -> Callable[[], tuple[float, str]]:
    def run() -> tuple[float, str]:
        previous = os.environ.get(_speedups.ENV_PURE)
        os.environ[_speedups.ENV_PURE] = "1" if pure else "0"
        try:
            result = run_backtest(_controller(), events, setup="replay", queue="probabilistic", risk=RISK)
        finally:
            if previous is None:
                os.environ.pop(_speedups.ENV_PURE, None)
            else:
                os.environ[_speedups.ENV_PURE] = previous
        return result.run_s, f"fills {result.report['fills']['count']}"

    return run


def _hftbacktest(events: list[ReplayEvent]) -> Callable[[], tuple[float, str]] | None:
    try:
        import hftbacktest  # noqa: F401
    except ImportError:
        return None
    from bench.validate_hftbacktest import run_hftbacktest, sequenced, to_hftbacktest

    data = to_hftbacktest(sequenced(events))
    end_ns = events[-1].ts_recv
    run_hftbacktest(data, end_ns)  # warm-up: numba compiles here

    def run() -> tuple[float, str]:
        began = time.perf_counter()
        result = run_hftbacktest(data, end_ns)
        return time.perf_counter() - began, f"fills {result['fills']}"

    return run


def main() -> None:
    logger.remove()
    events = load_events(_data_dir(), freeze=True)
    contenders: dict[str, Callable[[], tuple[float, str]]] = {}
    hbt = _hftbacktest(events)
    if hbt is not None:
        contenders["hftbacktest 2.4.4 warm"] = hbt
    if _speedups.compiled_available():
        contenders["mmkit compiled core"] = _mmkit(events, pure=False)
    else:
        print(f"   compiled core not built ({_speedups.import_error()}): timing the pure-Python path only")
    contenders["mmkit pure Python"] = _mmkit(events, pure=True)
    times: dict[str, list[float]] = {name: [] for name in contenders}
    notes: dict[str, str] = {}
    for _ in range(ROUNDS):
        for name, run in contenders.items():
            seconds, note = run()
            times[name].append(seconds)
            notes[name] = note
    print(f"   {ROUNDS} interleaved rounds, whole recording, one-level maker, probabilistic queue, 100 ms ticks:")
    for name, values in times.items():
        print(f"     {name:26s} min {min(values):6.3f} s  median {median(values):6.3f} s  ({notes[name]})")
    base = times.get("hftbacktest 2.4.4 warm")
    if base is None:
        return
    for name, values in times.items():
        if name.startswith("mmkit"):
            ratio = median(values) / median(base)
            verdict = "meets" if ratio <= TARGET_RATIO else "MISSES"
            print(f"     {name}: {ratio:4.1f}x hftbacktest warm (medians; min/min {min(values) / min(base):4.1f}x) "
                  f"-> {verdict} the <= {TARGET_RATIO:g}x target")


if __name__ == "__main__":
    main()
