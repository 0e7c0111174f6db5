"""SkewedLadderController: one test per quoting rule, on TrueX's real increments."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal

import pytest

from mmkit.instrument import IncrementBand, Instrument
from mmkit.model import Side, TargetQuote
from mmkit.risk.inventory import InventoryConfig
from mmkit.strategy import StrategyContext
from strategies.skewed_ladder import SkewedLadderConfig, SkewedLadderController

D = Decimal
ContextFactory = Callable[..., StrategyContext]


def side_quotes(quotes: Sequence[TargetQuote], side: Side) -> list[tuple[Decimal, Decimal]]:
    return [(q.price, q.qty) for q in sorted(quotes, key=lambda q: q.level) if q.side is side]


def bids(quotes: Sequence[TargetQuote]) -> list[Decimal]:
    return [p for p, _ in side_quotes(quotes, Side.BUY)]


def asks(quotes: Sequence[TargetQuote]) -> list[Decimal]:
    return [p for p, _ in side_quotes(quotes, Side.SELL)]


def test_default_ladder_at_100k(make_ctx: ContextFactory) -> None:
    """mid 100000: half spread 50 bps / 2 = 250; tick at the mid $0.50 -> spacing 10 ticks = $5.
    Sizes 0.01 * 0.8^i = 0.01, 0.008, 0.0064, 0.00512, 0.004096, rounded down to the lot at each
    price: bids are below $100k (lot 0.0001), asks above (lot 0.00001)."""
    quotes = SkewedLadderController().on_tick(make_ctx("100000"))
    assert side_quotes(quotes, Side.BUY) == [
        (D("99750.0"), D("0.0100")),
        (D("99745.0"), D("0.0080")),
        (D("99740.0"), D("0.0064")),
        (D("99735.0"), D("0.0051")),
        (D("99730.0"), D("0.0040")),
    ]
    assert side_quotes(quotes, Side.SELL) == [
        (D("100250.0"), D("0.01000")),
        (D("100255.0"), D("0.00800")),
        (D("100260.0"), D("0.00640")),
        (D("100265.0"), D("0.00512")),
        (D("100270.0"), D("0.00409")),
    ]


def test_tick_follows_the_price_bucket(make_ctx: ContextFactory) -> None:
    """mid 600000: tick $1, half spread 1500, spacing $10; mid 50000: tick $0.10, spacing $1."""
    high = SkewedLadderController().on_tick(make_ctx("600000"))
    assert bids(high)[:2] == [D(598500), D(598490)] and asks(high)[:2] == [D(601500), D(601510)]
    low = SkewedLadderController().on_tick(make_ctx("50000"))
    assert bids(low)[:2] == [D("49875.0"), D("49874.0")] and asks(low)[:2] == [D("50125.0"), D("50126.0")]


def test_prices_snap_bids_down_asks_up(make_ctx: ContextFactory) -> None:
    quotes = SkewedLadderController().on_tick(make_ctx("50000.04"))
    # raw bid0 = 50000.04 - 125.0001 = 49875.0399 -> 49875.0 ; raw ask0 = 50125.0401 -> 50125.1
    assert bids(quotes)[0] == D("49875.0") and asks(quotes)[0] == D("50125.1")


def test_long_inventory_skews_quotes_down(make_ctx: ContextFactory) -> None:
    """position 2.5 of 5: skew = 0.5^1.5 * 3 = 1.06066 ticks = $0.106066 at a $0.10 tick.
    bid0 = 50000 - 125 - 0.106066 = 49874.893934 -> 49874.8 (wider than 49875.0)
    ask0 = 50000 + 125 - 0.106066 = 50124.893934 -> 50124.9 (tighter than 50125.0)"""
    quotes = SkewedLadderController().on_tick(make_ctx("50000", position="2.5"))
    assert bids(quotes)[0] == D("49874.8")
    assert asks(quotes)[0] == D("50124.9")


def test_short_inventory_skews_quotes_up(make_ctx: ContextFactory) -> None:
    quotes = SkewedLadderController().on_tick(make_ctx("50000", position="-2.5"))
    # bid0 = 49875.106066 -> 49875.1 (tighter) ; ask0 = 50125.106066 -> 50125.2 (wider)
    assert bids(quotes)[0] == D("49875.1")
    assert asks(quotes)[0] == D("50125.2")


def test_widen_mode_adds_ticks_on_the_accumulating_side(make_ctx: ContextFactory) -> None:
    """position 4 (80 %): bids WIDEN. skew = 0.8^1.5 * 3 = 2.14663 ticks = $0.214663.
    bid0 = 50000 - 125 - 0.214663 - 5 ticks (0.5) = 49874.285337 -> 49874.2
    ask0 = 50125 - 0.214663 = 50124.785337 -> 50124.8 (NORMAL)"""
    quotes = SkewedLadderController().on_tick(make_ctx("50000", position="4"))
    assert bids(quotes)[0] == D("49874.2")
    assert asks(quotes)[0] == D("50124.8")


def test_stop_mode_pulls_the_accumulating_side(make_ctx: ContextFactory) -> None:
    quotes = SkewedLadderController().on_tick(make_ctx("50000", position="5"))
    assert bids(quotes) == []
    assert len(asks(quotes)) == 5
    assert asks(quotes)[0] == D("50124.7")  # full skew: 3 ticks = $0.30 tighter


def test_huge_skew_never_crosses_the_mid(make_ctx: ContextFactory) -> None:
    huge = InventoryConfig(max_skew_ticks=D(5000))
    quotes = SkewedLadderController().on_tick(make_ctx("50000", position="5", inventory_config=huge))
    assert asks(quotes)[0] == D("50000.1")  # clamped at one tick from the mid


@pytest.mark.parametrize(("confidence", "quoted"), [(0.29, False), (0.3, True), (0.0, False)])
def test_no_quotes_below_confidence_threshold(make_ctx: ContextFactory, confidence: float, quoted: bool) -> None:
    quotes = SkewedLadderController().on_tick(make_ctx("50000", confidence=confidence))
    assert bool(quotes) is quoted


def test_orders_outside_the_price_band_are_dropped(make_ctx: ContextFactory) -> None:
    """Band ±2.5 % of 50000 = ±1250. Half spread 480 bps / 2 = 1200; spacing 200 ticks = $20:
    distances 1200, 1220, 1240 are kept, 1260 and 1280 dropped."""
    cfg = SkewedLadderConfig(base_spread_bps=D(480), level_spacing_ticks=D(200))
    quotes = SkewedLadderController(cfg).on_tick(make_ctx("50000"))
    assert bids(quotes) == [D("48800.0"), D("48780.0"), D("48760.0")]
    assert asks(quotes) == [D("51200.0"), D("51220.0"), D("51240.0")]
    assert sorted(q.level for q in quotes if q.side is Side.BUY) == [0, 1, 2]


def test_orders_under_min_notional_are_dropped(make_ctx: ContextFactory) -> None:
    """min notional 450: level 0 (0.01 * ~50000 = ~500) stays, level 1 (0.008 * ~50000 = ~400) goes."""
    inst = Instrument("x", "BTC-USD", "BTC", "USD", (IncrementBand(0, "0.1", "0.0001"),), min_notional=450)
    quotes = SkewedLadderController().on_tick(make_ctx("50000", instrument=inst))
    assert [(q.side, q.level) for q in quotes] == [(Side.BUY, 0), (Side.SELL, 0)]


def test_reprice_only_after_the_mid_moves_enough(make_ctx: ContextFactory) -> None:
    """Threshold 2 ticks = $0.20 at a $0.10 tick, measured from the last *quoted* mid."""
    ctrl = SkewedLadderController()
    first = list(ctrl.on_tick(make_ctx("50000")))
    assert list(ctrl.on_tick(make_ctx("50000.15"))) == first
    assert list(ctrl.on_tick(make_ctx("50000.19"))) == first  # 1.9 ticks from the quoted mid
    moved = list(ctrl.on_tick(make_ctx("50000.20")))
    assert moved != first
    # half spread 50000.20 * 0.0025 = 125.0005 -> raw bid0 49875.1995 -> 49875.1
    assert bids(moved)[0] == D("49875.1")


def test_inventory_change_reprices_at_once(make_ctx: ContextFactory) -> None:
    ctrl = SkewedLadderController()
    first = list(ctrl.on_tick(make_ctx("50000", position="0")))
    after_fill = list(ctrl.on_tick(make_ctx("50000", position="2.5")))
    assert after_fill != first
    assert asks(after_fill)[0] == D("50124.9")


def test_requotes_after_a_low_confidence_pause(make_ctx: ContextFactory) -> None:
    ctrl = SkewedLadderController()
    ctrl.on_tick(make_ctx("50000"))
    assert ctrl.on_tick(make_ctx("50000", confidence=0.1)) == []
    assert len(ctrl.on_tick(make_ctx("50000"))) == 10


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"base_spread_bps": D(-50)}, "base_spread_bps must be positive"),
        ({"size_decay": D("1.5")}, "size_decay"),
        ({"levels": 0}, "levels"),
        ({"base_size": D(0)}, "base_size must be positive"),
        ({"reprice_threshold_ticks": D(-1)}, "reprice_threshold_ticks"),
        ({"min_confidence": D(2)}, "min_confidence"),
    ],
)
def test_invalid_config_is_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SkewedLadderConfig(**kwargs)  # type: ignore[arg-type]
