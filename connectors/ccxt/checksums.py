"""Book integrity checks that ccxt does not do for us.

ccxt 4.5.x ships Kraken's WS v2 book checksum switched off (its formatter
works on floats and disagrees with the venue) and never looks at Coinbase
Advanced Trade's ``sequence_num``. A book that silently drifts from the
venue's is worse than no book: it prices quotes off levels that do not exist.
So both checks live here, as pure functions over exact decimals, and the
connector resyncs when they fail.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence
from decimal import Decimal

import attrs

#: A level as ccxt hands it over (floats) or as we keep it (Decimal).
AnyLevel = Sequence[float | Decimal | str]


def _kraken_field(value: float | Decimal | str, decimals: int) -> str:
    """Format one price or qty the way Kraken checksums it.

    ``repr`` of a float is the shortest string that round-trips, so going
    through ``str`` recovers the venue's decimal text exactly before we pad
    it to the pair's precision.
    """
    exact = value if isinstance(value, Decimal) else Decimal(str(value))
    text = f"{exact:.{decimals}f}".replace(".", "")
    return text.lstrip("0")


def kraken_checksum(
    asks: Iterable[AnyLevel],
    bids: Iterable[AnyLevel],
    price_decimals: int,
    qty_decimals: int,
    depth: int = 10,
) -> int:
    """CRC32 over the top ``depth`` asks (best first) then the top ``depth`` bids.

    Each level contributes price then qty, formatted to the pair's precision
    with the "." removed and leading zeros stripped (Kraken WS v2 book docs).
    """
    parts: list[str] = []
    for side in (asks, bids):
        for index, level in enumerate(side):
            if index >= depth:
                break
            parts.append(_kraken_field(level[0], price_decimals))
            parts.append(_kraken_field(level[1], qty_decimals))
    return zlib.crc32("".join(parts).encode("ascii")) & 0xFFFFFFFF


def decimals_of(increment: Decimal | float | str) -> int:
    """Number of decimals of a tick such as 0.1 or 1e-08 (Kraken precisions come as increments)."""
    exact = increment if isinstance(increment, Decimal) else Decimal(str(increment))
    exponent = exact.normalize().as_tuple().exponent
    return max(0, -int(exponent))


@attrs.define(slots=True)
class SequenceChecker:
    """Detects gaps in a per-connection message counter (Coinbase ``sequence_num``).

    Coinbase numbers every message of one websocket connection, across
    channels, from 0. Any jump means a message was lost and every book on
    that connection may be wrong; a counter going back means the connection
    was replaced under us. Both answer "resync".
    """

    last: int | None = None
    gaps: int = 0

    def check(self, seq: int) -> bool:
        """Record ``seq``; return True when it follows the previous one (or is the first)."""
        previous, self.last = self.last, seq
        if previous is None or seq == previous + 1:
            return True
        self.gaps += 1
        return False

    def reset(self) -> None:
        """Forget the counter (a new connection starts a new sequence)."""
        self.last = None
