"""What a person watching a terminal sees while a strategy runs: the status block, redrawn in place.

Why: printed every second, the status block scrolls everything else (the log
lines that matter) off the screen. On a terminal it is drawn with rich in one
place that updates; anywhere else (a pipe, a file, CI) it is printed as plain
text blocks, one per period, exactly as before, so logs and tests read it.
"""

from __future__ import annotations

from typing import Any, TextIO


class StatusDisplay:
    """``show(text)`` each period, ``close()`` at the end; in place on a terminal, appended otherwise."""

    def __init__(self, out: TextIO, *, terminal: bool | None = None) -> None:
        self.out = out
        is_tty = getattr(out, "isatty", lambda: False)
        self.terminal = bool(is_tty()) if terminal is None else terminal
        self._live: Any = None

    def show(self, text: str) -> None:
        if not self.terminal:
            print(text, file=self.out, flush=True)
            return
        from rich.panel import Panel
        from rich.text import Text

        first, _, rest = text.partition("\n")
        panel = Panel(Text(rest.replace("│ ", "").replace("└ ", "")), title=Text(first.lstrip("┌ ")),
                      title_align="left")
        if self._live is None:
            from rich.console import Console
            from rich.live import Live

            console = Console(file=self.out, force_terminal=True)
            self._live = Live(panel, console=console, auto_refresh=False, transient=False)
            self._live.start()
        self._live.update(panel, refresh=True)

    def close(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
