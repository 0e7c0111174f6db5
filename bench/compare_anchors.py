"""mmkit against the reference engines (hftbacktest, NautilusTrader), side by side in one run (issue 16).

On the shared Binance spot BTCUSDT recording, interleaved (A, B, A, B, ...,
``REPETITIONS`` each; fewer with ``--quick``), each run in a fresh process
where import or warm state matters (bench/anchors_child.py):

* ``book``: level updates/s with the best bid and ask read after each diff,
  mmkit's ``OrderBook`` (``bench_book``'s loop) against NautilusTrader's Rust
  book through Python (one ``apply_deltas`` per diff). hftbacktest's book is
  left out: from Python it is only reachable inside a backtest's ``elapse``,
  so there is no like-for-like loop to time.
* ``replay``: simulate time of the one-level maker (1 level, 0.01 BTC, mid
  ± 5 USDT, probabilistic queue, 100 ms tick; bench/anchors_settings.py),
  mmkit's setup (a) vs hftbacktest warm (its numba-compiled loop, second or
  later run in one worker process) vs NautilusTrader's ``BacktestEngine``;
  and, without a target, the same mmkit run with a maker that quotes nothing
  (the floor: the engine and the data path alone).
* ``first_read``: mmkit's first read of the raw files (parse + cache write,
  empty cache), in a fresh process (the verdict) and warm in one, vs
  hftbacktest's converter to ``.npz``, warm (its second call in a process;
  the first, numba compiling, is printed apart).
* ``cli``: ``mmkit backtest strategies/truex_btc_pyusd.yml`` whole process,
  cached recording, wall time; with ``--baseline GIT_REF`` the same command
  on that ref's tree (``git archive``), interleaved, for the "≤ 0.4× today's"
  form of the target on a machine that is not quiet.
* ``others``: the FIX, decision-path and RSS figures of bench_fix,
  bench_decision and bench_rss, through their ``anchor_figures()`` when they
  have one ("not available" otherwise), each in a fresh process of its own
  (the decision path is not timed in a process that just ran the FIX bench).

Prints each figure's min and median per engine, the ratios (mmkit over the
reference, by median, min in brackets), and the table of issue 16's targets.
Exit 0 when everything ran, whatever the verdicts (this is a measurement);
1 when something could not run. Needs the ``[anchors]`` extra: ``make
bench-anchors``, or ``PYTHONPATH=. .venv/bin/python -m bench.compare_anchors
[--quick] [--only book,replay,first_read,cli,others] [--baseline main]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from bench.anchors_child import MARK
from bench.anchors_settings import MakerSpec, hftbacktest_settings, mmkit_settings, nautilus_settings
from bench.anchors_stats import (
    OTHER_FIGURES,
    engine_lines,
    interleave,
    ratio_line,
    summarize,
    target_table,
    targets_from_other,
)
from bench.bench_backtest import _data_dir

REPETITIONS = 5
QUICK_REPETITIONS = 2
ROOT = Path(__file__).resolve().parents[1]
CLI_CONFIG = "strategies/truex_btc_pyusd.yml"
SECTIONS = ("book", "replay", "first_read", "cli", "others")
#: The replay section's fourth contender: the same mmkit run with a maker that quotes nothing.
SILENT = "mmkit, no orders"


class CouldNotRun(RuntimeError):
    """A measurement that did not complete (a child failed, an engine misbehaved)."""


@dataclass
class Run:
    """What the sections share: repetitions, the children's environment, a scratch directory, the results."""

    repetitions: int
    quick: bool
    scratch: Path
    env: dict[str, str]
    baseline: str | None = None
    measured: dict[str, float | None] = field(default_factory=dict)


def _result_line(stdout: str, job: str) -> dict[str, Any]:
    for line in reversed(stdout.splitlines()):
        if line.startswith(MARK):
            return json.loads(line[len(MARK):])
    raise CouldNotRun(f"{job}: no result line in its output")


def child(run: Run, job: str, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run ``bench.anchors_child JOB ARGS`` in a fresh process and return its result."""
    done = subprocess.run([sys.executable, "-m", "bench.anchors_child", job, *args], cwd=ROOT,
                          env=env or run.env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-6:])
        raise CouldNotRun(f"{job} exited {done.returncode}:\n{tail}")
    return _result_line(done.stdout, job)


class Worker:
    """A long-lived child (``hbt_worker``): its first answer is the cold run, each ``request()`` a warm one."""

    def __init__(self, run: Run, job: str) -> None:
        self.job = job
        self.errors = run.scratch / f"{job}.stderr"  # a file, not a pipe: a chatty child cannot block on it
        with self.errors.open("w") as errors:
            self.process = subprocess.Popen([sys.executable, "-m", "bench.anchors_child", job], cwd=ROOT,
                                            env=run.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                            stderr=errors, text=True)

    def _answer(self) -> dict[str, Any]:
        out: IO[str] | None = self.process.stdout
        assert out is not None
        for line in out:
            if line.startswith(MARK):
                return json.loads(line[len(MARK):])
        self.process.wait()
        err = self.errors.read_text(errors="replace")
        raise CouldNotRun(f"{self.job} ended ({self.process.returncode}) without an answer:\n{err.strip()[-800:]}")

    def first(self) -> dict[str, Any]:
        return self._answer()

    def request(self) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write("run\n")
        self.process.stdin.flush()
        return self._answer()

    def close(self) -> None:
        if self.process.poll() is None and self.process.stdin is not None:
            try:
                self.process.stdin.write("quit\n")
                self.process.stdin.close()
                self.process.wait(timeout=60)
            except (BrokenPipeError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait()


def _outcomes(label: str, results: list[dict[str, Any]]) -> str:
    fills = sorted({r["fills"] for r in results})
    orders = sorted({r["orders"] for r in results})
    return f"   {label:28s} fills {fills}, orders {orders}"


def section_book(run: Run) -> None:
    result = child(run, "book", str(run.repetitions))
    updates = result["level_updates"]
    print(f"   {updates:,} level updates in {result['diffs']:,} diffs; best bid/ask read after each diff; "
          "final tops agree")
    times = {engine: summarize(seconds) for engine, seconds in result["runs"].items()}
    for engine, summary in times.items():
        print(f"   book {engine:28s} best {updates / summary.minimum / 1e6:6.2f} M/s  "
              f"median {updates / summary.median / 1e6:6.2f} M/s  (n={summary.count})")
    line, by_median = ratio_line("mmkit time / Nautilus time", times["mmkit OrderBook"],
                                 times["NautilusTrader OrderBook"])
    print(line + f" -> mmkit {1 / by_median:.2f}x Nautilus's rate (no target in issue 16)")


def _unmatched(spec: MakerSpec) -> None:
    print(f"   maker: 1 level a side, {spec.order_size} BTC, mid ± {spec.offset} USDT, {spec.tick_ms} ms tick, "
          f"latency {spec.entry_latency_ms} + {spec.response_latency_ms} ms, fees {spec.fee_bps} bps, "
          f"queue power {spec.queue_power:g}, seed {spec.seed}")
    for engine, settings in (("mmkit", mmkit_settings(spec)), ("hftbacktest", hftbacktest_settings(spec)),
                             ("nautilus", nautilus_settings(spec))):
        for note in settings["unmatched"]:
            print(f"   not matched ({engine}): {note}")


def section_replay(run: Run) -> None:
    _unmatched(MakerSpec())
    worker = Worker(run, "hbt_worker")
    try:
        cold = worker.first()  # compile before the timed schedule: it would load the machine under the others
        print(f"   hftbacktest cold run (numba compiles the loop): {cold['run_s']:.2f} s, not counted")
        runs: dict[str, list[dict[str, Any]]] = {"mmkit": [], "hftbacktest warm": [], "nautilus": [],
                                                 SILENT: []}
        jobs: dict[str, Callable[[], dict[str, Any]]] = {
            "mmkit": lambda: child(run, "mmkit_replay"),
            "hftbacktest warm": worker.request,
            "nautilus": lambda: child(run, "nautilus_replay"),
            SILENT: lambda: child(run, "mmkit_replay_silent"),
        }
        for engine in interleave(list(jobs), run.repetitions):
            runs[engine].append(jobs[engine]())
    finally:
        worker.close()
    if any(r.get("rejected") for r in runs["nautilus"]):
        raise CouldNotRun(f"Nautilus rejected orders: {[r['rejected'] for r in runs['nautilus']]}")
    silent = runs.pop(SILENT)
    if any(r["orders"] or r["fills"] for r in silent):
        raise CouldNotRun(f"{SILENT}: the silent maker sent orders: {silent}")
    for engine, results in runs.items():
        if not all(r["fills"] > 0 for r in results):
            raise CouldNotRun(f"{engine}: a run without fills (the maker did not trade): {results}")
        print(_outcomes(engine, results))
    times = {engine: summarize(r["run_s"] for r in results) for engine, results in runs.items()}
    print("\n".join(engine_lines("simulate", "s", times)))
    line, versus_hbt = ratio_line("mmkit / hftbacktest warm", times["mmkit"], times["hftbacktest warm"])
    print(line)
    print(ratio_line("mmkit / NautilusTrader", times["mmkit"], times["nautilus"])[0])
    floor = summarize(r["run_s"] for r in silent)
    print("\n".join(engine_lines("simulate", "s", {SILENT: floor})))
    print(ratio_line(f"{SILENT} / hftbacktest warm", floor, times["hftbacktest warm"])[0]
          + "  (no target: the engine and data path alone; the maker's time above it is its orders)")
    run.measured["replay"] = versus_hbt


def section_first_read(run: Run) -> None:
    """mmkit's first read (fresh process, and warm in one) against hftbacktest's conversion, warm.

    Like for like with issue 16's figure: hftbacktest's conversion is its second call in its process
    (the first pays numba compiling its passes, ~1 s, and is printed apart, never compared). mmkit's
    figure for the verdict is the fresh process, empty cache: what a user waits for on a first backtest.
    Its warm figure (a second first read in the same process) is printed against the same reference.
    """
    prepared = run.scratch / "hbt_prepared"
    prepared.mkdir()
    child(run, "hbt_prepare", str(prepared))
    times: dict[str, list[float]] = {"mmkit": [], "hftbacktest": []}
    warm: list[float] = []
    cold: list[float] = []
    for index, engine in enumerate(interleave(list(times), run.repetitions)):
        target = run.scratch / f"first_read_{index}"
        target.mkdir()
        if engine == "mmkit":
            result = child(run, "mmkit_first_read", env={**run.env, "MMKIT_CACHE_DIR": str(target)})
            warm.append(result["warm_s"])
        else:
            result = child(run, "hbt_convert", str(prepared), str(target))
            cold.append(result["cold_s"])
        times[engine].append(result["read_s"])
        shutil.rmtree(target)
    summaries = {
        "mmkit, fresh process": summarize(times["mmkit"]),
        "mmkit, warm in-process": summarize(warm),
        "hftbacktest conversion, warm": summarize(times["hftbacktest"]),
        "hftbacktest, 1st call (numba)": summarize(cold),
    }
    print("\n".join(engine_lines("first read", "s", summaries)))
    print("   (hftbacktest: its best case, ticker lines left out and its .npz written; its first call in a "
          "process compiles its passes with numba and is not compared)")
    reference = summaries["hftbacktest conversion, warm"]
    line, by_median = ratio_line("mmkit fresh process / hftbacktest warm", summaries["mmkit, fresh process"],
                                 reference)
    print(line + "   <- the verdict")
    print(ratio_line("mmkit warm in-process / hftbacktest warm", summaries["mmkit, warm in-process"], reference)[0])
    run.measured["first_read"] = by_median


#: What the ``mmkit`` console script runs; used for this tree and a baseline alike, so both start the same way.
_CLI_MAIN = "import sys; from mmkit.app.cli import main; sys.exit(main())"


def _cli_once(run: Run, checkout: Path, cache: Path, out: Path) -> float:
    """Wall seconds of ``mmkit backtest CLI_CONFIG`` with ``checkout``'s code, whole process."""
    env = {**run.env, "PYTHONPATH": str(checkout), "MMKIT_CACHE_DIR": str(cache)}
    # As an installed mmkit runs: bytecode cached by the warm-up run (kept out of the trees, in the scratch).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(cache / "pycache")
    began = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _CLI_MAIN, "backtest", CLI_CONFIG, "--data", str(_data_dir()),
                           "--no-progress", "--out", str(out)], cwd=checkout, env=env, capture_output=True,
                          text=True, check=False)
    elapsed = time.perf_counter() - began
    shutil.rmtree(out, ignore_errors=True)
    if done.returncode != 0:
        raise CouldNotRun(f"mmkit backtest ({checkout}) exited {done.returncode}: {done.stderr.strip()[-800:]}")
    return elapsed


def baseline_checkout(ref: str, target: Path) -> Path:
    """The tree of git ``ref`` extracted into ``target`` (``git archive``: no worktree, no checkout touched)."""
    target.mkdir()
    archive = subprocess.run(["git", "archive", "--format=tar", ref], cwd=ROOT, capture_output=True, check=False)
    if archive.returncode != 0:
        raise CouldNotRun(f"--baseline {ref}: git archive failed: {archive.stderr.decode().strip()}")
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    # The bundled packages are imported as mmkit.strategies / mmkit.connectors (mmkit/app/bundled.py). The tree
    # has no such folders, so the import would fall through to this venv's editable install, i.e. to *this*
    # checkout's strategies, which may call what the baseline's mmkit does not have: point them at its own.
    for bundled in ("strategies", "connectors"):
        if (target / bundled).is_dir() and not (target / "mmkit" / bundled).exists():
            (target / "mmkit" / bundled).symlink_to(target / bundled, target_is_directory=True)
    return target


def section_cli(run: Run) -> None:
    trees = {"mmkit CLI": ROOT}
    if run.baseline:
        trees[f"baseline {run.baseline}"] = baseline_checkout(run.baseline, run.scratch / "baseline")
    caches = {name: run.scratch / f"cli_cache_{index}" for index, name in enumerate(trees)}
    for name, checkout in trees.items():  # fills each tree's recording cache: not counted
        caches[name].mkdir()
        _cli_once(run, checkout, caches[name], run.scratch / "cli_out")
    seconds: dict[str, list[float]] = {name: [] for name in trees}
    for name in interleave(list(trees), run.repetitions):
        seconds[name].append(_cli_once(run, trees[name], caches[name], run.scratch / "cli_out"))
    summaries = {name: summarize(values) for name, values in seconds.items()}
    print(f"   mmkit backtest {CLI_CONFIG} --data <recording> --no-progress (cached recording and bytecode, "
          "whole process)")
    print("\n".join(engine_lines("wall", "s", summaries)))
    run.measured["cli"] = summaries["mmkit CLI"].median
    if run.baseline:
        line, by_median = ratio_line(f"this tree / {run.baseline}", summaries["mmkit CLI"],
                                     summaries[f"baseline {run.baseline}"])
        print(line)
        run.measured["cli_vs_baseline"] = by_median


def figures_in_child(run: Run, module_name: str) -> dict[str, float] | None:
    """``module_name.anchor_figures()`` in a fresh process (bench/anchors_child.py); None when it has none."""
    answer = child(run, "anchor_figures", module_name, *(["quick"] if run.quick else []))
    figures: dict[str, float] | None = answer["figures"]
    return figures


def section_others(run: Run,
                   figures_of: Callable[[Run, str], dict[str, float] | None] = figures_in_child) -> None:
    """The FIX, decision-path and RSS figures, each bench in a process of its own (see ``figures_in_child``)."""
    failed = []
    for module_name in OTHER_FIGURES:
        try:
            figures = figures_of(run, module_name)
            if figures is None:
                print(f"   {module_name}.anchor_figures: not available")
                continue
            values = targets_from_other(module_name, figures)
        except Exception as exc:  # another bench's failure: reported, the others still run
            failed.append(module_name)
            print(f"   {module_name}.anchor_figures FAILED: {exc!r}")
            continue
        print(f"   {module_name}: " + ", ".join(f"{key} {value:,.2f}" for key, value in figures.items()))
        run.measured.update(values)
    if failed:
        raise CouldNotRun(f"anchor_figures failed in {failed}")


RUNNERS: dict[str, Callable[[Run], None]] = {
    "book": section_book,
    "replay": section_replay,
    "first_read": section_first_read,
    "cli": section_cli,
    "others": section_others,
}


def parse_only(text: str | None) -> list[str]:
    """``--only a,b`` -> the sections in run order; an unknown name is a usage error."""
    if not text:
        return list(SECTIONS)
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in SECTIONS]
    if unknown or not names:
        raise ValueError(f"--only: unknown section(s) {unknown or text!r}; choose from {', '.join(SECTIONS)}")
    return [name for name in SECTIONS if name in names]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="compare_anchors", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_REPETITIONS} repetitions, not {REPETITIONS}")
    parser.add_argument("--only", help=f"comma-separated sections: {', '.join(SECTIONS)}")
    parser.add_argument("--baseline", metavar="GIT_REF",
                        help="also time the CLI backtest of this git ref (e.g. main before a change), interleaved")
    args = parser.parse_args(argv)
    try:
        sections = parse_only(args.only)
    except ValueError as exc:
        parser.error(str(exc))
    if not _data_dir().is_dir():
        print(f"no recording at {_data_dir()} (set MMKIT_SHARED_DATA)")
        return 1
    failed = []
    with tempfile.TemporaryDirectory(prefix="mmkit-anchors-") as scratch:
        cache = Path(scratch) / "cache"
        cache.mkdir()
        env = {**os.environ, "PYTHONPATH": str(ROOT), "MMKIT_CACHE_DIR": str(cache)}
        run = Run(QUICK_REPETITIONS if args.quick else REPETITIONS, args.quick, Path(scratch), env, args.baseline)
        print(f"compare_anchors: {run.repetitions} interleaved runs each, recording {_data_dir()}", flush=True)
        for name in sections:
            print(f"== {name} ==", flush=True)
            began = time.perf_counter()
            try:
                RUNNERS[name](run)
            except Exception as exc:  # one section that cannot run must not hide the others' figures
                failed.append(name)
                print(f"   COULD NOT RUN: {exc}", flush=True)
            print(f"   ({time.perf_counter() - began:.1f} s)", flush=True)
    print("== targets (issue 16; ratios are mmkit / reference, medians of this run) ==")
    print("\n".join(target_table(run.measured)))
    if failed:
        print(f"could not run: {', '.join(failed)}")
        return 1
    return 0


__all__ = ["main", "parse_only"]

if __name__ == "__main__":
    sys.exit(main())
