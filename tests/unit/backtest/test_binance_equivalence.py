"""The integer-first Binance reader yields exactly the events the old per-level Decimal parse yielded.

The oracle is :mod:`reference_binance_reader`, a frozen copy of the old
parse (Decimal per level, integers derived from the Decimals with
``scaleb``). Compared per event: equality (every field, levels included),
the class, the :class:`ScaledLevels` (not part of ``==``), the Decimal
texts (``1.0`` == ``1.00``, but reports print them), and that equal texts
are one object. A level scaled wrongly, a lost trailing zero or a moved
clock fails here.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from reference_binance_reader import read_reference

from mmkit.backtest.binance import (
    IDENTITY_CORRECTION,
    PRICE_INCREMENT,
    SIZE_INCREMENT,
    TopOfBook,
    clear_recording_cache,
    read_recording,
    recording_files,
)
from mmkit.model import BookDelta, BookSnapshot, Trade
from mmkit.testing.binance_recordings import synthetic_recording


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    clear_recording_cache()
    yield
    clear_recording_cache()


def _numbers(event: Any) -> list[Decimal]:
    if isinstance(event, BookSnapshot | BookDelta):
        return [n for level in event.bids + event.asks for n in level]
    if isinstance(event, Trade):
        return [event.price, event.qty]
    if isinstance(event, TopOfBook):
        return [event.bid_price, event.bid_qty, event.ask_price, event.ask_qty]
    return []


def assert_same_events(new: Sequence[Any], old: Sequence[Any]) -> None:
    assert len(new) == len(old)
    assert [type(e) for e in new] == [type(e) for e in old]
    assert list(new) == list(old)
    for ours, theirs in zip(new, old, strict=True):
        if isinstance(ours, BookSnapshot | BookDelta):
            assert ours.scaled is not None and theirs.scaled is not None
            assert ours.scaled == theirs.scaled, f"scaled levels differ at seq {ours.seq}"
        assert list(map(str, _numbers(ours))) == list(map(str, _numbers(theirs)))


def assert_scaled_from_the_decimals(events: Sequence[Any]) -> None:
    """Independently of the oracle: each integer level is its Decimal level over the increments, exactly."""
    for event in events:
        if isinstance(event, BookSnapshot | BookDelta):
            assert event.scaled is not None
            for decimals, ints in ((event.bids, event.scaled.bids), (event.asks, event.scaled.asks)):
                expected = tuple((int(p / PRICE_INCREMENT), int(q / SIZE_INCREMENT)) for p, q in decimals)
                assert ints == expected
                assert all(p / PRICE_INCREMENT == tick and q / SIZE_INCREMENT == lot
                           for (p, q), (tick, lot) in zip(decimals, ints, strict=True))


def assert_shared(events: Sequence[Any]) -> None:
    by_text: dict[str, int] = {}
    for event in events:
        if isinstance(event, TopOfBook):
            continue  # the ticker's Decimals are its own, as they always were
        for number in _numbers(event):
            assert by_text.setdefault(str(number), id(number)) == id(number), f"{number} is not shared"


@pytest.mark.parametrize("market", ["spot", "usdm", "coinm"])
@pytest.mark.parametrize("with_tickers", [False, True])
def test_synthetic_recordings_read_as_before(tmp_path: Path, market: str, with_tickers: bool) -> None:
    rec = synthetic_recording(market, seconds=30, gap_after_s=12, snapshot_again_after_s=20)  # type: ignore[arg-type]
    paths = rec.write(tmp_path, parts=2)
    new = list(read_recording(paths, with_tickers=with_tickers, disk_cache=False))
    assert_same_events(new, read_reference(paths, with_tickers=with_tickers))
    assert_scaled_from_the_decimals(new)
    assert_shared(new)
    assert any(isinstance(e, BookDelta) for e in new) and any(isinstance(e, Trade) for e in new)


def test_identity_correction_reads_as_before(tmp_path: Path) -> None:
    paths = synthetic_recording("spot", seconds=10).write(tmp_path)
    new = list(read_recording(paths, correction=IDENTITY_CORRECTION))
    assert_same_events(new, read_reference(paths, correction=IDENTITY_CORRECTION))


def test_texts_keep_their_digits_and_odd_forms_scale_by_value(tmp_path: Path) -> None:
    """Trailing zeros, no point, exponents, a leading point: the same Decimal text and the same integers."""
    import gzip

    lines = [
        b'1000 {"lastUpdateId":6,"bids":[["100.00000000","1.00000000"],["99","2"]],"asks":[["100.03","2.5"]]}',
        b'2000 {"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":7,"u":8,'
        b'"b":[["1E+2","5E-8"],[".5","0.10"],["100.010","0"]],"a":[["100.03000000","0.00000000"]]}}',
        b'3000 {"stream":"btcusdt@trade","data":{"e":"trade","E":2,"s":"BTCUSDT","t":9,"p":"100.010","q":"0.10",'
        b'"T":2,"m":false,"M":true}}',
        b'4000 {"stream":"btcusdt@trade","data":{"e":"trade","E":3,"s":"BTCUSDT","t":10,"p":"99","q":"2",'
        b'"T":3,"m":true,"M":true,"x":1}}',  # another shape: read through the JSON path, same event
    ]
    path = tmp_path / "rec.gz"
    with gzip.open(path, "wb") as handle:
        handle.write(b"\n".join(lines) + b"\n")
    new = list(read_recording([path], correction=IDENTITY_CORRECTION))
    assert_same_events(new, read_reference([path], correction=IDENTITY_CORRECTION))
    assert_scaled_from_the_decimals(new)
    delta = new[1]
    assert isinstance(delta, BookDelta) and delta.scaled is not None
    assert delta.scaled.bids == ((10000, 5), (50, 10_000_000), (10001, 0))
    assert [str(p) for p, _ in delta.bids] == ["1E+2", "0.5", "100.010"]  # as Decimal prints them, as before


@pytest.mark.shared_data
@pytest.mark.parametrize("with_tickers", [False, True])
def test_shared_recording_reads_as_before(shared_data: Path, with_tickers: bool) -> None:
    paths = recording_files(shared_data / "binance_spot_btcusdt")
    new = list(read_recording(paths, with_tickers=with_tickers, disk_cache=False))
    assert_same_events(new, read_reference(paths, with_tickers=with_tickers))
    assert_scaled_from_the_decimals(new)
    assert_shared(new)
