"""First read of a recording (parse + cache write) against hftbacktest's conversion of the same files, in one run.

Issue 16's figure: mmkit's first read of the shared Binance spot recording
must take no longer than hftbacktest's own converter on the same files.
Both are timed here, interleaved (mmkit, hftbacktest, mmkit, ...):

* **mmkit**: a fresh process (``python -m bench.first_read --child``) with an
  empty on-disk cache loads the recording as ``mmkit backtest`` does
  (:func:`mmkit.app.backtest_cmd.load_events`, ``freeze=True``): gzip, the
  line scan and clock fit, the JSON, levels straight to integer ticks and
  lots, the events, and the cache entry written. Imports are timed apart.
  The same first read is also timed in this process, warm (imports done,
  memory already in use), which is like for like with hftbacktest's figure.
* **hftbacktest** 2.4.4 (the ``[validate]`` extra): its
  ``binancefutures.convert`` in this process, warm (its first call, printed
  apart, pays numba compiling its event-order passes, which it does not
  cache on disk; issue 16 measured it warm), on copies of the files shaped for it, untimed: it reads the futures
  stream, whose messages carry fields spot's lack (``T`` on diffs and the
  REST snapshot, ``X`` and ``e`` where it expects them). Two figures: the
  whole files (every ``bookTicker`` line is decoded and dropped, as the
  converter does on a futures recording) in memory, and, as its best case,
  without the ticker lines and with its ``.npz`` written (its cache).

The ratio printed is mmkit over each, on medians (mins alongside). Wall
time is what a user waits; on this shared 2-core machine the figures drift
between quiet and busy spells, which is why only ratios from one run count.

Run: ``PYTHONPATH=. .venv/bin/python -m bench.first_read [--runs N]
[--baseline GIT_REF]`` (also part of ``-m bench bench_backtest``);
``--baseline`` adds that ref's fresh-process first read to the interleaving
(its tree by ``git archive``), for a before/after in the same run. :func:`mmkit_first_read` and
:func:`hftbacktest_conversion` are plain functions for other benches.
"""

from __future__ import annotations

import contextlib
import gc
import gzip
import io
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from statistics import median
from typing import Any

RUNS = 5
_EXCHANGE_TIME = re.compile(rb'"E":(\d+)')


def _data_dir() -> Path:
    default = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
    return Path(os.environ.get("MMKIT_SHARED_DATA", default)) / "binance_spot_btcusdt"


def mmkit_first_read(data: Path | None = None, tree: Path | None = None) -> dict[str, float]:
    """One first read in a fresh process with an empty cache: ``{"import_s", "read_s", "events"}``.

    ``tree``: the mmkit checkout whose code reads (default this one; ``--baseline`` passes an older tree).
    """
    root = tree or Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root)}
    if data is not None:
        env["MMKIT_FIRST_READ_DATA"] = str(data)
    with tempfile.TemporaryDirectory(prefix="mmkit-first-read-") as cache:
        env["MMKIT_CACHE_DIR"] = cache
        done = subprocess.run([sys.executable, "-m", "bench.first_read", "--child"], env=env, cwd=root,
                              capture_output=True, text=True, check=True)
        result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
        if not any(Path(cache).iterdir()):
            raise RuntimeError("the first read wrote no cache entry: it would not be a first read's cost")
    return result


def mmkit_first_read_in_process(data: Path | None = None) -> float:
    """Seconds for one first read in this (warm) process: in-process cache cleared, a new empty disk cache."""
    from mmkit.backtest.binance import clear_recording_cache, read_recording, recording_files

    files = recording_files(data or _data_dir())
    clear_recording_cache()
    with tempfile.TemporaryDirectory(prefix="mmkit-first-read-") as cache:
        began = time.perf_counter()
        # freeze, as mmkit backtest reads: otherwise the collector's passes over the new events are timed too
        events = list(read_recording(files, disk_cache=Path(cache), freeze=True))
        seconds = time.perf_counter() - began
        if not events or not any(Path(cache).iterdir()):
            raise RuntimeError("the first read yielded nothing or wrote no cache entry")
    clear_recording_cache()
    del events
    gc.unfreeze()  # hand them back to the collector, which frees what is garbage by now
    gc.collect()
    return seconds


def _child() -> None:
    began = time.perf_counter()
    from loguru import logger

    from mmkit.app.backtest_cmd import load_events

    imported = time.perf_counter()
    logger.remove()
    data = Path(os.environ.get("MMKIT_FIRST_READ_DATA", _data_dir()))
    events = load_events(data, freeze=True)
    done = time.perf_counter()
    print(json.dumps({"import_s": imported - began, "read_s": done - imported, "events": len(events)}))


def shape_for_hftbacktest(source: Path, target: Path, tickers: bool) -> int:
    """Copy ``source`` with the fields hftbacktest's futures converter reads; returns the lines written.

    Diffs get ``T`` (= ``E``), trades ``X: MARKET``, the REST snapshot ``T``
    (its receive time in ms: spot's carries no exchange time), tickers the
    ``e`` it dispatches on (or, ``tickers`` False, are left out). Everything
    else is the recorded line, byte for byte.
    """
    written = 0
    with gzip.open(source, "rb") as src:
        lines = src.read().split(b"\n")
    out = []
    for line in lines:
        if not line.strip():
            continue
        stamp, _, body = line.partition(b" ")
        if b'@bookTicker"' in body:
            if not tickers:
                continue
            body = body.replace(b'"data":{', b'"data":{"e":"bookTicker",', 1)
        elif b'"lastUpdateId"' in body:
            body = b'{"T":' + str(int(stamp) // 1_000_000).encode() + b"," + body[1:]
        else:
            match = _EXCHANGE_TIME.search(body)
            extra = b'"X":"MARKET",' if b'@trade"' in body else b""
            if match is not None:
                body = body.replace(b'"E":', b'"T":' + match.group(1) + b"," + extra + b'"E":', 1)
        out.append(stamp + b" " + body)
        written += 1
    with gzip.open(target, "wb", compresslevel=1) as handle:
        handle.write(b"\n".join(out) + b"\n")
    return written


def hftbacktest_conversion(shaped: Sequence[Path], npz_dir: Path | None = None) -> tuple[float, int]:
    """Seconds for hftbacktest's converter over ``shaped`` in this process, and the rows it made.

    ``npz_dir``: also write each file's ``.npz`` there (its equivalent of a cache entry).
    """
    from hftbacktest.data.utils import binancefutures

    rows = 0
    began = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):  # the converter narrates its steps
        for path in shaped:
            output = None if npz_dir is None else str(npz_dir / (path.name + ".npz"))
            rows += len(binancefutures.convert(str(path), output_filename=output, buffer_size=3_000_000))
    return time.perf_counter() - began, rows


def _hftbacktest_available() -> bool:
    try:
        import hftbacktest  # noqa: F401
    except ImportError:
        return False
    return True


def _summary(values: list[float]) -> str:
    return f"min {min(values):5.2f} s, median {median(values):5.2f} s"


def baseline_tree(ref: str, target: Path) -> Path:
    """The tree of git ``ref`` in ``target`` (``git archive``: nothing checked out), for before/after runs."""
    root = Path(__file__).resolve().parents[1]
    archive = subprocess.run(["git", "archive", "--format=tar", ref], cwd=root, capture_output=True, check=True)
    target.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    return target


def compare(runs: int = RUNS, data: Path | None = None, baseline: Path | None = None,
            baseline_name: str = "baseline") -> dict[str, Any]:
    """Interleaved first reads and conversions; prints the figures and ratios, returns them.

    ``baseline``: another mmkit tree (``--baseline REF``), whose fresh-process first read joins the
    interleaving, for a before/after in the same run.
    """
    from mmkit.backtest.binance import recording_files

    data = data or _data_dir()
    before: list[float] = []
    mmkit: list[float] = []
    events = 0
    if not _hftbacktest_available():
        for _ in range(runs):
            run = mmkit_first_read(data)
            mmkit.append(run["read_s"])
            events = int(run["events"])
        print(f"   #1 first read (parse + cache write, fresh process): {_summary(mmkit)} ({events:,} events); "
              "hftbacktest not installed (the [validate] extra): no same-run ratio")
        return {"mmkit": mmkit}
    warm: list[float] = []
    whole: list[float] = []
    best: list[float] = []
    with tempfile.TemporaryDirectory(prefix="mmkit-hbt-") as scratch:
        root = Path(scratch)
        (root / "all").mkdir()
        (root / "no_tickers").mkdir()
        shaped_all = [root / "all" / p.name for p in recording_files(data)]
        shaped_best = [root / "no_tickers" / p.name for p in recording_files(data)]
        for source, all_lines, without in zip(recording_files(data), shaped_all, shaped_best, strict=True):
            shape_for_hftbacktest(source, all_lines, tickers=True)
            shape_for_hftbacktest(source, without, tickers=False)
        cold = hftbacktest_conversion(shaped_all)[0]  # numba compiles its passes here (no on-disk cache)
        rows = 0
        for _ in range(runs):
            if baseline is not None:
                before.append(mmkit_first_read(data, baseline)["read_s"])
            run = mmkit_first_read(data)
            mmkit.append(run["read_s"])
            events = int(run["events"])
            warm.append(mmkit_first_read_in_process(data))
            seconds, rows = hftbacktest_conversion(shaped_all)
            whole.append(seconds)
            with tempfile.TemporaryDirectory(dir=scratch) as npz:
                best.append(hftbacktest_conversion(shaped_best, Path(npz))[0])
    print(f"   #1 first read, mmkit (parse + cache write, fresh process): {_summary(mmkit)} ({events:,} events)")
    print(f"      mmkit, the same in this warm process:                  {_summary(warm)}")
    print(f"      hftbacktest convert, whole files, in memory (warm):     {_summary(whole)} ({rows:,} rows; "
          f"its first call in this process, numba compiling: {cold:.2f} s)")
    print(f"      hftbacktest convert, without tickers, .npz written:     {_summary(best)}")
    if before:
        print(f"      mmkit at {baseline_name} (before), fresh process:{'':{max(0, 17 - len(baseline_name))}s}"
              f"{_summary(before)}; ratio to hftbacktest whole files {median(before) / median(whole):.2f}x "
              f"on medians, {min(before) / min(whole):.2f}x on mins; this tree / {baseline_name} "
              f"{median(mmkit) / median(before):.2f}x on medians")
    ratios = {
        "fresh/whole": (median(mmkit) / median(whole), min(mmkit) / min(whole)),
        "warm/whole": (median(warm) / median(whole), min(warm) / min(whole)),
        "fresh/best": (median(mmkit) / median(best), min(mmkit) / min(best)),
        "warm/best": (median(warm) / median(best), min(warm) / min(best)),
    }
    labels = {
        "fresh/whole": "fresh process / whole files in memory", "warm/whole": "warm process / whole files in memory",
        "fresh/best": "fresh process / no tickers, .npz", "warm/best": "warm process / no tickers, .npz",
    }
    for name, (by_median, by_min) in ratios.items():
        verdict = "meets" if by_median <= 1.0 else "MISSES"
        print(f"      mmkit / hftbacktest, {labels[name]}: {by_median:.2f}x on medians, {by_min:.2f}x on mins "
              f"(target <= 1x: {verdict} it)")
    return {"mmkit": mmkit, "mmkit_warm": warm, "hftbacktest_whole": whole, "hftbacktest_best": best,
            "hftbacktest_cold": cold, "ratios": ratios, "baseline": before}


def main(argv: list[str] | None = None) -> None:
    import argparse

    from loguru import logger

    parser = argparse.ArgumentParser(prog="first_read", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=RUNS)
    parser.add_argument("--baseline", metavar="GIT_REF", help="also time this git ref's first read (before/after)")
    args = parser.parse_args(argv)
    logger.remove()
    if args.baseline is None:
        compare(args.runs)
        return
    with tempfile.TemporaryDirectory(prefix="mmkit-first-read-baseline-") as scratch:
        compare(args.runs, baseline=baseline_tree(args.baseline, Path(scratch) / "tree"), baseline_name=args.baseline)


if __name__ == "__main__":
    if sys.argv[1:] == ["--child"]:
        _child()
    else:
        main()
