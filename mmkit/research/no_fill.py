"""Which parameter sets filled nothing, so that a sweep never presents one as its best result unremarked.

Why: a set that never trades scores 0 PnL, 0 drawdown and no adverse
selection, which beats every set that traded and lost. Unless the sweep
file constrains ``fills.count``, such a set can top the ranking, and its
"best" parameters are the ones that quoted too wide to be filled (the
shipped TrueX config does exactly that on the shared Binance recording).
The sweep still ranks what its objective says; it marks every set that
filled nothing on some of its data sets, and says so loudly when the best
one did.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from mmkit.research.search import Evaluation, PointScore


def filled_nothing(evaluation: Evaluation) -> bool:
    """A finished trial whose backtest filled no order (a failed trial is not counted: it has no report)."""
    report = evaluation.result.get("report")
    if evaluation.result.get("status") != "ok" or not isinstance(report, Mapping):
        return False
    fills = report.get("fills")
    return isinstance(fills, Mapping) and fills.get("count") == 0


def no_fill_counts(score: PointScore, by_key: Mapping[str, Evaluation]) -> tuple[int, int]:
    """(trials of this set that filled nothing, its trials)."""
    trials = [by_key[key] for key in score.keys if key in by_key]
    return sum(1 for ev in trials if filled_nothing(ev)), len(trials)


def marker(zero: int, total: int) -> str:
    """The ranking line's note for a set that filled nothing on some data sets ("" when it always filled)."""
    return f"  (filled nothing on {zero} of {total} data sets)" if zero else ""


def best_set_warning(ranked: Sequence[PointScore], by_key: Mapping[str, Evaluation]) -> str | None:
    """The warning to print when the best feasible set filled nothing on some data set (None otherwise)."""
    best = next((s for s in ranked if s.feasible and s.score is not None), None)
    if best is None:
        return None
    zero, total = no_fill_counts(best, by_key)
    if not zero:
        return None
    return (f"!! the best set filled nothing on {zero} of its {total} data sets: its score there is not the result "
            "of trading (quotes too wide, or never accepted; see each trial's report.json no_fill). "
            "Add a constraint such as `fills.count >= 10` to rank only sets that traded.")


def by_key(evaluations: Sequence[Evaluation]) -> dict[str, Evaluation]:
    """The first evaluation of each trial key (a trial may appear in several phases)."""
    out: dict[str, Evaluation] = {}
    for ev in evaluations:
        out.setdefault(ev.key, ev)
    return out
