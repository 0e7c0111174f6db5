"""A plain progress bar on stderr for long backtests (no extra dependency).

It redraws one line with ``\\r`` at most every ``min_interval_s`` of wall
time, so it costs nothing measurable in the hot loop, and writes nothing
when disabled (``--no-progress``, or stderr is not a terminal by choice of
the caller).
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


class ProgressBar:
    """``update(done)`` with ``done`` in [0, total]; ``close()`` ends the line."""

    def __init__(
        self, total: int, *, label: str = "backtest", enabled: bool = True, stream: TextIO | None = None,
        width: int = 30, min_interval_s: float = 0.2,
    ) -> None:
        self.total = max(1, total)
        self.label = label
        self.enabled = enabled
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.min_interval_s = min_interval_s
        self._last_draw = -1.0
        self._started = time.perf_counter()
        self.last_text = ""

    def update(self, done: int) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if done < self.total and now - self._last_draw < self.min_interval_s:
            return
        self._last_draw = now
        self.draw(done, now - self._started)

    def draw(self, done: int, elapsed_s: float) -> None:
        fraction = min(1.0, max(0.0, done / self.total))
        filled = round(fraction * self.width)
        self.last_text = (
            f"\r{self.label} [{'#' * filled}{'.' * (self.width - filled)}] {fraction * 100:5.1f} % {elapsed_s:6.1f} s"
        )
        self.stream.write(self.last_text)
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.draw(self.total, time.perf_counter() - self._started)
            self.stream.write("\n")
            self.stream.flush()
