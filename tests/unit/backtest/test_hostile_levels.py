"""A book level too large for the books' 64-bit ticks and lots: refused at the read, naming the file and line.

Before (2026-12-08): the read took ``"100000000000000000000.00000000"`` (an
ask of 1e20, 1e22 ticks of 0.01) and the replay crashed at that diff,
``OverflowError: Python int too large to convert to C long``, exit 4 with no
file or line named; the book the crash left behind then reported a gap.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from mmkit._speedups import ENV_PURE
from mmkit.backtest.binance import RecordingFormatError, read_recording
from mmkit.backtest.scaled_text import MAX_UNITS, to_units


def _diff(ask: str) -> bytes:
    return (b'1000000000 {"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":999,"s":"BTCUSDT","U":5,'
            b'"u":7,"b":[["100.01000000","1.50000000"]],"a":[["' + ask.encode() + b'","1.00000000"]]}}')


@pytest.mark.parametrize("pure", [True, False])
@pytest.mark.parametrize(("ask", "what"), [
    ("100000000000000000000.00000000", "price"),   # 1e22 ticks of 0.01
    ("92233720368547758.08", "price"),             # 2**63 ticks exactly: one past the largest
])
def test_a_level_beyond_64_bits_of_ticks_is_refused_naming_the_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pure: bool, ask: str, what: str
) -> None:
    monkeypatch.setenv(ENV_PURE, "1" if pure else "0")
    path = tmp_path / "rec.gz"
    with gzip.open(path, "wb") as handle:
        handle.write(_diff(ask) + b"\n")
    with pytest.raises(RecordingFormatError, match=rf"rec\.gz:1: .*{what} {ask} is beyond the 64-bit units"):
        list(read_recording([path], disk_cache=False))


def test_the_largest_64_bit_level_is_read() -> None:
    from decimal import Decimal

    assert to_units("92233720368547758.07", 2, "price", Decimal("0.01"), True) == MAX_UNITS
    with pytest.raises(ValueError, match="beyond the 64-bit units"):
        to_units("92233720368.54775808", 8, "size", Decimal("0.00000001"), False)
