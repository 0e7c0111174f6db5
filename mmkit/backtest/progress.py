"""Progress of a long backtest on stderr: a live bar on a terminal, plain periodic lines otherwise.

Why two forms: a bar redraws one line with control sequences, which is what a
person at a terminal wants and garbage in a redirected log or a CI capture.
So the bar (rich) is drawn only when the stream is a terminal; anywhere else
one plain line is written at most every ``min_interval_s`` (5 s by default),
and the last line says 100 %. Updates cost nothing measurable in the hot
loop: both forms check the wall clock before doing anything.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO


class ProgressBar:
    """``update(done)`` with ``done`` in [0, total]; ``close()`` ends the display."""

    def __init__(
        self, total: int, *, label: str = "backtest", enabled: bool = True, stream: TextIO | None = None,
        width: int = 30, min_interval_s: float | None = None, terminal: bool | None = None,
    ) -> None:
        self.total = max(1, total)
        self.label = label
        self.enabled = enabled
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        is_tty = getattr(self.stream, "isatty", lambda: False)
        self.terminal = bool(is_tty()) if terminal is None else terminal
        self.min_interval_s = min_interval_s if min_interval_s is not None else (0.2 if self.terminal else 5.0)
        self._last_draw = -1.0
        self._started = time.perf_counter()
        self.last_text = ""
        self._rich: Any = None
        self._task: Any = None
        if self.enabled and self.terminal:
            self._start_rich()

    def _start_rich(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

        console = Console(file=self.stream, force_terminal=True)
        self._rich = Progress(TextColumn("{task.description}"), BarColumn(bar_width=self.width),
                              TaskProgressColumn(), TimeElapsedColumn(), console=console, transient=False)
        self._task = self._rich.add_task(self.label, total=self.total)
        self._rich.start()

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
        self.last_text = f"{self.label} [{fraction * 100:5.1f} %] {elapsed_s:6.1f} s"
        if self._rich is not None:
            self._rich.update(self._task, completed=min(done, self.total))
            return
        self.stream.write(self.last_text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if not self.enabled:
            return
        if self._rich is not None:
            self._rich.update(self._task, completed=self.total)
            self._rich.stop()
            self._rich = None
            return
        if not self.last_text.startswith(f"{self.label} [100.0 %]"):
            self.draw(self.total, time.perf_counter() - self._started)
