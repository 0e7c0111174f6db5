"""mmkit's side of bench/compare_anchors.py: the one-level maker as an mmkit controller, and its replay run.

The maker quotes one bid and one ask at the recorded mid ∓ a fixed offset in
the quote currency (issue 16: ± 5 USDT), bid rounded down and ask up to the
tick, exactly :func:`bench.anchors_settings.quote_ticks`. It runs through
:func:`mmkit.app.backtest_cmd.run_backtest` (setup ``replay``: the live
engine against the recorded venue), with the settings of
:func:`bench.anchors_settings.mmkit_settings`.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import attrs

from bench.anchors_settings import MakerSpec, mmkit_settings, quote_ticks
from mmkit.app.assembly import RiskSettings
from mmkit.app.backtest_cmd import BacktestResult, run_backtest
from mmkit.backtest.replay import ReplayEvent
from mmkit.connector import FeeSchedule, load_venue_rules
from mmkit.model import NS_PER_MS, Side, TargetQuote
from mmkit.strategy import Controller, StrategyContext

#: The account the maker starts with, the same as NautilusTrader's cash account in bench/anchors_nautilus.py: the
#: venue refuses a spot order the balances cannot pay for, and these never hold the maker back (it ends within
#: ±0.3 BTC), so every engine does the same work whatever mmkit's default balances are.
STARTING_BALANCES = {"BTC": Decimal(100), "USDT": Decimal(10_000_000)}


@attrs.frozen
class OffsetMakerConfig:
    offset: Decimal = Decimal(5)
    order_size: Decimal = Decimal("0.01")


class OffsetMaker(Controller):
    """One bid and one ask at the mid ∓ ``offset`` (quote currency), every tick the mid is known."""

    config_class = OffsetMakerConfig
    config: OffsetMakerConfig
    #: Reads only the fair value (not the book, not the time): the engine may skip ticks where it is unchanged.
    reads = frozenset[str]()

    def on_tick(self, ctx: StrategyContext) -> Sequence[TargetQuote]:
        fair = ctx.fair.price  # the recorded book's mid (ReplayedReference)
        if fair is None:
            return []
        tick = ctx.instrument.tick_for(fair)
        twice_mid = int(2 * fair / tick)  # exact: the mid of two prices on the tick is on the half tick
        bid, ask = quote_ticks(twice_mid // 2, twice_mid - twice_mid // 2, int(self.config.offset / tick))
        qty = self.config.order_size
        return [TargetQuote(Side.BUY, 0, bid * tick, qty), TargetQuote(Side.SELL, 0, ask * tick, qty)]


class SilentMaker(OffsetMaker):
    """The same controller quoting nothing: the run is the engine and the recorded data alone (no order).

    Why: it measures the floor under the maker's simulate time, what the clock, the replayed venue and
    book, the reference and the engine's iterators cost when no order is ever sent; the maker's time
    above it is the order lifecycle.
    """

    def on_tick(self, ctx: StrategyContext) -> Sequence[TargetQuote]:
        return []


def run_maker(events: Sequence[ReplayEvent], spec: MakerSpec, *, silent: bool = False) -> BacktestResult:
    """The maker through mmkit's setup (a) with :func:`mmkit_settings`; ``result.run_s`` is the simulate time.

    ``silent``: :class:`SilentMaker` instead (no order at all, the engine's floor).
    """
    settings = mmkit_settings(spec)
    rules = load_venue_rules("binance")
    if settings["lift_rate_limits"]:
        rules = attrs.evolve(rules, rate_limits=())
    rules = attrs.evolve(rules, fees=FeeSchedule(maker_bps=settings["fee_bps"], taker_bps=settings["fee_bps"]))
    if settings["queue_power"] != 1.0 or settings["latency_ns"] != (2 * NS_PER_MS, 2 * NS_PER_MS):
        raise ValueError("run_backtest takes ProbabilisticQueue's default power 1 and 2 + 2 ms latency only")
    maker = SilentMaker if silent else OffsetMaker
    controller = maker(OffsetMakerConfig(offset=spec.offset, order_size=spec.order_size))
    result = run_backtest(controller, events, setup=settings["setup"], rules=rules, queue=settings["queue"],
                          seed=settings["seed"], tick_ms=settings["tick_ms"], risk=RiskSettings(),
                          through_fill=settings["through_fill"], balances=STARTING_BALANCES)
    refuse_failed_run(result)
    return result


def refuse_failed_run(result: BacktestResult) -> None:
    """Raise when the run had a controller or iterator failure: its time is not the maker's work.

    Why: the clock counts an iterator's exception and carries on (``mmkit backtest`` then exits 4), so
    a venue or router that raised on every order would still hand back a run time, a fast one, and
    the bench would print it as mmkit's figure.
    """
    errors = result.engine.runner.stats.controller_errors
    if errors:
        raise RuntimeError(f"the maker failed on {errors} ticks (see the log): the run timed nothing useful")
    iterator_errors = dict(result.engine.clock.iterator_errors)
    if iterator_errors:
        raise RuntimeError(f"engine iterators failed during the run {iterator_errors} (see the log): "
                           "the run timed nothing useful")


def maker_outcome(result: BacktestResult) -> dict[str, Any]:
    """What the maker did, to print beside the time (the engines are timed on comparable work)."""
    pnl = result.engine.pnl
    return {"fills": len(result.engine.fills), "volume": float(pnl.volume_base()),
            "orders": result.sampler.accepted_orders}


__all__ = ["STARTING_BALANCES", "OffsetMaker", "OffsetMakerConfig", "SilentMaker", "maker_outcome", "refuse_failed_run",
           "run_maker"]
