"""A lock file that one process holds for its life, naming that process: the journal's and the SQLite store's.

Why a POSIX record lock (``lockf``) on a file of its own: it is the process's,
so the kernel drops it when the process dies (a SIGKILLed engine never blocks
its restart), one process may take it again (tests run a "dead" and a new
engine in one process), and a lock file is never renamed over (a journal
checkpoint renames a new journal over the old one). The holder writes its pid
(and a note: the market lock writes its instance and host) into the file so
that the refusal can say who holds it.

A lock file in a shared directory may be deleted under us (a ``/tmp``
cleaner, a person): a new process would then create and lock a *new* file of
that name while the old holder still locks the unlinked one. So after locking,
the path must still name the locked file, else the lock is taken again on the
file that is there now.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
from pathlib import Path

from mmkit.store.private import FILE_MODE, private_dir


class LockHeld(Exception):
    """Another process holds the lock; ``holder`` is the pid it wrote (or "unknown"), ``note`` the rest."""

    def __init__(self, path: Path, holder: str, note: str = "") -> None:
        super().__init__(f"{path} is held by pid {holder}" + (f" ({note})" if note else ""))
        self.path = path
        self.holder = holder
        self.note = note


#: A lock file replaced this many times in a row while we took it: something is deleting it; give up loudly.
_MAX_REPLACED = 10


def take_pid_lock(path: Path, note: str = "") -> int:
    """Lock ``path`` (created 0600 in a 0700 directory) for this process; returns the fd that holds it.

    ``note`` (one line) is written after the pid for a refusal to show. Closing the fd releases the lock.
    Raises :class:`LockHeld` when another process holds it, OSError when the file cannot be opened or locked
    for another reason.
    """
    private_dir(path.parent)
    for _ in range(_MAX_REPLACED):
        fd = _open_regular(path)
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EACCES, errno.EAGAIN):
                os.close(fd)
                raise
            text = os.read(fd, 512).decode("utf-8", "replace").strip()
            os.close(fd)
            pid, _, rest = text.partition(" ")
            raise LockHeld(path, pid or "unknown", rest.strip()) from None
        if _names(path, fd):
            break
        os.close(fd)  # deleted or replaced between our open and our lock: lock the file that is there now
    else:
        raise OSError(f"lock file {path} keeps being replaced while it is taken; refusing")
    os.ftruncate(fd, 0)
    line = f"{os.getpid()} {note}".strip().replace("\n", " ")
    os.pwrite(fd, f"{line}\n".encode(), 0)
    return fd


def _open_regular(path: Path) -> int:
    """Open (creating 0600) the lock file itself: never through a symlink, never a file another user owns.

    Why: the holder truncates the file and writes its pid into it. Opened through a link planted at its name,
    that overwrote the link's target (any file the engine's user may write); a file another user owns and
    left writable could be rewritten by them under the holder.
    """
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0), FILE_MODE)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise OSError(f"lock file {path} is not a regular file (a symbolic link): refusing to use it") from None
        raise
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid():
        os.close(fd)
        what = "not a regular file" if not stat.S_ISREG(info.st_mode) else f"owned by uid {info.st_uid}"
        raise OSError(f"lock file {path} is {what}, not this user's own file: refusing to use it")
    return fd


def still_named(path: Path, fd: int) -> bool:
    """Does ``path`` still name the file ``fd`` locks? False: it was deleted or replaced under the holder."""
    return _names(path, fd)


def _names(path: Path, fd: int) -> bool:
    try:
        on_path = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (on_path.st_dev, on_path.st_ino) == (held.st_dev, held.st_ino)
