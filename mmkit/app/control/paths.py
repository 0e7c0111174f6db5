"""Where an instance's control socket lives, and how to bind or reach it.

One function decides the place (:func:`control_socket_path`), so the socket can
move (e.g. under a per-instance home directory) without touching its users.
Today: ``<engine.output_dir>/control/<engine.instance>.sock``, next to the
store, the audit trail and the reports the config already puts there.

Authentication is the filesystem's: the ``control`` directory is created
``0700`` and the socket ``0600``, so only the instance's own user (and root)
can connect; the server also checks the peer's uid (``SO_PEERCRED``).
"""

from __future__ import annotations

import contextlib
import os
import socket
import stat
from collections.abc import Iterator
from pathlib import Path

#: Linux's sun_path holds 108 bytes including the terminating NUL.
_MAX_SUN_PATH = 107


class ControlPathError(Exception):
    """The control directory or socket cannot be used (wrong owner, permissions, not a socket)."""


def control_socket_path(output_dir: str | Path, instance: str) -> Path:
    """The control socket of ``instance`` (the one place that decides it)."""
    return Path(output_dir) / "control" / f"{instance}.sock"


def ensure_private_dir(directory: Path) -> None:
    """Create ``directory`` 0700, or tighten it to 0700 if it is ours; refuse one owned by someone else."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = directory.stat()
    if info.st_uid != os.getuid():
        raise ControlPathError(f"{directory} belongs to uid {info.st_uid}, not to this user ({os.getuid()})")
    if stat.S_IMODE(info.st_mode) != 0o700:
        os.chmod(directory, 0o700)


@contextlib.contextmanager
def socket_address(path: Path) -> Iterator[str]:
    """An address ``bind``/``connect`` accept for ``path``, even past the 107-byte limit of sun_path.

    A long path is reached through ``/proc/self/fd/<dir fd>/<name>`` (Linux), with the
    directory held open while the address is in use.
    """
    text = os.fsdecode(path)
    if len(os.fsencode(text)) <= _MAX_SUN_PATH:
        yield text
        return
    fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        yield f"/proc/self/fd/{fd}/{path.name}"
    finally:
        os.close(fd)


def socket_answers(path: Path, timeout_s: float = 1.0) -> bool:
    """True if something accepts connections on the Unix socket at ``path`` (a live instance)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout_s)
        try:
            with socket_address(path) as address:
                sock.connect(address)
        except OSError:
            return False
    return True


def bind_private_socket(path: Path) -> socket.socket:
    """A listening Unix socket at ``path`` (0600, in a 0700 directory).

    A socket file left by a killed run (nobody answers) is removed; one that
    answers belongs to a running instance of the same name, and binding is
    refused: two engines must never share one instance name (store, client ids).

    The socket is bound, made 0600 and listening under a staging name first, then
    hard-linked to ``path``: whoever sees the file (``mmkit pause``, a script or a
    test waiting for the instance) finds it 0600 and answering, never between
    ``bind`` and ``listen`` (a refused connect read as "not running"), and a twin
    that bound in the meantime makes the link fail instead of being replaced.
    """
    ensure_private_dir(path.parent)
    if path.exists() or path.is_symlink():
        if not stat.S_ISSOCK(path.lstat().st_mode):
            raise ControlPathError(f"{path} exists and is not a socket")
        if socket_answers(path):
            raise ControlPathError(f"another instance is running: its control socket {path} answers")
        path.unlink()
    staging = path.with_name(f".{path.name}.{os.getpid()}")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        staging.unlink(missing_ok=True)
        try:
            with socket_address(staging) as address:
                sock.bind(address)
            # No umask games (it is process-wide and other threads create files): until this chmod the
            # socket is only reachable through the 0700 directory, under its staging name.
            os.chmod(staging, 0o600)
            sock.listen(16)
            sock.setblocking(False)
            try:
                os.link(staging, path)
            except FileExistsError:
                raise ControlPathError(
                    f"another instance is running: its control socket {path} appeared while this one started"
                ) from None
        finally:
            staging.unlink(missing_ok=True)
    except BaseException:
        sock.close()
        raise
    return sock
