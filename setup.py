"""Package layout (everything else is in pyproject.toml).

The bundled ``connectors/`` and ``strategies/`` folders are installed under the mmkit namespace
(``mmkit.connectors``, ``mmkit.strategies``), never as top-level packages with generic names that a
user's own packages would shadow or be shadowed by; mmkit/app/bundled.py keeps the short names working.
The package list is computed, so a new sub-package is never forgotten. ``conf/`` ships as ``mmkit._conf``.
"""

from setuptools import find_packages, setup

BUNDLED = ("connectors", "strategies")

packages = find_packages(include=["mmkit", "mmkit.*"])
for top in BUNDLED:
    packages += [f"mmkit.{name}" for name in find_packages(include=[top, f"{top}.*"])]

# conf/ (venue rules, FIX dictionaries) travels in a wheel as the package data of mmkit._conf;
# mmkit.conf.shipped_conf_dir finds it there when there is no checkout around the code.
CONF_PACKAGES = {"mmkit._conf": "conf", "mmkit._conf.venues": "conf/venues", "mmkit._conf.fix": "conf/fix"}
packages += list(CONF_PACKAGES)

setup(
    packages=packages,
    package_dir={**{f"mmkit.{top}": top for top in BUNDLED}, **CONF_PACKAGES},
)
