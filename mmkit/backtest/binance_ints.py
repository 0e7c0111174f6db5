"""Fast path for benchmarks: a whole Binance recording as integers, sequenced after its snapshot."""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs

from mmkit.backtest.binance_lines import PRICE_INCREMENT, SIZE_INCREMENT, RecordingFormatError, _lines, _split

IntLevels = list[tuple[int, int]]


@attrs.frozen(slots=True)
class IntRecording:
    """A snapshot and the diffs to apply after it, in ticks/lots, already sequenced.

    ``diffs`` are ``(first_seq, seq, bids, asks)``: those covered by the
    snapshot are gone, the first bridges it and each next one follows on.
    """

    price_increment: Decimal
    size_increment: Decimal
    snapshot_seq: int
    snapshot_bids: IntLevels
    snapshot_asks: IntLevels
    diffs: list[tuple[int, int, IntLevels, IntLevels]]

    @property
    def level_updates(self) -> int:
        return sum(len(bids) + len(asks) for _, _, bids, asks in self.diffs)


def _int_scaler(increment: Decimal) -> Any:
    """str -> int in units of ``increment``; string surgery for powers of ten, exact Decimal otherwise."""
    digits = increment.normalize().as_tuple()
    if digits.digits == (1,) and isinstance(digits.exponent, int) and digits.exponent <= 0:
        places = -digits.exponent

        def by_string(text: str) -> int:
            whole, _, frac = text.partition(".")
            if frac[places:].strip("0"):
                raise ValueError(f"{text} is finer than {increment}")
            return int(whole + frac[:places].ljust(places, "0"))

        return by_string

    def by_decimal(text: str) -> int:
        scaled = Decimal(text) / increment
        if scaled != scaled.to_integral_value():
            raise ValueError(f"{text} is not a multiple of {increment}")
        return int(scaled)

    return by_decimal


def load_int_recording(
    paths: Sequence[Path],
    price_increment: Decimal = PRICE_INCREMENT,
    size_increment: Decimal = SIZE_INCREMENT,
) -> IntRecording:
    """Parse a whole recording into integers and sequence its diffs after the (first) snapshot.

    Raises :class:`RecordingFormatError` if the recording has no snapshot or the
    diffs do not follow on from it: a benchmark on a broken stream measures nothing.
    """
    price, size = _int_scaler(price_increment), _int_scaler(size_increment)
    snapshot: dict[str, Any] | None = None
    diffs: list[tuple[int, int, IntLevels, IntLevels]] = []
    for path, number, line in _lines(paths):
        _raw, payload = _split(path, number, line)
        if b"depthUpdate" in payload:
            data = json.loads(payload)["data"]
            diffs.append(
                (
                    int(data["U"]),
                    int(data["u"]),
                    [(price(p), size(q)) for p, q in data["b"]],
                    [(price(p), size(q)) for p, q in data["a"]],
                )
            )
        elif snapshot is None and b"lastUpdateId" in payload:
            snapshot = json.loads(payload)
    if snapshot is None:
        raise RecordingFormatError("recording has no depth snapshot")
    seq = int(snapshot["lastUpdateId"])
    sequenced = [d for d in diffs if d[1] > seq]
    if not sequenced or not sequenced[0][0] <= seq + 1 <= sequenced[0][1]:
        raise RecordingFormatError(f"no diff bridges the snapshot at {seq}")
    for previous, current in itertools.pairwise(sequenced):
        if current[0] != previous[1] + 1:
            raise RecordingFormatError(f"gap between diffs {previous[1]} and {current[0]}")
    return IntRecording(
        price_increment=price_increment,
        size_increment=size_increment,
        snapshot_seq=seq,
        snapshot_bids=[(price(p), size(q)) for p, q in snapshot["bids"]],
        snapshot_asks=[(price(p), size(q)) for p, q in snapshot["asks"]],
        diffs=sequenced,
    )
