"""Package layout (everything else is in pyproject.toml).

The bundled ``connectors/`` and ``strategies/`` folders are installed under the mmkit namespace
(``mmkit.connectors``, ``mmkit.strategies``), never as top-level packages with generic names that a
user's own packages would shadow or be shadowed by; mmkit/app/bundled.py keeps the short names working.
The package list is computed, so a new sub-package is never forgotten.
"""

from setuptools import find_packages, setup

BUNDLED = ("connectors", "strategies")

packages = find_packages(include=["mmkit", "mmkit.*"])
for top in BUNDLED:
    packages += [f"mmkit.{name}" for name in find_packages(include=[top, f"{top}.*"])]

setup(
    packages=packages,
    package_dir={f"mmkit.{top}": top for top in BUNDLED},
)
