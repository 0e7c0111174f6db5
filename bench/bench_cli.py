"""Where the default CLI backtest's time goes, whole process, cached recording (issue 16: <= 1.2 s).

``mmkit backtest strategies/truex_btc_pyusd.yml --data <shared recording> --no-progress``
is run in fresh processes, as a user runs it (bytecode and recording cached
by a first, uncounted run). Each child times its phases in CPU seconds
(``time.process_time``: steadier than wall time on this shared machine) by
wrapping the functions the command calls; the parent adds the whole
process's CPU and wall time (``os.wait4``). Printed: min and median per
phase over the runs. ``python -m bench.compare_anchors --only cli`` gives the
whole-process wall figure against a baseline tree, interleaved.

Run: ``PYTHONPATH=. .venv/bin/python -m bench.bench_cli [runs]``
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG = "strategies/truex_btc_pyusd.yml"

#: The child: wraps the phases, runs the command as the console script does (argv None), prints the times.
_CHILD = r"""
import json, sys, time
began = time.process_time()
import asyncio
from mmkit.app import cli
import mmkit.app.backtest_cmd as bc, mmkit.app.simulated as sim
imports = time.process_time() - began
spent = {}
def timed(module, name, label):
    inner = getattr(module, name)
    def wrapper(*args, **kwargs):
        start = time.process_time()
        try:
            return inner(*args, **kwargs)
        finally:
            spent[label] = spent.get(label, 0.0) + time.process_time() - start
    setattr(module, name, wrapper)
timed(bc, "load_events", "load (recording cache)")
timed(bc, "recording_notes", "file notes")
timed(sim, "fit_recorded_tape", "taker fit")
timed(bc.asyncio, "run", "simulate")
timed(bc, "write_outputs", "report, plots, HTML")
timed(bc, "backtest_command", "command")
sys.argv = ["mmkit", *sys.argv[1:]]
import atexit
def report():
    spent["imports"] = imports
    spent["other (config, assembly, terminal)"] = spent.pop("command") - sum(
        v for k, v in spent.items() if k not in ("command", "imports"))
    spent["in process"] = time.process_time() - began
    sys.stderr.write("\nBENCH " + json.dumps(spent) + "\n")
atexit.register(report)
sys.exit(cli.main())
"""


def _data_dir() -> Path:
    shared = Path(os.environ.get("MMKIT_SHARED_DATA", ROOT.parent / "shared" / "data"))
    return shared / "binance_spot_btcusdt"


def _once(env: dict[str, str], out: Path) -> dict[str, float]:
    command = [sys.executable, "-c", _CHILD, "backtest", CONFIG, "--data", str(_data_dir()), "--no-progress",
               "--out", str(out)]
    began = time.perf_counter()
    child = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - began
    assert child.stderr is not None
    stderr = child.stderr.read().decode()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"mmkit backtest failed: {stderr[-800:]}")
    figures: dict[str, float] = json.loads(stderr.rpartition("BENCH ")[2])
    figures["whole process CPU"] = usage.ru_utime + usage.ru_stime
    figures["whole process wall"] = wall
    return figures


def main(runs: int = 5) -> None:
    with tempfile.TemporaryDirectory(prefix="mmkit-bench-cli-") as scratch:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "MMKIT_CACHE_DIR": str(Path(scratch) / "cache"),
               "PYTHONPYCACHEPREFIX": str(Path(scratch) / "pycache")}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        _once(env, Path(scratch) / "out")  # fills the recording cache, the derived facts and the bytecode
        results = [_once(env, Path(scratch) / "out") for _ in range(runs)]
    print(f"mmkit backtest {CONFIG} --no-progress, cached recording, {runs} fresh processes (CPU s unless wall)")
    for phase in results[0]:
        values = [r[phase] for r in results]
        print(f"  {phase:36s} min {min(values):6.3f}  median {statistics.median(values):6.3f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
