"""KillSwitch.evaluate's "still clear" memo: each input it rests on, changed alone, gets a full evaluation.

The memo answers "clear" without building the reasons while the PnL total
and fair price objects and the config are those of the last clear
evaluation and nothing counted since (reject, ledger halt, trip, reset).
Every test first makes an evaluation clear (so the memo is set), checks that
a repeat is served from it, then changes one input and checks that the
switch trips: each fails if that input were left out of the memo.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from mmkit.instrument import IncrementBand, Instrument
from mmkit.model import NS_PER_S, FairValue, Fill, Side
from mmkit.risk.kill_switch import KillSwitch, KillSwitchConfig
from mmkit.risk.pnl import PnLConfig, PnLTracker
from mmkit.risk.settlement import Settlement

D = Decimal
S = NS_PER_S
FillFactory = Callable[..., Fill]
PRICE = D(100000)


def fair(ts: int, price: Decimal = PRICE, confidence: float = 0.9) -> FairValue:
    return FairValue(price=price, confidence=confidence, ts=ts, sources=1)


def config(**kwargs: object) -> KillSwitchConfig:
    base: dict[str, object] = {
        "max_drawdown": D(500), "max_loss": D(1000), "stale_after_ns": 2 * S, "min_confidence": 0.3,
        "max_rejects": 3, "reject_window_ns": 10 * S,
    }
    base.update(kwargs)
    return KillSwitchConfig(**base)  # type: ignore[arg-type]


def settled(ks: KillSwitch, total: Decimal) -> None:
    """Two clear evaluations with the same objects: the second is served from the memo."""
    assert ks.evaluate(0, fair(0), total) is False
    assert ks._clear is not None, "a clear evaluation sets the memo"
    assert ks.evaluate(1, fair(1), total) is False
    assert ks._clear is not None


def test_a_new_pnl_total_is_evaluated() -> None:
    ks = KillSwitch(config())
    settled(ks, D(0))
    assert ks.evaluate(2, fair(2), D(-1000)) is True and "max loss" in ks.reason


def test_time_makes_the_same_fair_value_stale() -> None:
    ks = KillSwitch(config())
    total = D(0)
    settled(ks, total)
    assert ks.evaluate(2 * S, fair(0), total) is False  # exactly at the limit: not stale yet
    assert ks.evaluate(2 * S + 1, fair(0), total) is True and "stale" in ks.reason


def test_a_confidence_drop_with_the_same_price_object_is_evaluated() -> None:
    ks = KillSwitch(config())
    total = D(0)
    settled(ks, total)
    assert ks.evaluate(2, fair(2, confidence=0.1), total) is True and "confidence" in ks.reason


def test_rejects_counted_since_are_evaluated() -> None:
    ks = KillSwitch(config())
    total = D(0)
    settled(ks, total)
    for _ in range(4):
        ks.on_reject(1)
    assert ks.evaluate(2, fair(2), total) is True and "4 rejects" in ks.reason


def test_an_inventory_emergency_is_evaluated() -> None:
    ks = KillSwitch(config())
    total = D(0)
    settled(ks, total)
    assert ks.evaluate(2, fair(2), total, inventory_emergency=True) is True and "inventory" in ks.reason


def test_a_ledger_halt_and_a_trip_hold_although_nothing_else_changed() -> None:
    ks = KillSwitch(config())
    total = D(0)
    settled(ks, total)
    ks.halt_ledger(2, "fill for an order we never placed")
    assert ks.evaluate(3, fair(3), total) is True
    other = KillSwitch(config())
    settled(other, total)
    other.trip(2, "operator")
    assert other.evaluate(3, fair(3), total) is True and other.reason == "operator"


def test_a_reset_that_rebases_the_peak_is_evaluated() -> None:
    ks = KillSwitch(config())
    total = D(0)
    settled(ks, total)
    ks.reset_by_hand(2, pnl_total=D(600))  # a peak above the current total: drawdown 600 >= 500
    assert ks.evaluate(3, fair(3), total) is True and "drawdown" in ks.reason


def test_a_replaced_config_is_evaluated() -> None:
    ks = KillSwitch(config())
    total = D(-600)
    settled(ks, total)
    ks.config = config(max_loss=D(500))
    assert ks.evaluate(2, fair(2), total) is True and "max loss 500" in ks.reason


def test_a_new_price_object_converts_the_same_coin_total_again(make_fill: FillFactory) -> None:
    coinm = Instrument("binance_coinm", "BTCUSD_PERP", "BTC", "USD", (IncrementBand(D(0), D("0.1"), D(1)),),
                       contract_size=D(100), inverse=True)
    pnl = PnLTracker(PnLConfig().for_instrument(coinm))
    pnl.on_fill(make_fill(Side.BUY, "100", "60000", venue="binance_coinm", symbol="BTCUSD_PERP", fee_currency="BTC"))
    pnl.mark(D(50000), 1)
    total = pnl.total()  # -1/30 BTC: 1333 USD at 40,000, 1666 USD at 50,000
    ks = KillSwitch(config(max_drawdown=None, max_loss=D(1500)), Settlement.of(coinm))
    low = D(40000)
    assert ks.evaluate(0, fair(0, low), total) is False
    assert ks.evaluate(1, fair(1, low), total) is False and ks._clear is not None
    assert ks.evaluate(2, fair(2, D(50000)), total) is True and "1500 USD" in ks.reason


def test_the_memo_gives_what_a_full_evaluation_gives_over_a_walk() -> None:
    """A seeded walk of totals, prices, times and rejects: memo and memo-less switch agree at every step."""
    import random

    rng = random.Random(5)
    memo, full = KillSwitch(config(resume="auto", cooldown_ns=S)), KillSwitch(config(resume="auto", cooldown_ns=S))
    total, price, ts = D(0), PRICE, 0
    fair_value = fair(0)
    for step in range(3000):
        now = step * S // 10
        roll = rng.random()
        if roll < 0.05:
            total = D(rng.randint(-1200, 200))
        elif roll < 0.1:
            price = D(rng.randint(99000, 101000))
        elif roll < 0.12:
            memo.on_reject(now)
            full.on_reject(now)
        if rng.random() < 0.3:
            ts = now
        fair_value = fair(ts, price) if (fair_value.ts != ts or fair_value.price is not price) else fair_value
        full._clear = None  # the reference never uses the memo
        assert memo.evaluate(now, fair_value, total) == full.evaluate(now, fair_value, total), step
        assert memo.reason == full.reason
