"""Whether a sweep's trials ranked PnL that leaves out funding, so that it says so where the ranking is read.

Why: a perpetual's backtest without a funding file reports a PnL with no
funding in it (``report["funding"]["missing_from_pnl"]``,
:mod:`mmkit.backtest.funding`). One trial's report says so; a ranking of
dozens of them would not, and the sets that carried the most inventory over
a settlement are exactly the ones whose score is most wrong.
"""

from __future__ import annotations

from collections.abc import Mapping

from mmkit.research.search import Evaluation


def lacks_funding(evaluation: Evaluation) -> bool:
    """A finished trial whose PnL leaves out funding it would have paid or received."""
    report = evaluation.result.get("report")
    if evaluation.result.get("status") != "ok" or not isinstance(report, Mapping):
        return False
    funding = report.get("funding")
    return isinstance(funding, Mapping) and funding.get("missing_from_pnl") is True


def funding_warning(trials: Mapping[str, Evaluation]) -> str | None:
    """The warning to print when some trial's PnL leaves out funding (None otherwise)."""
    missing = sum(1 for ev in trials.values() if lacks_funding(ev))
    if not missing:
        return None
    return (f"!! {missing} of {len(trials)} trials trade a perpetual and held a position over a funding settlement "
            "that their PnL leaves out: add `funding: FILE` to the sweep file (as mmkit backtest --funding) and "
            "pnl.total then includes it, paid during each run")
