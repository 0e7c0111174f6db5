"""The per-tick memos of the risk parts give what the uncached computation gives, and follow every change.

PnLTracker memoizes its figures per (fills booked, mark object) and skips the
drawdown bookkeeping when the total did not move; InventoryManager memoizes
quote modes and the emergency flag per position; KillSwitch memoizes its PnL
verdict per total. Each test below changes the input the memo is keyed on
and checks that the answer changed with it.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from mmkit.model import NS_PER_S, FairValue, Fill, Side
from mmkit.risk.inventory import InventoryConfig, InventoryManager
from mmkit.risk.kill_switch import KillSwitch, KillSwitchConfig
from mmkit.risk.pnl import PnLConfig, PnLEvent, PnLTracker
from mmkit.strategy import QuoteMode

FillFactory = Callable[..., Fill]
D = Decimal


def uncached_total(pnl: PnLTracker) -> Decimal:
    books = pnl.books()
    realized = sum((b.realized for b in books), D(0))
    fees = sum((b.fees for b in books), D(0))
    unrealized = sum((b.unrealized(pnl.mark_price) for b in books), D(0))
    return realized - fees + unrealized


# ----------------------------------------------------------------- PnLTracker


def test_figures_follow_each_fill_and_each_mark(make_fill: FillFactory) -> None:
    pnl = PnLTracker()
    pnl.mark(D(100), 0)
    assert pnl.total() == 0
    pnl.on_fill(make_fill(Side.BUY, "1", "100", fee="0.5"))
    assert (pnl.realized(), pnl.fees(), pnl.unrealized(), pnl.total()) == (D(0), D("0.5"), D(0), D("-0.5"))
    pnl.mark(D(110), 1)
    assert pnl.unrealized() == D(10) and pnl.total() == D("9.5")
    pnl.on_fill(make_fill(Side.SELL, "1", "120", fee="0.5", is_hedge=True))  # hedge fills count in the totals
    assert pnl.total() == uncached_total(pnl)
    assert pnl.figures().total == pnl.total()


def test_figures_are_reused_until_something_changes(make_fill: FillFactory) -> None:
    pnl = PnLTracker()
    mark = D(100)
    pnl.mark(mark, 0)
    first = pnl.figures()
    pnl.mark(mark, 1)
    assert pnl.figures() is first
    pnl.on_fill(make_fill(Side.BUY, "1", "99"))
    assert pnl.figures() is not first and pnl.unrealized() == D(1)


def test_an_equal_mark_written_differently_is_not_served_from_the_memo(make_fill: FillFactory) -> None:
    pnl = PnLTracker()
    pnl.on_fill(make_fill(Side.BUY, "1", "100"))
    pnl.mark(D("101"), 0)
    assert str(pnl.unrealized()) == "1"
    pnl.mark(D("101.00"), 1)  # equal, but the uncached sum is written with two decimals
    assert str(pnl.unrealized()) == "1.00"
    assert str(pnl.total()) == str(uncached_total(pnl))


def test_drawdown_and_announcements_are_unchanged_by_repeated_marks(make_fill: FillFactory) -> None:
    pnl = PnLTracker(PnLConfig(change_threshold=D(5), extreme_step=D(5)))
    events: list[PnLEvent] = []
    pnl.add_listener(events.append)
    pnl.on_fill(make_fill(Side.BUY, "1", "100"))
    for ts, price in enumerate(["110", "110", "110", "95", "95", "110"]):
        pnl.mark(D(price), ts)
    assert pnl.max_drawdown == D(15) and pnl.peak == D(10)
    assert [(e.kind, e.total) for e in events] == [
        ("change", D(10)),
        ("new_high", D(10)),
        ("change", D(-5)),
        ("new_low", D(-5)),
        ("change", D(10)),
    ]
    # A fill at an unchanged mark still moves the drawdown (fees).
    pnl.on_fill(make_fill(Side.SELL, "1", "110", fee="3"))
    assert pnl.total() == D(7) and pnl.max_drawdown == D(15)
    pnl.on_fill(make_fill(Side.BUY, "1", "110", fee="20"))
    assert pnl.total() == D(-13) and pnl.max_drawdown == D(23)


def test_mark_still_rejects_a_non_positive_price_after_a_valid_one() -> None:
    pnl = PnLTracker()
    pnl.mark(D(1), 0)
    try:
        pnl.mark(D(0), 1)
    except ValueError:
        pass
    else:  # pragma: no cover - the assertion is the point
        raise AssertionError("mark(0) accepted")


# ----------------------------------------------------------------- InventoryManager


def test_quote_modes_and_emergency_follow_the_position(make_fill: FillFactory) -> None:
    inv = InventoryManager(
        InventoryConfig(max_position=D(1), hedge_threshold=D("0.5"), widen_at=D("0.8"), emergency_position=D("1.5"))
    )
    seen = []
    for qty in ("0.5", "0.3", "0.2", "0.6", "-1.6"):
        side = Side.BUY if D(qty) > 0 else Side.SELL
        inv.on_fill(make_fill(side, str(abs(D(qty))), "100"))
        seen.append((inv.position, inv.quote_mode(Side.BUY), inv.quote_mode(Side.SELL), inv.emergency()))
    assert seen == [
        (D("0.5"), QuoteMode.NORMAL, QuoteMode.NORMAL, False),
        (D("0.8"), QuoteMode.WIDEN, QuoteMode.NORMAL, False),
        (D("1.0"), QuoteMode.STOP, QuoteMode.NORMAL, False),
        (D("1.6"), QuoteMode.STOP, QuoteMode.NORMAL, True),
        (D("0.0"), QuoteMode.NORMAL, QuoteMode.NORMAL, False),
    ]


def test_a_duplicate_fill_changes_no_mode(make_fill: FillFactory) -> None:
    inv = InventoryManager(InventoryConfig(max_position=D(1), hedge_threshold=D("0.5"), emergency_position=D(2)))
    fill = make_fill(Side.SELL, "1", "100")
    inv.on_fill(fill)
    assert inv.quote_mode(Side.SELL) is QuoteMode.STOP
    inv.on_fill(fill)
    assert inv.position == D(-1) and inv.quote_mode(Side.SELL) is QuoteMode.STOP


# ----------------------------------------------------------------- KillSwitch


def fresh(now: int) -> FairValue:
    return FairValue(price=D(100000), confidence=0.9, ts=now, sources=3)


def test_the_same_total_object_keeps_its_verdict_and_a_new_one_is_judged() -> None:
    ks = KillSwitch(KillSwitchConfig(max_drawdown=D(500), max_loss=D(1000), resume="auto", cooldown_ns=NS_PER_S))
    peak, low = D(800), D(300)
    assert not ks.evaluate(1, fresh(1), peak)
    assert not ks.evaluate(2, fresh(2), peak)
    assert ks.active_triggers(3, fresh(3), low) == ["drawdown 500 from peak 800 >= 500"]
    assert ks.active_triggers(4, fresh(4), low) == ["drawdown 500 from peak 800 >= 500"]
    assert ks.active_triggers(5, fresh(5), D("300.01")) == []


def test_reset_by_hand_rebases_even_for_the_total_just_evaluated() -> None:
    ks = KillSwitch(KillSwitchConfig(max_drawdown=D(500), max_loss=D(1000)))
    low = D(300)
    assert not ks.evaluate(1, fresh(1), D(800))
    assert ks.evaluate(2, fresh(2), low)
    ks.reset_by_hand(3, pnl_total=low)
    assert not ks.evaluate(4, fresh(4), low)  # same object: the memo of the old peak must be gone
    assert not ks.halted
