"""A tick that changes nothing a controller reads does not ask the controller again; any change does.

The runner memoizes ``on_tick`` for controllers that declare ``reads`` (mmkit.strategy.Controller.reads).
Every input is changed here in turn, alone, and must reach the controller on the very next tick: a memo
that missed one would leave a stale quote resting.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal as D
from typing import ClassVar

import attrs
import pytest

from mmkit.model import FairValue, Side, TargetQuote
from mmkit.strategy import Controller, StrategyContext
from mmkit.testing.harness import Harness


class Probe(Controller):
    """Quotes one bid 10 below the fair price and one ask 10 above; counts its calls."""

    reads: ClassVar[frozenset[str]] = frozenset()

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[StrategyContext] = []

    def on_tick(self, ctx: StrategyContext) -> Sequence[TargetQuote]:
        self.calls.append(ctx)
        fair = ctx.fair.price
        if fair is None:
            return []
        qty = D("0.01")
        return [TargetQuote(Side.BUY, 0, fair - 10, qty), TargetQuote(Side.SELL, 0, fair + 10, qty)]


class BookProbe(Probe):
    reads: ClassVar[frozenset[str]] = frozenset({"book"})


class TimeProbe(Probe):
    reads: ClassVar[frozenset[str]] = frozenset({"time"})


class StableFair:
    """A fair value that stays the very same object until the test moves it (as ReplayedReference's)."""

    def __init__(self, price: str, ts_ns: int) -> None:
        self.value = FairValue(D(price), 1.0, ts_ns, sources=1)

    def move(self, price: str) -> None:
        self.value = FairValue(D(price), 1.0, self.value.ts, sources=1)

    def fair(self, now_ns: int) -> FairValue:
        return self.value

    def evolve(self, **changes: object) -> None:
        self.value = attrs.evolve(self.value, **changes)  # the same price object


def started(probe: Probe) -> tuple[Harness, StableFair]:
    h = Harness(probe)
    fair = StableFair("60000", h.clock.now_ns)
    h.engine.runner.fair_source = fair
    h.tick(3)  # place, acks: the order tracker's version moves, so the controller is asked each time
    assert h.quotes(), "not quoting: the test would prove nothing"
    calls = len(probe.calls)
    h.tick(4)
    assert len(probe.calls) == calls, "nothing changed, yet the controller was asked again"
    assert h.engine.runner.skipped_ticks >= 4
    return h, fair


def test_idle_ticks_reuse_the_last_answer_and_keep_the_quotes() -> None:
    probe = Probe()
    h, _ = started(probe)
    assert h.quotes() == [(Side.BUY, D("59990"), D("0.01")), (Side.SELL, D("60010"), D("0.01"))]
    assert h.engine.runner.stats.quoting_ticks == 7  # a skipped tick is still a quoting tick


def test_a_new_fair_value_reaches_the_controller() -> None:
    probe = Probe()
    h, fair = started(probe)
    calls = len(probe.calls)
    fair.move("60100")
    h.tick()
    assert len(probe.calls) == calls + 1 and probe.calls[-1].fair.price == D("60100")
    h.tick(2)
    assert h.quotes()[0][1] == D("60090")


def test_a_fill_reaches_the_controller_with_the_new_position() -> None:
    probe = Probe()
    h, _ = started(probe)
    calls = len(probe.calls)
    h.venue.print_trade("59990", "0.01", aggressor=Side.SELL)
    h.tick()
    assert len(probe.calls) > calls and probe.calls[-1].position == D("0.01")


def test_a_change_to_our_orders_alone_reaches_the_controller() -> None:
    probe = Probe()
    h, _ = started(probe)
    calls = len(probe.calls)
    version = h.engine.orders.version
    h.engine.orders.tick(h.clock.now_ns)
    h.engine.orders._version += 1  # what any order event does, with nothing else changed
    h.tick()
    assert h.engine.orders.version != version
    assert len(probe.calls) == calls + 1


def test_a_position_change_alone_reaches_the_controller() -> None:
    probe = Probe()
    h, _ = started(probe)
    calls = len(probe.calls)
    h.engine.inventory._position = h.engine.inventory.position + D("0.001")  # as a hedge fill would
    h.tick()
    assert len(probe.calls) == calls + 1


def test_a_book_reader_is_asked_when_the_book_changes() -> None:
    probe = BookProbe()
    h, _ = started(probe)
    calls = len(probe.calls)
    h.venue.set_book([("59900", "1")], [("60100", "1")])
    h.tick()
    assert len(probe.calls) == calls + 1
    h.tick(2)
    assert len(probe.calls) == calls + 1  # the same book: skipped again
    h.venue.set_book([("59901", "1")], [("60100", "1")])
    h.tick()
    assert len(probe.calls) == calls + 2


def test_a_book_change_is_not_an_input_of_a_controller_that_does_not_read_it() -> None:
    probe = Probe()
    h, _ = started(probe)
    calls = len(probe.calls)
    h.venue.set_book([("59900", "1")], [("60100", "1")])
    h.tick()
    assert len(probe.calls) == calls


def test_a_time_reader_and_an_undeclared_controller_are_asked_every_tick() -> None:
    for probe in (TimeProbe(), type("Plain", (Probe,), {"reads": Controller.reads})()):
        h = Harness(probe)
        h.engine.runner.fair_source = StableFair("60000", h.clock.now_ns)
        h.tick(6)
        assert len(probe.calls) == 6
        assert h.engine.runner.skipped_ticks == 0


def test_after_a_halt_the_quotes_come_back() -> None:
    probe = Probe()
    h, _ = started(probe)
    quotes = h.quotes()
    h.engine.runner.quoting_enabled = False
    h.tick(2)
    assert h.quotes() == []
    h.engine.runner.quoting_enabled = True
    h.tick(3)
    assert h.quotes() == quotes


def test_a_fill_the_position_does_not_show_still_reaches_the_controller() -> None:
    """on_fill may change the controller's own state: its next on_tick must run, whatever else stayed."""
    probe = Probe()
    h, _ = started(probe)
    calls = len(probe.calls)
    h.engine.runner.on_fill(object())  # type: ignore[arg-type]  # Probe ignores what the fill says
    h.tick()
    assert len(probe.calls) == calls + 1


def test_unknown_reads_are_refused() -> None:
    class Wrong(Probe):
        reads: ClassVar[frozenset[str]] = frozenset({"clock"})

    with pytest.raises(ValueError, match="unknown inputs"):
        Harness(Wrong())


@pytest.mark.parametrize("change", [{"confidence": 0.5}, {"sources": 2}])
def test_a_new_confidence_or_source_count_alone_reaches_the_controller(change: dict[str, object]) -> None:
    probe = Probe()
    h, fair = started(probe)
    calls = len(probe.calls)
    fair.evolve(**change)
    h.tick()
    assert len(probe.calls) == calls + 1


def test_a_fair_value_that_only_ages_is_not_a_change() -> None:
    """``fair.ts`` is time: a controller that reads it declares "time" (asked every tick)."""
    probe = Probe()
    h, fair = started(probe)
    calls = len(probe.calls)
    fair.evolve(ts=h.clock.now_ns)
    h.tick()
    assert len(probe.calls) == calls
