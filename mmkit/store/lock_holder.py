"""Who holds an advisory lock, said in its connection's ``application_name``, and whether that holder is dead.

Why: a session-level advisory lock (mmkit.store.advisory_lock) dies with its
database session, and the server ends a session only when it notices the
client is gone. After the client's connection was cut without a FIN reaching
the server (a blackholed network, a killed VM, an engine SIGKILLed while a
proxy or a NAT keeps the server's side open), the server keeps the session,
and the lock, until its TCP keepalive gives up: about two hours by default.
Every restart meanwhile was refused although the holder was provably dead.

The lock's connection calls itself ``mmkit pid N on HOST:MARKER (note)``
(63 bytes at most, PostgreSQL's limit; ``application_name`` is the one field
of another session every role may read). ``MARKER`` is 8 base36 characters:

* 4 of a hash of the machine (``/etc/machine-id``, else the boot id) and the
  pid namespace (``/proc/self/ns/pid``): the holder's pid means something
  here only if it ran on this machine *and* in our pid namespace. A container
  that shares the host's name (host networking) but has its own pid namespace
  cannot see the host's processes: without this, its pid 4242 "not running"
  would say nothing of a live holder;
* 4 of the holder's start time (``/proc/<pid>/stat`` field 22, clock ticks
  since boot, modulo 36**4): a pid reused by another process has another
  start time. Cut to 4 characters, two processes may collide; the collision
  can only make a dead holder look alive (refused: safe), never the reverse.

A holder is judged dead (:func:`why_dead`) only if its name parses whole (the
marker complete, so the host before it is not cut), the host is ours, the
marker's machine and namespace are ours, and its pid is not running here, or
is a zombie, or is another process (another start time). Anything else
(another host, another namespace, a live holder, a name that does not parse,
a platform without ``/proc``, a pid we may not look at) is not judged: the
claim is refused as before.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
from pathlib import Path

import attrs

#: PostgreSQL keeps ``application_name`` to NAMEDATALEN - 1 bytes.
MAX_NAME_BYTES = 63
MARKER_LEN = 8
_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
_HALF = 36 ** (MARKER_LEN // 2)
#: ``mmkit pid N on HOST:MARKER`` then a space (a note) or the end: a marker shorter than 8 was cut.
_NAME = re.compile(r"^mmkit pid ([1-9][0-9]{0,9}) on ([^\s:()]+):([0-9a-z]{8})(?: |$)")
_MACHINE_ID_FILES = (Path("/etc/machine-id"), Path("/var/lib/dbus/machine-id"),
                     Path("/proc/sys/kernel/random/boot_id"))


@attrs.frozen
class Holder:
    """What a lock's ``application_name`` says of the process holding it."""

    pid: int
    host: str
    #: 4 base36 characters: the machine and pid namespace it ran in.
    place: str
    #: 4 base36 characters: its start time (clock ticks since boot, modulo 36**4).
    start: str


def _base36(value: int) -> str:
    """``value`` modulo 36**4 as exactly 4 base36 characters."""
    value %= _HALF
    out = ""
    for _ in range(MARKER_LEN // 2):
        value, digit = divmod(value, 36)
        out = _ALPHABET[digit] + out
    return out


def _place() -> str | None:
    """This machine and pid namespace, as 4 base36 characters; None where there is no ``/proc`` (not Linux)."""
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        return None
    machine = ""
    for path in _MACHINE_ID_FILES:
        try:
            machine = path.read_text().strip()
        except OSError:
            continue
        if machine:
            break
    digest = hashlib.sha256(f"{machine}\0{namespace}".encode()).digest()
    return _base36(int.from_bytes(digest[:8], "big"))


def _process(pid: int) -> tuple[str, int] | None:
    """(state, start time in clock ticks since boot) of ``pid`` from ``/proc``; None if it cannot be read."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    try:
        fields = raw[raw.rindex(b")") + 2:].split()  # the command name may hold spaces and parentheses
        return fields[0].decode(), int(fields[19])
    except (ValueError, IndexError):
        return None


def marker(pid: int | None = None) -> str | None:
    """The 8-character marker of ``pid`` (this process by default) on this machine; None if it cannot be made."""
    place = _place()
    proc = _process(os.getpid() if pid is None else pid)
    if place is None or proc is None:
        return None
    return place + _base36(proc[1])


def holder_name(note: str = "") -> str:
    """What the lock's connection calls itself: ``mmkit pid N on HOST:MARKER (note)``, cut to 63 bytes.

    The marker is left out when it cannot be made or does not fit whole after a long host name (such a
    holder is never judged dead: :func:`why_dead`); the note is appended when it fits, cut otherwise.
    """
    head = f"mmkit pid {os.getpid()} on {socket.gethostname()}"
    mark = marker()
    if mark is not None and len((head + ":" + mark).encode()) <= MAX_NAME_BYTES:
        head += ":" + mark
    name = head + (f" ({note})" if note else "")
    return name.encode()[:MAX_NAME_BYTES].decode(errors="ignore")


def has_marker(name: str) -> bool:
    """Does ``name`` (made by :func:`holder_name`) carry a whole marker, so a dead holder can be recognised?"""
    return parse_holder(name) is not None


def parse_holder(name: str) -> Holder | None:
    """The holder ``name`` describes, or None: not ours, an older version's (no marker), or cut in the marker."""
    found = _NAME.match(name)
    if found is None:
        return None
    pid, host, mark = found.groups()
    return Holder(int(pid), host, mark[:4], mark[4:])


def why_dead(name: str) -> str | None:
    """Why the holder named ``name`` is provably dead, or None if it is not (or cannot be told) dead.

    Dead: it ran on this host, on this machine and in our pid namespace, and its pid is not running, is a
    zombie, or is another process (another start time). Another host, another namespace, a live holder, a
    name that does not parse, a pid we may not look at: None (the caller refuses as before).
    """
    holder = parse_holder(name)
    if holder is None or holder.host != socket.gethostname() or holder.place != _place():
        return None
    try:
        os.kill(holder.pid, 0)
    except ProcessLookupError:
        return f"pid {holder.pid} is not running on {holder.host}"
    except PermissionError:
        pass  # alive, another user's: its start time below, if /proc shows it
    except (OverflowError, OSError):
        return None
    proc = _process(holder.pid)
    if proc is None:
        return None  # alive but hidden from us (/proc hidepid): cannot tell it is another process
    state, started = proc
    if state in ("Z", "X"):
        return f"pid {holder.pid} on {holder.host} has exited (a zombie: its sockets are closed)"
    if _base36(started) != holder.start:
        return (f"pid {holder.pid} on {holder.host} is now another process (started at clock tick {started}, "
                f"not the holder's)")
    return None
