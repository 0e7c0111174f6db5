"""Shared test configuration: where the recorded data lives, and where the recording cache may write."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("MMKIT_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The recordings in ../shared/data; missing data is a failure, not a skip."""
    assert SHARED_DATA.is_dir(), f"recorded data not found at {SHARED_DATA} (set MMKIT_SHARED_DATA)"
    return SHARED_DATA


@pytest.fixture(scope="session", autouse=True)
def recording_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Point the on-disk recording cache at a directory of this session, for every test (and its subprocesses).

    Why: the readers cache parsed recordings under ``~/.cache`` by default; a
    test run must never write there, nor be served what another run left. One
    directory for the session lets tests that read the shared recording again
    load it instead of parsing it; tests of the cache itself use their own.
    """
    directory = tmp_path_factory.mktemp("recording-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MMKIT_CACHE_DIR", str(directory))
        yield directory


@pytest.fixture(scope="session", autouse=True)
def market_lock_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Market locks (mmkit.store.market_lock) of this session's engines in a directory of the session's own.

    Why: the default is machine-wide, so two test runs at once (CI jobs, a developer's loop), or a test run and
    a real engine, would refuse each other's engines on the same simulated account. Tests of the default
    directory itself clear this variable.
    """
    directory = tmp_path_factory.mktemp("market-locks")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MMKIT_LOCK_DIR", str(directory))
        yield directory
