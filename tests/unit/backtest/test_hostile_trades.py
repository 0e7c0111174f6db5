"""Trade lines a damaged or mixed recording may hold: refused at the read, naming the file and line.

Before (2026-12-08), each was read without a word and the backtest exited 0:

* a trade of another symbol (a recorder subscribed to ``ethusdt@trade`` too,
  or a file of another recording mixed in) became a BTCUSDT print: 40
  ETHUSDT prints at 2600 slipped into 38 s of the shared recording filled
  the layered maker's bids 136 times (0 without them);
* a trade price of ``-61837.63`` or ``0``, or a size of ``0``, ``NaN`` or
  ``Infinity``, or a price off the tick grid: a negative print traded
  "through" every bid of ours (13 fills), ``NaN`` crashed the run at the
  first resting order (exit 4, ``InvalidOperation``, no line named);
* a trade id seen before (a line written twice by the recorder, a slice
  pasted in twice within the clock jitter): one print delivered twice, and
  filled from twice (every print of the shared recording's first 30,000
  lines written twice: the layered maker's 21 fills became 35, exit 0).
"""

from __future__ import annotations

import gzip
from decimal import Decimal
from pathlib import Path

import pytest

from mmkit.app import cli
from mmkit.app.outcome import EXIT_USAGE
from mmkit.backtest.binance import RecordingFormatError, read_recording
from mmkit.model import Trade

HEAD = [
    b'1000000000 {"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":999,"s":"BTCUSDT","U":5,"u":7,'
    b'"b":[["100.01000000","1.50000000"]],"a":[["100.02000000","0.00000000"]]}}',
    b'1000000200 {"lastUpdateId":6,"bids":[["100.00000000","1.00000000"]],"asks":[["100.03000000","2.00000000"]]}',
]


def _trade(
    ts: int, trade_id: int, price: str = "100.01000000", qty: str = "0.50000000", symbol: str = "BTCUSDT"
) -> bytes:
    """A trade line exactly as Binance writes it (the reader's fast, regular-expression path)."""
    return (
        f'{ts} {{"stream":"{symbol.lower()}@trade","data":{{"e":"trade","E":1000,"s":"{symbol}","t":{trade_id},'
        f'"p":"{price}","q":"{qty}","T":1000,"m":true,"M":true}}}}'
    ).encode()


def _agg_trade(ts: int, trade_id: int, price: str = "100.01000000", qty: str = "0.5", symbol: str = "BTCUSDT") -> bytes:
    """An aggTrade line (another shape: the reader's JSON path)."""
    return (
        f'{ts} {{"stream":"{symbol.lower()}@aggTrade","data":{{"e":"aggTrade","E":1000,"s":"{symbol}","a":{trade_id},'
        f'"p":"{price}","q":"{qty}","f":1,"l":2,"T":1000,"m":false,"M":true}}}}'
    ).encode()


def _read(tmp_path: Path, lines: list[bytes]) -> list[object]:
    path = tmp_path / "rec.gz"
    with gzip.open(path, "wb") as handle:
        handle.write(b"\n".join(lines) + b"\n")
    return list(read_recording([path], disk_cache=False))


@pytest.mark.parametrize("make", [_trade, _agg_trade])
def test_a_trade_of_another_symbol_is_refused_naming_the_line_and_both_symbols(tmp_path: Path, make: object) -> None:
    assert callable(make)
    lines = [*HEAD, make(1000000300, 42), make(1000000400, 43, "2600.00000000", symbol="ETHUSDT")]
    with pytest.raises(RecordingFormatError, match=r"rec\.gz:4: .*trade of ETHUSDT in a recording of BTCUSDT"):
        _read(tmp_path, lines)


def test_a_book_ticker_of_another_symbol_is_refused_when_tickers_are_read(tmp_path: Path) -> None:
    ticker = (b'1000000300 {"stream":"ethusdt@bookTicker","data":{"u":7,"s":"ETHUSDT","b":"2600.01","B":"1",'
              b'"a":"2600.02","A":"2"}}')
    path = tmp_path / "rec.gz"
    with gzip.open(path, "wb") as handle:
        handle.write(b"\n".join([*HEAD, ticker]) + b"\n")
    with pytest.raises(RecordingFormatError, match=r"rec\.gz:3: .*bookTicker of ETHUSDT in a recording of BTCUSDT"):
        list(read_recording([path], with_tickers=True, disk_cache=False))


@pytest.mark.parametrize("make", [_trade, _agg_trade])
@pytest.mark.parametrize(("price", "qty", "why"), [
    ("-100.01000000", "0.5", r"trade price -100.01000000 must be above 0"),
    ("0.00000000", "0.5", r"trade price 0.00000000 must be above 0"),
    ("100.01500000", "0.5", r"trade price 100.01500000 is finer than the recording's trade price increment 0.01"),
    ("NaN", "0.5", r"trade price NaN is not a finite number"),
    ("100.01", "0.00000000", r"trade size 0.00000000 must be above 0"),
    ("100.01", "-0.5", r"trade size -0.5 must be above 0"),
    ("100.01", "Infinity", r"trade size Infinity is not a finite number"),
    ("100.01", "0.000000001", r"trade size 0.000000001 is finer than"),
])
def test_a_trade_whose_price_or_size_is_not_a_positive_number_on_the_grid_is_refused(
    tmp_path: Path, make: object, price: str, qty: str, why: str
) -> None:
    assert callable(make)
    with pytest.raises(RecordingFormatError, match=rf"rec\.gz:3: .*{why}"):
        _read(tmp_path, [*HEAD, make(1000000300, 42, price, qty)])


def test_exponent_notation_in_a_trade_is_read_exactly_as_in_a_level(tmp_path: Path) -> None:
    events = _read(tmp_path, [*HEAD, _agg_trade(1000000300, 42, "1.0001E+2", "5E-1")])
    trade = events[-1]
    assert isinstance(trade, Trade) and trade.price == Decimal("100.01") and trade.qty == Decimal("0.5")


@pytest.mark.parametrize("make", [_trade, _agg_trade])
def test_a_trade_id_seen_before_is_refused_naming_both_lines(tmp_path: Path, make: object) -> None:
    assert callable(make)
    lines = [*HEAD, make(1000000300, 41), make(1000000350, 42), make(1000000400, 42)]
    with pytest.raises(RecordingFormatError, match=r"rec\.gz:5: .*trade id 42 repeats line 4"):
        _read(tmp_path, lines)


def test_a_repeat_in_the_next_file_names_the_earlier_file_and_line(tmp_path: Path) -> None:
    first, second = tmp_path / "a.gz", tmp_path / "b.gz"
    with gzip.open(first, "wb") as handle:
        handle.write(b"\n".join([*HEAD, _trade(1000000300, 42)]) + b"\n")
    with gzip.open(second, "wb") as handle:
        handle.write(_trade(1000000400, 43) + b"\n" + _trade(1000000500, 42) + b"\n")
    with pytest.raises(RecordingFormatError, match=r"b\.gz:2: .*trade id 42 repeats a\.gz:3"):
        list(read_recording([first, second], disk_cache=False))


def test_ids_a_little_out_of_order_are_read_and_far_back_is_refused(tmp_path: Path) -> None:
    """A few prints stamped out of order (one connection per stream) are jitter; thousands back are not."""
    events = _read(tmp_path, [*HEAD, _trade(1000000300, 5000), _trade(1000000310, 4998), _trade(1000000320, 4999)])
    assert [e.trade_id for e in events if isinstance(e, Trade)] == ["5000", "4998", "4999"]
    with pytest.raises(RecordingFormatError, match=r"rec\.gz:4: .*trade id 10 goes back from trade id 5000 "
                                                   r"\(line 3\) by more than 4096 prints"):
        _read(tmp_path, [*HEAD, _trade(1000000300, 5000), _trade(1000000310, 10)])


def test_trades_and_aggregate_trades_in_one_recording_are_refused(tmp_path: Path) -> None:
    """An aggTrade sums @trade prints: a recording of both would deliver every print twice."""
    with pytest.raises(RecordingFormatError, match=r"rec\.gz:4: .*@aggTrade print in a recording whose prints so far "
                                                   r"came from @trade"):
        _read(tmp_path, [*HEAD, _trade(1000000300, 42), _agg_trade(1000000400, 43)])


def test_the_backtest_exits_2_naming_the_line_of_a_foreign_trade_in_a_slice_of_the_shared_recording(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A slice of the real recording with one ETHUSDT print added: one line, exit 2, no report."""
    with gzip.open(shared_data / "binance_spot_btcusdt" / "spot_btcusdt_20240808.gz", "rb") as handle:
        lines = [handle.readline().rstrip(b"\n") for _ in range(1500)]
    at = next(i for i, line in enumerate(lines) if b"@trade" in line and i > 200)
    foreign = lines[at].replace(b"btcusdt@trade", b"ethusdt@trade").replace(b'"s":"BTCUSDT"', b'"s":"ETHUSDT"')
    data = tmp_path / "recording"
    data.mkdir()
    with gzip.open(data / "spot_btcusdt_20240808.gz", "wb") as handle:
        handle.write(b"\n".join([*lines[: at + 1], foreign, *lines[at + 1 :]]) + b"\n")
    out = tmp_path / "out"
    code = cli.main(["backtest", "strategies/layered_example.yml", "--data", str(data), "--setup", "replay",
                     "--no-progress", "--out", str(out)])
    assert code == EXIT_USAGE
    err = capsys.readouterr().err
    assert f"spot_btcusdt_20240808.gz:{at + 2}: " in err and "trade of ETHUSDT in a recording of BTCUSDT" in err
    assert not out.exists()
