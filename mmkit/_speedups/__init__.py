"""Compiled twins of the replay hot path, and the switch between them and the pure-Python originals.

Why compiled code here and nowhere else: a replay backtest pushes every
recorded level update through the order book twice (the simulated venue's
book and the strategy's reference tracker) and every recorded event through
the book sequencer; pure Python spends most of a replay there (issue 16). The
Cython modules of this package (``_levels.pyx``, ``_sequencer.pyx``, ``_replayloop.pyx``) are built
by the normal install (setup.py ``ext_modules``, Cython in ``[build-system]``
requires, the system's C compiler) and give the same results as the pure
modules, which stay the reference:

* ``MMKIT_PURE_PYTHON=1`` selects the pure modules (read each time a book or a
  sequencer is built, so one process can run both, as the equivalence tests
  and ``bench/bench_replay_core.py`` do);
* a missing or unloadable extension (an install without a compiler), or one
  built from another version of its .pyx (a checkout pulled without a
  reinstall), falls back to the pure modules with one logged warning; nothing
  else changes.

The equivalence tests (tests/unit/book/test_levels_equivalence.py,
tests/unit/backtest/test_sequencer_equivalence.py,
tests/integration/backtest/test_compiled_core_identical.py) drive both with the
same input and compare state after every event, and report.json bytes.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from loguru import logger

#: Set to 1 (or true/yes) to run the pure-Python modules even when the compiled ones are built.
ENV_PURE = "MMKIT_PURE_PYTHON"

#: Every compiled module of this package (setup.py's SPEEDUPS builds the same list).
COMPILED_MODULES = ("_levels", "_sequencer", "_replayloop")

_loaded: dict[str, ModuleType | None] = {}
_errors: dict[str, str] = {}
_warned: set[str] = set()


def pure_requested() -> bool:
    """True when ``MMKIT_PURE_PYTHON`` asks for the pure-Python path."""
    return os.environ.get(ENV_PURE, "").strip().lower() in ("1", "true", "yes", "on")


def _import(name: str) -> ModuleType:
    if name == "_levels":
        from mmkit._speedups import _levels as module  # type: ignore[attr-defined]
    elif name == "_sequencer":
        from mmkit._speedups import _sequencer as module  # type: ignore[attr-defined]
    elif name == "_replayloop":
        from mmkit._speedups import _replayloop as module  # type: ignore[attr-defined]
    else:  # pragma: no cover - a programming error, not an install state
        raise ValueError(f"no compiled module {name!r}")
    return module


def stale_reason(name: str, module: ModuleType) -> str | None:
    """Why ``module`` must not be used: built from another version of the .pyx beside it (else None).

    An editable checkout keeps its built modules across a ``git pull``; one whose source changed since
    would run old code that the equivalence tests no longer describe. setup.py compiles the source's
    digest into each module (``SOURCE_SHA``); where the source is not beside it (a wheel), nothing to check.
    """
    source = Path(module.__file__ or "").with_name(f"{name}.pyx")
    if not source.is_file():
        return None
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    built = getattr(module, "SOURCE_SHA", None)
    if built == digest:
        return None
    return f"stale build: compiled from another version of {source.name} (pip install -e . rebuilds it)"


def _compiled(name: str) -> ModuleType | None:
    """The compiled module ``mmkit._speedups.<name>``, or None (with one warning) when it cannot be used."""
    if name not in _loaded:
        try:
            module = _import(name)
        except ImportError as exc:
            _loaded[name] = None
            _errors[name] = f"{type(exc).__name__}: {exc}"
        else:
            why = stale_reason(name, module)
            _loaded[name] = None if why else module
            if why:
                _errors[name] = why
    module_or_none = _loaded[name]
    if module_or_none is None and name not in _warned:
        _warned.add(name)
        logger.warning(
            "compiled module mmkit._speedups.{} is not used ({}); running the pure-Python path "
            "(reinstall with a C compiler: pip install -e .)", name, _errors[name])
    return module_or_none


def compiled_available() -> bool:
    """True when every compiled module loads (whatever ``MMKIT_PURE_PYTHON`` says)."""
    return all(_loaded.get(n) is not None or _try(n) for n in COMPILED_MODULES)


def _try(name: str) -> bool:
    try:
        return _compiled(name) is not None
    except Exception:  # pragma: no cover
        return False


def import_error() -> str | None:
    """Why a compiled module could not be loaded (None when all load)."""
    compiled_available()
    return "; ".join(f"{n}: {e}" for n, e in _errors.items()) or None


def levels_class() -> type[Any]:
    """The integer book core to use now: compiled ``CLevels`` or :class:`mmkit.book.levels.PyLevels`."""
    if not pure_requested():
        module = _compiled("_levels")
        if module is not None:
            levels: type[Any] = module.CLevels
            return levels
    from mmkit.book.levels import PyLevels

    return PyLevels


def compiled_sequencer_class() -> type[Any] | None:
    """The compiled book sequencer when it is built and selected, else None (use the pure one)."""
    if pure_requested():
        return None
    module = _compiled("_sequencer")
    return None if module is None else module.CBookSequencer


def compiled_replay_loop_class() -> type[Any] | None:
    """The compiled replay delivery loop when it is built and selected, else None (the sinks do it all)."""
    if pure_requested():
        return None
    module = _compiled("_replayloop")
    return None if module is None else module.ReplayLoop


def level_scans() -> tuple[Callable[..., Any], Callable[..., Any]]:
    """(size_before_last_change, drop_listed) to use now: compiled or from :mod:`mmkit.book.levels`."""
    if not pure_requested():
        module = _compiled("_levels")
        if module is not None:
            return module.size_before_last_change, module.drop_listed
    from mmkit.book.levels import drop_listed, size_before_last_change

    return size_before_last_change, drop_listed
