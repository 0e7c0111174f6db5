"""Read side: open orders as last recorded, the ledger, fees and daily/session summaries."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from mmkit.model import Fill, Liquidity, Side
from mmkit.store.queries import StoreQueries, utc_day
from mmkit.store.recorder import Recorder
from mmkit.store.records import PnLRecord

DAY1 = 1_700_000_000_000_000_000  # 2023-11-14 22:13:20 UTC
DAY2 = DAY1 + 86_400 * 1_000_000_000


def _order(rec: Recorder, cid: str, state: str, ts: int, venue: str = "truex") -> None:
    rec.record_order(
        cid,
        venue,
        "BTC-PYUSD",
        "SELL",
        price=Decimal("100001"),
        qty=Decimal("0.1"),
        filled_qty=Decimal("0"),
        state=state,
        venue_order_id="",
        ts_ns=ts,
    )


def test_open_orders_are_those_whose_last_state_is_not_terminal(sqlite_url: str) -> None:
    rec = Recorder(sqlite_url)
    rec.start()
    _order(rec, "a", "PENDING_NEW", 1)
    _order(rec, "a", "OPEN", 2)
    _order(rec, "b", "OPEN", 3)
    _order(rec, "b", "FILLED", 4)
    _order(rec, "c", "PENDING_CANCEL", 5)
    _order(rec, "d", "OPEN", 6)
    _order(rec, "d", "CANCELED", 7)
    _order(rec, "e", "SOME_NEW_STATE", 8)  # unknown: treated as possibly live, to be reconciled
    _order(rec, "a", "OPEN", 9, venue="kraken")  # same client id on another venue is another order
    rec.close()
    q = StoreQueries(sqlite_url)
    assert [(o.venue, o.client_id, o.state) for o in q.open_orders()] == [
        ("truex", "a", "OPEN"),
        ("truex", "c", "PENDING_CANCEL"),
        ("truex", "e", "SOME_NEW_STATE"),
        ("kraken", "a", "OPEN"),
    ]
    assert [o.client_id for o in q.open_orders("kraken")] == ["a"]
    assert len(q.latest_orders()) == 6
    q.close()


def test_ledger_position_dedupe_set_and_last_seen(sqlite_url: str, make_fill: Callable[..., Fill]) -> None:
    rec = Recorder(sqlite_url)
    rec.start()
    rec.record_fill(make_fill("t2", side=Side.SELL, qty="0.3", ts=DAY1 + 2))
    rec.record_fill(make_fill("t1", side=Side.BUY, qty="1.00000001", ts=DAY1 + 1))
    rec.record_fill(make_fill("t3", side=Side.BUY, qty="0.1", symbol="ETH-PYUSD", ts=DAY1 + 3))
    rec.record_fill(make_fill("h1", side=Side.SELL, qty="0.7", venue="kraken", symbol="BTC/USD", is_hedge=True))
    rec.close()
    q = StoreQueries(sqlite_url)
    assert [f.trade_id for f in q.ledger("truex", "BTC-PYUSD")] == ["t1", "t2"]  # venue time order
    assert q.position("truex", "BTC-PYUSD") == Decimal("0.70000001")
    assert q.position("kraken", "BTC/USD") == Decimal("-0.7")
    assert q.position("truex", "XRP-PYUSD") == 0
    assert q.trade_ids("truex") == {"t1", "t2", "t3"}
    assert q.last_fill_ts("truex") == DAY1 + 3
    assert q.last_fill_ts("gemini") is None
    assert [f.trade_id for f in q.fills(include_hedges=False, venue="kraken")] == []
    assert [f.trade_id for f in q.fills(since_ns=DAY1 + 2, until_ns=DAY1 + 3)] == ["t2"]
    q.close()


def test_fees_and_summaries_by_day_and_session(sqlite_url: str, make_fill: Callable[..., Fill]) -> None:
    first = Recorder(sqlite_url, session_id="s1")
    first.start()
    first.record_fill(make_fill("a", side=Side.BUY, qty="1", price="100", fee="-0.01", ts=DAY1))
    first.record_fill(
        make_fill("b", side=Side.SELL, qty="0.5", price="102", fee="0.02", ts=DAY1 + 1, liquidity=Liquidity.TAKER)
    )
    first.close()
    second = Recorder(sqlite_url, session_id="s2")
    second.start()
    second.record_fill(make_fill("c", side=Side.SELL, qty="0.5", price="101", fee="0.03", ts=DAY2))
    second.record_fill(make_fill("k", venue="kraken", symbol="BTC/USD", fee="0.5", fee_currency="USD", ts=DAY2))
    second.close()

    q = StoreQueries(sqlite_url)
    assert q.fees_by_venue() == {("truex", "PYUSD"): Decimal("0.04"), ("kraken", "USD"): Decimal("0.5")}
    by_day = q.summary_by_day(venue="truex")
    assert [(s.group, s.trades) for s in by_day] == [(utc_day(DAY1), 2), (utc_day(DAY2), 1)]
    day1 = by_day[0]
    assert (day1.buy_qty, day1.sell_qty, day1.net_qty, day1.volume) == (
        Decimal("1"),
        Decimal("0.5"),
        Decimal("0.5"),
        Decimal("1.5"),
    )
    assert (day1.buy_notional, day1.sell_notional) == (Decimal("100"), Decimal("51.0"))
    assert day1.fees == {"PYUSD": Decimal("0.01")} and day1.maker_trades == 1
    by_session = q.summary_by_session()
    assert [(s.group, s.venue, s.trades) for s in by_session] == [
        ("s1", "truex", 2),
        ("s2", "truex", 1),
        ("s2", "kraken", 1),
    ]
    assert [s.session_id for s in q.sessions()] == ["s1", "s2"]
    q.close()


def test_latest_pnl_per_instrument(sqlite_url: str) -> None:
    rec = Recorder(sqlite_url)
    rec.start()
    for i, unreal in enumerate(["1", "2", "3"]):
        rec.record_pnl(PnLRecord("truex", "BTC-PYUSD", Decimal("0.1"), Decimal(0), Decimal(unreal), Decimal(0), i))
    rec.record_pnl(PnLRecord("*", "*", Decimal(0), Decimal("5"), Decimal(0), Decimal("0.1"), 9, mark=Decimal("1")))
    rec.close()
    q = StoreQueries(sqlite_url)
    assert [(p.venue, p.unrealized, p.realized) for p in q.latest_pnl()] == [
        ("*", Decimal(0), Decimal(5)),
        ("truex", Decimal(3), Decimal(0)),
    ]
    assert [p.venue for p in q.latest_pnl("truex")] == ["truex"]
    q.close()


def test_utc_day() -> None:
    assert utc_day(DAY1) == "2023-11-14" and utc_day(DAY2) == "2023-11-15"
