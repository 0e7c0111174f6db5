"""The wiring of a backtest's funding: the settler into the engine before the run, its section into the report after.

Why in the app layer and a module of its own: the settler
(:mod:`mmkit.backtest.funding_settler`) needs the strategy runner's hook, the
PnL tracker, the kill switch and the simulated venue's account, which only
the app assembles; and ``mmkit backtest`` and the sweep trials
(:mod:`mmkit.research.trial`) both reach it through
:func:`mmkit.app.backtest_cmd.run_backtest`, so the two cannot differ.
"""

from __future__ import annotations

from typing import Any

from mmkit.app.engine import Engine
from mmkit.app.outcome import ProblemKind
from mmkit.backtest.funding import FundingInput, funding_section, in_run_section
from mmkit.backtest.funding_settler import FundingSettler
from mmkit.backtest.inverse import CENT
from mmkit.backtest.sampler import BacktestSampler
from mmkit.sim.base_venue import SimulatedVenue


def attach_funding(engine: Engine, venue: SimulatedVenue, funding: FundingInput, symbol: str, start_ns: int,
                   end_ns: int) -> FundingSettler:
    """A settler paying ``funding``'s settlements inside the span into the engine's PnL as the clock reaches them.

    It runs on the strategy runner's ``after_mark`` hook (same tick as the kill switch, before it), reads
    the venue's own fills for the position, and names funding in the kill switch's PnL reasons.
    """
    settler = FundingSettler(funding.rates, engine.pnl.settlement, engine.pnl, venue.fills_since, symbol,
                             start_ns, end_ns)
    engine.runner.after_mark.append(settler.on_tick)
    kill_switch = engine.runner.kill_switch
    if kill_switch is not None:
        kill_switch.pnl_note = settler.note
    return settler


def funding_report(report: dict[str, Any], settler: FundingSettler, funding: FundingInput, engine: Engine,
                   sampler: BacktestSampler, start_ns: int, end_ns: int) -> None:
    """``report["funding"]`` from the in-run bookings, cross-checked against the post-run computation.

    A disagreement is recorded as an engine failure (exit 4) with both figures, in the report's problems
    and on the section (``cross_check``), and printed by :func:`mmkit.backtest.funding.funding_lines`.
    ``report["pnl"]["funding"]`` says how much of ``report["pnl"]["total"]`` is funding.
    """
    pnl = engine.pnl
    post_run = funding_section(funding.rates, funding.source, engine.fills, sampler.ts, sampler.mid,
                               pnl.settlement, start_ns, end_ns, pnl.total())
    section = in_run_section(settler.bookings, funding.source, pnl.settlement, pnl.total(), post_run)
    kill_switch = engine.runner.kill_switch
    if kill_switch is not None and kill_switch.halted and "funding" in kill_switch.reason:
        section["kill_switch"] = kill_switch.reason
    report["funding"] = section
    report["pnl"]["funding"] = section["total"]
    in_quote = report["pnl"].get("in_quote")
    if isinstance(in_quote, dict):  # an inverse contract's PnL also read in the quote currency at the mark
        converted = pnl.to_quote(settler.total)
        in_quote["funding"] = None if converted is None else str(converted.quantize(CENT))
    check = section["cross_check"]
    if not check["agrees"]:
        engine.outcome.record(
            ProblemKind.ENGINE_FAILURE,
            f"funding booked during the run ({section['total']} {section['unit']}) disagrees with the post-run "
            f"computation from the fills ({check['post_run_total']} {section['unit']}): {check['problem']}",
            end_ns)
        report["problems"] = engine.outcome.as_report()
        report.setdefault("counters", {})["problems"] = report["problems"]
