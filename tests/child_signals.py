"""Ctrl-C for the children a test starts, whatever the test runner's own SIGINT disposition."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator


@contextlib.contextmanager
def ctrl_c_reaches_children() -> Iterator[None]:
    """While a child starts: SIGINT handled here, so the child starts with it at its default (a handler is
    reset by exec; an ignored signal stays ignored).

    Why: a test runner started in the background of a script has SIGINT ignored, its children inherit that,
    and Python installs its KeyboardInterrupt handler only over the default: a sweep then ran to its end
    and exited 0, and ``mmkit status --watch`` would never stop. A terminal's Ctrl-C reaches a foreground
    command, as here.
    """
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
