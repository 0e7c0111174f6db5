"""Sweep throughput: 8 trials one after another in one process against 8 trials on Ray with 2 workers.

Each trial is the full backtest of a sweep (2 minutes of the shared Binance
recording, the layered strategy, report.json, the tearsheet, fills.csv and
orders.csv). The recording is parsed once up front into the on-disk cache, so
neither side pays the parse; each Ray worker still loads it once from that
cache (what a sweep pays per worker process).

The serial process is warm (mmkit imported, the recording in memory), so
Ray is measured twice on one Ray session: with fresh worker processes (each
pays the import and the cache load on its first trial, as a sweep does) and
again with the same, now warm, workers (the steady state of a long sweep).
Printed: the wall times, the speed-ups, Ray's start-up, and Ray's overhead
per trial = (Ray wall x workers - serial wall) / trials, i.e. the CPU time
per trial that Ray costs beyond the serial run, next to the round trip of a
no-op task. Target on two quiet cores: speed-up >= 1.7x.

On a busy machine the wall-clock speed-up says little: with the kernel's
autogroup scheduling (``/proc/sys/kernel/sched_autogroup_enabled``) the CPU
is shared per session, and the driver and its Ray workers are one session,
so two workers get no more CPU than one serial process did. Hence also the
CPU time per trial, serial and in a worker: time spent waiting for a core
does not count there (contention for shared caches still does).
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
        serial_result = Search(spec, base, InProcessRunner(serial_store)).run()
        serial = time.perf_counter() - began
        serial_cpu = [e.result["cpu_s"] for e in serial_result.evaluations]

        import ray

        began = time.perf_counter()
        start_ray(num_cpus=WORKERS)
        ray_start = time.perf_counter() - began
        runs: list[float] = []
        trial_s: list[float] = []
        trial_cpu: list[float] = []
        failed = 0
        for name in ("ray-cold", "ray-warm"):  # the same Ray twice: fresh worker processes, then warm ones
            began = time.perf_counter()
            result = Search(spec, base, RayRunner(TrialStore(root / name))).run()
            runs.append(time.perf_counter() - began)
            failed += sum(1 for e in result.evaluations if e.result["status"] != "ok")
            trial_s = [e.result["wall_s"] for e in result.evaluations]
            trial_cpu = [e.result["cpu_s"] for e in result.evaluations]
        noop = ray.remote(num_cpus=1)(_noop)
        ray.get(noop.remote())
        began = time.perf_counter()
        for _ in range(20):
            ray.get(noop.remote())
        round_trip = (time.perf_counter() - began) / 20
        ray.shutdown()

        cold, warm = runs
        print(f"   {TRIALS} trials serially, one (warm) process:    {serial:6.2f} s  ({serial / TRIALS:.2f} s/trial)")
        print(f"   {TRIALS} trials on Ray, {WORKERS} warm workers:         {warm:6.2f} s  "
              f"-> speed-up {serial / warm:.2f}x  (target >= 1.7x on two quiet cores)")
        print(f"   {TRIALS} trials on Ray, {WORKERS} fresh workers:        {cold:6.2f} s  "
              f"-> speed-up {serial / cold:.2f}x")
        print(f"     (each worker's first trial imports mmkit and loads the recording: {cold - warm:+.2f} s)")
        print(f"   Ray start-up (embedded, local):           {ray_start:6.2f} s  -> a whole first sweep: "
              f"{ray_start + cold:.2f} s, speed-up {serial / (ray_start + cold):.2f}x")
        print(f"   Ray overhead per trial (warm):            {(warm * WORKERS - serial) / TRIALS * 1000:6.0f} ms CPU "
              f"(workers x wall - serial, per trial; a trial in a worker: mean {sum(trial_s) / len(trial_s):.2f} s)")
        print(f"   CPU time per trial, serial / in a warm worker: {sum(serial_cpu) / TRIALS:5.2f} s / "
              f"{sum(trial_cpu) / TRIALS:5.2f} s  (waiting for a core does not count; shared caches still do)")
        print(f"   Ray's own round trip (no-op task):        {round_trip * 1000:6.1f} ms")
        print(f"   failed trials: {failed};  cores: {os.cpu_count()};  load average now: "
              f"{', '.join(f'{x:.1f}' for x in os.getloadavg())} (other processes share the cores)")


if __name__ == "__main__":
    main()
