"""PnLTracker: FIFO ledger, fees, hedge book, session statistics, events."""

from __future__ import annotations

import math
from collections.abc import Callable
from decimal import Decimal

import pytest

from mmkit.model import NS_PER_S, Fill, Liquidity, Side
from mmkit.risk.pnl import PnLConfig, PnLEvent, PnLTracker

D = Decimal
FillFactory = Callable[..., Fill]
MAKER, TAKER = Liquidity.MAKER, Liquidity.TAKER


def test_fifo_ledger_with_partial_fills_fees_and_a_flip(make_fill: FillFactory) -> None:
    """Hand-computed ledger (quote venue truex, fees in PYUSD):

    1. BUY  1.0 @ 100 fee 0.10 maker  -> lots: L1 long 1.0@100
    2. BUY  0.5 @ 104 fee 0.05 maker  -> lots: L1 1.0@100, L2 0.5@104
    3. SELL 0.3 @ 106 fee 0.03 taker  -> closes 0.3 of L1: (106-100)*0.3 = +1.8 ; L1 0.7@100
    4. SELL 1.0 @ 103 fee 0.10 taker  -> closes 0.7 of L1: (103-100)*0.7 = +2.1
                                         then 0.3 of L2: (103-104)*0.3 = -0.3 ; L2 0.2@104
    5. SELL 0.7 @ 101 fee 0.07 maker  -> closes 0.2 of L2: (101-104)*0.2 = -0.6
                                         flip: opens short S1 0.5@101
    6. BUY  0.2 @  99 fee 0    maker  -> closes 0.2 of S1: (101-99)*0.2 = +0.4 ; S1 0.3@101

    realized = 1.8 + 2.1 - 0.3 - 0.6 + 0.4 = 3.4
    fees     = 0.10 + 0.05 + 0.03 + 0.10 + 0.07 = 0.35 (maker 0.22, taker 0.13)
    mark 100 -> unrealized of S1 = (101 - 100) * 0.3 = +0.3
    total    = 3.4 - 0.35 + 0.3 = 3.35 ; position -0.3
    volume   = 3.7 base ; 100 + 52 + 31.8 + 103 + 70.7 + 19.8 = 377.3 quote
    """
    pnl = PnLTracker()
    pnl.on_fill(make_fill(Side.BUY, "1.0", "100", fee="0.10"))
    pnl.on_fill(make_fill(Side.BUY, "0.5", "104", fee="0.05"))
    pnl.on_fill(make_fill(Side.SELL, "0.3", "106", fee="0.03", liquidity=TAKER))
    assert pnl.realized() == D("1.8")
    pnl.on_fill(make_fill(Side.SELL, "1.0", "103", fee="0.10", liquidity=TAKER))
    assert pnl.realized() == D("3.6")
    pnl.on_fill(make_fill(Side.SELL, "0.7", "101", fee="0.07"))
    assert pnl.realized() == D("3.0")
    assert pnl.position() == D("-0.5")
    pnl.on_fill(make_fill(Side.BUY, "0.2", "99"))
    pnl.mark(D(100), 1)

    assert pnl.realized() == D("3.4")
    assert pnl.fees() == D("0.35")
    assert pnl.fees_by("truex", MAKER) == D("0.22")
    assert pnl.fees_by("truex", TAKER) == D("0.13")
    assert pnl.unrealized() == D("0.3")
    assert pnl.total() == D("3.35")
    assert pnl.position() == D("-0.3")
    assert pnl.trade_count() == 6
    assert pnl.volume_base() == D("3.7")
    assert pnl.volume_quote() == D("377.3")
    (book,) = pnl.books()
    assert [(lot.side, lot.qty, lot.price) for lot in book.lots] == [(Side.SELL, D("0.3"), D(101))]


def test_short_to_long_flip_in_one_fill(make_fill: FillFactory) -> None:
    """SELL 1 @ 200, then BUY 3 @ 190: closes the short for (200-190)*1 = +10, opens long 2@190.
    Mark 195: unrealized (195-190)*2 = +10; total 20."""
    pnl = PnLTracker()
    pnl.on_fill(make_fill(Side.SELL, "1", "200"))
    pnl.on_fill(make_fill(Side.BUY, "3", "190"))
    pnl.mark(D(195), 1)
    assert (pnl.realized(), pnl.unrealized(), pnl.total(), pnl.position()) == (D(10), D(10), D(20), D(2))


def test_hedge_pnl_is_kept_apart(make_fill: FillFactory) -> None:
    """Quote: BUY 1 @ 100 on truex. Hedge: SELL 1 @ 101 fee 0.5 on coinbase, BUY 0.4 @ 99 on coinbase.
    Mark 100. Quote book: unrealized 0. Hedge book: realized (101-99)*0.4 = 0.8, open short 0.6@101
    -> unrealized (101-100)*0.6 = 0.6, fees 0.5 -> hedge total 0.9. Combined total 0.9."""
    pnl = PnLTracker()
    pnl.on_fill(make_fill(Side.BUY, "1", "100"))
    pnl.on_fill(make_fill(Side.SELL, "1", "101", venue="coinbase", symbol="BTC/USD", fee="0.5", is_hedge=True))
    pnl.on_fill(make_fill(Side.BUY, "0.4", "99", venue="coinbase", symbol="BTC/USD", is_hedge=True))
    pnl.mark(D(100), 1)
    assert pnl.total(hedge=False) == D(0)
    assert pnl.realized(hedge=True) == D("0.8")
    assert pnl.total(hedge=True) == D("0.9")
    assert pnl.total() == D("0.9")
    assert pnl.position(hedge=False) == D(1) and pnl.position(hedge=True) == D("-0.6")
    assert pnl.trade_count(hedge=False) == 1 and pnl.trade_count(hedge=True) == 2
    venues = pnl.by_venue()
    assert venues["coinbase"]["hedge_total"] == D("0.9")
    assert venues["coinbase"]["hedge_fees"] == D("0.5")
    assert venues["truex"]["quote_position"] == D(1)
    assert "quote_total" not in venues["coinbase"]


def test_same_venue_hedge_and_quote_books_do_not_net(make_fill: FillFactory) -> None:
    pnl = PnLTracker()
    pnl.on_fill(make_fill(Side.BUY, "1", "100"))
    pnl.on_fill(make_fill(Side.SELL, "1", "110", is_hedge=True))
    # Had they netted, 10 would be realized; kept apart both stay open.
    assert pnl.realized() == 0
    assert len(pnl.books()) == 2


def test_fee_in_base_asset_converted_at_fill_price_and_rebates(make_fill: FillFactory) -> None:
    pnl = PnLTracker()
    pnl.on_fill(make_fill(Side.BUY, "1", "100", fee="0.001", fee_currency="BTC", liquidity=TAKER))
    pnl.on_fill(make_fill(Side.SELL, "1", "100", fee="-0.02"))
    assert pnl.fees_by("truex", TAKER) == D("0.100")
    assert pnl.fees() == D("0.08")
    assert pnl.total() == D("-0.08")


def test_duplicate_fill_is_booked_once(make_fill: FillFactory) -> None:
    pnl = PnLTracker()
    fill = make_fill(Side.BUY, "1", "100", fee="1")
    pnl.on_fill(fill)
    pnl.on_fill(fill)
    assert (pnl.position(), pnl.fees(), pnl.trade_count()) == (D(1), D(1), 1)


def test_spread_capture_is_quantity_weighted_and_ignores_hedges(make_fill: FillFactory) -> None:
    """BUY 1 @ 99.9 vs mid 100 -> +10 bps; SELL 3 @ 100.2 vs mark 100 -> +20 bps;
    weighted (10*1 + 20*3) / 4 = 17.5 bps. The hedge fill (bad price) is not counted."""
    pnl = PnLTracker()
    assert pnl.avg_spread_capture_bps() is None
    pnl.on_fill(make_fill(Side.BUY, "1", "99.9"), mid=D(100))
    pnl.mark(D(100), 1)
    pnl.on_fill(make_fill(Side.SELL, "3", "100.2"))
    pnl.on_fill(make_fill(Side.BUY, "1", "120", is_hedge=True))
    assert pnl.avg_spread_capture_bps() == D("17.5")


def test_max_drawdown_from_running_peak(make_fill: FillFactory) -> None:
    pnl = PnLTracker()
    pnl.on_fill(make_fill(Side.BUY, "1", "100"))
    for price, ts in (("110", 1), ("95", 2), ("105", 3), ("101", 4)):
        pnl.mark(D(price), ts)
    assert pnl.peak == D(10)
    assert pnl.max_drawdown == D(15)  # 110 -> 95


def test_sharpe_from_fixed_period_samples(make_fill: FillFactory) -> None:
    """Samples every 1 s: totals 0, 1, 3, 6 -> changes 1, 2, 3: mean 2, sample stdev 1.
    Sharpe = 2 / 1 * sqrt(365 * 86400 periods per year)."""
    pnl = PnLTracker(PnLConfig(sample_period_ns=NS_PER_S))
    pnl.on_fill(make_fill(Side.BUY, "1", "100"))
    for second, price in enumerate(("100", "101", "103", "106")):
        pnl.mark(D(price), second * NS_PER_S)
        pnl.tick(second * NS_PER_S)
        if second < 2:
            assert pnl.sharpe() is None
    sharpe = pnl.sharpe()
    assert sharpe is not None
    assert sharpe == pytest.approx(2 * math.sqrt(365 * 86400))


def test_events_on_significant_change_and_new_extremes(make_fill: FillFactory) -> None:
    events: list[PnLEvent] = []
    pnl = PnLTracker(PnLConfig(change_threshold=D(100), extreme_step=D(10)))
    pnl.add_listener(events.append)
    pnl.on_fill(make_fill(Side.BUY, "1", "1000"))
    pnl.mark(D(1005), 1)  # +5: nothing
    assert events == []
    pnl.mark(D(1012), 2)  # +12: new high (>= 0 + 10)
    pnl.mark(D(1021), 3)  # +21: not yet 10 past the last announced high (12)
    pnl.mark(D(1022), 4)  # +22: new high (>= 12 + 10)
    pnl.mark(D(1100), 5)  # +100: change from 0, new high
    pnl.mark(D(985), 6)  # -15: change (-115 from 100), new low
    kinds = [(e.kind, e.total, e.ts_ns) for e in events]
    assert kinds == [
        ("new_high", D(12), 2),
        ("new_high", D(22), 4),
        ("change", D(100), 5),
        ("new_high", D(100), 5),
        ("change", D(-15), 6),
        ("new_low", D(-15), 6),
    ]


def test_a_failing_listener_does_not_break_the_ledger(make_fill: FillFactory) -> None:
    def boom(_: PnLEvent) -> None:
        raise RuntimeError("listener bug")

    pnl = PnLTracker(PnLConfig(change_threshold=D(1), extreme_step=D(1)))
    pnl.add_listener(boom)
    pnl.on_fill(make_fill(Side.BUY, "1", "100"))
    pnl.mark(D(150), 1)
    assert pnl.total() == D(50)


def test_summary_line_every_log_period(make_fill: FillFactory) -> None:
    pnl = PnLTracker()  # default log period 30 s
    pnl.on_fill(make_fill(Side.BUY, "0.5", "100", fee="0.01"))
    pnl.mark(D(102), 0)
    assert pnl.tick(0) is None
    assert pnl.tick(29 * NS_PER_S) is None
    line = pnl.tick(30 * NS_PER_S)
    assert line is not None
    assert "total=0.99" in line and "trades=1" in line and "pos=0.5" in line
    assert pnl.tick(45 * NS_PER_S) is None
    assert pnl.tick(60 * NS_PER_S) is not None


def test_mark_rejects_non_positive_price() -> None:
    with pytest.raises(ValueError):
        PnLTracker().mark(D(0), 0)
