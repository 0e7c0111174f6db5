"""Making a file unwritable for real, as root too (CI runs as root, and root ignores permission bits).

Root: ``chattr +i`` (the immutable attribute; root cannot write it either).
Anyone else: ``chmod 0444``. If neither works the test fails and says why:
a store fault that cannot be produced is not a passing test.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path


def _chattr(flag: str, path: Path) -> None:
    done = subprocess.run(["chattr", flag, str(path)], capture_output=True, text=True, timeout=10)
    assert done.returncode == 0, f"chattr {flag} {path} failed (is this file system ext4/xfs?): {done.stderr}"


def make_unwritable(path: Path) -> None:
    if os.geteuid() == 0:
        _chattr("+i", path)
    else:
        path.chmod(0o444)


def make_writable(path: Path) -> None:
    if os.geteuid() == 0:
        _chattr("-i", path)
    else:
        path.chmod(0o600)


@contextlib.contextmanager
def unwritable(path: Path) -> Iterator[None]:
    make_unwritable(path)
    try:
        yield
    finally:
        make_writable(path)
