"""InventoryManager's memo of what a position implies (skew, modes, emergency) follows every change.

The memo has two levels: the last answer for the position object, and one
answer per position text. Each test moves one input the memo depends on
(the position, its written form, the config) and checks the answer against
a fresh, uncached manager that saw the same fills.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import attrs
import pytest

from mmkit.model import Fill, Side
from mmkit.risk.inventory import InventoryConfig, InventoryManager
from mmkit.strategy import QuoteMode

FillFactory = Callable[..., Fill]
D = Decimal
CONFIG = InventoryConfig(max_position=D(5), hedge_threshold=D(2), emergency_position=D(6), max_skew_ticks=D(3))


def _state(inv: InventoryManager) -> tuple[str, str, object, object, bool]:
    return (str(inv.position), str(inv.skew_ticks()), inv.quote_mode(Side.BUY), inv.quote_mode(Side.SELL),
            inv.emergency())  # fmt: skip


def _fresh(fills: list[Fill], config: InventoryConfig = CONFIG) -> InventoryManager:
    inv = InventoryManager(config)
    for fill in fills:
        inv.on_fill(fill)
    return inv


def test_every_position_gets_its_own_skew_and_a_revisited_one_the_same(make_fill: FillFactory) -> None:
    inv = InventoryManager(CONFIG)
    fills: list[Fill] = []
    seen: dict[str, str] = {}
    for side, qty in [(Side.BUY, "1"), (Side.BUY, "1.5"), (Side.SELL, "1.5"), (Side.SELL, "3"), (Side.BUY, "1"),
                      (Side.BUY, "4.2"), (Side.SELL, "3.2"), (Side.BUY, "1.5")]:  # fmt: skip
        fills.append(make_fill(side, qty, "100"))
        inv.on_fill(fills[-1])
        assert _state(inv) == _state(_fresh(fills)), fills[-1]
        seen.setdefault(str(inv.position), str(inv.skew_ticks()))
        assert seen[str(inv.position)] == str(inv.skew_ticks())
    assert len(set(seen.values())) >= 5  # the skew did move with the position


def test_a_position_back_at_a_known_value_is_not_worked_out_again(
    make_fill: FillFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    inv = InventoryManager(CONFIG)
    inv.on_fill(make_fill(Side.BUY, "1", "100"))
    first = inv.skew_ticks()
    inv.on_fill(make_fill(Side.BUY, "1", "100"))
    assert inv.skew_ticks() > first
    calls: list[Decimal] = []
    derive = inv._derive

    def counted(position: Decimal) -> object:
        calls.append(position)
        return derive(position)

    monkeypatch.setattr(inv, "_derive", counted)
    inv.on_fill(make_fill(Side.SELL, "1", "100"))  # back to 1: a new object with a known text
    assert inv.skew_ticks() == first and inv.position is inv._derived.position  # type: ignore[union-attr]
    assert calls == []
    inv.on_fill(make_fill(Side.SELL, "0.5", "100"))  # 0.5: never seen
    assert inv.skew_ticks() < first
    assert calls == [D("0.5")]


def test_an_equal_position_written_differently_is_worked_out_apart(make_fill: FillFactory) -> None:
    """1.0 and 1.00 are one value but may give skews written with other digits: the memo keys on the text."""
    config = attrs.evolve(CONFIG, skew_exponent=D(2))  # an exact power: its digits follow the position's
    inv = InventoryManager(config)
    fills = [make_fill(Side.BUY, "1.0", "100")]
    inv.on_fill(fills[0])
    assert str(inv.skew_ticks()) == str(_fresh(fills, config).skew_ticks())
    fills += [make_fill(Side.BUY, "1.00", "100"), make_fill(Side.SELL, "1.00", "100")]
    inv.on_fill(fills[1])
    inv.on_fill(fills[2])
    assert str(inv.position) == "1.00"
    assert str(inv.skew_ticks()) == str(_fresh(fills, config).skew_ticks())


def test_a_new_config_drops_the_memo(make_fill: FillFactory) -> None:
    inv = InventoryManager(CONFIG)
    inv.on_fill(make_fill(Side.BUY, "2.5", "100"))
    fills = [make_fill(Side.BUY, "2.5", "100", trade_id="again")]
    before = inv.skew_ticks()
    assert _state(inv) == _state(_fresh(fills))
    inv.config = attrs.evolve(CONFIG, max_skew_ticks=D(6))
    assert _state(inv) == _state(_fresh(fills, inv.config))
    assert inv.skew_ticks() > before


def test_the_skew_is_worked_out_only_when_asked_and_then_kept(make_fill: FillFactory) -> None:
    inv = InventoryManager(CONFIG)
    inv.on_fill(make_fill(Side.BUY, "2", "100"))
    assert inv.quote_mode(Side.BUY) is QuoteMode.NORMAL and not inv.emergency()
    assert inv._derived is not None and inv._derived.skew is None  # the gates did not need it
    skew = inv.skew_ticks()
    fresh = InventoryManager(CONFIG)
    fresh.on_fill(make_fill(Side.BUY, "2", "100"))
    assert str(skew) == str(fresh.skew_ticks()) and skew > 0
    assert inv._derived.skew is skew and inv.skew_ticks() is skew
    inv.on_fill(make_fill(Side.SELL, "4", "100"))  # a new position: its own skew
    assert inv.skew_ticks() == -skew
