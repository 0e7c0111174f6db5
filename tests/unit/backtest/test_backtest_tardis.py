"""Tardis-style CSV reader: snapshots, batched deltas, trades, merged by receive time."""

from __future__ import annotations

import gzip
from decimal import Decimal as D
from pathlib import Path

import pytest

from mmkit.app.backtest_cmd import load_events
from mmkit.backtest.tardis import TardisFormatError, read_tardis, read_tardis_book, tardis_files
from mmkit.book.tracker import OrderBookTracker
from mmkit.model import BookDelta, BookSnapshot, Side, Trade

BOOK = """exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount
binance,BTCUSDT,1000,1500,true,ask,100.2,1
binance,BTCUSDT,1000,1500,true,ask,100.1,2
binance,BTCUSDT,1000,1500,true,bid,99.9,3
binance,BTCUSDT,1000,1500,true,bid,100.0,4
binance,BTCUSDT,2000,2600,false,bid,100.0,0
binance,BTCUSDT,2000,2600,false,bid,99.95,1.5
binance,BTCUSDT,3000,3400,false,ask,100.1,0.5
binance,BTCUSDT,9000,9100,true,bid,98,1
binance,BTCUSDT,9000,9100,true,ask,99,1
"""
TRADES = """exchange,symbol,timestamp,local_timestamp,id,side,price,amount
binance,BTCUSDT,1900,2000,t1,sell,100.0,0.4
binance,BTCUSDT,3300,3400,t2,buy,100.1,0.1
binance,BTCUSDT,3500,3600,t3,unknown,100.1,0.1
"""


def write(tmp_path: Path, name: str, text: str, zipped: bool = False) -> Path:
    path = tmp_path / (name + (".csv.gz" if zipped else ".csv"))
    if zipped:
        with gzip.open(path, "wt", encoding="utf-8") as handle:
            handle.write(text)
    else:
        path.write_text(text)
    return path


def test_book_rows_become_snapshots_and_deltas_with_synthetic_sequence(tmp_path: Path) -> None:
    events = list(read_tardis_book(write(tmp_path, "x_incremental_book_L2", BOOK)))
    assert [type(e).__name__ for e in events] == ["BookSnapshot", "BookDelta", "BookDelta", "BookSnapshot"]
    snap = events[0]
    assert isinstance(snap, BookSnapshot)
    assert snap.bids == ((D("100.0"), D(4)), (D("99.9"), D(3))) and snap.asks[0] == (D("100.1"), D(2))
    assert (snap.ts_event, snap.ts_recv) == (1_000_000, 1_500_000)  # us -> ns, exchange vs local
    first = events[1]
    assert isinstance(first, BookDelta) and first.bids == ((D("100.0"), D(0)), (D("99.95"), D("1.5")))
    assert [e.seq for e in events] == [1, 2, 3, 4]


def test_merged_stream_feeds_the_real_book_tracker(tmp_path: Path) -> None:
    book = write(tmp_path, "x_incremental_book_L2", BOOK, zipped=True)
    trades = write(tmp_path, "x_trades", TRADES)
    assert tardis_files(tmp_path) == (book, trades)
    events = list(read_tardis(book, trades))
    assert [e.ts_recv for e in events] == sorted(e.ts_recv for e in events)
    kinds = [type(e).__name__ for e in events]
    assert kinds == ["BookSnapshot", "Trade", "BookDelta", "BookDelta", "Trade", "Trade", "BookSnapshot"]
    tradelist = [e for e in events if isinstance(e, Trade)]
    assert [t.aggressor for t in tradelist] == [Side.SELL, Side.BUY, None]
    tracker = OrderBookTracker("binance", "BTCUSDT", D("0.01"), D("0.01"), request_resync=lambda reason: None)
    for event in events[:5]:
        if isinstance(event, BookSnapshot):
            tracker.on_snapshot(event)
        elif isinstance(event, BookDelta):
            tracker.on_delta(event)
    assert tracker.is_valid
    assert tracker.book.mid() == (D("99.95") + D("100.1")) / 2
    assert load_events(tmp_path) == events  # the backtest command reads the same directory


def test_bad_row_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "bad_incremental_book_L2", BOOK.replace("99.95,1.5", "oops,1.5"))
    with pytest.raises(TardisFormatError, match=r"bad_incremental_book_L2.csv:7"):
        list(read_tardis_book(path))
    missing = write(tmp_path, "m_trades", "exchange,symbol\nbinance,BTCUSDT\n")
    with pytest.raises(TardisFormatError, match="missing columns"):
        list(read_tardis(None, missing))
