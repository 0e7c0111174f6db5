"""Resident memory of the ``mmkit demo`` main process: steady and peak, read from /proc.

The demo runs in a child process (``python -m mmkit.app.cli demo``, which
itself starts the TrueX FIX simulator as a grandchild: that one is not
counted). Every ``SAMPLE_S`` the child's ``/proc/<pid>/status`` is read:
``VmRSS`` (resident now) and ``VmHWM`` (the kernel's high-water mark of
resident memory, so a spike between two samples is not missed).

* **steady**: the median ``VmRSS`` over the engine's running time, i.e. the
  samples from ``SETTLE_S`` after the engine logged that it started quoting
  until the stop begins (``run_for`` reached) — start-up and the final report
  are left out;
* **peak**: the last ``VmHWM`` read before the process exits.

Target (issue 16): steady <= 100 MB. The demo's ports (9876/9877) are fixed:
do not run it while another demo runs. ``MMKIT_SHARED_DATA`` names the
recordings directory. Run: ``PYTHONPATH=. .venv/bin/python -m bench bench_rss``
(``--duration S`` for a longer run).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from statistics import median

REPO = Path(__file__).resolve().parents[1]
DURATION_S = 20.0
ANCHOR_DURATION_S = 30.0
SAMPLE_S = 0.1
SETTLE_S = 3.0
TARGET_STEADY_MB = 100.0
STARTED_MARK = "engine started"  # lifecycle's log line once the clock runs
GC_MARK = "garbage collector during the run:"  # and its count of the collector's passes after the run


def _recording() -> Path:
    default = REPO.parent / "shared" / "data"
    return Path(os.environ.get("MMKIT_SHARED_DATA", default)) / "binance_spot_btcusdt"


def _status_kb(pid: int) -> tuple[int, int] | None:
    """(VmRSS, VmHWM) in kB, or None once the process is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0])
    if len(fields) < 2:  # a zombie has no memory lines
        return None
    return fields["VmRSS"], fields["VmHWM"]


def measure(duration_s: float = DURATION_S) -> dict[str, float]:
    """Run the demo once; return steady_mb, peak_mb, samples and the exit code."""
    with tempfile.TemporaryDirectory(prefix="bench-rss-") as tmp:
        log_path = Path(tmp) / "demo.log"
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
        cmd = [sys.executable, "-m", "mmkit.app.cli", "demo", "--duration", str(duration_s),
               "--data", str(_recording())]  # fmt: skip
        with log_path.open("wb") as log_file:
            proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log_file, stderr=subprocess.STDOUT)
        started_at: list[float] = []
        stop = threading.Event()

        def watch_log() -> None:  # when did the engine start? (the log line, read as it is written)
            with log_path.open("rb") as reader:
                while not stop.is_set():
                    line = reader.readline()
                    if not line:
                        time.sleep(0.05)
                        continue
                    if STARTED_MARK.encode() in line:
                        started_at.append(time.monotonic())
                        return

        watcher = threading.Thread(target=watch_log, daemon=True)
        watcher.start()
        samples: list[tuple[float, int]] = []
        peak_kb = 0
        while proc.poll() is None:
            status = _status_kb(proc.pid)
            if status is not None:
                samples.append((time.monotonic(), status[0]))
                peak_kb = max(peak_kb, status[1])
            time.sleep(SAMPLE_S)
        stop.set()
        watcher.join(5)
        output = log_path.read_text(errors="replace")
    if proc.returncode != 0 or not started_at:
        raise RuntimeError(f"demo exited {proc.returncode} (started={bool(started_at)}); its output:\n{output[-3000:]}")
    begin = started_at[0] + SETTLE_S
    end = started_at[0] + duration_s
    steady = [rss for t, rss in samples if begin <= t <= end]
    if not steady:
        raise RuntimeError("no sample while the engine ran: duration too short for the settle time")
    gc_line = next((line for line in output.splitlines() if GC_MARK in line), "")
    passes = [int(word) for word in gc_line.split(GC_MARK, 1)[-1].replace(",", " ").split() if word.isdigit()]
    return {
        **({"gen2_collections": float(passes[2])} if len(passes) == 3 else {}),
        "steady_mb": median(steady) / 1024,
        "steady_max_mb": max(steady) / 1024,
        "growth_mb": (steady[-1] - steady[0]) / 1024,
        "peak_mb": peak_kb / 1024,
        "samples": float(len(steady)),
    }


def anchor_figures() -> dict[str, float]:
    """For bench/compare_anchors.py: steady and peak RSS (MB) of one ``mmkit demo`` run."""
    figures = measure(ANCHOR_DURATION_S)
    return {"steady_mb": figures["steady_mb"], "peak_mb": figures["peak_mb"]}


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=DURATION_S, help="demo duration in seconds")
    parser.add_argument("--runs", type=int, default=1, help="how many demos, one after another")
    args, _ = parser.parse_known_args()
    steadies, peaks = [], []
    for _ in range(args.runs):
        figures = measure(args.duration)
        steadies.append(figures["steady_mb"])
        peaks.append(figures["peak_mb"])
        print(f"   demo {args.duration:.0f} s: steady RSS {figures['steady_mb']:.1f} MB "
              f"(max while running {figures['steady_max_mb']:.1f}, grew {figures['growth_mb']:+.1f} over the run, "
              f"{figures['samples']:.0f} samples), "
              f"peak (VmHWM) {figures['peak_mb']:.1f} MB; gen-2 collector passes while running: "
              f"{figures.get('gen2_collections', float('nan')):.0f}", flush=True)  # fmt: skip
    if args.runs > 1:
        print(f"   steady MB min={min(steadies):.1f} median={median(steadies):.1f}; "
              f"peak MB min={min(peaks):.1f} median={median(peaks):.1f}")  # fmt: skip
    verdict = "OK" if median(steadies) <= TARGET_STEADY_MB else "MISSED"
    print(f"   target steady <= {TARGET_STEADY_MB:.0f} MB: {verdict}")


if __name__ == "__main__":
    main()
