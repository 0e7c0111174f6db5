"""ccxt's error classes and one exchange's ccxt.pro class, without importing every exchange.

Why: ``import ccxt`` runs its package ``__init__``, which imports all of
ccxt's ~100 exchanges (~56 MB resident), and ``ccxt.pro`` does it again for
the async and websocket ones (~33 MB more): a live process that prices off
three venues paid ~90 MB for classes it never used. Importing any submodule
(``ccxt.base.errors``, ``ccxt.pro.kraken``) runs the parent packages'
``__init__`` first, so here the three packages (``ccxt``,
``ccxt.async_support``, ``ccxt.pro``) are registered *light*: a module with
the package's real path and spec, so that its submodules import normally,
whose ``__init__`` has not run. A light package answers what the exchange
modules ask of it (the error classes and ``Exchange`` on ``ccxt``, the
exchange classes we imported on ``ccxt.async_support`` and ``ccxt.pro``,
exactly as their ``__init__`` binds them); any other attribute runs the real
``__init__`` into the same module first, so code that does ``import ccxt;
ccxt.kraken`` still works, only without the saving.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
from types import ModuleType
from typing import Any

_PACKAGES = ("ccxt", "ccxt.async_support", "ccxt.pro")
_LOCK = threading.RLock()
#: What the light ``ccxt`` answers without its ``__init__``: the names its ``__init__`` imports from these.
_BASE_EXPORTS = {"Exchange": "ccxt.base.exchange", "__version__": "ccxt.base.exchange"}


def _is_light(module: ModuleType) -> bool:
    return "__getattr__" in module.__dict__ and getattr(module, "_mmkit_light", False)


def _light_package(name: str) -> ModuleType:
    """``name`` as registered in ``sys.modules``: the real package if loaded, else a light one (see the module doc)."""
    module = sys.modules.get(name)
    if module is not None:
        return module
    spec = importlib.util.find_spec(name)  # the parent is in sys.modules already (light or real): nothing runs
    if spec is None or spec.loader is None or spec.submodule_search_locations is None:
        raise ModuleNotFoundError(f"no package {name!r} (is ccxt installed?)", name=name)
    module = importlib.util.module_from_spec(spec)
    loader = spec.loader
    running = threading.local()

    def complete(attr: str) -> Any:
        """A name the light package does not have: answer from ccxt's base modules, else run the real __init__."""
        if attr.startswith("__") and attr.endswith("__") and attr not in ("__all__", "__version__"):
            raise AttributeError(attr)  # probes (__wrapped__, __path__ hooks...) must not load every exchange
        if name == "ccxt":
            value = _base_export(attr)
            if value is not None:
                module.__dict__[attr] = value
                return value
        if getattr(running, "on", False):
            raise AttributeError(f"module {name!r} has no attribute {attr!r} (while its __init__ runs)")
        with _LOCK:
            if module.__dict__.get("__getattr__") is complete:
                running.on = True
                try:
                    loader.exec_module(module)  # the real __init__, into this same module object
                finally:
                    running.on = False
                    module.__dict__.pop("__getattr__", None)
                    module.__dict__.pop("_mmkit_light", None)
        try:
            return module.__dict__[attr]
        except KeyError:
            raise AttributeError(f"module {name!r} has no attribute {attr!r}") from None

    module.__dict__["__getattr__"] = complete
    module.__dict__["_mmkit_light"] = True
    sys.modules[name] = module
    parent, _, child = name.rpartition(".")
    if parent:
        setattr(sys.modules[parent], child, module)
    return module


def _base_export(attr: str) -> Any:
    """What ``ccxt/__init__.py`` binds ``attr`` to, when it comes from the error or base exchange module."""
    errors = importlib.import_module("ccxt.base.errors")
    if attr in errors.__dict__ and isinstance(errors.__dict__[attr], type):
        return errors.__dict__[attr]
    if attr == "errors":
        return errors
    source = _BASE_EXPORTS.get(attr)
    return None if source is None else getattr(importlib.import_module(source), attr)


def ccxt_errors() -> ModuleType:
    """``ccxt.base.errors`` (every exception class ccxt raises), imported without ccxt's exchanges."""
    with _LOCK:
        _light_package("ccxt")
        return importlib.import_module("ccxt.base.errors")


def pro_exchange_class(ccxt_id: str) -> type:
    """The ccxt.pro exchange class ``ccxt_id`` (``kraken``, ``coinbase``...), importing that exchange's modules only."""
    if not ccxt_id.isidentifier() or ccxt_id.startswith("_"):
        raise ValueError(f"not a ccxt exchange id: {ccxt_id!r}")
    with _LOCK:
        for package in _PACKAGES:
            _light_package(package)
        async_package, pro_package = sys.modules["ccxt.async_support"], sys.modules["ccxt.pro"]
        base = importlib.import_module(f"ccxt.async_support.{ccxt_id}")
        if _is_light(async_package):  # as its __init__ binds it: the package attribute is the class
            setattr(async_package, ccxt_id, getattr(base, ccxt_id))
        pro = importlib.import_module(f"ccxt.pro.{ccxt_id}")
        cls = getattr(pro, ccxt_id)
        if _is_light(pro_package):
            setattr(pro_package, ccxt_id, cls)
    if not isinstance(cls, type):
        raise TypeError(f"ccxt.pro.{ccxt_id}.{ccxt_id} is not a class")
    return cls
