"""Reading a trial's report.json: the objective, the constraints and the flat columns of the results table.

Any key of report.json can be the objective or a constraint, named by its
dotted path (``pnl.total``, ``fills.count``, ``data_health.<stream>.invalid_pct``),
so new metrics added to the report rank a sweep without a code change. A
``*`` in a constraint's path matches every key at that level, and the
constraint must hold for each (``data_health.*.invalid_pct <= 1``).
Decimal figures (written as strings) are compared as numbers.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from mmkit.research.spec import Constraint

_OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le, "<": operator.lt, ">=": operator.ge, ">": operator.gt, "==": operator.eq, "!=": operator.ne,
}


class MetricMissing(KeyError):
    """The report has no value at this path (a typo, or a metric this mmkit does not write yet)."""


def as_number(value: Any) -> float | None:
    """A report value as a float, or None when it is not a finite number (Decimal strings are numbers).

    Not finite is not a number: an inf (json reads `Infinity` as one) would rank first and pass every
    bound, as NaN would sort anywhere; both are refused, like the Decimal texts "Infinity" and "NaN".
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return None if isinstance(value, float) and not math.isfinite(value) else float(value)
    if isinstance(value, str):
        try:
            number = Decimal(value)
        except InvalidOperation:
            return None
        return float(number) if number.is_finite() else None
    return None


def report_problems(report: Mapping[str, Any]) -> list[str]:
    """Every problem the report records (what ``mmkit backtest`` exits non-zero for), each reason once.

    Why both places: the run's own problems (a controller or an iterator failure, a halted ledger) are in
    ``counters.problems``, written when the run ended; the verdicts reached after it (data unhealthy, orders
    left open) rewrite the complete list at the top level ``problems``. A sweep that read only the top level
    ranked a trial whose controller failed (exit 4) as a good one.
    """
    counters = report.get("counters")
    found = list(report.get("problems") or []) + list(
        (counters.get("problems") if isinstance(counters, Mapping) else None) or [])
    reasons: list[str] = []
    for problem in found:
        reason = str(problem.get("reason", problem)) if isinstance(problem, Mapping) else str(problem)
        if reason not in reasons:
            reasons.append(reason)
    return reasons


def lookup(report: Mapping[str, Any], path: str) -> list[tuple[str, Any]]:
    """Every (concrete path, value) the dotted ``path`` names in ``report`` (``*`` = any key)."""
    found: list[tuple[str, Any]] = [("", report)]
    for part in path.split("."):
        step: list[tuple[str, Any]] = []
        for prefix, node in found:
            if not isinstance(node, Mapping):
                continue
            keys = sorted(node) if part == "*" else [part] if part in node else []
            for key in keys:
                step.append((f"{prefix}.{key}" if prefix else str(key), node[key]))
        found = step
    return found


def metric(report: Mapping[str, Any], path: str) -> float:
    """The number at ``path``; MetricMissing if there is none (or it is not a number)."""
    hits = lookup(report, path)
    if not hits:
        raise MetricMissing(f"report has no {path!r}")
    number = as_number(hits[0][1])
    if number is None:
        raise MetricMissing(f"report value at {path!r} is not a number: {hits[0][1]!r}")
    return number


def violations(report: Mapping[str, Any], constraints: Sequence[Constraint]) -> list[str]:
    """The constraints ``report`` breaks, as sentences; a constraint whose metric is missing counts as broken."""
    broken: list[str] = []
    for constraint in constraints:
        hits = lookup(report, constraint.path)
        if not hits:
            broken.append(f"{constraint.text}: no {constraint.path} in the report")
            continue
        for path, raw in hits:
            value = as_number(raw)
            if value is None:
                broken.append(f"{constraint.text}: {path} is not a number ({raw!r})")
                continue
            if constraint.absolute:
                value = abs(value)
            if not _OPS[constraint.op](value, constraint.value):
                broken.append(f"{constraint.text}: {path} = {value:g}")
    return broken


def constraint_margins(report: Mapping[str, Any], constraints: Sequence[Constraint]) -> list[float]:
    """Optuna's form of the constraints: one value per constraint, <= 0 when it holds (worst match wins)."""
    margins: list[float] = []
    for constraint in constraints:
        worst = -math.inf
        hits = lookup(report, constraint.path)
        values = [as_number(raw) for _, raw in hits]
        if not hits or any(v is None for v in values):
            margins.append(1.0)
            continue
        for value in values:
            assert value is not None
            v = abs(value) if constraint.absolute else value
            if constraint.op in ("<=", "<"):
                margin = v - constraint.value
            elif constraint.op in (">=", ">"):
                margin = constraint.value - v
            else:
                margin = 0.0 if _OPS[constraint.op](v, constraint.value) else 1.0
            if constraint.op in ("<", ">") and margin == 0.0:
                margin = 1e-12
            worst = max(worst, margin)
        margins.append(worst)
    return margins


def flatten(report: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Scalar leaves of the report by dotted path (lists are left out: they belong in the tearsheet)."""
    out: dict[str, Any] = {}
    for key, value in report.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            out.update(flatten(value, path))
        elif isinstance(value, list):
            continue
        else:
            out[path] = value
    return out
