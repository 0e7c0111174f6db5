"""Reader for Tardis-style CSV: ``incremental_book_L2`` and ``trades`` (plain or gzip).

Columns (header required, extra columns ignored)::

    incremental_book_L2: exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount
    trades:              exchange,symbol,timestamp,local_timestamp,id,side,price,amount

``timestamp`` is the exchange's time and ``local_timestamp`` the recorder's,
both in microseconds since the epoch; they become ``ts_event`` and
``ts_recv`` (ns). Events are yielded in receive-time order (book and trades
merged), which is the order a live feed would have delivered them in.

Book rows become mmkit events as follows:

* consecutive ``is_snapshot=true`` rows with the same ``local_timestamp``
  form one :class:`BookSnapshot`; a new snapshot after updates means the
  recorder reconnected, and it replaces the book (as it does live);
* consecutive update rows with the same ``local_timestamp`` and
  ``timestamp`` form one :class:`BookDelta`; ``amount`` 0 deletes the level;
* Tardis rows carry no exchange sequence numbers, so the reader numbers the
  messages itself (snapshot ``n``, then ``n+1``, ...), in file order. The
  book tracker's gap check therefore proves only that nothing was lost
  *after* the file was written, not at recording time.

Trades: ``side`` is the aggressor (``buy``/``sell``; ``unknown`` → None).
A malformed row raises :class:`TardisFormatError` naming the file and line.
"""

from __future__ import annotations

import csv
import gzip
import heapq
import io
import zlib
from collections.abc import Iterator, Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path

from mmkit.backtest import recording_cache
from mmkit.model import BookDelta, BookSnapshot, Level, Side, Trade

TardisEvent = BookSnapshot | BookDelta | Trade

_BOOK_COLUMNS = ("exchange", "symbol", "timestamp", "local_timestamp", "is_snapshot", "side", "price", "amount")
_TRADE_COLUMNS = ("exchange", "symbol", "timestamp", "local_timestamp", "id", "side", "price", "amount")
_US = 1_000
#: Bump whenever the parse changes the events it yields: it is part of the on-disk cache key.
READER_VERSION = 1
_EVENT_TYPES: tuple[type, ...] = (BookSnapshot, BookDelta, Trade)


class TardisFormatError(ValueError):
    """A Tardis CSV row could not be understood; names the file and line."""


def _open(path: Path) -> io.TextIOWrapper:
    """Text handle on a plain or gzip CSV; the caller closes it (``with``), which closes the raw file too."""
    if path.name.endswith(".gz"):
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return path.open("r", encoding="utf-8", newline="")


def _rows(path: Path, columns: Sequence[str]) -> Iterator[tuple[int, dict[str, str]]]:
    """The rows of one CSV with their line numbers; a damaged file raises TardisFormatError naming it."""
    line = 1
    try:
        with _open(path) as handle:
            reader = csv.DictReader(handle)
            if reader.fieldnames is None:
                raise TardisFormatError(f"{path}: empty file (no header)")
            missing = [c for c in columns if c not in reader.fieldnames]
            if missing:
                raise TardisFormatError(f"{path}:1: missing columns {missing} (header: {reader.fieldnames})")
            for row in reader:
                line = reader.line_num
                yield line, row
    except FileNotFoundError as exc:
        raise TardisFormatError(f"{path}: no such file") from exc
    except EOFError as exc:
        raise TardisFormatError(f"{path}: truncated: the file ends before its compressed stream does") from exc
    except (OSError, zlib.error, UnicodeDecodeError, csv.Error) as exc:
        raise TardisFormatError(f"{path}:{line}: unreadable ({exc})") from exc


def _aggressor(text: str) -> Side | None:
    side = text.strip().lower()
    if side == "buy":
        return Side.BUY
    if side == "sell":
        return Side.SELL
    return None


def read_tardis_trades(path: Path) -> Iterator[Trade]:
    """Trades of a ``trades`` CSV, in file order."""
    for line, row in _rows(path, _TRADE_COLUMNS):
        try:
            yield Trade(
                venue=row["exchange"],
                symbol=row["symbol"],
                trade_id=row["id"],
                price=Decimal(row["price"]),
                qty=Decimal(row["amount"]),
                aggressor=_aggressor(row["side"]),
                ts_event=int(row["timestamp"]) * _US,
                ts_recv=int(row["local_timestamp"]) * _US,
            )
        except (ValueError, KeyError, InvalidOperation) as exc:
            raise TardisFormatError(f"{path}:{line}: {exc!r}") from exc


class _BookBatch:
    """Rows being gathered into one snapshot or one delta."""

    def __init__(self, venue: str, symbol: str, snapshot: bool, ts_event: int, ts_recv: int) -> None:
        self.venue, self.symbol, self.snapshot = venue, symbol, snapshot
        self.ts_event, self.ts_recv = ts_event, ts_recv
        self.bids: list[Level] = []
        self.asks: list[Level] = []

    def event(self, seq: int) -> BookSnapshot | BookDelta:
        if self.snapshot:
            bids = tuple(sorted(((p, q) for p, q in self.bids if q > 0), reverse=True))
            asks = tuple(sorted((p, q) for p, q in self.asks if q > 0))
            return BookSnapshot(self.venue, self.symbol, seq, bids, asks, self.ts_event, self.ts_recv)
        return BookDelta(self.venue, self.symbol, seq, seq, tuple(self.bids), tuple(self.asks), self.ts_event,
                         self.ts_recv)


def read_tardis_book(path: Path) -> Iterator[BookSnapshot | BookDelta]:
    """Snapshots and deltas of an ``incremental_book_L2`` CSV, in file order, numbered 1, 2, 3..."""
    seq = 0
    batch: _BookBatch | None = None
    for line, row in _rows(path, _BOOK_COLUMNS):
        try:
            snapshot = row["is_snapshot"].strip().lower() == "true"
            ts_event = int(row["timestamp"]) * _US
            ts_recv = int(row["local_timestamp"]) * _US
            side = row["side"].strip().lower()
            level = (Decimal(row["price"]), Decimal(row["amount"]))
            if side not in ("bid", "ask"):
                raise ValueError(f"side must be bid or ask, got {row['side']!r}")
        except (ValueError, KeyError, InvalidOperation) as exc:
            raise TardisFormatError(f"{path}:{line}: {exc!r}") from exc
        same = batch is not None and (
            snapshot == batch.snapshot and batch.ts_recv == ts_recv and (snapshot or batch.ts_event == ts_event)
        )
        if not same:
            if batch is not None:
                seq += 1
                yield batch.event(seq)
            batch = _BookBatch(row["exchange"], row["symbol"], snapshot, ts_event, ts_recv)
        assert batch is not None
        (batch.bids if side == "bid" else batch.asks).append(level)
    if batch is not None:
        seq += 1
        yield batch.event(seq)


def read_tardis(
    book: Path | None, trades: Path | None = None, disk_cache: bool | Path = True, freeze: bool = False
) -> Iterator[TardisEvent]:
    """Book and trades merged by receive time (stable: book first on a tie, as files are written).

    A read to its end is also written to the on-disk cache of
    :mod:`mmkit.backtest.recording_cache`, keyed by each file's path, size,
    mtime and inode, the role it plays (book or trades) and
    :data:`READER_VERSION`; a later read of the same files, in any process,
    loads it instead of parsing the CSV. ``disk_cache`` True puts it where
    the environment says (``MMKIT_CACHE_DIR``, ``off`` to disable), False
    disables it, a path puts it there. ``freeze`` True: the events loaded from
    the cache are frozen out of the garbage collector as they are built (see
    :func:`mmkit.gc_policy.gc_paused`), for a caller about to run them.
    """
    directory = recording_cache.cache_directory(disk_cache) if book is not None or trades is not None else None
    if directory is None:
        return _merged(book, trades)
    return _cached(directory, book, trades, freeze)


def _merged(book: Path | None, trades: Path | None) -> Iterator[TardisEvent]:
    streams: list[Iterator[TardisEvent]] = []
    if book is not None:
        streams.append(read_tardis_book(book))
    if trades is not None:
        streams.append(read_tardis_trades(trades))
    return heapq.merge(*streams, key=lambda event: event.ts_recv)


def _cached(directory: Path, book: Path | None, trades: Path | None, freeze: bool) -> Iterator[TardisEvent]:
    roles = [(role, path) for role, path in (("book", book), ("trades", trades)) if path is not None]
    key = recording_cache.CacheKey(
        files=recording_cache.file_stamps(path for _, path in roles),
        options={"reader": "tardis", "roles": "+".join(role for role, _ in roles)},
        reader_version=READER_VERSION,
    )
    yield from recording_cache.read_through(
        directory, key, _EVENT_TYPES, lambda: _merged(book, trades), freeze=freeze
    )


def tardis_files(directory: Path) -> tuple[Path | None, Path | None]:
    """The ``incremental_book_L2`` and ``trades`` files of a directory (either may be missing)."""

    def pick(kind: str) -> Path | None:
        found = sorted(p for p in directory.iterdir() if kind in p.name and (p.suffix == ".csv"
                                                                           or p.name.endswith(".csv.gz")))
        if len(found) > 1:
            raise TardisFormatError(f"{directory}: several {kind} files {[p.name for p in found]}; pass one")
        return found[0] if found else None

    return pick("incremental_book_L2"), pick("trades")


def is_tardis(path: Path) -> bool:
    """Whether ``path`` (a file or a directory) holds Tardis-style CSV."""
    if path.is_dir():
        return any(tardis_files(path))
    return path.name.endswith((".csv", ".csv.gz"))
