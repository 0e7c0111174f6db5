"""An installed wheel carries what mmkit reads at run time: venue rules and the FIX dictionaries.

Why: in a checkout ``conf/`` sits beside the code, so every other test finds it; a wheel installed on a
desk's machine has no checkout around it, and before this test a non-editable install could not load
``conf/venues/truex.yml`` at all. The wheel is built from this tree, installed into a private folder,
and imported from a directory with no ``conf/`` in sight.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

PROBE = textwrap.dedent(
    """
    import mmkit, sys
    from pathlib import Path
    from mmkit.connector import DEFAULT_VENUES_DIR, load_venue_rules
    from connectors.truex.dictionary import APP_DICTIONARY, TRANSPORT_DICTIONARY
    installed = Path(sys.argv[1]).resolve()
    assert Path(mmkit.__file__).resolve().is_relative_to(installed), mmkit.__file__
    assert DEFAULT_VENUES_DIR.resolve().is_relative_to(installed), DEFAULT_VENUES_DIR
    for venue in ("truex", "binance", "binance_coinm", "kraken", "coinbase", "gemini", "sim"):
        rules = load_venue_rules(venue)
        assert rules.instruments, venue
    assert APP_DICTIONARY.is_file() and TRANSPORT_DICTIONARY.is_file(), APP_DICTIONARY
    import quickfix
    quickfix.DataDictionary(str(APP_DICTIONARY))
    print("ok", DEFAULT_VENUES_DIR)
    """
)


def _clean_copy(target: Path) -> Path:
    """The tree's files that git would ship (tracked or new, not ignored), without a stale ``build/``.

    Why a copy: pip builds a local folder in place, and setuptools reuses an existing ``build/lib``, so a
    file left there by an earlier build would be packed even when setup.py no longer maps it.
    """
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True, text=True, cwd=ROOT, check=True,
    ).stdout.split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


@pytest.mark.timeout(300)
def test_installed_wheel_loads_venue_rules_and_fix_dictionaries(tmp_path: Path) -> None:
    source = _clean_copy(tmp_path / "source")
    wheels = tmp_path / "wheels"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(source), "-w", str(wheels)],
        capture_output=True, text=True, cwd=tmp_path,
    )
    assert build.returncode == 0, build.stderr[-3000:]
    (wheel,) = wheels.glob("mmkit-*.whl")
    site = tmp_path / "site"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel)],
        capture_output=True, text=True,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    elsewhere = tmp_path / "desk"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}
    probe = subprocess.run(
        [sys.executable, "-c", PROBE, str(site)], capture_output=True, text=True, cwd=elsewhere, env=env,
    )
    assert probe.returncode == 0, probe.stdout + probe.stderr[-3000:]
    assert probe.stdout.startswith("ok ")
