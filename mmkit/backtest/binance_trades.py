"""Binance trade ids of one read: a print delivered twice, or prints of another recording, stop the read.

Why: the replayed venue fills our orders from every print it is handed, so
one print read twice (a line the recorder wrote twice, a slice pasted in
again within the reader's 1 s clock jitter) could fill us twice, and the
report would look like any other. Binance numbers a symbol's prints one
after the other (``t`` for ``@trade``, ``a`` for ``@aggTrade``), and the
shared recording's 19,904 prints come in strictly increasing. Recorders with
one connection per stream may still stamp a few prints out of order, so the
check is not "always up" but:

* an id seen before, within :data:`RECENT` of the highest id, is a repeat:
  refused, naming both lines;
* an id more than :data:`RECENT` below the highest one seen goes back too
  far to be jitter (a file of another recording, an older slice): refused.

Only a window of ids is kept, not every id: a month of prints is tens of
millions.
"""

from __future__ import annotations

from pathlib import Path

#: How many of the latest trade ids are remembered (a busy minute of BTCUSDT prints, far beyond 1 s of jitter).
RECENT = 4096


class TradeIds:
    """The trade ids of a read within :data:`RECENT` of the newest, and where each was; :meth:`add` refuses a repeat.

    The usual print has a new highest id: one int compare and one dict store.
    The remembered ids are pruned in bulk (when twice the window), not one
    by one, which cost a deque and a delete per print.
    """

    def __init__(self) -> None:
        self._where: dict[int, tuple[Path, int]] = {}
        self._highest = -1
        self._highest_at: tuple[Path, int] | None = None

    def add(self, trade_id: str, path: Path, number: int) -> None:
        """Record the print ``trade_id`` at ``path``:``number``; ValueError if it repeats or goes back too far."""
        try:
            value = int(trade_id)
        except ValueError:
            raise ValueError(f"trade id {trade_id!r} is not an integer") from None
        where = self._where
        here = (path, number)
        if value > self._highest:
            self._highest, self._highest_at = value, here
        else:
            seen = where.get(value)
            if seen is not None:
                raise ValueError(f"trade id {trade_id} repeats {_place(seen, path)}: one print delivered twice "
                                 "(a line written twice, or a slice of the recording pasted in again)")
            if value < self._highest - RECENT:
                assert self._highest_at is not None
                raise ValueError(
                    f"trade id {trade_id} goes back from trade id {self._highest} ({_place(self._highest_at, path)}) "
                    f"by more than {RECENT} prints: prints of another recording mixed in (Binance numbers a "
                    "symbol's prints in order)")
        where[value] = here
        if len(where) > 2 * RECENT:
            floor = self._highest - RECENT
            self._where = {key: at for key, at in where.items() if key >= floor}


def _place(seen: tuple[Path, int], path: Path) -> str:
    """``line N`` in the same file, else ``<file>:N``."""
    return f"line {seen[1]}" if seen[0] == path else f"{seen[0].name}:{seen[1]}"


__all__ = ["RECENT", "TradeIds"]
