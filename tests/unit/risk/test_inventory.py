"""InventoryManager: position from fills, skew, quote modes, emergency, hedge signals."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest

from mmkit.model import Fill, Side
from mmkit.risk.inventory import InventoryConfig, InventoryManager
from mmkit.strategy import InventoryView, QuoteMode

D = Decimal
FillFactory = Callable[..., Fill]


def manager_at(position: str, make_fill: FillFactory, config: InventoryConfig | None = None) -> InventoryManager:
    inv = InventoryManager(config or InventoryConfig())
    p = D(position)
    if p != 0:
        inv.on_fill(make_fill(Side.BUY if p > 0 else Side.SELL, str(abs(p)), "100000"))
    assert inv.position == p
    return inv


def test_defaults_follow_the_truex_spec() -> None:
    cfg = InventoryConfig()
    assert (cfg.max_position, cfg.hedge_threshold, cfg.max_skew_ticks) == (D(5), D(2), D(3))
    assert (cfg.skew_exponent, cfg.emergency_position, cfg.widen_at) == (D("1.5"), D(6), D("0.8"))


@pytest.mark.parametrize(
    ("position", "expected"),
    [
        # |p|/max = u; skew = u^1.5 * 3, capped at u = 1
        ("0", 0.0),
        ("2.5", 0.5**1.5 * 3),  # 1.0607
        ("4", 0.8**1.5 * 3),  # 2.1466
        ("5", 3.0),
        ("6", 3.0),  # 120 %: capped at max_skew_ticks
        ("-2.5", -(0.5**1.5) * 3),
        ("-4", -(0.8**1.5) * 3),
        ("-5", -3.0),
        ("-6", -3.0),
    ],
)
def test_skew_direction_and_magnitude(position: str, expected: float, make_fill: FillFactory) -> None:
    inv = manager_at(position, make_fill)
    assert abs(float(inv.skew_ticks()) - expected) < 1e-12
    assert isinstance(inv.skew_ticks(), Decimal)


def test_utilization() -> None:
    inv = InventoryManager(InventoryConfig())
    assert inv.utilization() == 0
    assert inv.max_position == D(5)


@pytest.mark.parametrize(
    ("position", "bid", "ask"),
    [
        ("0", QuoteMode.NORMAL, QuoteMode.NORMAL),
        ("2.5", QuoteMode.NORMAL, QuoteMode.NORMAL),
        ("3.99", QuoteMode.NORMAL, QuoteMode.NORMAL),
        ("4", QuoteMode.WIDEN, QuoteMode.NORMAL),  # 80 %: widen the accumulating (buy) side
        ("4.99", QuoteMode.WIDEN, QuoteMode.NORMAL),
        ("5", QuoteMode.STOP, QuoteMode.NORMAL),  # 100 %: stop buying, keep selling
        ("6", QuoteMode.STOP, QuoteMode.NORMAL),
        ("-4", QuoteMode.NORMAL, QuoteMode.WIDEN),
        ("-5", QuoteMode.NORMAL, QuoteMode.STOP),
    ],
)
def test_quote_modes(position: str, bid: QuoteMode, ask: QuoteMode, make_fill: FillFactory) -> None:
    inv = manager_at(position, make_fill)
    assert (inv.quote_mode(Side.BUY), inv.quote_mode(Side.SELL)) == (bid, ask)


@pytest.mark.parametrize(("position", "emergency"), [("5", False), ("6", False), ("6.0001", True), ("-6.5", True)])
def test_emergency_only_strictly_above_the_limit(position: str, emergency: bool, make_fill: FillFactory) -> None:
    assert manager_at(position, make_fill).emergency() is emergency


def test_should_hedge_without_in_flight(make_fill: FillFactory) -> None:
    assert manager_at("2", make_fill).should_hedge() is None  # at the threshold: not beyond it
    signal = manager_at("2.5", make_fill).should_hedge()
    assert signal is not None
    assert (signal.side, signal.qty, signal.position) == (Side.SELL, D("2.5"), D("2.5"))
    short = manager_at("-3", make_fill).should_hedge()
    assert short is not None and (short.side, short.qty) == (Side.BUY, D(3))


def test_should_hedge_counts_hedges_already_working(make_fill: FillFactory) -> None:
    inv = manager_at("3", make_fill)
    # Selling 1 already in flight: exposure 2, not beyond the threshold.
    assert inv.should_hedge(in_flight=D(-1)) is None
    # Selling 0.5 in flight: exposure 2.5, hedge the remaining 2.5 down to the target 0.
    signal = inv.should_hedge(in_flight=D("-0.5"))
    assert signal is not None and (signal.side, signal.qty, signal.position) == (Side.SELL, D("2.5"), D(3))
    # A buy in flight (wrong way) makes the exposure larger.
    signal = inv.should_hedge(in_flight=D(1))
    assert signal is not None and signal.qty == D(4)


def test_should_hedge_down_to_the_target(make_fill: FillFactory) -> None:
    inv = manager_at("-3", make_fill, InventoryConfig(hedge_target=D("0.5")))
    signal = inv.should_hedge()
    assert signal is not None and (signal.side, signal.qty) == (Side.BUY, D("2.5"))


def test_vwap_entry_through_flips(make_fill: FillFactory) -> None:
    inv = InventoryManager(InventoryConfig())
    assert inv.entry_price is None
    inv.on_fill(make_fill(Side.BUY, "1", "100"))
    inv.on_fill(make_fill(Side.BUY, "1", "110"))
    assert (inv.position, inv.entry_price) == (D(2), D(105))  # (100 + 110) / 2
    inv.on_fill(make_fill(Side.SELL, "0.5", "120"))
    assert (inv.position, inv.entry_price) == (D("1.5"), D(105))  # reducing keeps the entry
    inv.on_fill(make_fill(Side.SELL, "2", "130"))
    assert (inv.position, inv.entry_price) == (D("-0.5"), D(130))  # flipped: the short was opened at 130
    inv.on_fill(make_fill(Side.SELL, "0.5", "120"))
    assert (inv.position, inv.entry_price) == (D(-1), D(125))  # (0.5*130 + 0.5*120) / 1
    inv.on_fill(make_fill(Side.BUY, "1", "90"))
    assert (inv.position, inv.entry_price) == (D(0), None)


def test_hedge_fills_count_and_duplicates_and_other_symbols_do_not(make_fill: FillFactory) -> None:
    inv = InventoryManager(InventoryConfig())
    fill = make_fill(Side.BUY, "3", "100000")
    inv.on_fill(fill)
    inv.on_fill(fill)  # replayed after a reconnect
    inv.on_fill(make_fill(Side.SELL, "1", "100010", venue="coinbase", symbol="BTC/USD", is_hedge=True))
    inv.on_fill(make_fill(Side.BUY, "7", "3000", symbol="ETH-PYUSD"))
    assert inv.position == D(2)
    assert inv.fill_count == 2


def test_summary_and_protocol(make_fill: FillFactory) -> None:
    inv = manager_at("4", make_fill)
    view: InventoryView = inv
    assert view.position == D(4)
    summary = inv.summary()
    assert summary["position"] == "4"
    assert summary["bid_mode"] == "WIDEN" and summary["ask_mode"] == "NORMAL"
    assert summary["utilization"] == "0.8000"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_position": D(0)},
        {"widen_at": D("1.5")},
        {"emergency_position": D(4)},
        {"hedge_target": D(3)},
        {"max_skew_ticks": D(-1)},
    ],
)
def test_invalid_config_is_refused(kwargs: dict[str, Decimal]) -> None:
    with pytest.raises(ValueError):
        InventoryConfig(**kwargs)


def test_skew_follows_each_fill(make_fill: FillFactory) -> None:
    inv = InventoryManager(InventoryConfig())
    assert inv.skew_ticks() == 0
    inv.on_fill(make_fill(Side.BUY, "5", "100000"))
    assert inv.skew_ticks() == D(3)
    inv.on_fill(make_fill(Side.SELL, "10", "100000"))
    assert inv.skew_ticks() == D(-3)
    inv.on_fill(make_fill(Side.BUY, "5", "100000"))
    assert inv.skew_ticks() == 0
