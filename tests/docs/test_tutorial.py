"""The tests of docs/writing-a-strategy.md, and a check that the doc still shows this code."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path

import pytest

from mmkit.model import Side, TargetQuote
from mmkit.strategy import StrategyContext
from mmkit.testing.harness import Harness
from tests.docs.tutorial_imbalance import ImbalanceConfig, ImbalanceController

DOC = Path(__file__).resolve().parents[2] / "docs" / "writing-a-strategy.md"
HERE = Path(__file__).resolve().parent


def test_quotes_are_centred_on_fair_value_when_the_book_is_balanced() -> None:
    h = Harness(ImbalanceController(ImbalanceConfig()))
    h.venue.set_book(bids=[("59990", "1")], asks=[("60010", "1")])
    h.set_fair("60000")
    h.tick()
    assert h.quotes() == [(Side.BUY, Decimal("59952.0"), Decimal("0.0100")),
                          (Side.SELL, Decimal("60048.0"), Decimal("0.0100"))]


def test_a_heavy_bid_side_shifts_both_quotes_up() -> None:
    h = Harness(ImbalanceController(ImbalanceConfig()))
    h.venue.set_book(bids=[("59990", "3")], asks=[("60010", "1")])  # imbalance +0.5 -> +2 bps
    h.set_fair("60000")
    h.tick()
    (bid_side, bid, _), (ask_side, ask, _) = h.quotes()
    assert (bid_side, ask_side) == (Side.BUY, Side.SELL)
    # centre 60000 x (1 + 0.5 x 4 bps) = 60012; +-8 bps = 59963.99 / 60060.01, snapped bid down, ask up
    assert bid == Decimal("59963.9") and ask == Decimal("60060.1")


def test_a_fill_moves_the_position_and_stop_leaves_nothing_open() -> None:
    h = Harness(ImbalanceController(ImbalanceConfig()))
    h.venue.set_book(bids=[("59990", "1")], asks=[("60010", "1")])
    h.set_fair("60000")
    h.tick()
    h.venue.print_trade("59952.0", "0.01", aggressor=Side.SELL)  # a seller hits our bid
    h.tick()
    assert h.position == Decimal("0.0100")
    assert h.stop() == 0
    assert h.venue.open_orders == []


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="half_spread_bps"):
        ImbalanceConfig(half_spread_bps=Decimal(0))


def test_the_plugin_fixture_builds_harnesses_and_stops_them(mmkit_harness: Callable[..., Harness]) -> None:
    h = mmkit_harness(ImbalanceController(ImbalanceConfig()))
    h.venue.set_book(bids=[("59990", "1")], asks=[("60010", "1")])
    h.set_fair("60000")
    h.tick()
    assert len(h.quotes()) == 2  # after the test, the fixture stops the harness: quotes pulled, nothing open


class BrokenImbalance(ImbalanceController):
    def on_tick(self, ctx: StrategyContext) -> Sequence[TargetQuote]:
        raise ZeroDivisionError("a bug in my model")


def test_an_exception_in_on_tick_fails_the_test() -> None:
    h = Harness(BrokenImbalance(ImbalanceConfig()))
    h.set_fair("60000")
    with pytest.raises(ZeroDivisionError, match="a bug in my model"):
        h.tick()


def test_a_test_of_error_handling_counts_instead() -> None:
    h = Harness(BrokenImbalance(ImbalanceConfig()), raise_errors=False, max_consecutive_failures=3)
    h.set_fair("60000")
    h.tick(3)
    assert h.engine.runner.stats.controller_errors == 3
    assert h.engine.runner.failure_halt is not None  # quotes pulled, quoting halted for the rest of the run
    assert h.engine.outcome.exit_code() == 4  # what `mmkit start` and `mmkit backtest` exit with


def test_the_doc_shows_exactly_this_code() -> None:
    """Every python block in the tutorial must appear verbatim in the files it was taken from."""
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)
    assert len(blocks) >= 3
    sources = (HERE / "tutorial_imbalance.py").read_text() + (HERE / "test_tutorial.py").read_text()
    for block in blocks:
        assert block.strip() in sources, f"doc block drifted from the code:\n{block}"
