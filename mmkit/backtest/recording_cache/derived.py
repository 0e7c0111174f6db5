"""Small facts derived from a recording (its files' notes, the taker fit), cached as JSON beside its parse.

Why: with the recording's parse cached, a default ``mmkit backtest`` still
spent about a sixth of its time re-deriving the same few facts from it every
run: decompressing every file to say how the files follow each other
(:mod:`mmkit.backtest.continuity`), and rebuilding the recorded book to fit
the synthetic takers on the tape (:func:`mmkit.app.simulated.fit_recorded_tape`).
Both are pure functions of the recording's files and a few parameters, so
they are stored once and read back in a few milliseconds.

Key. Like a parse entry (:class:`~mmkit.backtest.recording_cache.CacheKey`):
an entry is *named* after what was derived (its kind, the files' resolved
paths, the parameters) and *holds* the full key -- each file's size,
mtime_ns and inode, the fact's own version, the parse's format version and
the Python version -- which must match on load. A file rewritten, a parameter
or a version changed therefore never serves a stale fact; the entry is
recomputed and overwritten. The caller puts into ``params`` everything its
computation reads besides the files (tests check that each one is there).

Format: canonical JSON (no pickle: loading one never runs code). A damaged or
unreadable entry is a miss, never a failed backtest; a directory that cannot
be written is logged and skipped.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
from loguru import logger

from mmkit.backtest.recording_cache.atomic import write_atomically
from mmkit.backtest.recording_cache.layout import FileStamp, canonical

#: File name suffix of a derived entry (:func:`mmkit.backtest.recording_cache.remove_entries` removes them too).
DERIVED_SUFFIX = ".mmfact.json"

__all__ = ["DERIVED_SUFFIX", "DerivedKey", "load_derived", "store_derived"]


@attrs.frozen
class DerivedKey:
    """What a derived fact depends on: its kind and version, the recording's files, and its parameters.

    ``files``: :func:`mmkit.backtest.recording_cache.file_stamps` of every file
    the fact was computed from. ``params``: every other input (JSON values).
    """

    kind: str
    version: int
    files: tuple[FileStamp, ...]
    params: Mapping[str, Any]

    def identity(self) -> str:
        """The entry's file name: a digest of the kind, the files' paths and the parameters (not of stamps)."""
        named = {"kind": self.kind, "files": [stamp[0] for stamp in self.files], "params": dict(self.params)}
        return hashlib.sha256(canonical(named).encode()).hexdigest()[:32] + DERIVED_SUFFIX

    def as_json(self) -> dict[str, Any]:
        """The full key as stored in (and compared with) an entry."""
        from mmkit.backtest.recording_cache import FORMAT_VERSION

        return {
            "kind": self.kind,
            "version": self.version,
            "format": FORMAT_VERSION,
            "python": list(sys.version_info[:2]),
            "files": [list(stamp) for stamp in self.files],
            "params": dict(self.params),
        }


def load_derived(directory: Path | None, key: DerivedKey) -> Any | None:
    """The value stored for ``key``, or None (caching off, nothing stored, stale or damaged entry)."""
    if directory is None:
        return None
    path = directory / key.identity()
    try:
        entry = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        logger.warning("recording cache: ignoring {}: {}; it will be rewritten", path, exc)
        return None
    if not isinstance(entry, dict) or "value" not in entry:
        logger.warning("recording cache: ignoring {}: not an entry; it will be rewritten", path)
        return None
    if entry.get("key") != key.as_json():
        logger.debug("recording cache: {} was derived from other files or parameters; recomputing", path)
        return None
    return entry["value"]


def store_derived(directory: Path | None, key: DerivedKey, value: Any) -> Path | None:
    """Write ``value`` (JSON data) as the entry for ``key`` (temporary file, then renamed); None if not written."""
    if directory is None:
        return None
    data = canonical({"key": key.as_json(), "value": value}).encode()
    target = directory / key.identity()
    try:
        write_atomically(target, [data], DERIVED_SUFFIX)
    except OSError as exc:
        logger.warning("recording cache: cannot write {} ({}); going on without it", directory, exc)
        return None
    return target

