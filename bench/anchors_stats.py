"""The arithmetic of ``bench/compare_anchors.py``: summaries, ratios, the interleaved schedule and the target table.

Kept apart from the runners because it is the part that decides "met" or
"NOT MET": it is pure, so tests check it on made-up figures without any
reference engine installed. A ratio is always mmkit over the reference
engine, taken between the MEDIANS of one interleaved run (the verdict), with
the ratio of the minimums printed beside it (the quiet-machine bound).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from statistics import median
from typing import Literal


@dataclass(frozen=True)
class Summary:
    """Min and median of one figure over its repetitions (lower is better for times)."""

    count: int
    minimum: float
    median: float


def summarize(values: Iterable[float]) -> Summary:
    """Min and median of ``values``; an empty or non-finite series is an error, never a silent 0."""
    series = list(values)
    if not series:
        raise ValueError("no measurements to summarise")
    bad = [v for v in series if not math.isfinite(v)]
    if bad:
        raise ValueError(f"non-finite measurement(s): {bad}")
    return Summary(len(series), min(series), median(series))


def ratio(numerator: float, denominator: float) -> float:
    """``numerator / denominator``; a zero or negative denominator is an error (a broken measurement)."""
    if not (math.isfinite(numerator) and math.isfinite(denominator)) or denominator <= 0:
        raise ValueError(f"cannot take the ratio {numerator!r} / {denominator!r}")
    return numerator / denominator


def interleave(jobs: Sequence[str], repetitions: int) -> list[str]:
    """A, B, C, A, B, C, ...: each job ``repetitions`` times, alternating, so drift hits every engine alike."""
    if repetitions < 1:
        raise ValueError("repetitions must be at least 1")
    if len(set(jobs)) != len(jobs):
        raise ValueError(f"duplicate job names: {list(jobs)}")
    return [job for _ in range(repetitions) for job in jobs]


Bound = Literal["max", "min"]


@dataclass(frozen=True)
class Target:
    """One of issue 16's targets: ``measured <= limit`` (bound max) or ``measured >= limit`` (bound min)."""

    key: str
    label: str
    limit: float
    bound: Bound
    unit: str  # "x" for a ratio (mmkit / reference), else the value's unit

    def describe(self) -> str:
        sign = "<=" if self.bound == "max" else ">="
        return f"{sign} {self.limit:g}{'x' if self.unit == 'x' else ' ' + self.unit}"


#: Issue 16's list, in its order. Ratios are mmkit / reference of the medians of one run.
TARGETS: tuple[Target, ...] = (
    Target("replay", "replay simulate, one-level maker / hftbacktest warm", 3.0, "max", "x"),
    Target("cli", "default CLI backtest, whole process, cached (quiet machine)", 1.2, "max", "s"),
    Target("cli_vs_baseline", "  or: default CLI backtest / --baseline, same run", 0.4, "max", "x"),
    Target("first_read", "first read, fresh process / hftbacktest conversion warm", 1.0, "max", "x"),
    Target("fix_rate", "FIX sustained orders/s / raw QuickFIX", 0.8, "min", "x"),
    Target("fix_median", "FIX median round trip / raw QuickFIX", 1.5, "max", "x"),
    Target("decision_max", "decision path max, 10-minute live-like run", 2.0, "max", "ms"),
    Target("rss_steady", "live RSS steady, mmkit demo main process", 100.0, "max", "MB"),
)


def verdict(target: Target, measured: float | None) -> str:
    """``met`` / ``NOT MET`` / ``not measured`` (None: the figure could not be taken in this run)."""
    if measured is None:
        return "not measured"
    if not math.isfinite(measured):
        raise ValueError(f"{target.key}: non-finite measurement {measured!r}")
    ok = measured <= target.limit if target.bound == "max" else measured >= target.limit
    return "met" if ok else "NOT MET"


def format_value(target: Target, measured: float | None) -> str:
    if measured is None:
        return "-"
    if target.unit == "x":
        return f"{measured:.2f}x"
    return f"{measured:.2f} {target.unit}"


def target_table(measured: dict[str, float | None], targets: Sequence[Target] = TARGETS) -> list[str]:
    """The final table, one line per target; a key missing from ``measured`` reads ``not measured``."""
    unknown = set(measured) - {t.key for t in targets}
    if unknown:
        raise ValueError(f"figures for no target: {sorted(unknown)}")
    width = max(len(t.label) for t in targets)
    lines = [f"   {'target':{width}s} {'limit':>10s} {'measured':>10s}  verdict"]
    for target in targets:
        value = measured.get(target.key)
        lines.append(f"   {target.label:{width}s} {target.describe():>10s} {format_value(target, value):>10s}  "
                     f"{verdict(target, value)}")
    return lines


def engine_lines(figure: str, unit: str, summaries: dict[str, Summary], scale: float = 1.0) -> list[str]:
    """One line per engine: min and median of ``figure`` (values multiplied by ``scale`` for display)."""
    lines = []
    for engine, summary in summaries.items():
        lines.append(f"   {figure} {engine:28s} min {summary.minimum * scale:9.3f} {unit}  "
                     f"median {summary.median * scale:9.3f} {unit}  (n={summary.count})")
    return lines


def ratio_line(label: str, ours: Summary, reference: Summary) -> tuple[str, float]:
    """``label: median ratio (min ratio)`` and the median ratio, mmkit over the reference (times: >1 is slower)."""
    by_median = ratio(ours.median, reference.median)
    by_min = ratio(ours.minimum, reference.minimum)
    return f"   ratio {label}: {by_median:.2f}x by median ({by_min:.2f}x by min)", by_median


#: The other benches' ``anchor_figures()`` keys, by module (issue 16's FIX, decision-path and RSS figures).
OTHER_FIGURES: dict[str, tuple[str, ...]] = {
    "bench.bench_fix": ("raw_median_us", "raw_orders_per_s", "mmkit_median_us", "mmkit_orders_per_s"),
    "bench.bench_decision": ("p50_us", "p99_us", "max_ms"),
    "bench.bench_rss": ("steady_mb", "peak_mb"),
}


def targets_from_other(module: str, figures: dict[str, float]) -> dict[str, float]:
    """Target values from another bench's ``anchor_figures()``; a missing or non-numeric key is an error."""
    if module not in OTHER_FIGURES:
        raise ValueError(f"no anchor figures expected from {module}")
    missing = [key for key in OTHER_FIGURES[module] if key not in figures]
    if missing:
        raise ValueError(f"{module}.anchor_figures() lacks {missing}")
    values = {key: float(figures[key]) for key in OTHER_FIGURES[module]}
    bad = [key for key, value in values.items() if not math.isfinite(value) or value < 0]
    if bad:
        raise ValueError(f"{module}.anchor_figures(): not a finite non-negative number: {bad}")
    if module == "bench.bench_fix":
        return {"fix_rate": ratio(values["mmkit_orders_per_s"], values["raw_orders_per_s"]),
                "fix_median": ratio(values["mmkit_median_us"], values["raw_median_us"])}
    if module == "bench.bench_decision":
        return {"decision_max": values["max_ms"]}
    return {"rss_steady": values["steady_mb"]}


__all__ = [
    "OTHER_FIGURES",
    "TARGETS",
    "Summary",
    "Target",
    "engine_lines",
    "format_value",
    "interleave",
    "ratio",
    "ratio_line",
    "summarize",
    "target_table",
    "targets_from_other",
    "verdict",
]
