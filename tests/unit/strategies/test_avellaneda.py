"""AvellanedaStoikovController against hand-computed values."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

import pytest

from mmkit.instrument import Instrument
from mmkit.model import NS_PER_S, Side, TargetQuote
from mmkit.risk.inventory import InventoryConfig
from mmkit.strategy import StrategyContext
from strategies.avellaneda import AvellanedaConfig, AvellanedaStoikovController, RollingVolatility

D = Decimal
ContextFactory = Callable[..., StrategyContext]
S = NS_PER_S
FIXED = AvellanedaConfig(gamma=D("0.1"), kappa=D("1.5"), horizon_s=D(1), order_size=D(1), sigma=D(2))


def by_side(quotes: Sequence[TargetQuote]) -> dict[Side, Decimal]:
    return {q.side: q.price for q in quotes}


def test_model_against_hand_arithmetic() -> None:
    """s = 100, q = 2 (position 2 / order size 1), γ = 0.1, κ = 1.5, σ = 2, τ = 1:
    γσ²τ         = 0.1 · 4 · 1 = 0.4
    r            = 100 − 2 · 0.4 = 99.2
    (2/γ)ln(1+γ/κ) = 20 · ln(16/15) = 20 · 0.0645385211375712 = 1.290770422751424
    δ            = 0.4 + 1.290770422751424 = 1.690770422751424
    bid = r − δ/2 = 98.354614788624288 ; ask = r + δ/2 = 100.045385211375712
    """
    quotes = AvellanedaStoikovController(FIXED).model(D(100), D(2), D(2))
    assert quotes.reservation == D("99.2")
    assert abs(quotes.spread - D("1.690770422751424")) < D("1e-14")
    assert abs(quotes.bid - D("98.354614788624288")) < D("1e-14")
    assert abs(quotes.ask - D("100.045385211375712")) < D("1e-14")


def test_quotes_snap_bids_down_asks_up(make_ctx: ContextFactory, fine: Instrument) -> None:
    quotes = by_side(AvellanedaStoikovController(FIXED).on_tick(make_ctx("100", position="2", instrument=fine)))
    assert quotes == {Side.BUY: D("98.35"), Side.SELL: D("100.05")}


def test_flat_inventory_is_symmetric(make_ctx: ContextFactory, fine: Instrument) -> None:
    # r = 100; bid = 100 − 0.845385 = 99.154615 -> 99.15 ; ask = 100.845385 -> 100.85
    quotes = by_side(AvellanedaStoikovController(FIXED).on_tick(make_ctx("100", position="0", instrument=fine)))
    assert quotes == {Side.BUY: D("99.15"), Side.SELL: D("100.85")}


def test_q_is_in_units_of_order_size(make_ctx: ContextFactory, fine: Instrument) -> None:
    # position 0.2 with order size 0.1 is q = 2: same quotes as the hand example
    cfg = AvellanedaConfig(gamma=D("0.1"), kappa=D("1.5"), horizon_s=D(1), order_size=D("0.1"), sigma=D(2))
    quotes = by_side(AvellanedaStoikovController(cfg).on_tick(make_ctx("100", position="0.2", instrument=fine)))
    assert quotes == {Side.BUY: D("98.35"), Side.SELL: D("100.05")}


def test_large_short_keeps_the_bid_below_the_mid(make_ctx: ContextFactory, fine: Instrument) -> None:
    # q = −10: r = 100 + 4 = 104 -> raw bid 103.15 would cross; clamped at mid − tick
    roomy = InventoryConfig(max_position=D(50), emergency_position=D(50))  # −10 must not STOP the asks here
    ctx = make_ctx("100", position="-10", instrument=fine, inventory_config=roomy)
    quotes = by_side(AvellanedaStoikovController(FIXED).on_tick(ctx))
    assert quotes[Side.BUY] == D("99.99")
    assert quotes[Side.SELL] == D("104.85")  # 104.845385 -> up


def test_rolling_sigma_from_mid_returns(make_ctx: ContextFactory, fine: Instrument) -> None:
    """Mids 100, 101, 100, 101 one second apart: returns +ln1.01, −ln1.01, +ln1.01.
    σ_log² = 3·ln(1.01)² / 3 s -> σ_log = ln(1.01) = 0.00995033; σ at s = 101 is 101·ln(1.01) = 1.00498.
    Then with γ = 0.1, κ = 1.5, τ = 1, q = 0: δ = 0.1·σ² + 20·ln(16/15)."""
    cfg = AvellanedaConfig(
        gamma=D("0.1"), kappa=D("1.5"), horizon_s=D(1), order_size=D(1), volatility_window=3, min_samples=3
    )
    ctrl = AvellanedaStoikovController(cfg)
    for t, mid in ((0, "100"), (1, "101"), (2, "100")):
        assert ctrl.on_tick(make_ctx(mid, now_ns=t * S, position="0", instrument=fine)) == []  # < 3 returns
    quotes = by_side(ctrl.on_tick(make_ctx("101", now_ns=3 * S, position="0", instrument=fine)))
    sigma = 101 * math.log(1.01)
    assert float(ctrl.sigma(D(101)) or 0) == pytest.approx(sigma, rel=1e-12)
    half = (0.1 * sigma**2 + 20 * math.log(16 / 15)) / 2  # 0.050499 + 0.645385 = 0.695884
    assert quotes[Side.BUY] == D(str(math.floor((101 - half) * 100) / 100))  # 100.304116 -> 100.30
    assert quotes[Side.SELL] == D(str(math.ceil((101 + half) * 100) / 100))  # 101.695884 -> 101.70
    assert quotes == {Side.BUY: D("100.30"), Side.SELL: D("101.70")}


def test_rolling_volatility_window_and_elapsed_time() -> None:
    vol = RollingVolatility(window=2, interval_ns=S)
    vol.update(0, D(100))
    vol.update(S // 2, D(150))  # too early: ignored
    assert len(vol) == 0 and vol.sigma_log() is None
    vol.update(2 * S, D(101))  # one return over 2 s: σ² = ln(1.01)² / 2
    assert float(vol.sigma_log() or 0) == pytest.approx(math.log(1.01) / math.sqrt(2), rel=1e-12)
    vol.update(3 * S, D(101))
    vol.update(4 * S, D(101))  # window 2: the first return fell out, only zeros remain
    assert vol.sigma_log() == 0


@pytest.mark.parametrize(
    "ctx_kwargs",
    [{"price": None}, {"price": "100", "confidence": 0.1}, {"price": "100", "halted": True}],
)
def test_no_quotes_without_a_trusted_price(
    make_ctx: ContextFactory, fine: Instrument, ctx_kwargs: dict[str, Any]
) -> None:
    assert AvellanedaStoikovController(FIXED).on_tick(make_ctx(instrument=fine, **ctx_kwargs)) == []


def test_stop_side_is_not_quoted(make_ctx: ContextFactory, truex: Instrument) -> None:
    quotes = AvellanedaStoikovController(FIXED).on_tick(make_ctx("50000", position="5"))
    assert [q.side for q in quotes] == [Side.SELL]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"gamma": D(0)}, "gamma must be positive"),
        ({"kappa": D(-1)}, "kappa must be positive"),
        ({"sigma": D(0)}, "sigma must be positive"),
        ({"volatility_window": 5, "min_samples": 6}, "min_samples"),
    ],
)
def test_invalid_config_is_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AvellanedaConfig(**kwargs)  # type: ignore[arg-type]
