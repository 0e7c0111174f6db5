"""``mmkit sweep SWEEP.yml``: run a parameter sweep or a walk-forward on Ray and write its results.

Outputs, in ``--out`` (default ``reports/sweeps/<name>``; the same directory
again resumes): ``trials/<key>/`` per trial (see :mod:`mmkit.research.store`),
``results.parquet`` and ``results.csv`` (:mod:`mmkit.research.table`),
``index.html`` (:mod:`mmkit.research.page`), ``summary.json`` (the ranking
and the walk-forward folds) and ``walk_forward.csv`` in walk-forward mode.

Exit codes: 0 every trial ran; 2 a mistake in the sweep file, the config or
a parameter (one line naming the file and key, nothing run), or an objective
that no trial's report has (after the trials ran: they are kept); 3 the Ray
cluster of ``--address``/``RAY_ADDRESS`` cannot be joined; 4 one or more
trials failed (each is in the table with its error; the others' results are
written); 6 the disk failed (one line; saved trials and the previous tables kept
whole); 130 interrupted by Ctrl-C (finished trials kept, a re-run resumes).
``--rerun TRIAL``: 0 the report was reproduced byte for byte, 1 it differs.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import sys
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

from mmkit.app.outcome import EXIT_ENGINE_FAILURE, EXIT_NOT_PERSISTED, EXIT_OK, EXIT_START_REFUSED, EXIT_USAGE
from mmkit.research import funding_gap, no_fill, page, table
from mmkit.research.executor import InProcessRunner, Progress, RayRunner, RayUnavailable, Runner, SweepInterrupted
from mmkit.research.search import Evaluation, PointScore, Search, SweepResult, judge
from mmkit.research.space import check
from mmkit.research.spec import DataSet, SweepSpec, load_sweep
from mmkit.research.store import NotPersisted, TrialStore
from mmkit.research.trial import data_checksum, mmkit_version, run_trial

EXIT_INTERRUPTED = 130
EXIT_RERUN_DIFFERS = 1


def output_dir(spec: SweepSpec, out: str | None) -> Path:
    return Path(out) if out else Path("reports") / "sweeps" / spec.name


def make_runner(store: TrialStore, args: argparse.Namespace) -> Runner:
    progress = Progress(not getattr(args, "no_progress", False))
    if getattr(args, "in_process", False):
        return InProcessRunner(store, progress)
    return RayRunner(store, progress, address=getattr(args, "address", None), num_cpus=getattr(args, "num_cpus", None))


def sweep_command(args: argparse.Namespace) -> int:
    """The CLI handler (arguments as registered in :mod:`mmkit.app.cli`)."""
    spec = load_sweep(args.sweep)  # SweepError is a ConfigError: the CLI prints it on one line, exit 2
    base = check(spec)
    out = output_dir(spec, args.out)
    try:
        return _sweep(spec, base, out, args)
    except NotPersisted as exc:  # a full or failing disk: what was written whole is kept, and the exit says so
        print(f"mmkit sweep: {exc}; the trials saved before are kept whole and the tables (results, index.html, "
              "summary.json) are those of the run before, if any: free space and run again to resume",
              file=sys.stderr)
        return EXIT_NOT_PERSISTED


def _sweep(spec: SweepSpec, base: Mapping[str, Any], out: Path, args: argparse.Namespace) -> int:
    store = TrialStore(out)
    if args.rerun:
        return rerun(store, args.rerun)
    try:
        (out / "sweep.yml").write_text(spec.file.read_text(encoding="utf-8"), encoding="utf-8")
    except OSError as exc:
        raise NotPersisted(f"the sweep's results could not be written in {out} ({exc})") from exc
    runner = make_runner(store, args)
    search = Search(spec, base, runner)
    try:
        result = search.run()
    except SweepInterrupted as exc:
        partial = finished_evaluations(store, spec, runner.planned)
        write_results(spec, SweepResult(evaluations=partial), out)
        print(f"\n{exc}; {len(partial)} finished trial(s) kept in {out}/ (run again to resume)", file=sys.stderr)
        return EXIT_INTERRUPTED
    except RayUnavailable as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_START_REFUSED
    finally:
        runner.close()
    write_results(spec, result, out)
    finished = [ev for ev in result.evaluations if ev.result["status"] == "ok"]
    if finished and all(ev.objective is None for ev in finished):  # a typo must not pass as "nothing feasible"
        report = finished[0].result.get("report") or {}
        from mmkit.research.metrics import as_number, flatten

        known = [k for k, v in flatten(report).items()
                 if as_number(v) is not None and "." in k and not k.startswith("params.")][:12]
        print(f"config error: {spec.file}: objective.metric: no trial's report.json has a number at "
              f"{spec.objective!r} (some that it has: {', '.join(known)})", file=sys.stderr)
        return EXIT_USAGE
    print_summary(spec, result, out)
    failed = {ev.key for ev in result.evaluations if ev.result["status"] != "ok"}
    if failed:
        print(f"{len(failed)} trial(s) failed: their errors are in {out}/results.csv (column error)", file=sys.stderr)
        return EXIT_ENGINE_FAILURE
    return EXIT_OK


def write_results(spec: SweepSpec, result: SweepResult, out: Path) -> None:
    """results.parquet, results.csv, index.html, summary.json (and walk_forward.csv): all of them or none.

    Each is written into a hidden staging directory first and renamed into place only when every one is
    complete. Why: on a full disk index.html (5 MB, plotly.js embedded) was cut off after the new tables,
    beside the summary.json of the run before; a reader could not tell the mix from a good set. A failing disk
    leaves the directory's tables as they were and raises NotPersisted (the command exits 6).
    """
    staging = out / f".results.{os.getpid()}.tmp"
    try:
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        names = _write_results(spec, result, staging)
        for name in names:
            os.replace(staging / name, out / name)
        if "walk_forward.csv" not in names:  # an older walk-forward's table in the directory would read as ours
            (out / "walk_forward.csv").unlink(missing_ok=True)
    except OSError as exc:
        raise NotPersisted(f"the sweep's results could not be written in {out} ({exc})") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _write_results(spec: SweepSpec, result: SweepResult, out: Path) -> list[str]:
    params = [p.path for p in spec.parameters]
    table.write(table.rows(result.evaluations, params), out)
    page.write_page(spec, result, out)
    ranked = page.ranking(result, spec.direction)
    trials = no_fill.by_key(result.evaluations)
    summary: dict[str, Any] = {
        "name": spec.name, "objective": spec.objective, "direction": spec.direction, "mode": spec.mode,
        "search": spec.search.method, "mmkit_version": mmkit_version(),
        "ranking": [{"point": s.point, "params": s.params, "score": s.score, "feasible": s.feasible,
                     "trials": s.keys, "trials_without_fills": no_fill.no_fill_counts(s, trials)[0]}
                    for s in ranked],
        "best_set_warning": no_fill.best_set_warning(ranked, trials),
        "funding_warning": funding_gap.funding_warning(trials),
        "no_feasible_set": no_feasible_warning(ranked, result),
        "walk_forward": [
            {"fold": f.fold, "train": f.train, "test": f.test,
             "params": f.best.params if f.best else None,
             "in_sample": f.best.score if f.best else None,
             "out_of_sample": f.out_of_sample.score if f.out_of_sample else None,
             "out_of_sample_feasible": f.out_of_sample.feasible if f.out_of_sample else None,
             "out_of_sample_why": page.out_of_sample_why(result, f),
             "trials": (f.best.keys if f.best else []) + (f.out_of_sample.keys if f.out_of_sample else [])}
            for f in result.folds
        ],
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    if spec.mode == "walk_forward":
        with (out / "walk_forward.csv").open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["fold", "train", "test", "params", "in_sample", "out_of_sample",
                             "out_of_sample_feasible", "out_of_sample_why"])
            for fold in summary["walk_forward"]:
                writer.writerow([fold["fold"], fold["train"], fold["test"], json.dumps(fold["params"]),
                                 fold["in_sample"], fold["out_of_sample"], fold["out_of_sample_feasible"],
                                 fold["out_of_sample_why"]])
    return [name for name in ("results.parquet", "results.csv", "index.html", "summary.json", "walk_forward.csv")
            if (out / name).exists()]


def no_feasible_warning(ranked: Sequence[PointScore], result: SweepResult) -> str | None:
    """The ``!!`` line when no parameter set is feasible (None when one is, or nothing ran).

    Why: the ranking still lists every set by its score, each marked "(infeasible)", and the first line
    read like a winner; a sweep whose every trial ran on data the backtest refuses, or broke a constraint,
    has no result, and says so with the first reason.
    """
    if not ranked or any(score.feasible for score in ranked):
        return None
    reasons = [reason for evaluation in result.evaluations for reason in evaluation.broken]
    first = reasons[0] if reasons else "no trial scored"
    return (f"!! no parameter set is feasible: all {len(ranked)} broke a constraint, failed or had a problem; "
            f"the ranking above is not a result. First reason: {first}")


def print_summary(spec: SweepSpec, result: SweepResult, out: Path, top: int = 5) -> None:
    ranked = page.ranking(result, spec.direction)
    trials = no_fill.by_key(result.evaluations)
    print(f"== sweep {spec.name}: {len({e.key for e in result.evaluations})} trials, objective {spec.objective} "
          f"({spec.direction}) ==")
    for rank, score in enumerate(ranked[:top], start=1):
        state = "" if score.feasible else "  (infeasible)" if score.score is not None else "  (failed)"
        value = "n/a" if score.score is None else f"{score.score:.6g}"
        params = ", ".join(f"{k}={v}" for k, v in score.params.items())
        print(f"  {rank:>2}. {value:>12}  {params}{state}{no_fill.marker(*no_fill.no_fill_counts(score, trials))}")
    for warning in (no_feasible_warning(ranked, result), no_fill.best_set_warning(ranked, trials),
                    funding_gap.funding_warning(trials)):
        if warning is not None:
            print(warning)
    if result.folds:
        print("  walk-forward: fold  optimised on -> evaluated on   in-sample   out-of-sample")
        for fold in result.folds:
            is_ = "n/a" if fold.best is None or fold.best.score is None else f"{fold.best.score:.6g}"
            oos = page.out_of_sample_text(result, fold) or "n/a"
            print(f"    {fold.fold:>3}  {fold.train} -> {fold.test}  {is_:>10}  {oos:>12}")
    print(f"\nresults written to {out}/")
    for name in ("results.parquet", "results.csv", "index.html", "summary.json"):
        print(f"  {name:16s} {out / name}")


def finished_evaluations(store: TrialStore, spec: SweepSpec, keys: Collection[str]) -> list[Evaluation]:
    """The trials ``keys`` (what this sweep asked for so far) that have a result, as table rows (after Ctrl-C).

    Judged as the full table judges them (:func:`~mmkit.research.search.judge`: a trial with a problem is not
    feasible), and only this sweep's: the directory may hold an older sweep's trials (other parameters,
    another objective, an older mmkit). Why: this listed every trial in the directory and judged only the
    objective and the constraints, so an interrupted sweep's table ranked a trial whose controller failed,
    or a trial of another sweep, as a result of this one.
    """
    evaluations: list[Evaluation] = []
    for key in sorted(keys):
        if not (store.path(key) / "result.json").is_file():
            continue
        try:
            trial = store.spec(key)
            result = store.result(key)
        except (OSError, ValueError, TypeError):  # a damaged trial: the next run runs it again
            continue
        dataset = DataSet(trial.dataset, Path(trial.data_path), trial.start_ns, trial.end_ns)
        objective, broken = judge(result, spec)
        evaluations.append(Evaluation(len(evaluations), trial.params, dataset, key, result, objective,
                                      objective is not None and not broken, broken, phase="finished"))
    return evaluations


def rerun(store: TrialStore, trial_id: str) -> int:
    """Run one stored trial again, in this process, and compare its report.json byte for byte."""
    key = store.find(trial_id)
    if key is None:
        print(f"{store.root}: no single trial matches {trial_id!r}", file=sys.stderr)
        return EXIT_USAGE
    spec = store.spec(key)
    checksum = data_checksum(Path(spec.data_path)) if Path(spec.data_path).exists() else "missing"
    if checksum != spec.data_checksum:
        print(f"warning: {spec.data_path} is not the data the trial ran on (checksum changed)", file=sys.stderr)
    if mmkit_version() != spec.version:
        print(f"warning: mmkit {mmkit_version()} reruns a trial of mmkit {spec.version}", file=sys.stderr)
    outcome = run_trial(spec.as_dict(), shared_plotly=False)  # a page one level deeper: keep plotly.js in it
    target = store.path(key) / "rerun"
    target.mkdir(exist_ok=True)
    for name, data in outcome["files"].items():
        (target / name).write_bytes(data)
    if outcome["status"] != "ok":
        print(f"trial {key} failed again: {outcome['error']}", file=sys.stderr)
        return EXIT_RERUN_DIFFERS
    original = (store.path(key) / "report.json").read_bytes() if (store.path(key) / "report.json").exists() else b""
    again = outcome["files"]["report.json"]
    if original == again:
        print(f"trial {key} reproduced exactly: report.json identical ({len(again)} bytes), in {target}/")
        return EXIT_OK
    print(f"trial {key} NOT reproduced: {target}/report.json differs from the stored report.json", file=sys.stderr)
    return EXIT_RERUN_DIFFERS
