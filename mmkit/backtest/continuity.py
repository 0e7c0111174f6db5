"""How the files of one Binance recording follow each other, said out loud.

Several files of one market are one continuous stream (the reader yields
them in name order into one book). A file that starts without a REST
snapshot either *continues* the previous file (its first diff chains on from
the previous file's last diff, by the market's rule) or it does not, and the
book then waits for the next snapshot. Either way the user is told, per
file, and the data-health figures show the cost; the backtest never guesses
silently.

The scan reads each file's first and last depth diff and whether it holds a
snapshot; it decompresses each file once (cheap next to the parse) and runs
only where a person reads the result (the ``mmkit backtest`` command).
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

from mmkit.backtest.binance_markets import RecordedInstrument
from mmkit.model import NS_PER_MS


@attrs.frozen
class FileNote:
    """One file of a recording: what it starts with and whether it follows on from the previous file."""

    path: Path
    has_snapshot: bool
    #: Exchange time (ns) of the file's first and last depth diff (None without diffs).
    first_event_ns: int | None
    last_event_ns: int | None
    #: True: the first diff chains on from the previous file's last; False: it does not; None: first file
    #: or no diff to judge by.
    continues: bool | None
    note: str

    def as_dict(self) -> dict[str, Any]:
        return {"file": str(self.path), "has_snapshot": self.has_snapshot, "continues": self.continues,
                "note": self.note}


def _depth_line(data: bytes, last: bool) -> dict[str, Any] | None:
    at = data.rfind(b"depthUpdate") if last else data.find(b"depthUpdate")
    if at < 0:
        return None
    start = data.rfind(b"\n", 0, at) + 1
    end = data.find(b"\n", at)
    line = data[start : end if end >= 0 else len(data)]
    payload = line.partition(b" ")[2]
    try:
        return dict(json.loads(payload)["data"])
    except (ValueError, KeyError, TypeError):
        return None  # the parse names the damaged line; this is only the summary


def describe_files(paths: Sequence[Path], recorded: RecordedInstrument) -> list[FileNote]:
    """A :class:`FileNote` per file, in reading order."""
    notes: list[FileNote] = []
    previous_last: dict[str, Any] | None = None
    for index, path in enumerate(paths):
        with gzip.open(path, "rb") as handle:
            data = handle.read()
        has_snapshot = b'"lastUpdateId"' in data
        first, last = _depth_line(data, last=False), _depth_line(data, last=True)
        continues: bool | None = None
        if index > 0 and first is not None and previous_last is not None:
            if recorded.market.chaining == "pu":
                continues = int(first.get("pu", -1)) == int(previous_last["u"])
            else:
                continues = int(first["U"]) <= int(previous_last["u"]) + 1 <= int(first["u"])
        if index == 0:
            note = "starts the stream" + ("" if has_snapshot else "; no snapshot: the book waits for one")
        elif has_snapshot and continues:
            note = f"continues {paths[index - 1].name} and holds a snapshot"
        elif has_snapshot:
            note = f"does not follow on from {paths[index - 1].name}; its snapshot restarts the book"
        elif continues:
            note = f"no snapshot: continues {paths[index - 1].name} (its first diff follows on)"
        else:
            note = (f"no snapshot and does not follow on from {paths[index - 1].name}: "
                    "the book waits for a snapshot that this recording may not have")
        notes.append(FileNote(
            path, has_snapshot,
            None if first is None else int(first["E"]) * NS_PER_MS,
            None if last is None else int(last["E"]) * NS_PER_MS,
            continues, note,
        ))
        if last is not None:
            previous_last = last
    return notes


def file_at(notes: Sequence[FileNote], ts_ns: int) -> Path:
    """The file whose diffs cover time ``ts_ns`` (exchange time; within a feed latency at a boundary)."""
    chosen = notes[0].path
    for note in notes:
        if note.first_event_ns is not None and note.first_event_ns <= ts_ns:
            chosen = note.path
    return chosen


__all__ = ["FileNote", "describe_files", "file_at"]
