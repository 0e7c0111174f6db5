"""tests/tape_audit.py finds each kind of fill the tape cannot justify (so the whole-recording audit can fail)."""

from __future__ import annotations

from decimal import Decimal as D

from mmkit.model import BookDelta, BookSnapshot, Fill, Liquidity, Side, Trade
from tests.tape_audit import AuditedOrder, audit_fills

SNAPSHOT = BookSnapshot("v", "X", 1, ((D(100), D(3)),), ((D(101), D(2)),), 0, 0)


def fill(ts: int, qty: str, price: str = "100", side: Side = Side.BUY, cid: str = "a",
         liquidity: Liquidity = Liquidity.MAKER) -> Fill:
    return Fill("v", f"f{ts}-{qty}", cid, "X", side, D(price), D(qty), D(0), "USD", liquidity, ts, ts)


def sell_print(ts: int, price: str, qty: str) -> Trade:
    return Trade("v", "X", f"t{ts}", D(price), D(qty), Side.SELL, ts, ts)


BID = {"a": AuditedOrder(Side.BUY, D(100), D(1), accepted_ns=10, ended_ns=100)}


def test_fills_the_tape_justifies_pass() -> None:
    events = [SNAPSHOT, sell_print(20, "100", "0.4"), sell_print(30, "99", "0.1"), sell_print(30, "98", "0.5")]
    assert audit_fills(events, [fill(20, "0.4"), fill(30, "0.6")], BID) == []  # 0.6 printed through 100 at t=30


def test_a_whole_order_filled_by_a_smaller_print_through_its_price_is_flagged() -> None:
    events = [SNAPSHOT, sell_print(30, "99", "0.1")]
    assert audit_fills(events, [fill(30, "0.6")], BID) == [
        "at t=30 our BUY maker fills total 0.6, more than the 0.1 the tape supplied at or through 100 then"]
    crossed = [SNAPSHOT, BookDelta("v", "X", 2, 2, (), ((D("99.5"), D("0.25")),), 30, 30)]  # 0.25 offered through
    assert audit_fills(crossed, [fill(30, "0.25")], BID) == []
    assert "more than the 0.25 the tape supplied" in audit_fills(crossed, [fill(30, "1")], BID)[0]


def test_a_fill_before_acceptance_or_after_the_cancel_is_flagged() -> None:
    events = [SNAPSHOT, sell_print(5, "99", "1"), sell_print(200, "99", "1")]
    problems = audit_fills(events, [fill(5, "0.1"), fill(200, "0.1")], BID)
    assert len(problems) == 2
    assert "before the order was accepted" in problems[0] and "after the order's cancel" in problems[1]


def test_an_unknown_order_the_wrong_side_and_overfill_are_flagged() -> None:
    events = [SNAPSHOT, sell_print(20, "99", "5")]
    assert "never accepted" in audit_fills(events, [fill(20, "0.1", cid="zz")], BID)[0]
    assert "the order is a BUY" in " ".join(audit_fills(events, [fill(20, "0.1", side=Side.SELL)], BID))
    assert "reach 1.5 of 1" in " ".join(audit_fills(events, [fill(20, "1"), fill(20, "0.5")], BID))


def test_a_maker_fill_without_a_reaching_print_or_crossing_book_is_flagged() -> None:
    above = [SNAPSHOT, sell_print(20, "100.5", "1")]  # above our bid: never reaches it
    assert "no print reached 100" in audit_fills(above, [fill(20, "0.1")], BID)[0]
    bought = [SNAPSHOT, Trade("v", "X", "b", D(100), D(1), Side.BUY, 20, 20)]  # at our price, but a buyer
    assert "no print reached" in audit_fills(bought, [fill(20, "0.1")], BID)[0]
    crossed = [SNAPSHOT, BookDelta("v", "X", 2, 2, (), ((D("99.5"), D(1)),), 20, 20)]
    assert audit_fills(crossed, [fill(20, "1")], BID) == []  # the book crossed our bid: a whole fill is fine
    assert "away from the order's price" in audit_fills(crossed, [fill(20, "1", price="99.5")], BID)[0]


def test_fills_at_our_price_beyond_what_printed_there_are_flagged() -> None:
    events = [SNAPSHOT, sell_print(20, "100", "0.3")]
    orders = {**BID, "b": AuditedOrder(Side.BUY, D(100), D(1), accepted_ns=10)}
    problems = audit_fills(events, [fill(20, "0.2"), fill(20, "0.2", cid="b")], orders)
    assert problems == ["at t=20 our BUY fills at 100 total 0.4, more than the 0.3 printed there",
                        "at t=20 our BUY maker fills total 0.4, more than the 0.3 the tape supplied at or through "
                        "100 then"]


def test_a_taker_fill_worse_than_its_limit_or_taking_a_lot_twice_is_flagged() -> None:
    orders = {"t1": AuditedOrder(Side.BUY, D(101), D(2), accepted_ns=10),
              "t2": AuditedOrder(Side.BUY, D(101), D(2), accepted_ns=11)}
    once = [fill(10, "2", "101", cid="t1", liquidity=Liquidity.TAKER)]
    assert audit_fills([SNAPSHOT], once, orders) == []
    twice = [*once, fill(11, "1", "101", cid="t2", liquidity=Liquidity.TAKER)]
    assert "showed 0 not yet taken" in audit_fills([SNAPSHOT], twice, orders)[0]
    refreshed = [SNAPSHOT, BookDelta("v", "X", 2, 2, (), ((D(101), D(2)),), 11, 11)]  # the level shows 2 again
    late = [*once, fill(12, "1", "101", cid="t2", liquidity=Liquidity.TAKER)]
    assert audit_fills(refreshed, late, orders) == []
    worse = [fill(10, "1", "101", cid="t1", liquidity=Liquidity.TAKER)]
    capped = {"t1": AuditedOrder(Side.BUY, D("100.5"), D(1), accepted_ns=10)}
    assert "worse than its limit" in audit_fills([SNAPSHOT], worse, capped)[0]
