"""Recorder on SQLite: completeness, exactness, dedupe, outage handling and the spill policy."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from mmkit.model import Fill, Side
from mmkit.store import schema
from mmkit.store.queries import StoreQueries
from mmkit.store.recorder import Recorder
from mmkit.store.records import PnLRecord


def _db_path(url: str) -> str:
    return url.removeprefix("sqlite:///")


def _order(rec: Recorder, client_id: str, state: str, ts: int, filled: str = "0") -> bool:
    return rec.record_order(
        client_id,
        "truex",
        "BTC-PYUSD",
        Side.BUY,
        price=Decimal("99999.99"),
        qty=Decimal("0.25"),
        filled_qty=Decimal(filled),
        state=state,
        venue_order_id="V" + client_id,
        ts_ns=ts,
    )


class _Locked:
    """Hold SQLite's write lock from another connection: to the recorder the database is 'down'."""

    def __init__(self, url: str) -> None:
        self.conn = sqlite3.connect(_db_path(url), isolation_level=None)
        self.conn.execute("BEGIN EXCLUSIVE")

    def release(self) -> None:
        self.conn.execute("COMMIT")
        self.conn.close()


def test_everything_recorded_is_persisted_exactly_on_close(sqlite_url: str, make_fill: Callable[..., Fill]) -> None:
    rec = Recorder(sqlite_url, instance="unit")
    rec.start()
    assert _order(rec, "c1", "PENDING_NEW", 10)
    assert _order(rec, "c1", "OPEN", 11)
    assert rec.record_fill(make_fill("t1", qty="0.00000001", price="100000.01"))
    assert rec.record_hedge(
        "h1", "kraken", "BTC/USD", "SELL", qty=Decimal("0.00000001"), price=None, state="NEW", ts_ns=12, ref="t1"
    )
    assert rec.record_pnl(
        PnLRecord("truex", "BTC-PYUSD", Decimal("0.00000001"), Decimal("0"), Decimal("-0.0001"), Decimal("0.001"), 13)
    )
    assert rec.record_top_of_book(
        "truex", "BTC-PYUSD", bid=Decimal("1.5"), bid_qty=Decimal("2"), ask=None, ask_qty=None, ts_ns=14
    )
    assert rec.close() == 0

    q = StoreQueries(sqlite_url)
    [fill] = q.fills()
    assert fill == make_fill("t1", qty="0.00000001", price="100000.01")
    history = q.order_history("truex", "c1")
    assert [o.state for o in history] == ["PENDING_NEW", "OPEN"]
    assert history[1].price == Decimal("99999.99") and history[1].qty == Decimal("0.25")
    [pnl] = q.latest_pnl()
    assert pnl.unrealized == Decimal("-0.0001") and pnl.position == Decimal("0.00000001")
    [session] = q.sessions()
    assert session.session_id == rec.session_id and session.stopped_ns is not None
    with q.engine.connect() as conn:
        hedge = conn.execute(select(schema.hedges)).one()
        tob = conn.execute(select(schema.top_of_book)).one()
    assert (hedge.hedge_id, hedge.qty, hedge.price, hedge.ref) == ("h1", Decimal("0.00000001"), None, "t1")
    assert (tob.bid, tob.ask) == (Decimal("1.5"), None)
    q.close()


def test_orders_are_written_in_enqueue_order_across_batches(sqlite_url: str) -> None:
    rec = Recorder(sqlite_url, batch_max=7)
    rec.start()
    for i in range(100):
        _order(rec, f"c{i}", "OPEN", i)
    assert rec.flush(5.0)
    with rec.engine.connect() as conn:
        seqs = [r.seq for r in conn.execute(select(schema.orders).order_by(schema.orders.c.id))]
    assert seqs == list(range(2, 102))  # seq 1 is the session start
    rec.close()


def test_duplicate_fills_are_stored_once_within_and_across_sessions(
    sqlite_url: str, make_fill: Callable[..., Fill]
) -> None:
    first = Recorder(sqlite_url, instance="unit")
    first.start()
    first.record_fill(make_fill("t1"))
    first.record_fill(make_fill("t1"))  # replayed by the venue after a reconnect
    first.record_fill(make_fill("t2", side=Side.SELL, qty="0.2"))
    assert first.close() == 0

    second = Recorder(sqlite_url, instance="unit")  # a restart: new session, same ledger
    second.start()
    second.record_fill(make_fill("t2", side=Side.SELL, qty="0.2"))
    second.record_fill(make_fill("t1", venue="kraken"))  # same trade id on another venue is another fill
    assert second.close() == 0

    q = StoreQueries(sqlite_url)
    assert sorted(f.key for f in q.fills()) == [("kraken", "t1"), ("truex", "t1"), ("truex", "t2")]
    assert q.position("truex", "BTC-PYUSD") == Decimal("0.3")
    assert len(q.sessions()) == 2
    q.close()


def test_a_locked_database_never_blocks_the_caller_and_nothing_is_lost(
    sqlite_url: str, make_fill: Callable[..., Fill], wait_until: Callable[..., bool]
) -> None:
    # A long busy timeout makes the writer hang inside the driver: a "slow" database.
    rec = Recorder(sqlite_url, connect_timeout_s=0.2, retry_initial_s=0.01, retry_max_s=0.05)
    rec.start()
    assert rec.flush(2.0)
    lock = _Locked(sqlite_url)
    for i in range(200):
        assert _order(rec, "c1", "OPEN" if i % 2 else "PENDING_REPLACE", 1000 + i)
        assert rec.record_fill(make_fill(f"t{i}", ts=2000 + i))
    assert wait_until(lambda: rec.stats().in_outage)
    assert not rec.flush(0.05)  # still down: not written, and flush says so
    stats = rec.stats()
    assert stats.in_outage and stats.outages == 1 and stats.db_errors >= 1
    assert stats.backlog == 400
    lock.release()
    assert rec.flush(5.0)
    stats = rec.stats()
    assert not stats.in_outage and stats.backlog == 0 and stats.dropped == 0 and stats.outages == 1
    with rec.engine.connect() as conn:
        order_seqs = [r.seq for r in conn.execute(select(schema.orders.c.seq).order_by(schema.orders.c.id))]
        fill_seqs = [r.seq for r in conn.execute(select(schema.fills.c.seq).order_by(schema.fills.c.id))]
    assert sorted(order_seqs + fill_seqs) == list(range(2, 402))  # no gaps
    assert order_seqs == sorted(order_seqs) and fill_seqs == sorted(fill_seqs)  # in order
    assert rec.close() == 0


def test_close_waits_for_the_database_to_come_back(sqlite_url: str, make_fill: Callable[..., Fill]) -> None:
    rec = Recorder(sqlite_url, connect_timeout_s=0.05, retry_initial_s=0.01, retry_max_s=0.02)
    rec.start()
    assert rec.flush(2.0)
    lock = _Locked(sqlite_url)
    rec.record_fill(make_fill("t1"))
    assert not rec.flush(0.1)
    lock.release()
    assert rec.close(timeout_s=5.0) == 0
    q = StoreQueries(sqlite_url)
    assert [f.trade_id for f in q.fills()] == ["t1"]
    q.close()


def test_close_reports_what_could_not_be_written(sqlite_url: str, make_fill: Callable[..., Fill]) -> None:
    rec = Recorder(sqlite_url, connect_timeout_s=0.05, retry_initial_s=0.01, retry_max_s=0.02)
    rec.start()
    assert rec.flush(2.0)
    lock = _Locked(sqlite_url)
    rec.record_fill(make_fill("t1"))
    rec.record_fill(make_fill("t2"))
    try:
        assert rec.close(timeout_s=0.3) == 3  # two fills and the session stop
    finally:
        lock.release()
    assert not rec.record_fill(make_fill("t3"))  # closed: refused, counted
    assert rec.stats().dropped == 1


def test_bounded_queue_refuses_top_of_book_first_then_drops_and_counts(
    sqlite_url: str, make_fill: Callable[..., Fill]
) -> None:
    rec = Recorder(sqlite_url, max_queued=10, connect_timeout_s=0.05, retry_initial_s=0.01, retry_max_s=0.02)
    rec.start()
    assert rec.flush(2.0)
    lock = _Locked(sqlite_url)
    try:
        accepted = [rec.record_fill(make_fill(f"t{i}")) for i in range(4)]
        assert rec.record_top_of_book("v", "s", bid=None, bid_qty=None, ask=None, ask_qty=None, ts_ns=0)
        accepted += [rec.record_fill(make_fill(f"u{i}")) for i in range(10)]
        assert not rec.record_top_of_book(
            "v", "s2", bid=None, bid_qty=None, ask=None, ask_qty=None, ts_ns=0
        )  # past half the bound
        stats = rec.stats()
        assert accepted.count(True) == 9 and accepted[-5:] == [False] * 5
        assert stats.dropped == 5 and stats.tob_skipped == 1 and stats.backlog == 10
    finally:
        lock.release()
    assert rec.flush(5.0)
    rec.close()


def test_top_of_book_is_sampled_per_instrument(recorder: Recorder) -> None:
    kwargs = {"bid": Decimal("1"), "bid_qty": Decimal("1"), "ask": Decimal("2"), "ask_qty": Decimal("1")}
    assert recorder.record_top_of_book("v", "a", ts_ns=0, **kwargs)
    assert not recorder.record_top_of_book("v", "a", ts_ns=999_999_999, **kwargs)
    assert recorder.record_top_of_book("v", "b", ts_ns=999_999_999, **kwargs)
    assert recorder.record_top_of_book("v", "a", ts_ns=1_000_000_000, **kwargs)
    assert recorder.flush(2.0)
    with recorder.engine.connect() as conn:
        rows = conn.execute(select(schema.top_of_book.c.symbol, schema.top_of_book.c.ts_ns)).all()
    assert sorted(rows) == [("a", 0), ("a", 1_000_000_000), ("b", 999_999_999)]


def test_a_record_the_database_refuses_is_isolated_and_counted(recorder: Recorder) -> None:
    # A record the writer cannot map (a bug upstream) must be skipped and counted, not retried forever.
    class Broken:
        pass

    assert _order(recorder, "ok1", "OPEN", 1)
    recorder._enqueue(Broken())  # type: ignore[arg-type]
    assert _order(recorder, "ok2", "OPEN", 2)
    assert recorder.flush(2.0)
    stats = recorder.stats()
    assert stats.rejected == 1
    q = StoreQueries(recorder.engine)
    assert [o.client_id for o in q.latest_orders()] == ["ok1", "ok2"]


def test_start_fails_loudly_when_the_store_cannot_be_opened(tmp_path: Path) -> None:
    target = tmp_path / "a-directory.sqlite"
    target.mkdir()
    rec = Recorder(f"sqlite:///{target}")
    with pytest.raises(Exception, match="unable to open"):
        rec.start()


def test_float_amounts_never_reach_the_queue(recorder: Recorder) -> None:
    with pytest.raises(TypeError, match="float"):
        recorder.record_order(
            "c",
            "v",
            "s",
            "BUY",
            price=0.1,  # type: ignore[arg-type]
            qty=Decimal(1),
            filled_qty=Decimal(0),
            state="OPEN",
            venue_order_id="",
            ts_ns=0,
        )
