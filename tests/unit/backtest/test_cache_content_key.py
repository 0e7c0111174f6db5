"""The recording cache is keyed on the files' content, not only on their name, size, mtime and inode.

Before (2026-12-08): a recording rewritten in place with the same size and
its mtime put back (``rsync --inplace -t``, ``touch -r``, a restore that
keeps times; here one digit of a print changed, 61837.63 -> 11837.63) kept
every stamp of the key, so the parse of the *old* content was served, from
disk in a later process and from memory in the same one: the backtest ran on
data that no longer existed (a fresh parse of the new file gave 3 fills, the
cached one 0), exit 0 either way.
"""

from __future__ import annotations

import gzip
import os
from decimal import Decimal
from pathlib import Path

import pytest
from loguru import logger

from mmkit.backtest.binance import clear_recording_cache, read_recording
from mmkit.model import Trade

LINES = [
    b'1000000000 {"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":999,"s":"BTCUSDT","U":5,"u":7,'
    b'"b":[["61837.62000000","1.50000000"]],"a":[["61837.64000000","0.00000000"]]}}',
    b'1000000200 {"lastUpdateId":6,"bids":[["61837.60000000","1.00000000"]],"asks":[["61837.65000000","2.00000000"]]}',
    b'1000000300 {"stream":"btcusdt@trade","data":{"e":"trade","E":1000,"s":"BTCUSDT","t":42,"p":"61837.63000000",'
    b'"q":"0.50000000","T":1000,"m":true,"M":true}}',
]


@pytest.fixture(autouse=True)
def _fresh() -> None:
    logger.remove()
    clear_recording_cache()


def _prices(path: Path, cache: Path) -> list[Decimal]:
    return [e.price for e in read_recording([path], disk_cache=cache) if isinstance(e, Trade)]


def _rewrite_in_place_keeping_the_stamps(path: Path, text: bytes) -> None:
    """New content of the same size, written into the same inode, the old mtime put back."""
    before = path.stat()
    data = gzip.compress(text, compresslevel=0, mtime=0)  # stored: one changed digit keeps the size
    assert len(data) == before.st_size
    with open(path, "r+b") as handle:
        handle.write(data)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (before.st_size, before.st_mtime_ns, before.st_ino)


@pytest.mark.parametrize("where", ["disk", "process"])
def test_a_file_rewritten_in_place_with_its_stamps_kept_is_parsed_again(tmp_path: Path, where: str) -> None:
    path, cache = tmp_path / "rec.gz", tmp_path / "cache"
    text = b"\n".join(LINES) + b"\n"
    path.write_bytes(gzip.compress(text, compresslevel=0, mtime=0))
    assert _prices(path, cache) == [Decimal("61837.63")]
    assert list(cache.iterdir()), "the first read writes the on-disk entry"
    _rewrite_in_place_keeping_the_stamps(path, text.replace(b'"p":"61837.63', b'"p":"11837.63'))
    if where == "disk":
        clear_recording_cache()  # a later process: only the on-disk entry is left
    assert _prices(path, cache) == [Decimal("11837.63")]
