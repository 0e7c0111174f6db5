"""A lock file that one process holds for its life, naming that process: the journal's and the SQLite store's.

Why a POSIX record lock (``lockf``) on a file of its own: it is the process's,
so the kernel drops it when the process dies (a SIGKILLed engine never blocks
its restart), one process may take it again (tests run a "dead" and a new
engine in one process), and a lock file is never renamed over (a journal
checkpoint renames a new journal over the old one). The holder writes its pid
into the file so that the refusal can say who holds it.
"""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path

from mmkit.store.private import FILE_MODE, private_dir


class LockHeld(Exception):
    """Another process holds the lock; ``holder`` is the pid it wrote (or "unknown")."""

    def __init__(self, path: Path, holder: str) -> None:
        super().__init__(f"{path} is held by pid {holder}")
        self.path = path
        self.holder = holder


def take_pid_lock(path: Path) -> int:
    """Lock ``path`` (created 0600 in a 0700 directory) for this process; returns the fd that holds it.

    Closing the fd releases the lock. Raises :class:`LockHeld` when another process holds it, OSError when
    the file cannot be opened or locked for another reason.
    """
    private_dir(path.parent)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), FILE_MODE)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno not in (errno.EACCES, errno.EAGAIN):
            os.close(fd)
            raise
        holder = os.read(fd, 64).decode("ascii", "replace").strip() or "unknown"
        os.close(fd)
        raise LockHeld(path, holder) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd
