"""Every fill of a replay backtest of the shared recording is justified by the tape (tests/tape_audit.py).

Why: the identity tests show the compiled and pure paths of the recorded venue
agree; this asks whether what they agree on could have happened. A tight
three-level ladder fills ~200 times in the recording's 11 minutes, through
prints at and through its prices and through the book crossing it; the audit
replays the recording on its own naive book and checks each fill against the
orders' acceptance and cancel times the engine was told. On the code before
``_Queued.since`` it found six fills dated before their order was accepted:
prints the trade stream delivered late, which had traded before the order
existed (tests/unit/sim/test_replay_venue_late_events.py).
"""

from __future__ import annotations

from decimal import Decimal
from decimal import Decimal as D

import pytest

from mmkit import _speedups
from mmkit.app import backtest_cmd
from mmkit.app.backtest_cmd import run_backtest
from mmkit.app.outcome import EXIT_ENGINE_FAILURE
from mmkit.backtest.replay import ReplayEvent
from mmkit.model import Liquidity, VenueEvent
from mmkit.sim.queue import ConservativeQueue, QueuePosition
from mmkit.sim.through_fill import ThroughFill
from strategies.skewed_ladder import SkewedLadderConfig, SkewedLadderController
from tests.integration.backtest.conftest import LADDER_RISK as RISK
from tests.tape_audit import OrderLog, audit_fills

pytestmark = pytest.mark.shared_data



def audited_ladder_run(
    recording: list[ReplayEvent], monkeypatch: pytest.MonkeyPatch, queue: str = "conservative",
    through_fill: ThroughFill = "tape",
) -> tuple[backtest_cmd.BacktestResult, OrderLog]:
    """A tight three-level ladder on the whole recording, with the audit's log of its orders' venue times."""
    log = OrderLog()

    class LoggingSampler(backtest_cmd.BacktestSampler):
        """The run's own sampler, also handing each order event to the audit's log."""

        def on_order_event(self, event: VenueEvent) -> None:
            log.on_order_event(event)
            super().on_order_event(event)

    monkeypatch.setattr(backtest_cmd, "BacktestSampler", LoggingSampler)
    ladder = SkewedLadderController(SkewedLadderConfig(base_spread_bps=D(2), levels=3, base_size=D("0.01")))
    result = run_backtest(ladder, recording, setup="replay", queue=queue, risk=RISK, seed=3, through_fill=through_fill)
    for client_id, row in result.sampler.orders.items():
        log.terms[client_id] = (row.side, row.price, row.qty)
    return result, log


@pytest.mark.parametrize(("queue", "pure"), [("conservative", False), ("probabilistic", False),
                                             ("probabilistic", True)])
def test_every_fill_of_a_tight_ladder_is_justified_by_the_tape(
    recording: list[ReplayEvent], queue: str, pure: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(_speedups.ENV_PURE, "1" if pure else "0")
    result, log = audited_ladder_run(recording, monkeypatch, queue)
    fills = result.engine.fills
    assert len(fills) >= 150 and all(f.liquidity is Liquidity.MAKER for f in fills)  # post-only quotes
    assert len(log.accepted) >= 1000 and log.ended and log.replaced == 0
    assert audit_fills(recording, fills, log.orders()) == []
    # The prints that reached our orders but were dated before they arrived are counted in the report.
    assert result.report["before_arrival_events"] > 0


def test_whole_order_fills_through_our_price_are_what_the_audit_flags(
    recording: list[ReplayEvent], monkeypatch: pytest.MonkeyPatch
) -> None:
    """hftbacktest's convention (``through_fill="whole"``) on the same ladder: fills no print could give."""
    result, log = audited_ladder_run(recording, monkeypatch, through_fill="whole")
    problems = audit_fills(recording, result.engine.fills, log.orders())
    assert problems and all("the tape supplied" in p for p in problems), problems[:3]
    assert result.report["through_fill"] == "whole"


class GreedyQueue(ConservativeQueue):
    """A user's broken queue model: any print at our price fills the whole order."""

    def on_trade_at_price(self, pos: QueuePosition, trade_qty: Decimal, leaves: Decimal) -> Decimal:
        return leaves


def test_a_queue_model_that_fills_beyond_the_prints_fails_the_run_and_the_fills_stay_justified(
    recording: list[ReplayEvent], monkeypatch: pytest.MonkeyPatch
) -> None:
    from mmkit.app import backtest_setups

    monkeypatch.setattr(backtest_setups, "queue_model", lambda name, seed: GreedyQueue())
    result, log = audited_ladder_run(recording, monkeypatch)
    problems = result.report["counters"]["problems"]
    assert any("the queue model GreedyQueue filled more than a print traded" in p["reason"] for p in problems)
    assert backtest_cmd._exit_code(result) == EXIT_ENGINE_FAILURE
    assert audit_fills(recording, result.engine.fills, log.orders()) == []  # capped: still what the tape allows
