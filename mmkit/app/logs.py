"""How mmkit logs, set once and deliberately (the CLI and the backtest call :func:`setup` / :func:`add_file`).

Why not loguru's defaults:

* ``diagnose=False`` everywhere: loguru's default prints the value of every
  local variable in a traceback, and live code has secrets among them.
* **Repeats are folded.** A controller that fails on every tick must not write
  a traceback per tick (one broken backtest wrote 45 MB and ran 14× slower):
  the first warning or error from one place is logged in full, with its
  traceback once; repeats are counted and logged as one line at 10, 100,
  1000... occurrences, and :func:`flush_repeats` writes the final count.
* **Backtest lines carry simulated time.** While a BACKTEST clock runs (the
  strategy runner registers it with :func:`use_simulated_time`), each line is
  stamped with the simulated instant, so a log line can be matched with the
  report and the charts; live lines carry UTC wall time.
* ``--log-json``: one JSON object per line on stderr, for a production log
  pipeline (loguru's ``serialize``).
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from loguru import logger

#: Keys of ``logger.bind(...)`` shown in a text line, in this order.
CONTEXT_KEYS = ("strategy", "venue", "symbol", "session")
#: At most this many distinct repeating places are tracked (a bound on memory, not a limit on logging).
MAX_TRACKED = 1000
#: A line on the terminal: the exception's type and message only (the traceback goes to the log file).
BRIEF_FORMAT = "{extra[t]} {level: <7} {extra[ctx]}{message}{extra[brief]}\n"
#: A line in a log file: the first traceback of a place in full (without variable values).
FULL_FORMAT = "{extra[t]} {level: <7} {extra[ctx]}{message}\n{exception}"

_sim_time: Callable[[], int] | None = None


def use_simulated_time(now_ns: Callable[[], int] | None) -> None:
    """Stamp log lines with ``now_ns()`` (simulated ns) from now on; None goes back to wall time."""
    global _sim_time  # noqa: PLW0603 - one process-wide log stamp, like loguru's own sinks
    _sim_time = now_ns


def _stamp(record: Any) -> str:
    if _sim_time is not None:
        ns = _sim_time()
        moment = dt.datetime.fromtimestamp(ns // 1_000_000_000, tz=dt.UTC)
        return f"{moment:%Y-%m-%dT%H:%M:%S}.{(ns // 1_000_000) % 1000:03d}Z(sim)"
    utc = record["time"].astimezone(dt.UTC)
    return f"{utc:%Y-%m-%dT%H:%M:%S}.{utc.microsecond // 1000:03d}Z"


class RepeatFolder:
    """A loguru patcher: the first WARNING+ record from one place passes in full, repeats are counted.

    "One place" is the source line and the message text, so two different
    errors from one line are two places. A repeat is marked ``_fold_drop``
    (the sinks' filter drops it) except at 10, 100, 1000... occurrences, when
    it passes as one line with the count and without its traceback.
    """

    def __init__(self) -> None:
        self.counts: dict[tuple[str, int, str], int] = {}
        self.reported: dict[tuple[str, int, str], int] = {}
        self.levels: dict[tuple[str, int, str], str] = {}

    def __call__(self, record: Any) -> None:
        extra = record["extra"]
        extra["t"] = _stamp(record)
        context = [str(extra[k]) for k in CONTEXT_KEYS if k in extra]
        extra["ctx"] = f"[{' '.join(context)}] " if context else ""
        exception = record["exception"]
        extra["brief"] = (f" ({exception.type.__name__}: {str(exception.value).strip().splitlines()[0][:200]})"
                          if exception is not None and exception.type is not None and str(exception.value).strip()
                          else f" ({exception.type.__name__})" if exception is not None and exception.type is not None
                          else "")
        if record["level"].no < 30 or extra.get("_fold_summary"):
            return
        key = (record["file"].path, record["line"], record["message"])
        count = self.counts.get(key, 0) + 1
        if count == 1 and len(self.counts) >= MAX_TRACKED:
            return  # untracked: logged in full
        self.counts[key] = count
        self.levels[key] = record["level"].name
        if count == 1:
            return
        if _is_power_of_ten(count):
            self.reported[key] = count
            record["exception"] = None
            record["message"] = f"{record['message']} (repeated {count} times; traceback shown once)"
            return
        extra["_fold_drop"] = True

    def flush(self) -> None:
        """One line per place whose last count was not logged yet (call at the end of a run)."""
        for key, count in list(self.counts.items()):
            if count > 1 and self.reported.get(key) != count:
                self.reported[key] = count
                logger.bind(_fold_summary=True).log(
                    self.levels[key], "{} (repeated {} times in all; traceback shown once)", key[2], count
                )

    def reset(self) -> None:
        self.counts.clear()
        self.reported.clear()
        self.levels.clear()


def _is_power_of_ten(count: int) -> bool:
    while count >= 10 and count % 10 == 0:
        count //= 10
    return count == 1


FOLDER = RepeatFolder()


def _keep(record: Any) -> bool:
    return not record["extra"].get("_fold_drop", False)


def setup(*, verbose: bool = False, json: bool = False, stream: TextIO | None = None) -> None:
    """Replace every sink with one on stderr: INFO (DEBUG with ``verbose``), text or JSON lines."""
    logger.remove()
    FOLDER.reset()
    logger.configure(patcher=FOLDER)
    add_stream(stream if stream is not None else sys.stderr, level="DEBUG" if verbose else "INFO", json=json,
               tracebacks=verbose)


def _brief(_: Any) -> str:
    return BRIEF_FORMAT


def _full(_: Any) -> str:
    return FULL_FORMAT


def add_stream(stream: TextIO, *, level: str, json: bool = False, tracebacks: bool = False) -> int:
    """A sink on ``stream`` with mmkit's settings (folded repeats, no variable values in tracebacks).

    A terminal gets one line per event, an exception shown as its type and message; ``tracebacks``
    (``-v``) adds the traceback, once per place like in the log file.
    """
    return logger.add(stream, level=level, format=_full if tracebacks else _brief, filter=_keep, diagnose=False,
                      backtrace=False, colorize=False, serialize=json)


def add_file(path: Path, *, level: str = "INFO", json: bool = False, mode: str = "w") -> int:
    """A log file with the same settings and the first traceback of each place (``backtest.log``, the run log)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if json:
        return logger.add(path, level=level, serialize=True, filter=_keep, diagnose=False, backtrace=False, mode=mode)
    return logger.add(path, level=level, format=_full, filter=_keep, diagnose=False, backtrace=False, mode=mode)


def backtest_sinks(log_path: Path, *, verbose: bool, json: bool = False) -> None:
    """Backtest: the terminal keeps the progress bar and errors; everything else goes to ``log_path``."""
    logger.remove()
    FOLDER.reset()
    logger.configure(patcher=FOLDER)
    add_stream(sys.stderr, level="DEBUG" if verbose else "ERROR", json=json, tracebacks=verbose)
    add_file(log_path, level="DEBUG" if verbose else "INFO", json=json)


def flush_repeats() -> None:
    FOLDER.flush()
