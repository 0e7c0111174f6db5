"""One local Ray with 2 CPUs for the whole test session (started once: it costs seconds)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def ray_cluster(recording_cache_dir: Path) -> Iterator[None]:
    """Started after the recording cache directory is set, so the workers inherit MMKIT_CACHE_DIR."""
    import ray

    from mmkit.research.executor import start_ray

    started = start_ray(num_cpus=2)
    assert ray.cluster_resources().get("CPU") == 2.0 or not started
    yield
    if started:
        ray.shutdown()
