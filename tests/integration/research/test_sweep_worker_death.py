"""A Ray worker killed in the middle of a trial (SIGKILL, the OOM killer) is a failed trial: counted, never ranked.

The trial function here kills its own worker process for one trial and returns at once for the others, so the
test needs no backtest: what is under test is what the driver records for a trial whose worker vanished
(mmkit.research.executor.RayRunner._outcome) and that the next run tries it again.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mmkit.research.executor import RayRunner
from mmkit.research.store import TrialStore
from mmkit.research.trial import TrialSpec

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("ray_cluster")]

DOOMED = 666


def spec(seed: int) -> TrialSpec:
    return TrialSpec(config_yaml="x: 1\n", params={"p": seed}, dataset="d", data_path="/nonexistent",
                     data_checksum="c", start_ns=None, end_ns=None, seed=seed, setup="replay",
                     queue="conservative", version="test")


def killing_trial() -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A trial that SIGKILLs its worker for the doomed seed (no exception, no cleanup: the process is gone).

    Made here so that Ray ships it by value: the workers cannot import this test module.
    """
    doomed = DOOMED

    def trial(spec_dict: dict[str, Any]) -> dict[str, Any]:
        import os
        import signal

        from mmkit.research.trial import TrialSpec as Spec

        trial = Spec.from_dict(spec_dict)
        if trial.seed == doomed:
            os.kill(os.getpid(), signal.SIGKILL)
        return {"key": trial.key(), "status": "ok", "error": "", "wall_s": 0.0, "report": {"pnl": {"total": "1"}},
                "files": {"report.json": b'{"pnl": {"total": "1"}}'}}

    return trial


@pytest.mark.timeout(180)
def test_a_killed_worker_is_a_failed_trial_recorded_and_tried_again(tmp_path: Path) -> None:
    store = TrialStore(tmp_path / "out")
    specs = [spec(1), spec(DOOMED), spec(2)]
    results = RayRunner(store, trial=killing_trial()).run(specs)
    doomed = spec(DOOMED).key()
    assert results[doomed]["status"] == "failed"
    assert "WorkerCrashedError" in results[doomed]["error"], results[doomed]  # says why, never empty
    assert results[doomed]["report"] is None
    assert not store.finished(doomed)
    assert all(results[s.key()]["status"] == "ok" and store.finished(s.key()) for s in (spec(1), spec(2)))
    planned = RayRunner(store, trial=killing_trial())
    again = planned.run([spec(DOOMED)])  # the next run tries it again (and it dies again)
    assert again[doomed]["status"] == "failed"


def not_importable_on_workers(spec_dict: dict[str, Any]) -> dict[str, Any]:
    """Ray ships a module-level function by reference: the workers cannot import this test module."""
    raise AssertionError("never runs")


@pytest.mark.timeout(180)
def test_a_trial_ray_cannot_run_says_why_not_only_where(tmp_path: Path) -> None:
    """A worker that cannot import what it runs (a cluster without a package): the error named only the task
    and its pid, in terminal colour codes (the first line of a RayTaskError); the cause is on its last line."""
    store = TrialStore(tmp_path / "out")
    [result] = RayRunner(store, trial=not_importable_on_workers).run([spec(1)]).values()
    assert result["status"] == "failed"
    assert "ModuleNotFoundError: No module named " in result["error"], result["error"]
    assert "\x1b[" not in result["error"]
    assert "\x1b[" not in (tmp_path / "out" / "trials" / spec(1).key() / "result.json").read_text()
