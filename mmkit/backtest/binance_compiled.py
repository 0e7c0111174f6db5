"""Which Binance-reader path runs: the compiled twin (``mmkit._speedups._binance``) or the pure-Python one.

The compiled module speeds up the first read of a recording (the line scan,
book messages' levels, the level tuples, and the cache write's index
columns); the pure functions it mirrors stay the reference, and
``MMKIT_PURE_PYTHON=1`` or a missing or stale build selects them (the same
events, a slower first read). tests/unit/backtest/test_binance_compiled.py
runs both on the same input.
"""

from __future__ import annotations

from types import ModuleType

from loguru import logger

from mmkit._speedups import pure_requested, stale_reason

_COMPILED: list[ModuleType | None] = []


def compiled_binance() -> ModuleType | None:
    """``mmkit._speedups._binance`` when built, current and not refused by ``MMKIT_PURE_PYTHON``, else None.

    Read per file and per parser, so one process can parse both ways (the equivalence tests do). A missing or stale
    build is logged once and the pure path runs: the same events, a slower first read.
    """
    if pure_requested():
        return None
    if not _COMPILED:
        module: ModuleType | None = None
        try:
            from mmkit._speedups import _binance  # type: ignore[attr-defined]
        except ImportError as exc:
            why = f"{type(exc).__name__}: {exc}"
        else:
            why = stale_reason("_binance", _binance) or ""
            module = None if why else _binance
        if module is None:
            logger.warning("compiled module mmkit._speedups._binance is not used ({}); the recording parse runs "
                           "the pure-Python path (reinstall with a C compiler: pip install -e .)", why)
        _COMPILED.append(module)
    return _COMPILED[0]
