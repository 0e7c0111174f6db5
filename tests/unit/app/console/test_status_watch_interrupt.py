"""``mmkit status --watch`` stops on Ctrl-C between two redraws, never inside one.

A KeyboardInterrupt raised inside a redraw (which reads the store through SQLAlchemy) once landed in
SQLAlchemy closing a connection, which logged it with a traceback on stderr (seen in CI's console test).
"""

from __future__ import annotations

import os
import signal

from mmkit.app.console.status_view import watch


def test_ctrl_c_during_a_redraw_lets_it_finish_then_stops_the_loop() -> None:
    finished: list[int] = []

    def render() -> str:
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C arrives while the screen is being read
        total = 0
        for i in range(20_000):  # Python runs signal handlers between bytecodes: plenty of chances here
            total += i
        finished.append(total)
        return "screen"

    watch(render, interval_s=30)  # without the fix: KeyboardInterrupt inside render; with it: no 30 s wait
    assert finished == [sum(range(20_000))]


def test_the_previous_ctrl_c_handler_is_back_after_the_watch() -> None:
    before = signal.getsignal(signal.SIGINT)
    watch(lambda: "screen", interval_s=0, count=2)
    assert signal.getsignal(signal.SIGINT) is before
