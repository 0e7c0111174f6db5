"""On-disk cache of parsed recordings: parse a recording once, load it quickly in any later process.

Why: parsing the shared Binance recording (gzip, JSON, Decimal and integer
levels, clock fit) costs over a second, which is more than a whole backtest
should take; rebuilding the same events from pre-parsed columns costs a small
fraction of that. Readers call :func:`load` before parsing and :func:`store`
after a complete parse; the in-process cache of the reader stays in front.

Key. An entry is named after *what* was read (each file's resolved path and
the reader's options), and holds the full :class:`CacheKey` -- each file's
size, mtime_ns, inode and content digest (sha256), the reader's version, :data:`FORMAT_VERSION`, and
(conservatively) the Python version and byte order -- which is checked on
load. A file rewritten (even in place with its size and mtime kept), touched or replaced, an option changed or a version
bumped therefore never serves a stale entry: it is logged, ignored and
overwritten by the next parse.

Format. No pickle and no marshal: a file holds only flat arrays of integers
(``array``) and UTF-8 text, described by a JSON header, so loading one can
never run code, whoever wrote the directory. (Whoever can write it can still
change what a backtest sees, as with the data itself, so the directory is
created private, 0700.) Values are interned in tables (distinct Decimal
texts, strings) and events refer to them by index; equal Decimal texts
therefore share one Decimal object, as they do in a fresh parse. Anything
the format cannot represent exactly (an unexpected type, an int beyond 64
bits) makes :func:`store` skip the entry rather than
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

import hashlib
import os
import sys
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
from loguru import logger

from mmkit.backtest.recording_cache.atomic import write_atomically
from mmkit.backtest.recording_cache.decoding import decode_events
from mmkit.backtest.recording_cache.derived import DERIVED_SUFFIX
from mmkit.backtest.recording_cache.encoding import LevelSource, encode_events
from mmkit.backtest.recording_cache.layout import (
    MAGIC,
    PREFIX,
    CorruptEntryError,
    FileStamp,
    UncacheableError,
    canonical,
)
from mmkit.gc_policy import gc_paused

__all__ = [
    "DISABLED_VALUES",
    "FORMAT_VERSION",
    "SUFFIX",
    "CacheKey",
    "CorruptEntryError",
    "LevelSource",
    "UncacheableError",
    "cache_directory",
    "file_stamps",
    "load",
    "read_through",
    "remove_entries",
    "store",
]

#: Bump whenever the layout of a file or the meaning of a column changes (including :data:`CONSTANTS`).
FORMAT_VERSION = 2
#: File name suffix of an entry.
SUFFIX = ".mmrec"
#: Values of ``MMKIT_CACHE_DIR`` that turn the cache off.
DISABLED_VALUES = frozenset({"off", "0", "false", "no", "none"})

KeyValue = str | int | bool


def file_stamps(paths: Iterable[Path]) -> tuple[FileStamp, ...]:
    """Each file's resolved path, size, mtime_ns, inode and sha256: what tells a changed file from the one parsed.

    Why the content too: a file rewritten in place with the same size and its
    mtime put back (``rsync --inplace -t``, ``touch -r``, a restore that keeps
    times) kept every stamp, and the parse of content that no longer existed
    was served, on disk and in memory (tests/unit/backtest/test_cache_content_key.py).
    The stamps are still kept: they name what changed in the stale-entry log.
    sha256 of the compressed bytes costs about 1 ms per MB (2 ms for the
    shared recording, against a cached load of ~0.25 s).
    """
    stamps = []
    for path in paths:
        with open(path, "rb") as handle:
            stat = os.fstat(handle.fileno())  # the stat of the very file whose bytes are hashed
            digest = hashlib.file_digest(handle, "sha256").hexdigest()
        stamps.append((str(path.resolve()), stat.st_size, stat.st_mtime_ns, stat.st_ino, digest))
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
        return hashlib.sha256(canonical(named).encode()).hexdigest()[:32] + SUFFIX

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


def load(directory: Path, key: CacheKey, types: Sequence[type], *, freeze: bool = False) -> list[Any] | None:
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
        with gc_paused(freeze=freeze):
            events = decode_events(data, key.as_json(), types)
    except Exception as exc:  # any failure of a cache file means "no cache", never a failed backtest
        logger.warning("recording cache: ignoring {}: {}; it will be rewritten", path, exc)
        return None
    logger.debug("recording cache: {} events loaded from {}", len(events), path)
    return events


def store(
    directory: Path, key: CacheKey, events: Sequence[Any], types: Sequence[type], source: LevelSource | None = None
) -> Path | None:
    """Write ``events`` as the entry for ``key``; returns its path, or None when it could not be written.

    The file is written under a temporary name in the same directory and then
    renamed over the entry, so readers see the old entry or the new one, never
    a part (no fsync: a file damaged by a power cut fails its length or CRC
    check on load and is parsed again). A directory that cannot be created or
    written, or events the format cannot hold exactly, are logged and skipped.
    ``source``: what the reader knows of its levels (:class:`LevelSource`),
    which spares numbering them again.
    """
    try:
        with gc_paused():  # the tables it builds would make the collector walk every event, again and again
            schema, blobs = encode_events(events, types, source)
    except UncacheableError as exc:
        logger.warning("recording cache: not caching this recording: {}", exc)
        return None
    except Exception as exc:  # a bug here must not fail the backtest that has its events already
        logger.opt(exception=exc).warning("recording cache: not caching this recording: {!r}", exc)
        return None
    header = canonical({"key": key.as_json(), "schema": schema, "sizes": [len(b) for b in blobs]}).encode()
    crc = zlib.crc32(header)
    for blob in blobs:
        crc = zlib.crc32(blob, crc)
    target = directory / key.identity()
    try:
        write_atomically(target, [MAGIC + PREFIX.pack(len(header), crc) + header, *blobs], SUFFIX)
    except OSError as exc:
        logger.warning("recording cache: cannot write {} ({}); going on without caching", directory, exc)
        return None
    logger.debug("recording cache: {} events written to {}", len(events), target)
    return target


def read_through(
    directory: Path | None,
    key: CacheKey,
    types: Sequence[type],
    parse: Callable[[], Iterable[Any]],
    *,
    freeze: bool = False,
    source: Callable[[], LevelSource | None] | None = None,
) -> Iterator[Any]:
    """The entry for ``key`` if it loads, else ``parse()``'s events, written as the entry once read to their end.

    What every reader does with the cache. ``directory`` None (caching off)
    just parses. A read abandoned early writes nothing: only a whole
    recording is ever an entry. ``source``, called once the parse is read
    to its end: the reader's :class:`LevelSource` for :func:`store`.
    """
    if directory is None:
        yield from parse()
        return
    cached = load(directory, key, types, freeze=freeze)
    if cached is not None:
        yield from cached
        return
    events: list[Any] = []
    for event in parse():
        events.append(event)
        yield event
    store(directory, key, events, types, None if source is None else source())


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
        if path.name.endswith((SUFFIX, SUFFIX + ".tmp", DERIVED_SUFFIX, DERIVED_SUFFIX + ".tmp")) and path.is_file():
            path.unlink(missing_ok=True)
            removed += 1
    return removed
