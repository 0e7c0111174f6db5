"""Write a cache file all at once or not at all: a temporary file in the same directory, then a rename.

Why one helper: the recording entries and their derived facts (the taker
fit, the files' notes) are both read by later runs that trust what they
find; a process killed mid-write must leave the old entry or none, never a
truncated one, and a failed write must not leave its temporary file behind.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path


def write_atomically(target: Path, chunks: Iterable[bytes], suffix: str) -> None:
    """Write ``chunks`` to ``target`` (its directory created private if missing); OSError if it cannot."""
    directory = target.parent
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=".", suffix=suffix + ".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            for chunk in chunks:
                out.write(chunk)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


__all__ = ["write_atomically"]
