"""Sweep throughput: 8 trials one after another in one process against 8 trials on Ray with 2 workers.

Each trial is the full backtest of a sweep (2 minutes of the shared Binance
recording, the layered strategy, report.json plus the tearsheet and its three
plots). The recording is parsed once up front into the on-disk cache, so
neither side pays the parse; each Ray worker still loads it once from that
cache (what a sweep pays per worker process).

Printed: both wall times (Ray with and without its start-up), the speed-up,
and Ray's overhead per trial = (Ray wall x workers - serial wall) / trials,
i.e. the CPU time per trial that Ray costs beyond the serial run. Target on
two quiet cores: speed-up >= 1.7x. On a busy machine both sides slow down
and the speed-up is bounded by the CPU the other processes leave.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("MMKIT_SHARED_DATA", REPO.parent / "shared" / "data")) / "binance_spot_btcusdt"
TRIALS = 8
WORKERS = 2


def _sweep_file(directory: Path) -> Path:
    spreads = ", ".join(f"{0.02 + 0.02 * i:.2f}" for i in range(TRIALS))
    path = directory / "bench_sweep.yml"
    path.write_text(
        f"name: bench\nconfig: {REPO / 'strategies' / 'layered_example.yml'}\n"
        f"data:\n  - {{path: {DATA}, from: '2024-08-08T23:55:00Z', to: '2024-08-08T23:57:00Z'}}\n"
        f"parameters:\n  strategy.params.base_spread_pct: [{spreads}]\nobjective: pnl.total\n"
    )
    return path


def _noop() -> None:
    return None


def main() -> None:
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    from mmkit.app.backtest_cmd import load_events
    from mmkit.research.executor import InProcessRunner, RayRunner, start_ray
    from mmkit.research.search import Search
    from mmkit.research.space import check
    from mmkit.research.spec import load_sweep
    from mmkit.research.store import TrialStore

    with tempfile.TemporaryDirectory(prefix="mmkit-bench-sweep-") as tmp:
        root = Path(tmp)
        os.environ.setdefault("MMKIT_CACHE_DIR", str(root / "cache"))
        load_events(DATA)  # parse once into the on-disk cache: neither side below pays the parse
        spec = load_sweep(_sweep_file(root))
        base = check(spec)

        serial_store = TrialStore(root / "serial")
        began = time.perf_counter()
        Search(spec, base, InProcessRunner(serial_store)).run()
        serial = time.perf_counter() - began

        import ray

        began = time.perf_counter()
        start_ray(num_cpus=WORKERS)
        ray_start = time.perf_counter() - began
        ray_store = TrialStore(root / "ray")
        runner = RayRunner(ray_store)
        began = time.perf_counter()
        result = Search(spec, base, runner).run()
        on_ray = time.perf_counter() - began
        noop = ray.remote(num_cpus=1)(_noop)
        ray.get(noop.remote())
        began = time.perf_counter()
        for _ in range(20):
            ray.get(noop.remote())
        round_trip = (time.perf_counter() - began) / 20
        ray.shutdown()

        failed = sum(1 for e in result.evaluations if e.result["status"] != "ok")
        trial_s = [e.result["wall_s"] for e in result.evaluations]
        print(f"   {TRIALS} trials serially, one process:      {serial:7.2f} s  ({serial / TRIALS:.2f} s/trial)")
        print(f"   {TRIALS} trials on Ray, {WORKERS} workers:           {on_ray:7.2f} s  "
              f"(+ {ray_start:.2f} s Ray start-up = {on_ray + ray_start:.2f} s)")
        print(f"   speed-up (start-up excluded / included):  {serial / on_ray:5.2f}x / "
              f"{serial / (on_ray + ray_start):5.2f}x   (target >= 1.7x on two quiet cores)")
        overhead = (on_ray * WORKERS - serial) / TRIALS
        print(f"   Ray overhead per trial:                  {overhead * 1000:7.0f} ms CPU "
              f"(trial itself in a worker: mean {sum(trial_s) / len(trial_s):.2f} s)")
        print(f"   of which Ray itself (a no-op task's round trip): {round_trip * 1000:5.1f} ms; the rest is each "
              f"worker's first trial importing mmkit and loading the recording from the cache")
        print(f"   failed trials: {failed};  cores: {os.cpu_count()};  load average now: "
              f"{', '.join(f'{x:.1f}' for x in os.getloadavg())} (others' processes share the cores)")


if __name__ == "__main__":
    main()
