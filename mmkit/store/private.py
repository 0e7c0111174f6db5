"""Files only the instance's user may read: 0600 files inside 0700 directories.

Why: the store, journal and audit trail hold a desk's positions, fills and
order flow; a report names the account's PnL. None of it is for other local
users. Every file mmkit writes is created through here (or under the umask
:func:`restrict_umask` sets), so a permissive umask cannot leak it.
"""

from __future__ import annotations

import os
from pathlib import Path

FILE_MODE = 0o600
DIR_MODE = 0o700


def restrict_umask() -> int:
    """Make everything this process creates from now on private (0600 files, 0700 dirs); returns the old umask."""
    return os.umask(0o077)


def private_dir(path: str | Path) -> Path:
    """Create ``path`` (and missing parents) as 0700. An existing directory is left as it is: it may be
    shared (``/tmp``, a home directory) and is not ours to change; the files inside are 0600 anyway."""
    directory = Path(path)
    if not directory.is_dir():
        old = os.umask(0o077)
        try:
            directory.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        finally:
            os.umask(old)
    return directory


def open_private_append(path: str | Path) -> int:
    """An append-only file descriptor on ``path``, created 0600 in a 0700 directory."""
    target = Path(path)
    private_dir(target.parent)
    fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), FILE_MODE)
    try:
        if os.fstat(fd).st_mode & 0o077:
            os.fchmod(fd, FILE_MODE)
    except OSError:
        pass
    return fd


def make_private(path: str | Path) -> None:
    """Tighten an existing file to 0600 (e.g. a SQLite database the driver created)."""
    try:
        p = Path(path)
        if p.exists() and p.stat().st_mode & 0o077:
            p.chmod(FILE_MODE)
    except OSError:
        pass
