"""On-disk cache of parsed recordings: parse a recording once, load it quickly in any later process.

Why: parsing the shared Binance recording (gzip, JSON, Decimal and integer
levels, clock fit) costs over a second, which is more than a whole backtest
should take; rebuilding the same events from pre-parsed columns costs a small
fraction of that. Readers call :func:`load` before parsing and :func:`store`
after a complete parse; the in-process cache of the reader stays in front.

Key. An entry is named after *what* was read (each file's resolved path and
the reader's options), and holds the full :class:`CacheKey` -- each file's
size, mtime_ns and inode, the reader's version, :data:`FORMAT_VERSION`, and
(conservatively) the Python version and byte order -- which is checked on
load. A file rewritten, touched or replaced, an option changed or a version
bumped therefore never serves a stale entry: it is logged, ignored and
overwritten by the next parse.

Format. No pickle and no marshal: a file holds only flat arrays of integers
(``array``) and UTF-8 text, described by a JSON header, so loading one can
never run code, whoever wrote the directory. (Whoever can write it can still
change what a backtest sees, as with the data itself, so the directory is
created private, 0700.) Values are interned in tables (distinct Decimal
texts, strings, levels with their integer pairs) and events refer to them by
index; equal Decimal texts therefore share one Decimal object, as they do in
a fresh parse. Anything the format cannot represent exactly (an unexpected
type, an int beyond 64 bits) makes :func:`store` skip the entry rather than
write something approximate. A CRC-32 covers the header and the payload, so
a truncated or damaged file is detected before anything in it is used, and
any error while decoding is a miss, never a failed backtest.

Location: ``MMKIT_CACHE_DIR``, else ``$XDG_CACHE_HOME/mmkit/recordings``, else
``~/.cache/mmkit/recordings``; ``MMKIT_CACHE_DIR=off`` disables the cache. It
is never written next to the data. Writes go to a temporary file that is then
renamed (``os.replace``), so a crash never leaves a half entry under the real
name; a directory that cannot be written is logged and the backtest goes on.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import itertools
import json
import os
import struct
import sys
import tempfile
import zlib
from array import array
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from operator import attrgetter, itemgetter
from pathlib import Path
from types import MemberDescriptorType
from typing import Any

import attrs
from loguru import logger

from mmkit.model import ScaledLevels, Side

#: Bump whenever the layout of a file or the meaning of a column changes (including :data:`_CONSTANTS`).
FORMAT_VERSION = 1
#: File name suffix of an entry.
SUFFIX = ".mmrec"
#: Values of ``MMKIT_CACHE_DIR`` that turn the cache off.
DISABLED_VALUES = frozenset({"off", "0", "false", "no", "none"})

_MAGIC = b"mmkit-recording\x00"
#: After the magic: the header's length and the CRC-32 of everything after them (header and payload).
_PREFIX = struct.Struct("<II")
#: Array typecode of table indices: 4 bytes, unsigned.
_IDX = "I" if array("I").itemsize == 4 else "L"
#: Singletons a column may hold, stored by position (append only; bump FORMAT_VERSION on any change).
_CONSTANTS: tuple[object, ...] = (None, False, True, Side.BUY, Side.SELL)
_CONSTANT_INDEX = {id(value): index for index, value in enumerate(_CONSTANTS)}

FileStamp = tuple[str, int, int, int]
KeyValue = str | int | bool


class UncacheableError(ValueError):
    """The events hold something the format cannot represent exactly; they are not cached."""


class CorruptEntryError(ValueError):
    """A cache file is truncated, damaged, or was written for other files, options or versions."""


def file_stamps(paths: Iterable[Path]) -> tuple[FileStamp, ...]:
    """Each file's resolved path, size, mtime_ns and inode: what tells a rewritten file from the one parsed.

    A file rewritten in place changes its size or mtime (ns), one replaced by
    another changes its inode; any of them changing invalidates a cached parse.
    """
    stamps = []
    for path in paths:
        stat = path.stat()
        stamps.append((str(path.resolve()), stat.st_size, stat.st_mtime_ns, stat.st_ino))
    return tuple(stamps)


@attrs.frozen
class CacheKey:
    """What a cached parse depends on.

    ``options`` are what the reader was asked for (reader name, venue, symbol,
    increments...): together with the files' paths they name the entry, so
    one recording read with other options gets its own file. ``reader_version``
    is the reader's own version constant, to bump whenever its parse changes.
    """

    files: tuple[FileStamp, ...]
    options: Mapping[str, KeyValue]
    reader_version: int

    def identity(self) -> str:
        """The entry's file name: a digest of the files' paths and the options (not of sizes or versions).

        Why not of everything: a file changed or a version bumped then maps
        to the same entry, which is detected as stale, logged and overwritten,
        instead of leaving an orphan behind for every change.
        """
        named = {"files": [stamp[0] for stamp in self.files], "options": dict(self.options)}
        return hashlib.sha256(_canonical(named).encode()).hexdigest()[:32] + SUFFIX

    def as_json(self) -> dict[str, Any]:
        """The full key as stored in (and compared with) an entry's header."""
        return {
            "format": FORMAT_VERSION,
            "reader_version": self.reader_version,
            "python": list(sys.version_info[:2]),
            "byteorder": sys.byteorder,
            "files": [list(stamp) for stamp in self.files],
            "options": dict(self.options),
        }


def _canonical(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


@contextlib.contextmanager
def gc_paused(*, freeze: bool = False) -> Iterator[None]:
    """Pause the cyclic garbage collector while a recording's events are built (parsed, encoded or loaded).

    Why: that allocates millions of small acyclic objects (dicts, lists,
    tuples, events) that reference counting frees on its own, yet every few
    hundred allocations the collector walks everything alive, the growing
    event list included; that cost a quarter of the parse. Callers never
    yield while it is paused (the consumer's code never runs with it off),
    and the previous state is restored.

    ``freeze``: for what lives on after the block (a recording's events live
    until the backtest ends), move everything alive into the permanent
    generation on the way out (``gc.freeze``, a list splice) rather than let
    the next young pass walk the new objects and older passes walk them again:
    on the shared recording that was about 0.1 s at the end of the load and
    0.07 s in the full collection before the run. A later ``gc.unfreeze``
    (the run's GC policy, :mod:`mmkit.app.gc_policy`, does one at its end)
    hands them back; reference counting frees frozen objects as usual.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if freeze:
            gc.freeze()
        if was_enabled:
            gc.enable()


def cache_directory(setting: bool | str | os.PathLike[str] = True) -> Path | None:
    """Where entries live, or None when caching is off.

    ``setting``: True follows the environment (``MMKIT_CACHE_DIR``, which may
    say ``off``; else ``$XDG_CACHE_HOME/mmkit/recordings``; else
    ``~/.cache/mmkit/recordings``), False turns the cache off, a path is used as is.
    """
    if setting is False:
        return None
    if setting is not True:
        return Path(setting)
    configured = os.environ.get("MMKIT_CACHE_DIR", "").strip()
    if configured.lower() in DISABLED_VALUES:
        return None
    if configured:
        return Path(configured).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    if xdg and Path(xdg).is_absolute():  # the XDG spec says to ignore a relative value
        return Path(xdg) / "mmkit" / "recordings"
    try:
        return Path.home() / ".cache" / "mmkit" / "recordings"
    except RuntimeError:  # no home directory to be found
        logger.warning("recording cache: no home directory and MMKIT_CACHE_DIR unset; not caching")
        return None


def load(directory: Path, key: CacheKey, types: Sequence[type]) -> list[Any] | None:
    """The events cached for ``key``, or None (nothing cached, or an entry that is stale or damaged).

    ``types`` are the attrs classes the reader produces; an entry naming any
    other class is rejected. Never raises for a bad entry: it is logged and
    the caller parses again (and :func:`store` overwrites it).
    """
    path = directory / key.identity()
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        logger.warning("recording cache: cannot read {} ({}); parsing instead", path, exc)
        return None
    try:
        with gc_paused(freeze=True):  # the events live until the backtest ends
            events = _decode(data, key.as_json(), types)
    except Exception as exc:  # any failure of a cache file means "no cache", never a failed backtest
        logger.warning("recording cache: ignoring {}: {}; it will be rewritten", path, exc)
        return None
    logger.debug("recording cache: {} events loaded from {}", len(events), path)
    return events


def store(directory: Path, key: CacheKey, events: Sequence[Any], types: Sequence[type]) -> Path | None:
    """Write ``events`` as the entry for ``key``; returns its path, or None when it could not be written.

    The file is written under a temporary name in the same directory and then
    renamed over the entry, so readers see the old entry or the new one, never
    a part (no fsync: a file damaged by a power cut fails its length or CRC
    check on load and is parsed again). A directory that cannot be created or
    written, or events the format cannot hold exactly, are logged and skipped.
    """
    try:
        with gc_paused():  # the tables it builds would make the collector walk every event, again and again
            schema, blobs = _encode(events, types)
    except UncacheableError as exc:
        logger.warning("recording cache: not caching this recording: {}", exc)
        return None
    except Exception as exc:  # a bug here must not fail the backtest that has its events already
        logger.opt(exception=exc).warning("recording cache: not caching this recording: {!r}", exc)
        return None
    header = _canonical({"key": key.as_json(), "schema": schema, "sizes": [len(b) for b in blobs]}).encode()
    crc = zlib.crc32(header)
    for blob in blobs:
        crc = zlib.crc32(blob, crc)
    target = directory / key.identity()
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=directory, prefix=".", suffix=SUFFIX + ".tmp")
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(_MAGIC + _PREFIX.pack(len(header), crc) + header)
                for blob in blobs:
                    out.write(blob)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    except OSError as exc:
        logger.warning("recording cache: cannot write {} ({}); going on without caching", directory, exc)
        return None
    logger.debug("recording cache: {} events written to {}", len(events), target)
    return target


def remove_entries(directory: Path | None = None) -> int:
    """Delete every entry (and any temporary left by a crash) in ``directory`` (default: :func:`cache_directory`).

    Returns how many files were removed. Only files this module writes (by
    suffix) are touched, so pointing it at the wrong directory removes nothing else.
    """
    directory = cache_directory() if directory is None else directory
    if directory is None or not directory.is_dir():
        return 0
    removed = 0
    for path in directory.iterdir():
        if path.name.endswith((SUFFIX, SUFFIX + ".tmp")) and path.is_file():
            path.unlink(missing_ok=True)
            removed += 1
    return removed


# --------------------------------------------------------------------------
# Encoding: events -> (schema, blobs)
# --------------------------------------------------------------------------
#
# Column kinds (per field of one event type):
#   c  constants (None, booleans, Side): one byte each, an index into _CONSTANTS
#   i  int64 values
#   d  Decimals, as indices into the table of distinct Decimal texts
#   s  str, as indices into the table of distinct strings
#   L  tuples of (Decimal, Decimal) levels: per event a length, then entries of the level table
#   A  ScaledLevels or None, aligned with the event's ``bids`` and ``asks``: each level-table
#      entry also holds the integer pair of its level, so these reuse the entries of those columns


def _type_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _positional_fields(cls: type) -> list[str]:
    """Field names in constructor order; a class that cannot be rebuilt positionally is refused."""
    if not attrs.has(cls):
        raise UncacheableError(f"{_type_name(cls)} is not an attrs class")
    fields = attrs.fields(cls)
    if any(not f.init or f.kw_only for f in fields):
        raise UncacheableError(f"{_type_name(cls)} has fields its constructor does not take positionally")
    return [f.name for f in fields]


def _kind(values: Sequence[object]) -> str:
    """A column's kind, from its first value that is not a constant (every value is checked when encoded)."""
    for value in values:
        if id(value) not in _CONSTANT_INDEX:
            kind = _KINDS.get(type(value))
            if kind is None:
                raise UncacheableError(f"no column kind for {type(value).__name__}")
            return kind
    return "c"


_KINDS: dict[type, str] = {Decimal: "d", int: "i", str: "s", tuple: "L", ScaledLevels: "A"}


def _number(table: dict[Any, int], keys: list[Any]) -> tuple[list[int], int]:
    """Each key's number in ``table``, new keys numbered on from ``len(table)`` in order; and that start.

    One dict operation per key: ``map`` draws ``len(table)`` just before each
    ``setdefault``, so a new key gets the next number and a known one keeps its own.
    """
    start = len(table)
    return list(map(table.setdefault, keys, map(len, itertools.repeat(table)))), start


def _firsts(items: list[Any], numbers: list[int], start: int, end: int) -> list[Any]:
    """One item for each number from ``start`` to ``end`` (the new keys): any will do, equal numbers mean equal keys."""
    by_number = dict(zip(numbers, items, strict=True))
    return list(map(by_number.__getitem__, range(start, end)))


def _only(values: Iterable[object], *allowed: type) -> bool:
    """Whether every value is exactly of one of ``allowed`` (subclasses excluded: they would not round-trip)."""
    return set(map(type, values)) <= set(allowed)


class _Encoder:
    """Builds the value tables and the blobs; columns refer to blobs by index.

    Why the bulk style (``map``, ``zip``, ``set`` over whole columns rather
    than a loop per value): a recording has hundreds of thousands of levels,
    and a Python-level loop over them cost more than the parse it follows.
    Only distinct values (interned tables) are handled one by one.
    """

    def __init__(self) -> None:
        self.blobs: list[bytes] = []
        self.decimal_texts: dict[str, int] = {}
        self.decimal_ids: dict[int, int] = {}  # id -> object number; the events keep every Decimal alive meanwhile
        self.object_texts: list[int] = []  # object number -> text index
        self.strings: dict[str, int] = {}
        #: (id of price, id of qty, scaled price, scaled size) -> entry; (0, 0) where a level has no integer pair
        self.levels: dict[tuple[int, int, int, int], int] = {}
        #: per entry, a level with its two Decimals
        self.level_rows: list[tuple[Decimal, Decimal]] = []

    def blob(self, data: bytes) -> int:
        self.blobs.append(data)
        return len(self.blobs) - 1

    def array(self, typecode: str, values: Iterable[int]) -> int:
        try:
            return self.blob(array(typecode, values).tobytes())
        except (OverflowError, TypeError) as exc:
            raise UncacheableError(f"a value does not fit an integer array: {exc}") from exc

    def texts(self, table: Mapping[str, int]) -> dict[str, int]:
        """A text table: the texts joined by newlines (which none may contain), and how many there are."""
        joined = "\n".join(table)
        if joined.count("\n") != max(len(table) - 1, 0):
            raise UncacheableError("a text holds a newline")
        return {"text": self.blob(joined.encode()), "count": len(table)}

    def decimal_indices(self, values: list[object]) -> list[int]:
        """Indices of the Decimals' texts in the table; equal texts get one index, hence one Decimal on load.

        Objects are numbered by identity first (the reader shares equal
        Decimals, so few are distinct), and only new objects are turned into text.
        """
        numbers, start = _number(self.decimal_ids, list(map(id, values)))
        if len(self.decimal_ids) > start:
            fresh = _firsts(values, numbers, start, len(self.decimal_ids))
            if not _only(fresh, Decimal):
                raise UncacheableError("a Decimal column holds something else")
            self.object_texts += _number(self.decimal_texts, list(map(str, fresh)))[0]
        return list(map(self.object_texts.__getitem__, numbers))

    def type_columns(self, fields: list[str], instances: list[Any]) -> list[dict[str, Any]]:
        values = {name: list(map(attrgetter(name), instances)) for name in fields}
        kinds = {name: _kind(column) for name, column in values.items()}
        scaled: dict[str, list[Any]] = {}  # bids/asks -> per event the aligned integer pairs, or None
        for name, kind in kinds.items():
            if kind != "A":
                continue
            if name != "scaled" or kinds.get("bids") != "L" or kinds.get("asks") != "L":
                raise UncacheableError(f"ScaledLevels in {name!r} without bids and asks to align with")
            if not _only(values[name], ScaledLevels, type(None)):
                raise UncacheableError("a ScaledLevels column holds something else")
            scaled["bids"] = [None if s is None else s.bids for s in values[name]]
            scaled["asks"] = [None if s is None else s.asks for s in values[name]]
        columns = []
        for name in fields:
            kind = kinds[name]
            if kind == "L":
                columns.append(self.levels_column(values[name], scaled.get(name)))
            elif kind == "A":
                columns.append(self.scaled_column(values[name]))
            else:
                columns.append(_SIMPLE_ENCODERS[kind](self, values[name]))
        return columns

    def constants(self, values: list[object]) -> dict[str, Any]:
        try:
            codes = bytes(map(_CONSTANT_INDEX.__getitem__, map(id, values)))
        except KeyError as exc:
            raise UncacheableError("a column mixes constants with other values") from exc
        return {"kind": "c", "codes": self.blob(codes)}

    def ints(self, values: list[object]) -> dict[str, Any]:
        if not _only(values, int):
            raise UncacheableError("an int column holds something else")
        return {"kind": "i", "values": self.array("q", values)}  # type: ignore[arg-type]

    def decimals(self, values: list[object]) -> dict[str, Any]:
        return {"kind": "d", "index": self.array(_IDX, self.decimal_indices(values))}

    def strs(self, values: list[object]) -> dict[str, Any]:
        if not _only(values, str):
            raise UncacheableError("a str column holds something else")
        return {"kind": "s", "index": self.array(_IDX, _number(self.strings, values)[0])}

    def levels_column(self, values: list[Any], scaled: list[Any] | None) -> dict[str, Any]:
        """Tuples of (Decimal, Decimal) levels; with ``scaled``, each level's entry also holds its integer pair.

        A level-table entry is found by the identity of its two Decimals (the
        reader shares equal ones) and its pair; only the distinct entries go
        through the Decimal table, which dedupes by text.
        """
        if not _only(values, tuple):
            raise UncacheableError("a levels column holds something other than tuples")
        lengths = list(map(len, values))
        levels = list(itertools.chain.from_iterable(values))
        if not _only(levels, tuple) or not set(map(len, levels)) <= {2}:
            raise UncacheableError("a level is not a (price, qty) tuple")
        if scaled is None or all(pairs is None for pairs in scaled):
            scaled_prices = scaled_sizes = [0] * len(levels)
        else:
            present = [pairs for pairs in scaled if pairs is not None]
            if not _only(present, tuple) or [len(p) for p in present] != [
                n for n, pairs in zip(lengths, scaled, strict=True) if pairs is not None
            ]:
                raise UncacheableError("ScaledLevels that do not match the Decimal levels one for one")
            pairs = list(itertools.chain.from_iterable(
                (((0, 0),) * n if p is None else p) for n, p in zip(lengths, scaled, strict=True)
            ))
            if not _only(pairs, tuple) or not set(map(len, pairs)) <= {2}:
                raise UncacheableError("a scaled level is not an (int, int) pair")
            scaled_prices, scaled_sizes = list(map(itemgetter(0), pairs)), list(map(itemgetter(1), pairs))
            if not _only(scaled_prices, int) or not _only(scaled_sizes, int):
                raise UncacheableError("a scaled level is not an (int, int) pair")
        keys = list(zip(
            map(id, map(itemgetter(0), levels)), map(id, map(itemgetter(1), levels)), scaled_prices, scaled_sizes,
            strict=True,
        ))
        entries, start = _number(self.levels, keys)
        self.level_rows += _firsts(levels, entries, start, len(self.levels))
        return {"kind": "L", "lengths": self.array(_IDX, lengths), "entries": self.array(_IDX, entries)}

    def scaled_column(self, values: list[Any]) -> dict[str, Any]:
        """ScaledLevels or None; their pairs went into the entries of ``bids`` and ``asks``."""
        scaled = [value for value in values if value is not None]
        increments = self.decimal_indices(
            list(itertools.chain.from_iterable((s.price_increment, s.size_increment) for s in scaled))
        )
        return {"kind": "A", "present": self.blob(bytes(value is not None for value in values)),
                "increments": self.array(_IDX, increments), "bids": "bids", "asks": "asks"}

    def level_table(self) -> dict[str, int]:
        rows = self.level_rows
        prices = self.decimal_indices(list(map(itemgetter(0), rows)))
        qtys = self.decimal_indices(list(map(itemgetter(1), rows)))
        _, _, scaled_prices, scaled_sizes = zip(*self.levels, strict=True) if self.levels else ((),) * 4
        return {
            "prices": self.array(_IDX, prices), "qtys": self.array(_IDX, qtys),
            "scaled_prices": self.array("q", scaled_prices), "scaled_sizes": self.array("q", scaled_sizes),
        }


_SIMPLE_ENCODERS: dict[str, Callable[[_Encoder, list[object]], dict[str, Any]]] = {
    "c": _Encoder.constants, "i": _Encoder.ints, "d": _Encoder.decimals, "s": _Encoder.strs,
}


def _encode(events: Sequence[Any], types: Sequence[type]) -> tuple[dict[str, Any], list[bytes]]:
    if len(types) > 255:
        raise UncacheableError("too many event types")
    position = {cls: index for index, cls in enumerate(types)}
    try:
        order = bytes(map(position.__getitem__, map(type, events)))
    except KeyError as exc:
        raise UncacheableError(f"unexpected event type {exc.args[0]!r}") from exc
    encoder = _Encoder()
    described = []
    for cls in types:
        instances = [event for event in events if type(event) is cls]
        fields = _positional_fields(cls)
        described.append({
            "name": _type_name(cls), "count": len(instances), "fields": fields,
            "columns": encoder.type_columns(fields, instances),
        })
    levels = encoder.level_table()  # first: it adds the levels' Decimals to the Decimal table
    schema = {
        "order": encoder.blob(order),
        "types": described,
        "levels": levels,
        "decimals": encoder.texts(encoder.decimal_texts),
        "strings": encoder.texts(encoder.strings),
    }
    return schema, encoder.blobs


# --------------------------------------------------------------------------
# Decoding: bytes -> events (every inconsistency raises; the caller treats it as a miss)
# --------------------------------------------------------------------------


class _Decoder:
    """Rebuilds the tables, then each column, with C-level loops (map/zip) wherever possible."""

    def __init__(self, blobs: list[memoryview], schema: Mapping[str, Any]) -> None:
        self.blobs = blobs
        self.decimals = list(map(Decimal, self.texts(schema["decimals"])))
        self.strings = self.texts(schema["strings"])
        table = schema["levels"]
        decimal = self.decimals.__getitem__
        prices, qtys = map(decimal, self.ints(table["prices"])), map(decimal, self.ints(table["qtys"]))
        self.levels: list[tuple[Decimal, Decimal]] = list(zip(prices, qtys, strict=True))
        self._pair_blobs = (table["scaled_prices"], table["scaled_sizes"])
        self._pairs: list[tuple[int, int]] | None = None
        self.chunks: dict[str, list[list[int]]] = {}  # entries of each decoded ``L`` column, per event

    def ints(self, blob: int, typecode: str = _IDX) -> list[int]:
        values = array(typecode)
        values.frombytes(self.blobs[blob])
        return values.tolist()

    def texts(self, spec: Mapping[str, int]) -> list[str]:
        count = spec["count"]
        texts = str(self.blobs[spec["text"]], "utf-8").split("\n") if count else []
        if len(texts) != count:
            raise CorruptEntryError("a text table holds the wrong number of texts")
        return texts

    def pairs(self) -> list[tuple[int, int]]:
        """The level table's integer pairs, built on first use (a recording without ScaledLevels needs none)."""
        if self._pairs is None:
            prices, sizes = (self.ints(blob, "q") for blob in self._pair_blobs)
            self._pairs = list(zip(prices, sizes, strict=True))
            if len(self._pairs) != len(self.levels):
                raise CorruptEntryError("the level table's columns differ in length")
        return self._pairs

    def column(self, name: str, spec: Mapping[str, Any], count: int) -> list[Any]:
        kind = spec["kind"]
        values: list[Any]
        if kind == "c":
            values = list(map(_CONSTANTS.__getitem__, self.blobs[spec["codes"]]))
        elif kind == "i":
            values = self.ints(spec["values"], "q")
        elif kind == "d":
            values = list(map(self.decimals.__getitem__, self.ints(spec["index"])))
        elif kind == "s":
            values = list(map(self.strings.__getitem__, self.ints(spec["index"])))
        elif kind == "L":
            entries = self.ints(spec["entries"])
            ends = list(itertools.accumulate(self.ints(spec["lengths"])))
            if (ends[-1] if ends else 0) != len(entries):
                raise CorruptEntryError("level entry lengths do not add up")
            chunks = self.chunks[name] = list(map(entries.__getitem__, map(slice, [0, *ends], ends)))
            values = self.grouped(chunks, self.levels)
        elif kind == "A":
            values = self.scaled(spec, count)
        else:
            raise CorruptEntryError(f"unknown column kind {kind!r}")
        if len(values) != count:
            raise CorruptEntryError(f"column {name!r} holds {len(values)} values for {count} events")
        return values

    @staticmethod
    def grouped(chunks: Iterable[list[int]], table: list[Any]) -> list[tuple[Any, ...]]:
        """Per event, the tuple of the table rows its entries name."""
        return list(map(tuple, map(map, itertools.repeat(table.__getitem__), chunks)))

    def scaled(self, spec: Mapping[str, Any], count: int) -> list[ScaledLevels | None]:
        present = self.blobs[spec["present"]]
        increments = list(map(self.decimals.__getitem__, self.ints(spec["increments"])))
        bids, asks = self.chunks[spec["bids"]], self.chunks[spec["asks"]]
        if not len(present) == len(bids) == len(asks) == count or len(increments) != 2 * sum(present):
            raise CorruptEntryError("scaled levels do not add up")
        all_present = len(increments) == 2 * count
        if not all_present:
            bids, asks = list(itertools.compress(bids, present)), list(itertools.compress(asks, present))
        pairs = self.pairs()
        columns: list[list[Any]] = [
            increments[0::2], increments[1::2], self.grouped(bids, pairs), self.grouped(asks, pairs)
        ]
        built = _instances(ScaledLevels, columns, len(bids))
        if all_present:
            return built
        rest = iter(built)
        return [next(rest) if flag else None for flag in present]


def _decode(data: bytes, key: Mapping[str, Any], types: Sequence[type]) -> list[Any]:
    view = memoryview(data)
    start = len(_MAGIC) + _PREFIX.size
    if len(data) < start or view[: len(_MAGIC)] != _MAGIC:
        raise CorruptEntryError("not a recording cache file")
    header_length, crc = _PREFIX.unpack_from(view, len(_MAGIC))
    if zlib.crc32(view[start:]) != crc:  # first: nothing of a damaged file is trusted, its header included
        raise CorruptEntryError("truncated or damaged (CRC-32 mismatch)")
    header = json.loads(str(view[start : start + header_length], "utf-8"))
    stored = header.get("key")
    if _canonical(stored) != _canonical(key):
        raise CorruptEntryError(f"stale entry ({_difference(stored, key)} changed)")
    offset = start + header_length
    if offset + sum(header["sizes"]) != len(data):
        raise CorruptEntryError(f"{len(data)} bytes, not the {offset + sum(header['sizes'])} its header promises")
    blobs = []
    for size in header["sizes"]:
        blobs.append(view[offset : offset + size])
        offset += size
    schema = header["schema"]
    if [t["name"] for t in schema["types"]] != [_type_name(cls) for cls in types]:
        raise CorruptEntryError("written for other event types")
    decoder = _Decoder(blobs, schema)
    built: list[list[Any]] = []
    for cls, described in zip(types, schema["types"], strict=True):
        fields = described["fields"]
        if fields != _positional_fields(cls):
            raise CorruptEntryError(f"the fields of {_type_name(cls)} changed")
        count, specs = described["count"], described["columns"]
        decoder.chunks.clear()
        columns: dict[str, list[Any]] = {}
        for name, spec in sorted(zip(fields, specs, strict=True), key=lambda field: field[1]["kind"] == "A"):
            columns[name] = decoder.column(name, spec, count)  # ``A`` columns last: they reuse ``L`` entries
        built.append(_instances(cls, [columns[name] for name in fields], count))
    order = decoder.blobs[schema["order"]].tobytes()
    if len(order) != sum(map(len, built)) or any(order.count(n) != len(events) for n, events in enumerate(built)):
        raise CorruptEntryError("the event order does not match the event counts")
    cursors = [iter(instances) for instances in built]
    return list(map(next, map(cursors.__getitem__, order)))


def _slot_setters(cls: type) -> list[Callable[[Any, Any], None]] | None:
    """Setters of the slots behind ``cls``'s fields, when instances may be rebuilt without ``__init__``.

    Why: the attrs ``__init__`` is Python code, and a recording has tens of
    thousands of events; creating the instances with ``object.__new__`` and
    filling each slot with one C-level ``map`` per field is several times
    cheaper. It is what pickle does with attrs instances (``__new__``, then
    set the state), and it is only done where it cannot differ from calling
    ``__init__``: no validators, converters, pre/post-init hooks or cached
    hash, and every field a plain slot. Otherwise, None: use the constructor.
    """
    if cls.__new__ is not object.__new__ or any(
        hasattr(cls, hook) for hook in ("__attrs_pre_init__", "__attrs_post_init__", "_attrs_cached_hash")
    ):
        return None
    setters = []
    for field in attrs.fields(cls):
        slot = getattr(cls, field.name, None)
        if field.validator is not None or field.converter is not None or type(slot) is not MemberDescriptorType:
            return None
        setters.append(slot.__set__)
    return setters


def _instances(cls: type, columns: list[list[Any]], count: int) -> list[Any]:
    """``count`` instances of ``cls`` whose fields take their values from ``columns`` (in field order)."""
    setters = _slot_setters(cls)
    if setters is None:
        return list(map(cls, *columns)) if columns else [cls() for _ in range(count)]
    instances: list[Any] = list(map(object.__new__, itertools.repeat(cls, count)))
    for setter, column in zip(setters, columns, strict=True):
        deque(map(setter, instances, column), maxlen=0)  # consumes the map at C speed
    return instances


def _difference(stored: object, key: Mapping[str, Any]) -> str:
    """Which parts of the key differ, for the log line of a stale entry."""
    if not isinstance(stored, dict):
        return "the key"
    changed = [name for name in key if stored.get(name) != key[name]]
    return ", ".join(changed) or "the key"
