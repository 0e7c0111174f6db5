"""Wake an asyncio loop from a QuickFIX thread without letting go of the GIL.

WHY not ``loop.call_soon_threadsafe``: it wakes the loop by writing to the
loop's self-pipe with ``socket.send``, which releases the GIL for the system
call. The loop thread, woken by that very byte, can take the GIL in that
window; the QuickFIX thread then waits to get it back (to finish its
callback) until the loop next lets go of it, and the two threads hand the
GIL back and forth at the loop's next system calls. Measured on the TrueX
order round trip (bench/bench_fix.py, 2 vCPUs): the wake-up call took a
median 8 us on the QuickFIX thread but more than 10 us a third of the time
and 250 us at p90, each time costing the loop a hand-back of the GIL.

Here the QuickFIX thread writes one byte to a pipe of our own through
``ctypes.PyDLL`` (a C call that keeps the GIL), so the loop cannot run a
line of Python before the callback has returned to QuickFIX: one hand-over
per wake-up, as with the ``threading.Event`` of a plain QuickFIX application.
The loop watches the pipe with ``add_reader``; a loop without ``add_reader``
(Windows' proactor) or a platform without ``write`` in the C library falls
back to ``call_soon_threadsafe``.

Lost wake-ups: the reader empties the pipe *before* it runs ``callback``, so
a byte written while the callback runs (for work queued after the callback
looked at its queue) stays in the pipe and wakes the loop again.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
from collections.abc import Callable


def _load_write() -> Callable[[int, bytes, int], int] | None:
    """libc ``write`` called with the GIL held (``PyDLL``), or None where it cannot be loaded."""
    try:
        write = ctypes.PyDLL(None).write
    except (OSError, AttributeError):
        return None
    write.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t)
    write.restype = ctypes.c_ssize_t
    return write


_WRITE = _load_write()
_BYTE = b"\x01"


class LoopWaker:
    """Calls ``callback`` on ``loop`` soon after any thread calls :meth:`wake` (see the module docstring).

    Several wake-ups before the loop gets to them run ``callback`` at least
    once; the caller keeps its own queue and flag (``thread_handoff``).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> None:
        self._loop = loop
        self._callback = callback
        self._read_fd = -1
        self._write_fd = -1
        #: Wake-ups that went through ``call_soon_threadsafe`` (no pipe, or the pipe write failed).
        self.fallbacks = 0
        if _WRITE is None:
            return
        read_fd, write_fd = os.pipe()
        os.set_blocking(read_fd, False)
        os.set_blocking(write_fd, False)
        try:
            loop.add_reader(read_fd, self._on_readable)
        except NotImplementedError:  # a loop without add_reader: wake through call_soon_threadsafe
            os.close(read_fd)
            os.close(write_fd)
            return
        self._read_fd, self._write_fd = read_fd, write_fd

    @property
    def uses_pipe(self) -> bool:
        return self._write_fd >= 0

    def wake(self) -> None:
        """Any thread: have the loop run ``callback`` soon. Keeps the GIL (see the module docstring)."""
        write_fd = self._write_fd
        if write_fd >= 0 and _WRITE is not None and _WRITE(write_fd, _BYTE, 1) == 1:
            return
        # No pipe, or the write failed: a full pipe already holds a wake-up, but a closed one does not,
        # so go through the loop's own wake-up rather than guess which.
        self.fallbacks += 1
        with contextlib.suppress(RuntimeError):  # loop closed during shutdown
            self._loop.call_soon_threadsafe(self._callback)

    def _on_readable(self) -> None:
        """Loop side: empty the pipe first, then run the callback (the order that loses no wake-up)."""
        with contextlib.suppress(BlockingIOError, InterruptedError):  # empty: a spurious wake-up
            os.read(self._read_fd, 4096)  # one byte per wake-up; more left over only wakes us once more
        self._callback()

    def close(self) -> None:
        """Stop watching the pipe and close it (loop thread).

        Only once no thread can call ``wake`` any more (the QuickFIX initiator
        has stopped): a thread that read the descriptor before it was closed
        would write to whatever file reuses its number.
        """
        read_fd, write_fd = self._read_fd, self._write_fd
        if read_fd < 0:
            return
        self._write_fd = self._read_fd = -1
        with contextlib.suppress(RuntimeError):  # loop already closed
            self._loop.remove_reader(read_fd)
        os.close(read_fd)
        os.close(write_fd)
