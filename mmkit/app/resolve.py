"""Resolve ``package.module:Name`` strings from a config into Python objects.

This is the one place where mmkit reaches connectors and strategies, by name
and at run time, so that the framework never imports them statically
(DESIGN.md's dependency rule).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from mmkit.conf import ConfigError


def resolve_dotted(name: str, file: str | Path | None, key_path: str) -> Any:
    """Import ``module:attr`` (or ``module.attr``); errors name the config key."""
    module_name, sep, attr = name.partition(":")
    if not sep:
        module_name, _, attr = name.rpartition(".")
    if not module_name or not attr:
        raise ConfigError(file, key_path, f"{name!r} is not a dotted name like 'package.module:Class'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(file, key_path, f"cannot import module {module_name!r}: {exc}") from exc
    try:
        return getattr(module, attr)
    except AttributeError as exc:
        raise ConfigError(file, key_path, f"module {module_name!r} has no attribute {attr!r}") from exc
