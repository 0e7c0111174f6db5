"""The searches: a grid, Optuna's TPE, and walk-forward (optimise on data set n, evaluate on n+1).

A *point* is one parameter set; it is evaluated on one or more data sets,
one trial each. Its score is the mean of the objective over those data sets
and it is feasible only if every one of its trials finished and met every
constraint. The best point is the feasible one with the best score (ties:
the earlier point).

Optuna's study is driven ask/tell in batches of ``search.batch`` points: the
points of a batch run in parallel, are told in order, and the next batch is
asked only then, so the sequence of points (and the whole results table) is
the same on two cores or two hundred.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs

from mmkit.research.executor import Runner
from mmkit.research.metrics import MetricMissing, constraint_margins, metric, report_problems, violations
from mmkit.research.space import apply, dump_config, grid_points, plain
from mmkit.research.spec import DataSet, Parameter, SweepSpec
from mmkit.research.trial import TrialSpec, data_checksum, mmkit_version


@attrs.define
class Evaluation:
    """One trial in its place in the sweep: which point, which data set, which phase and fold."""

    point: int
    params: dict[str, Any]
    dataset: DataSet
    key: str
    result: dict[str, Any]
    objective: float | None
    feasible: bool
    broken: list[str]
    phase: str = "search"
    fold: int | None = None


@attrs.define
class PointScore:
    point: int
    params: dict[str, Any]
    score: float | None
    feasible: bool
    keys: list[str]


@attrs.define
class Fold:
    fold: int
    train: str
    test: str
    best: PointScore | None
    out_of_sample: PointScore | None


@attrs.define
class SweepResult:
    evaluations: list[Evaluation] = attrs.Factory(list)
    folds: list[Fold] = attrs.Factory(list)


def judge(result: Mapping[str, Any], spec: SweepSpec) -> tuple[float | None, list[str]]:
    """A finished trial's objective and every reason it may not be ranked (empty: feasible).

    One judgement for the full table and for what an interrupted sweep writes, so the two cannot differ.
    What `mmkit backtest` would exit non-zero for (a controller or iterator failure, a halted ledger, data
    unhealthy, orders left open) makes a trial's figures no result to rank, whatever the constraints say.
    """
    report = result.get("report")
    objective: float | None = None
    broken: list[str] = []
    if result.get("status") == "ok" and report is not None:
        try:
            objective = metric(report, spec.objective)
        except MetricMissing as exc:
            broken.append(f"objective: {exc.args[0]}")
        broken += violations(report, spec.constraints)
        broken += [f"problem: {reason}" for reason in report_problems(report)]
    else:
        broken.append(f"failed: {result.get('error', '')}")
    return objective, broken


class Search:
    def __init__(self, spec: SweepSpec, base: Mapping[str, Any], runner: Runner) -> None:
        self.spec = spec
        self.base = base
        self.runner = runner
        self.result = SweepResult()
        self._checksums: dict[str, str] = {}
        self._points: list[dict[str, Any]] = []
        #: The Optuna studies this search drove (one per search or walk-forward fold): what TPE was told.
        self.studies: list[Any] = []

    # -- building trials -------------------------------------------------------------------------------------
    def _point_id(self, params: dict[str, Any]) -> int:
        normal = {k: plain(v) for k, v in params.items()}
        if normal not in self._points:
            self._points.append(normal)
        return self._points.index(normal)

    def trial(self, params: Mapping[str, Any], dataset: DataSet) -> TrialSpec:
        path = str(dataset.path)
        if path not in self._checksums:
            self._checksums[path] = data_checksum(dataset.path)
        return TrialSpec(
            config_yaml=dump_config(apply(self.base, params)),
            params={k: plain(v) for k, v in params.items()},
            dataset=dataset.label, data_path=path, data_checksum=self._checksums[path],
            start_ns=dataset.start_ns, end_ns=dataset.end_ns, seed=self.spec.seed,
            setup=self.spec.setup, queue=self.spec.queue, version=mmkit_version(),
            config_name=str(self.spec.config), taker_reach_bps=str(self.spec.taker_reach_bps),
            latency_ms=self.spec.latency_ms, funding_path=self.spec.funding,
            funding_checksum=data_checksum(Path(self.spec.funding)) if self.spec.funding else "",
            through_fill=self.spec.through_fill,
        )

    def evaluate(self, points: Sequence[dict[str, Any]], datasets: Sequence[DataSet], *, phase: str = "search",
                 fold: int | None = None) -> list[PointScore]:
        """Run every point on every data set (in parallel, cached trials skipped) and score the points."""
        unique: list[dict[str, Any]] = []
        for point in points:  # Optuna may ask for the same point twice in a batch: one trial, one row
            if point not in unique:
                unique.append(point)
        specs = [(p, d, self.trial(p, d)) for p in unique for d in datasets]
        results = self.runner.run([s for _, _, s in specs])
        by_point: dict[int, list[Evaluation]] = {}
        for params, dataset, trial in specs:
            key = trial.key()
            evaluation = self._evaluation(params, dataset, key, results[key], phase, fold)
            self.result.evaluations.append(evaluation)
            by_point.setdefault(evaluation.point, []).append(evaluation)
        return [self._score(evs) for evs in by_point.values()]

    def _evaluation(self, params: dict[str, Any], dataset: DataSet, key: str, result: dict[str, Any], phase: str,
                    fold: int | None) -> Evaluation:
        objective, broken = judge(result, self.spec)
        feasible = objective is not None and not broken
        normal = {k: plain(v) for k, v in params.items()}
        point = self._point_id(params)
        return Evaluation(point, normal, dataset, key, result, objective, feasible, broken, phase, fold)

    def _score(self, evaluations: list[Evaluation]) -> PointScore:
        objectives = [e.objective for e in evaluations]
        score = None if any(o is None for o in objectives) else sum(o for o in objectives if o is not None) / len(
            objectives)
        first = evaluations[0]
        return PointScore(first.point, first.params, score, all(e.feasible for e in evaluations),
                          [e.key for e in evaluations])

    def best(self, scores: Sequence[PointScore]) -> PointScore | None:
        sign = 1.0 if self.spec.direction == "maximize" else -1.0
        candidates = [s for s in scores if s.feasible and s.score is not None]
        if not candidates:
            return None
        return max(candidates, key=lambda s: (sign * (s.score or 0.0), -s.point))

    def _unsound(self, score: PointScore) -> bool:
        """A trial of this point failed or recorded a problem (what `mmkit backtest` exits non-zero for)."""
        for key in score.keys:
            result = self.runner.store.result(key)
            report = result.get("report")
            if result.get("status") != "ok" or report is None or report_problems(report):
                return True
        return False

    # -- the searches ----------------------------------------------------------------------------------------
    def optimise(self, datasets: Sequence[DataSet], *, phase: str = "search", fold: int | None = None
                 ) -> list[PointScore]:
        if self.spec.search.method == "grid":
            return self.evaluate(grid_points(self.spec.parameters), datasets, phase=phase, fold=fold)
        return self._optuna(datasets, phase=phase, fold=fold)

    def _optuna(self, datasets: Sequence[DataSet], *, phase: str, fold: int | None) -> list[PointScore]:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        constraints = self.spec.constraints
        # TPE samples at random for its first n_startup_trials: at most half the budget, so a small one is guided too.
        startup = max(1, min(10, self.spec.search.trials // 2))
        sampler = optuna.samplers.TPESampler(seed=self.spec.search.seed, n_startup_trials=startup)
        study = optuna.create_study(direction=self.spec.direction, sampler=sampler)
        self.studies.append(study)
        scores: list[PointScore] = []
        budget = self.spec.search.trials
        while len(scores) < budget:
            asked = [study.ask() for _ in range(min(self.spec.search.batch, budget - len(scores)))]
            points = [suggest(t, self.spec.parameters) for t in asked]
            batch = self.evaluate(points, datasets, phase=phase, fold=fold)
            by_point = {s.point: s for s in batch}
            for trial, params in zip(asked, points, strict=True):
                score = by_point[self._point_id(params)]
                scores.append(score)
                if constraints:
                    reports = [self.runner.store.result(k).get("report") or {} for k in score.keys]
                    margins = [max(m) for m in zip(*(constraint_margins(r, constraints) for r in reports),
                                                   strict=True)]
                    for i, margin in enumerate(margins):  # TPE prefers feasible points (<= 0 holds)
                        trial.set_constraint(f"c{i}", margin)
                if score.score is None or math.isnan(score.score) or self._unsound(score):
                    # A failed trial, or one whose backtest had a problem: its figure is no evidence for TPE.
                    study.tell(trial, state=optuna.trial.TrialState.FAIL)
                else:
                    study.tell(trial, score.score)
        unique: dict[int, PointScore] = {}
        for score in scores:
            unique.setdefault(score.point, score)
        return list(unique.values())

    def run(self) -> SweepResult:
        if self.spec.mode == "walk_forward":
            self._walk_forward()
        else:
            self.optimise(self.spec.datasets)
        return self.result

    def _walk_forward(self) -> None:
        datasets = self.spec.datasets
        folds = [(n, datasets[n], datasets[n + 1]) for n in range(len(datasets) - 1)]
        if self.spec.search.method == "grid":  # every fold's grid at once: the folds run in parallel, not in turn
            points = grid_points(self.spec.parameters)
            self.runner.run([self.trial(p, train) for _, train, _ in folds for p in points])
        bests: list[PointScore | None] = []
        for n, train, _ in folds:
            bests.append(self.best(self.optimise([train], phase="in_sample", fold=n)))
        for (n, train, test), best in zip(folds, bests, strict=True):
            oos = None
            if best is not None:
                [oos] = self.evaluate([best.params], [test], phase="out_of_sample", fold=n)
            self.result.folds.append(Fold(n, train.label, test.label, best, oos))


def suggest(trial: Any, params: Sequence[Parameter]) -> dict[str, Any]:
    """One point from an Optuna trial; steps are exact decimals (an index is what Optuna sees)."""
    point: dict[str, Any] = {}
    for param in params:
        if param.values is not None:
            index = trial.suggest_categorical(param.path, list(range(len(param.values))))
            point[param.path] = param.values[index]
            continue
        assert param.low is not None and param.high is not None
        if param.step is not None:
            count = int((param.high - param.low) / param.step)
            k = trial.suggest_int(param.path, 0, count)
            value = param.low + k * param.step
            point[param.path] = int(value) if param.integer else value
        elif param.integer:
            point[param.path] = trial.suggest_int(param.path, int(param.low), int(param.high), log=param.log)
        else:
            raw = trial.suggest_float(param.path, float(param.low), float(param.high), log=param.log)
            point[param.path] = Decimal(repr(raw))
    return point
