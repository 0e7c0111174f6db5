"""The bundled ``connectors`` and ``strategies`` live under the mmkit namespace, and keep their short names.

Why: installed as top-level packages under generic names, our ``connectors``
and ``strategies`` and a user's own packages of the same names shadowed each
other (a project's ``tests/strategies/`` package hid ours, or ours hid theirs).
The distribution now installs them as ``mmkit.connectors`` and
``mmkit.strategies`` (setuptools ``package-dir``, see setup.py), so nothing
of ours takes a top-level name. The source tree keeps its folders and its
imports (``from connectors.truex.config import ...``), and configs keep their
dotted names (``connectors.truex:TrueXConnector``): this meta-path finder,
installed first when mmkit is imported, answers for **our** modules under the
short names by handing out the very module objects of ``mmkit.connectors.X``
/ ``mmkit.strategies.X`` (one copy, one identity). Everything else falls
through to the normal import system, so:

* a user's own ``strategies`` (or ``connectors``) package is imported as theirs,
  and their ``strategies.my_module`` is theirs too;
* ``strategies.skewed_ladder`` and ``connectors.truex`` are always ours, whatever
  the user's path holds;
* when nobody provides a top-level ``strategies`` package, the short name is
  ours as a whole.

The finder imports nothing of connectors or strategies until someone asks for
one by name, so DESIGN.md's rule (mmkit never imports them) still holds.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any

#: Short top-level name -> where it lives in the installed distribution.
BUNDLED = {"connectors": "mmkit.connectors", "strategies": "mmkit.strategies"}


class _AliasLoader(importlib.abc.Loader):
    """Returns the module already imported under its mmkit name; executes nothing a second time."""

    def __init__(self, target: str) -> None:
        self.target = target
        self._spec: importlib.machinery.ModuleSpec | None = None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        module = importlib.import_module(self.target)
        self._spec = module.__spec__
        return module

    def exec_module(self, module: ModuleType) -> None:
        # The import system has just set ``__spec__`` to the alias's; the module keeps its own identity.
        module.__spec__ = self._spec

    def get_code(self, fullname: str) -> Any:
        """For ``python -m connectors.truex.sim``: runpy executes the target's code under ``__main__``."""
        return self._target_loader().get_code(self.target)

    def get_source(self, fullname: str) -> Any:
        return self._target_loader().get_source(self.target)

    def is_package(self, fullname: str) -> bool:
        return bool(self._target_loader().is_package(self.target))

    def _target_loader(self) -> Any:
        spec = importlib.util.find_spec(self.target)
        if spec is None or spec.loader is None:
            raise ImportError(f"no loader for {self.target}")
        return spec.loader


class BundledFinder(importlib.abc.MetaPathFinder):
    """Maps ``connectors.X...`` / ``strategies.X...`` to ``mmkit.connectors.X...`` when X is one of ours."""

    def __init__(self) -> None:
        self._ours: dict[str, frozenset[str] | None] = {}
        self._busy: set[str] = set()

    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        head, _, rest = fullname.partition(".")
        home = BUNDLED.get(head)
        if home is None or fullname in self._busy:
            return None
        if not rest:
            return self._top_level(fullname, home)
        first = rest.split(".", 1)[0]
        if self._provided_by_path_package(head, home, first):
            return None  # the top level came from the path (a checkout's or a user's) and holds this child
        if first not in self._children(home):
            return None  # not ours: the user's package answers for it
        return self._alias(fullname, f"{home}.{rest}")

    @staticmethod
    def _provided_by_path_package(head: str, home: str, child: str) -> bool:
        """Whether ``head`` was imported from the path, not as our alias, and has ``child`` of its own.

        Why: a checkout run with its root on the path (tests, ``python -m``) imports ``connectors`` as a
        plain package; aliasing its children to ``mmkit.connectors`` would load a second copy of a module
        that is half-initialised in the first (a circular import).
        """
        parent = sys.modules.get(head)
        if parent is None or parent is sys.modules.get(home):
            return False
        return any(
            importlib.machinery.PathFinder.find_spec(child, [location]) is not None
            for location in getattr(parent, "__path__", ())
        )

    def _top_level(self, name: str, home: str) -> importlib.machinery.ModuleSpec | None:
        """Ours only when nothing else on the path provides a package of that name."""
        self._busy.add(name)
        try:
            if importlib.util.find_spec(name) is not None:
                return None
        finally:
            self._busy.discard(name)
        if not self._children(home):
            return None
        return self._alias(name, home)

    def _alias(self, name: str, target: str) -> importlib.machinery.ModuleSpec:
        module = importlib.import_module(target)
        spec = importlib.machinery.ModuleSpec(name, _AliasLoader(target),
                                              is_package=hasattr(module, "__path__"))
        if hasattr(module, "__path__"):
            spec.submodule_search_locations = list(module.__path__)
        return spec

    def _children(self, home: str) -> frozenset[str]:
        """The sub-modules of ``mmkit.connectors`` / ``mmkit.strategies`` (empty when they are not installed)."""
        if home not in self._ours:
            self._ours[home] = None
            names: frozenset[str] = frozenset()
            try:
                spec = importlib.util.find_spec(home)
            except ImportError:
                spec = None
            if spec is not None and spec.submodule_search_locations:
                import pkgutil

                names = frozenset(m.name for m in pkgutil.iter_modules(list(spec.submodule_search_locations)))
            self._ours[home] = names
        return self._ours[home] or frozenset()


def install() -> None:
    """Put the finder first on ``sys.meta_path`` (once)."""
    if not any(isinstance(finder, BundledFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, BundledFinder())
