"""The settable clock the simulated venues' unit tests drive (a venue reads the time by calling it)."""

from __future__ import annotations


class Clock:
    """``clock.now = ns`` moves time; calling it returns ``now`` (what ``BaseVenue`` takes as its clock)."""

    def __init__(self) -> None:
        self.now = 0

    def __call__(self) -> int:
        return self.now
