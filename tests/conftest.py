"""Shared test configuration: where the recorded data lives."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("MMKIT_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The recordings in ../shared/data; missing data is a failure, not a skip."""
    assert SHARED_DATA.is_dir(), f"recorded data not found at {SHARED_DATA} (set MMKIT_SHARED_DATA)"
    return SHARED_DATA
