"""A recorded event a sink refuses (it raises) is counted once and the replay goes on after it.

Before: ``RecordingReplay.deliver_until`` stored its position only at the end,
so after a raising sink every later tick handed the whole batch to the sinks
again (the venue saw the same prints twice: fills booked twice) and the replay
never got past the bad event (the rest of the recording was lost, silently
but for the iterator-failure count). Shown on plain sinks and through the
compiled delivery loop of the replay setup (the raise inside its ``deliver``).
"""

from __future__ import annotations

from decimal import Decimal as D

import attrs
import pytest

from mmkit import _speedups
from mmkit.app.backtest_setups import build_replay_venue_setup
from mmkit.backtest.replay import RecordingReplay
from mmkit.clock import Clock, ClockMode
from mmkit.connector import load_venue_rules
from mmkit.model import BookDelta, Side, Trade
from strategies.skewed_ladder import SkewedLadderController
from tests.replay_loop_support import TICK
from tests.unit.backtest.test_shared_book import SYMBOL, _diff, _snapshot


def trade(trade_id: str, ts: int) -> Trade:
    return Trade("binance", SYMBOL, trade_id, TICK * 100, D("0.001"), Side.BUY, ts, ts)


def test_plain_sinks_go_on_after_the_bad_event_and_never_see_one_twice() -> None:
    events = [trade(f"t{i}", i) for i in (1, 2, 3, 4)]
    seen: list[str] = []

    def sink(event: Trade) -> None:
        seen.append(event.trade_id)
        if event.trade_id == "t2":
            raise ValueError("a recorded event a sink refuses")

    replay = RecordingReplay(events, sinks=[sink])
    with pytest.raises(ValueError):
        replay.deliver_until(3)
    assert replay.delivered == 2  # t1, and t2 which was handed over (and refused)
    assert replay.deliver_until(5) == 2
    assert seen == ["t1", "t2", "t3", "t4"] and replay.finished


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled loop", "sinks"])
def test_the_replay_setup_goes_on_after_a_diff_off_the_grid(compiled: bool) -> None:
    if compiled and _speedups.compiled_replay_loop_class() is None:
        pytest.fail("the compiled core is not built (pip install -e . builds it)")
    off_grid = attrs.evolve(_diff(11, 11, [(100, 1)]), bids=((TICK * 100 + TICK / 2, D("0.001")),), scaled=None)
    events = [_snapshot(10, [(99, 2)], [(101, 3)]), trade("before", 10), off_grid, trade("after", 11),
              _diff(12, 12, [(98, 5)]), trade("last", 12)]
    setup = build_replay_venue_setup(Clock(ClockMode.BACKTEST, start_ns=1), SkewedLadderController(), events,
                                     load_venue_rules("binance"), SYMBOL)
    replay = setup.replay
    replay.use_compiled_loop = compiled
    # The sink that raises: the reference's tracker refuses the off-grid diff. (The tracker itself no longer
    # raises on one: it invalidates its book and asks for a resync, tests/unit/book/test_book_tracker.py.)
    tracker = setup.reference.tracker
    apply_delta = tracker.on_delta

    def refuses_the_off_grid_diff(delta: BookDelta) -> None:
        if delta is off_grid:
            raise ValueError("this sink refuses the diff")
        apply_delta(delta)

    tracker.on_delta = refuses_the_off_grid_diff  # type: ignore[method-assign]
    prints: list[str] = []
    setup.reference.on_trade(lambda t: prints.append(t.trade_id))
    raised = 0
    for now in (11, 11, 12, 13):
        try:
            replay.deliver_until(now)
        except Exception:
            raised += 1
    assert raised == 1  # the bad diff once, never again
    assert prints == ["before", "after", "last"]  # each print reached the sinks once
    assert replay.finished and replay.delivered == len(events)
    if compiled:
        assert replay.compiled_loop is not None
