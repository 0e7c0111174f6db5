"""Package layout and the compiled replay core (everything else is in pyproject.toml).

The bundled ``connectors/`` and ``strategies/`` folders are installed under the mmkit namespace
(``mmkit.connectors``, ``mmkit.strategies``), never as top-level packages with generic names that a
user's own packages would shadow or be shadowed by; mmkit/app/bundled.py keeps the short names working.
The package list is computed, so a new sub-package is never forgotten. ``conf/`` ships as ``mmkit._conf``.

The Cython modules of ``mmkit/_speedups`` (the replay hot path, see its ``__init__``) are compiled here
with the system's C compiler; Cython comes from ``[build-system] requires``. They are ``optional``: an
install where they cannot be compiled still succeeds, and mmkit then runs the pure-Python path with a
logged warning. Each module carries the digest of the .pyx it was built from, so that a checkout whose
.pyx changed since the last build (a pull without a reinstall) runs the pure path, with a warning, rather
than stale compiled code. The generated .c files and the built .so files are never committed (.gitignore).
"""

import hashlib
from pathlib import Path

from setuptools import Extension, find_packages, setup

BUNDLED = ("connectors", "strategies")
SPEEDUPS = ("_levels", "_sequencer", "_binance", "_replayloop")

packages = find_packages(include=["mmkit", "mmkit.*"])
for top in BUNDLED:
    packages += [f"mmkit.{name}" for name in find_packages(include=[top, f"{top}.*"])]

# conf/ (venue rules, FIX dictionaries) travels in a wheel as the package data of mmkit._conf;
# mmkit.conf.shipped_conf_dir finds it there when there is no checkout around the code.
CONF_PACKAGES = {"mmkit._conf": "conf", "mmkit._conf.venues": "conf/venues", "mmkit._conf.fix": "conf/fix"}
packages += list(CONF_PACKAGES)


def _source_sha(path: str) -> str:
    """The .pyx's digest, compiled into its module: mmkit._speedups refuses a module built from other source."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _extensions() -> list[Extension]:
    try:
        from Cython.Build import cythonize
    except ImportError:  # only outside pip's isolated build (setup.py run by hand without Cython)
        print("Cython is not installed: the compiled replay core is not built (the pure-Python path runs)")
        return []
    modules = []
    for name in SPEEDUPS:
        source = f"mmkit/_speedups/{name}.pyx"
        macro = ("MMKIT_SOURCE_SHA", f'"{_source_sha(source)}"')
        modules.append(Extension(f"mmkit._speedups.{name}", [source], define_macros=[macro], optional=True))
    return cythonize(modules, language_level=3, quiet=True)


setup(
    packages=packages,
    package_dir={**{f"mmkit.{top}": top for top in BUNDLED}, **CONF_PACKAGES},
    ext_modules=_extensions(),
)
