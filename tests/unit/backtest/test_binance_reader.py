"""The Binance reader on a small synthetic recording: events, line numbers, GC state, ticker skipping."""

from __future__ import annotations

import gc
import gzip
from decimal import Decimal
from pathlib import Path

import pytest

from mmkit.backtest.binance import (
    IDENTITY_CORRECTION,
    RecordingFormatError,
    TopOfBook,
    estimate_clock_correction,
    read_recording,
)
from mmkit.model import BookDelta, BookSnapshot, Side, Trade

LINES = [
    b'1000000000 {"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":999,"s":"BTCUSDT","U":5,"u":7,'
    b'"b":[["100.01000000","1.50000000"]],"a":[["100.02000000","0.00000000"]]}}',
    b'1000000100 {"stream":"btcusdt@bookTicker","data":{"u":7,"s":"BTCUSDT","b":"100.01000000","B":"1.5",'
    b'"a":"100.03000000","A":"2"}}',
    b"",
    b'1000000200 {"lastUpdateId":6,"bids":[["100.00000000","1.00000000"]],"asks":[["100.03000000","2.00000000"]]}',
    b'1000000300 {"stream":"btcusdt@trade","data":{"e":"trade","E":1000,"s":"BTCUSDT","t":42,"p":"100.01000000",'
    b'"q":"0.50000000","T":1000,"m":true,"M":true}}',
]


def _write(tmp_path: Path, lines: list[bytes]) -> Path:
    path = tmp_path / "rec.gz"
    with gzip.open(path, "wb") as handle:
        handle.write(b"\n".join(lines) + b"\n")
    return path


def test_events_in_file_order_with_shared_decimals(tmp_path: Path) -> None:
    path = _write(tmp_path, LINES)
    events = list(read_recording([path], correction=IDENTITY_CORRECTION))
    assert [type(e) for e in events] == [BookDelta, BookSnapshot, Trade]
    delta, snapshot, trade = events
    assert isinstance(delta, BookDelta) and isinstance(snapshot, BookSnapshot) and isinstance(trade, Trade)
    assert delta == BookDelta("binance", "BTCUSDT", 5, 7, ((Decimal("100.01"), Decimal("1.5")),),
                              ((Decimal("100.02"), Decimal(0)),), 999_000_000, 1_000_000_000)
    assert str(delta.bids[0][0]) == "100.01000000"  # the recorded text, not normalized
    assert trade.price is delta.bids[0][0]  # one Decimal per distinct text
    assert trade.aggressor is Side.SELL and trade.trade_id == "42"
    assert snapshot.seq == 6 and snapshot.ts_event == snapshot.ts_recv == 1_000_000_200


def test_tickers_on_request(tmp_path: Path) -> None:
    path = _write(tmp_path, LINES)
    tickers = [e for e in read_recording([path], correction=IDENTITY_CORRECTION, with_tickers=True)
               if isinstance(e, TopOfBook)]
    assert [(t.seq, t.bid_price, t.ask_qty) for t in tickers] == [(7, Decimal("100.01"), Decimal(2))]


def test_estimated_correction_is_the_same_as_estimating_alone(tmp_path: Path) -> None:
    path = _write(tmp_path, LINES)
    correction = estimate_clock_correction([path])
    assert list(read_recording([path])) == list(read_recording([path], correction=correction))


def test_bad_line_names_file_and_line_and_restores_gc(tmp_path: Path) -> None:
    path = _write(tmp_path, [*LINES, b'1000000400 {"stream":"btcusdt@depth@100ms","data":{"E":1}}'])
    assert gc.isenabled()
    with pytest.raises(RecordingFormatError, match=r"rec\.gz:6"):
        list(read_recording([path], correction=IDENTITY_CORRECTION))
    assert gc.isenabled()


def test_gc_left_off_when_it_was_off(tmp_path: Path) -> None:
    path = _write(tmp_path, LINES)
    gc.disable()
    try:
        list(read_recording([path], correction=IDENTITY_CORRECTION))
        assert not gc.isenabled()
    finally:
        gc.enable()
