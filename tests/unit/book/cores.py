"""The integer book cores every core-level test runs against: the pure one and its compiled twin.

The compiled core is part of a normal install (setup.py builds it); when it is missing this import
fails the tests that use it rather than skipping them, since a skipped twin would hide a broken build.
"""

from __future__ import annotations

from typing import Any

from mmkit._speedups import _compiled, import_error
from mmkit.book.levels import PyLevels


def compiled_levels() -> type[Any]:
    module = _compiled("_levels")
    assert module is not None, f"the compiled core is not built: {import_error()} (pip install -e .)"
    return module.CLevels  # type: ignore[no-any-return]


CORES: list[type[Any]] = [PyLevels, compiled_levels()]
