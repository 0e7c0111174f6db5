"""LayeredController: the worked example, update interval, snapping, guards, config validation."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

import pytest

from mmkit.conf import ConfigError, structure
from mmkit.instrument import Instrument
from mmkit.model import NS_PER_S, Side, TargetQuote
from mmkit.strategy import StrategyContext
from strategies.layered import LayeredConfig, LayeredController

D = Decimal
ContextFactory = Callable[..., StrategyContext]
EXAMPLE = LayeredConfig(
    levels=3, base_spread_pct=D("0.1"), price_step_pct=D("0.05"), order_size=D("0.01"), update_interval=D(5)
)


def prices(quotes: Sequence[TargetQuote], side: Side) -> list[Decimal]:
    return [q.price for q in sorted(quotes, key=lambda q: q.level) if q.side is side]


def test_worked_example_exactly(make_ctx: ContextFactory, fine: Instrument) -> None:
    ctrl = LayeredController(EXAMPLE)
    first = ctrl.on_tick(make_ctx("50000", now_ns=0, instrument=fine))
    assert prices(first, Side.BUY) == [D("49975"), D("49950"), D("49925")]
    assert prices(first, Side.SELL) == [D("50025"), D("50050"), D("50075")]
    assert {q.qty for q in first} == {D("0.01")}
    assert sorted(q.level for q in first if q.side is Side.BUY) == [0, 1, 2]

    later = ctrl.on_tick(make_ctx("50100", now_ns=5 * NS_PER_S, instrument=fine))
    assert prices(later, Side.BUY) == [D("50074.95"), D("50049.90"), D("50024.85")]
    assert prices(later, Side.SELL) == [D("50125.05"), D("50150.10"), D("50175.15")]


def test_keeps_previous_targets_between_updates(make_ctx: ContextFactory, fine: Instrument) -> None:
    ctrl = LayeredController(EXAMPLE)
    first = list(ctrl.on_tick(make_ctx("50000", now_ns=0, instrument=fine)))
    held = list(ctrl.on_tick(make_ctx("50100", now_ns=5 * NS_PER_S - 1, instrument=fine)))
    assert held == first
    moved = list(ctrl.on_tick(make_ctx("50100", now_ns=5 * NS_PER_S, instrument=fine)))
    assert moved != first


def test_prices_snap_to_the_venue_tick_never_more_aggressive(make_ctx: ContextFactory) -> None:
    ctrl = LayeredController(EXAMPLE)
    quotes = ctrl.on_tick(make_ctx("50000.03"))  # TrueX: $0.10 tick below $100k
    # raw bid0 = 50000.03 - 25.000015 = 49975.029985 -> down to 49975.0; ask0 = 50025.030015 -> up to 50025.1
    assert prices(quotes, Side.BUY)[0] == D("49975.0")
    assert prices(quotes, Side.SELL)[0] == D("50025.1")


@pytest.mark.parametrize(
    "ctx_kwargs", [{"price": None}, {"price": "50000", "confidence": 0.1}, {"price": "50000", "halted": True}]
)
def test_no_quotes_without_a_trusted_price(make_ctx: ContextFactory, ctx_kwargs: dict[str, Any]) -> None:
    assert LayeredController(EXAMPLE).on_tick(make_ctx(**ctx_kwargs)) == []


def test_requotes_immediately_after_a_pause(make_ctx: ContextFactory, fine: Instrument) -> None:
    ctrl = LayeredController(EXAMPLE)
    ctrl.on_tick(make_ctx("50000", now_ns=0, instrument=fine))
    assert ctrl.on_tick(make_ctx("50000", now_ns=1, instrument=fine, confidence=0.0)) == []
    again = ctrl.on_tick(make_ctx("50100", now_ns=2, instrument=fine))
    assert prices(again, Side.BUY)[0] == D("50074.95")


def test_stop_side_is_not_quoted(make_ctx: ContextFactory, fine: Instrument) -> None:
    quotes = LayeredController(EXAMPLE).on_tick(make_ctx("50000", instrument=fine, position="5"))
    assert all(isinstance(q, TargetQuote) and q.side is Side.SELL for q in quotes)
    assert len(quotes) == 3


def test_negative_spread_is_refused_with_a_clear_message() -> None:
    with pytest.raises(ValueError, match="base_spread_pct must be positive"):
        LayeredConfig(base_spread_pct=D("-0.1"))
    with pytest.raises(ValueError, match="levels"):
        LayeredConfig(levels=0)


def test_yaml_config_errors_are_located() -> None:
    assert structure({"levels": 2, "base_spread_pct": "0.2"}, LayeredConfig).levels == 2
    with pytest.raises(ConfigError, match="order_size must be positive"):
        structure({"order_size": "0"}, LayeredConfig, file="layered.yml")
    with pytest.raises(ConfigError, match="unknown key"):
        structure({"spread": "0.2"}, LayeredConfig, file="layered.yml")


def test_a_size_the_venue_refuses_fails_the_tick_naming_the_parameter(make_ctx: ContextFactory) -> None:
    """min notional 450: 0.01 BTC passes at 50,000 (500), not after a crash to 40,000 (400): loud, not empty.

    Before, the level was dropped without a word and the controller quoted nothing, every tick.
    """
    from mmkit.instrument import IncrementBand
    from mmkit.strategy import QuoteSizeError

    inst = Instrument("x", "BTC-USD", "BTC", "USD", (IncrementBand(0, "0.01", "0.0001"),), min_notional=450)
    ctrl = LayeredController(EXAMPLE)
    assert len(ctrl.on_tick(make_ctx("50000", now_ns=0, instrument=inst))) == 6
    with pytest.raises(QuoteSizeError) as caught:
        ctrl.on_tick(make_ctx("40000", now_ns=10 * NS_PER_S, instrument=inst))
    assert caught.value.param == "order_size"
    assert str(caught.value) == ("order_size 0.01 at 39980.00 (x BTC-USD): notional 399.800000 below the venue's "
                                 "minimum (450); nothing could be quoted")
