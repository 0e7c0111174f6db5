"""What a backtest knows of its recording besides the events: the files' continuity, the fit store, the data verdict.

Why a module of its own: these read the recording's files and the recording
cache (never the engine), and the CLI and the sweep trials share them;
:mod:`mmkit.app.backtest_cmd` runs the engine and prints the report.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from loguru import logger

from mmkit.app.simulated import FitStore
from mmkit.backtest.binance import detect_instrument, recording_files
from mmkit.backtest.continuity import FileNote, describe_files, file_at
from mmkit.backtest.health import unhealthy
from mmkit.backtest.tardis import is_tardis, tardis_files


def recording_fit_store(data: Path, end_ns: int | None, cache: Path | bool = True) -> FitStore:
    """Where the taker fits of ``load_events(data, end_ns)``'s events are kept (the recording cache's directory).

    The read is named by what shapes its events: the files' stamps, the
    reader and its version (bumped whenever its parse changes), and
    ``end_ns``. Only for events that are exactly that read's.
    """
    from mmkit.backtest import binance, recording_cache, tardis

    paths: list[Path]
    read: dict[str, object] = {"end_ns": end_ns, "events": "book+trades"}
    if is_tardis(data):
        found = tardis_files(data) if data.is_dir() else (data, None)
        paths = [p for p in found if p is not None]
        read.update(reader="tardis", reader_version=tardis.READER_VERSION)
    else:
        paths = recording_files(data) if data.is_dir() else [data]
        # What the parse's own cache key names besides its version (mmkit.backtest.binance._disk_key).
        read.update(reader="binance", reader_version=binance.READER_VERSION,
                    price_increment=str(binance.PRICE_INCREMENT), size_increment=str(binance.SIZE_INCREMENT),
                    min_latency_ns=binance.DEFAULT_MIN_LATENCY_NS, window_ns=binance.DEFAULT_WINDOW_NS)
    return FitStore(recording_cache.cache_directory(cache), recording_cache.file_stamps(paths), read)


#: Bump whenever :func:`mmkit.backtest.continuity.describe_files` would say something else of the same files.
NOTES_VERSION = 1


def recording_notes(data: Path, cache: Path | bool = True) -> list[FileNote]:
    """How the files of a Binance recording follow each other (nothing to say for Tardis CSV).

    Saying it decompresses every file (0.08 s of a 1.2 s default backtest on
    the shared recording), so it is kept in the recording cache
    (:mod:`mmkit.backtest.recording_cache.derived`), keyed by the files'
    stamps and the market's chaining rule: ``cache`` True is the cache the
    environment names, False none, a path that directory.
    """
    from mmkit.backtest import recording_cache
    from mmkit.backtest.recording_cache.derived import DerivedKey, load_derived, store_derived

    if is_tardis(data):
        return []
    paths = recording_files(data) if data.is_dir() else [data]
    recorded = detect_instrument(paths)
    directory = recording_cache.cache_directory(cache)
    key = DerivedKey("file_notes", NOTES_VERSION, recording_cache.file_stamps(paths),
                     {"market": recorded.market.name, "chaining": recorded.market.chaining})
    stored = load_derived(directory, key)
    if stored is not None:
        try:
            return [FileNote(Path(n["path"]), n["has_snapshot"], n["first_event_ns"], n["last_event_ns"],
                             n["continues"], n["note"]) for n in stored]
        except (KeyError, TypeError) as exc:
            logger.warning("recording cache: file notes of {} unreadable ({!r}); recomputing", data, exc)
    notes = describe_files(paths, recorded)
    store_derived(directory, key, [
        {"path": str(n.path), "has_snapshot": n.has_snapshot, "first_event_ns": n.first_event_ns,
         "last_event_ns": n.last_event_ns, "continues": n.continues, "note": n.note} for n in notes])
    return notes


def data_verdict(
    report: dict[str, Any], notes: Sequence[FileNote], data: Path, max_invalid_pct: float
) -> str | None:
    """None when the quoted book was valid long enough; else the one line that says where it was not."""
    key = report.get("quoted_book")
    health = report.get("data_health", {}).get(key)
    if health is None or not unhealthy(health, max_invalid_pct):
        return None
    at = health["first_gap_ns"] if health["first_gap_ns"] is not None else health["first_invalid_ns"]
    reason = health["first_gap_reason"] or health["first_invalid_reason"]
    where = file_at(notes, at) if notes and at is not None else data
    when = health["first_gap_utc"] or health["first_invalid_utc"]
    return (f"data unhealthy: {where}: the {key} book was invalid for {health['invalid_pct']:.2f} % of the span "
            f"(limit {max_invalid_pct:g} %), first at {when} ({reason})")
