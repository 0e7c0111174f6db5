"""A broken controller must not look like a working one (issue 13, item 1).

Every exception and every malformed ``on_tick`` result counts, is recorded on
the run's outcome (exit code 4), and after the limit of failed ticks in a row
the engine pulls its quotes and halts. The Harness raises by default.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import pytest

from mmkit.app.outcome import EXIT_ENGINE_FAILURE, ProblemKind
from mmkit.app.strategy_runner import ControllerResultError
from mmkit.model import Side, TargetQuote
from mmkit.strategy import Controller, StrategyContext
from mmkit.testing.harness import Harness


class OneBid(Controller):
    """A good controller: one bid 10 below fair."""

    def on_tick(self, ctx: StrategyContext) -> Sequence[TargetQuote]:
        assert ctx.fair.price is not None
        return [TargetQuote(Side.BUY, 0, ctx.fair.price - 10, Decimal("0.01"))]


class Raises(OneBid):
    def __init__(self, fail_ticks: int = 10**9) -> None:
        super().__init__()
        self.calls = 0
        self.fail_ticks = fail_ticks

    def on_tick(self, ctx: StrategyContext) -> Sequence[TargetQuote]:
        self.calls += 1
        if self.calls <= self.fail_ticks:
            raise ZeroDivisionError("division by zero in my model")
        return super().on_tick(ctx)


class Returns(Controller):
    def __init__(self, value: object) -> None:
        super().__init__()
        self.value = value

    def on_tick(self, ctx: StrategyContext) -> Sequence[TargetQuote]:
        return self.value  # type: ignore[return-value]


class FillRaises(OneBid):
    def on_fill(self, fill: object) -> None:
        raise KeyError("my position book")


def started(controller: Controller, **options: object) -> Harness:
    h = Harness(controller, **options)  # type: ignore[arg-type]
    h.set_fair("60000")
    return h


def test_the_harness_raises_a_controller_exception_by_default() -> None:
    h = started(Raises())
    with pytest.raises(ZeroDivisionError, match="in my model"):
        h.tick()


def test_a_test_of_error_handling_can_opt_out_and_read_the_counts() -> None:
    h = started(Raises(fail_ticks=3), raise_errors=False)
    h.tick(3)
    assert h.engine.runner.stats.controller_errors == 3
    assert h.quotes() == []
    h.tick()  # the fourth tick works: quoting resumes, the failures stay counted
    assert h.quotes() == [(Side.BUY, Decimal("59990.0"), Decimal("0.0100"))]
    assert h.engine.runner.failure_halt is None
    assert h.engine.outcome.exit_code() == EXIT_ENGINE_FAILURE
    [problem] = h.engine.outcome.as_report()
    assert problem["reason"] == "controller Raises.on_tick failed: ZeroDivisionError" and problem["count"] == 3


def test_consecutive_failures_halt_quoting_and_pull_the_quotes() -> None:
    controller = Raises(fail_ticks=10**9)
    h = started(controller, raise_errors=False, max_consecutive_failures=4)
    h.tick(4)
    runner = h.engine.runner
    assert runner.failure_halt is not None and "failed 4 ticks in a row" in runner.failure_halt
    assert "ZeroDivisionError" in runner.failure_halt
    calls = controller.calls
    h.tick(5)
    assert controller.calls == calls  # halted: the controller is not asked again
    assert runner.stats.halted_ticks == 5
    assert h.quotes() == []
    reasons = [p["reason"] for p in h.engine.outcome.as_report()]
    assert any(r.startswith("quoting halted: controller Raises failed 4 ticks in a row") for r in reasons)
    assert h.engine.outcome.exit_code() == EXIT_ENGINE_FAILURE


def test_a_halt_pulls_quotes_that_were_resting() -> None:
    class GoodThenBad(OneBid):
        ticks = 0

        def on_tick(self, ctx: StrategyContext) -> Sequence[TargetQuote]:
            self.ticks += 1
            if self.ticks > 2:
                raise RuntimeError("bad state")
            return super().on_tick(ctx)

    h = started(GoodThenBad(), raise_errors=False, max_consecutive_failures=3)
    h.tick(2)
    assert len(h.quotes()) == 1
    h.tick(3)  # three failures in a row: halt
    h.tick(3)  # the cancel is confirmed on the following ticks
    assert h.quotes() == []
    assert h.engine.runner.failure_halt is not None


@pytest.mark.parametrize(
    ("value", "got"),
    [
        (None, "got NoneType None"),
        ((Side.BUY, 0, Decimal(59990), Decimal("0.01")), "got Side"),
        ([(Side.BUY, 0, Decimal(59990), Decimal("0.01"))], "got tuple"),
        (TargetQuote(Side.BUY, 0, Decimal(59990), Decimal("0.01")), "got TargetQuote"),
        ("BUY", "got str"),
    ],
)
def test_a_malformed_result_fails_where_it_comes_back_naming_the_class(value: object, got: str) -> None:
    h = started(Returns(value))
    with pytest.raises(ControllerResultError, match=rf"Returns\.on_tick must return a list of TargetQuote, {got}"):
        h.tick()
    h2 = started(Returns(value), raise_errors=False)
    h2.tick(2)
    assert h2.engine.runner.stats.controller_errors == 2  # counted as the controller's, not an iterator's
    assert dict(h2.clock.iterator_errors) == {}


def test_a_tuple_of_target_quotes_is_accepted() -> None:
    h = started(Returns((TargetQuote(Side.BUY, 0, Decimal(59990), Decimal("0.01")),)))
    h.tick()
    assert len(h.quotes()) == 1


def test_on_fill_exceptions_count_too() -> None:
    h = started(FillRaises(), raise_errors=False)
    h.tick()
    h.venue.print_trade("59990.0", "0.01", aggressor=Side.SELL)
    h.tick()
    assert h.position == Decimal("0.0100")  # the ledger is unaffected
    assert h.engine.runner.stats.controller_errors == 1
    assert h.engine.outcome.has(ProblemKind.ENGINE_FAILURE)
    with pytest.raises(KeyError):
        h2 = started(FillRaises())
        h2.tick()
        h2.venue.print_trade("59990.0", "0.01", aggressor=Side.SELL)
        h2.tick()


def test_iterator_failures_are_recorded_when_the_clock_stops() -> None:
    class Broken:
        def start(self, clock: object, ts_ns: int) -> None:
            return None

        def tick(self, ts_ns: int) -> None:
            raise ValueError("broken recorder")

        def stop(self, clock: object) -> None:
            return None

    h = started(OneBid())
    h.clock.add_iterator(Broken(), name="recorder")  # type: ignore[arg-type]
    h.tick(3)
    assert h.engine.outcome.ok  # recorded at stop, with the count
    h.stop()  # ticks a few more times while the cancel is confirmed
    count = h.clock.iterator_errors["recorder"]
    assert count >= 3
    assert [p["reason"] for p in h.engine.outcome.as_report()] == [f"iterator recorder failed ({count} times)"]
    assert h.engine.outcome.exit_code() == EXIT_ENGINE_FAILURE


def test_a_controller_without_on_tick_cannot_be_instantiated() -> None:
    class NoTick(Controller):
        pass

    with pytest.raises(TypeError, match="on_tick"):
        NoTick()  # type: ignore[abstract]


@pytest.mark.parametrize("price", ["NaN", "sNaN", "Infinity", "-Infinity", "1e29", "1e15", "0", "-5"])
def test_a_target_no_order_can_carry_is_the_controllers_failure_and_halts(price: str) -> None:
    """NaN, infinite or absurd prices used to raise inside the executor on every tick: an anonymous
    iterator failure that never halted, with the last good quotes left resting at the venue; a price
    <= 0 was dropped without a word."""

    class GoodThenAbsurd(OneBid):
        ticks = 0

        def on_tick(self, ctx: StrategyContext) -> Sequence[TargetQuote]:
            self.ticks += 1
            if self.ticks > 2:
                return [TargetQuote(Side.BUY, 0, Decimal(price), Decimal("0.01"))]
            return super().on_tick(ctx)

    h = started(GoodThenAbsurd())
    h.tick(2)
    with pytest.raises(ControllerResultError, match=r"GoodThenAbsurd\.on_tick returned a TargetQuote with price"):
        h.tick()
    h2 = started(GoodThenAbsurd(), raise_errors=False, max_consecutive_failures=3)
    h2.tick(2)
    assert len(h2.quotes()) == 1
    h2.tick(6)
    assert dict(h2.clock.iterator_errors) == {}
    assert h2.engine.runner.stats.controller_errors == 3
    assert h2.engine.runner.failure_halt is not None
    assert h2.quotes() == []  # the resting bid was pulled
    assert h2.engine.outcome.exit_code() == EXIT_ENGINE_FAILURE


@pytest.mark.parametrize(("price", "qty"), [("1e14", "0.01"), ("60000", "1e14"), ("0.00000001", "0.01")])
def test_large_or_tiny_but_real_numbers_are_left_to_the_executors_rules(price: str, qty: str) -> None:
    """Not a controller failure: the executor drops what the instrument cannot quote, with a reason."""
    h = started(Returns([TargetQuote(Side.BUY, 0, Decimal(price), Decimal(qty))]))
    h.tick(2)
    assert h.engine.runner.stats.controller_errors == 0


def test_an_executor_failing_every_tick_halts_and_pulls_the_quotes_it_can_no_longer_move() -> None:
    """The clock counts an iterator's exception and carries on; an executor that raises on every tick
    used to leave the last good quotes resting for the rest of the run."""
    h = started(OneBid(), raise_errors=False, max_consecutive_failures=3)
    h.tick(2)
    assert len(h.quotes()) == 1
    executor = h.engine.runner.executor

    def broken(*args: object, **kwargs: object) -> object:
        raise ArithmeticError("executor bug")

    executor.reconcile = broken  # type: ignore[method-assign]
    h.tick(2)
    assert h.engine.runner.failure_halt is None  # two failures: still a passing fault
    assert len(h.quotes()) == 1
    h.tick(3)  # the third in a row: halt and pull; the cancel is confirmed on the following ticks
    runner = h.engine.runner
    assert runner.failure_halt is not None and "strategy step failed 3 ticks in a row" in runner.failure_halt
    assert "ArithmeticError: executor bug" in runner.failure_halt
    assert h.quotes() == []
    assert h.clock.iterator_errors and h.engine.outcome.exit_code() == EXIT_ENGINE_FAILURE


def test_a_passing_executor_fault_resets_the_count() -> None:
    h = started(OneBid(), raise_errors=False, max_consecutive_failures=3)
    h.tick(2)
    executor = h.engine.runner.executor
    good = executor.reconcile
    calls = 0

    def flaky(*args: object, **kwargs: object) -> object:
        nonlocal calls
        calls += 1
        if calls % 3:  # two failures, then a good tick, again and again
            raise ArithmeticError("now and then")
        return good(*args, **kwargs)

    executor.reconcile = flaky  # type: ignore[method-assign]
    h.tick(12)
    assert h.engine.runner.failure_halt is None
    assert len(h.quotes()) == 1


def test_a_halt_whose_cancel_all_fails_too_says_the_orders_may_still_rest() -> None:
    h = started(Raises(fail_ticks=10**9), raise_errors=False, max_consecutive_failures=2)

    def broken_cancel_all(now_ns: int) -> object:
        raise ConnectionError("venue gone")

    h.engine.runner.executor.cancel_all = broken_cancel_all  # type: ignore[method-assign]
    h.tick(2)
    assert h.engine.runner.failure_halt is not None
    reasons = [p["reason"] for p in h.engine.outcome.as_report()]
    assert "cancel-all after a quoting halt failed" in reasons
    assert h.engine.outcome.exit_code() == EXIT_ENGINE_FAILURE


class Crossed(Controller):
    """A skew bug: after two good ticks, its bid lands at or above its own ask."""

    def __init__(self, overlap: str) -> None:
        super().__init__()
        self.ticks = 0
        self.overlap = Decimal(overlap)

    def on_tick(self, ctx: StrategyContext) -> Sequence[TargetQuote]:
        assert ctx.fair.price is not None
        self.ticks += 1
        half = Decimal(5) if self.ticks <= 2 else -self.overlap / 2
        return [TargetQuote(Side.BUY, 0, ctx.fair.price - half, Decimal("0.01")),
                TargetQuote(Side.SELL, 0, ctx.fair.price + half, Decimal("0.01")),
                TargetQuote(Side.SELL, 1, ctx.fair.price + 50, Decimal("0.01"))]


@pytest.mark.parametrize("overlap", ["0", "4"])
def test_our_own_bid_at_or_above_our_own_ask_is_the_controllers_failure_and_halts(overlap: str) -> None:
    """Our quotes would trade with each other (a wash trade, or rejects); in a replay a print between them
    filled both. Equal prices count: they would match."""
    h = started(Crossed(overlap))
    h.tick(2)
    with pytest.raises(ControllerResultError, match=r"Crossed\.on_tick returned crossed targets: a bid at 600"):
        h.tick()
    h2 = started(Crossed(overlap), raise_errors=False, max_consecutive_failures=3)
    h2.tick(2)
    assert len(h2.quotes()) == 3
    h2.tick(6)
    assert h2.engine.runner.stats.controller_errors == 3 and h2.engine.runner.failure_halt is not None
    assert h2.quotes() == []
    assert h2.engine.outcome.exit_code() == EXIT_ENGINE_FAILURE


def test_a_zero_size_target_on_the_other_side_is_not_a_cross() -> None:
    class ZeroAsk(OneBid):
        def on_tick(self, ctx: StrategyContext) -> Sequence[TargetQuote]:
            assert ctx.fair.price is not None
            return [*super().on_tick(ctx), TargetQuote(Side.SELL, 0, ctx.fair.price - 20, Decimal(0))]

    h = started(ZeroAsk())
    h.tick(3)
    assert [q[0] for q in h.quotes()] == [Side.BUY]  # the bid rests; the empty ask is the executor's to drop
    assert h.engine.runner.stats.controller_errors == 0
