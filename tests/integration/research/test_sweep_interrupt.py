"""Ctrl-C in the middle of a stream of finishing trials never aborts the process.

Ray 2.60 aborts the driver when ``ray.cancel`` meets a task that is finishing
at that moment; the sweep used to cancel its unfinished trials on Ctrl-C and
so, now and then, died with exit 1 instead of exiting 130 with its finished
trials kept. Here many tiny trials finish all the time and the sweep is
interrupted 25 times in a row: with the old cancel this aborts within a few
rounds (it did, run against it); without it every round ends in
:class:`SweepInterrupted` with the finished trials saved.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration]

REPO = Path(__file__).resolve().parents[3]

SCRIPT = textwrap.dedent('''
    import sys, time
    from pathlib import Path
    import ray
    from mmkit.research.executor import Progress, RayRunner, SweepInterrupted, start_ray
    from mmkit.research.store import TrialStore
    from mmkit.research.trial import TrialSpec

    def quick(spec):  # a trial that finishes at once, so that some are always finishing
        return {"key": TrialSpec.from_dict(spec).key(), "status": "ok", "wall_s": 0.0, "files": {}}

    class InterruptAfter(Progress):
        """Raises KeyboardInterrupt (what Ctrl-C raises) from the loop after ``limit`` finished trials."""
        def __init__(self, limit):
            super().__init__(False)
            self.limit, self.seen = limit, 0
        def update(self, running, finished=None):
            if finished is not None:
                self.seen += 1
                if self.seen == self.limit:
                    raise KeyboardInterrupt

    def spec(seed):
        return TrialSpec(config_yaml="x: 1\\n", params={}, dataset="d", data_path="/nonexistent",
                         data_checksum="c", start_ns=None, end_ns=None, seed=seed, setup="replay",
                         queue="probabilistic", version="test")

    start_ray(num_cpus=2)
    out = Path(sys.argv[1])
    for round_ in range(25):
        store = TrialStore(out / str(round_))
        runner = RayRunner(store, InterruptAfter(40), trial=quick)
        try:
            runner.run([spec(round_ * 1000 + i) for i in range(300)])
        except SweepInterrupted as exc:
            saved = len(list((out / str(round_) / "trials").glob("*/result.json")))
            assert saved == 40, saved  # each trial is saved before the progress hears of it
            print(f"round {round_}: {exc}", flush=True)
        else:
            raise AssertionError("the interrupt did not stop the sweep")
        runner.close()
    ray.shutdown()
    print("survived", flush=True)
''')


@pytest.mark.timeout(300)
def test_interrupts_while_trials_finish_never_abort_the_process(tmp_path: Path) -> None:
    script = tmp_path / "interrupt.py"
    script.write_text(SCRIPT)
    proc = subprocess.run([sys.executable, str(script), str(tmp_path / "out")], capture_output=True, text=True,
                          timeout=280, cwd=REPO, env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Check failed" not in proc.stderr
    rounds = [line for line in proc.stdout.splitlines() if line.startswith("round ")]
    assert len(rounds) == 25 and proc.stdout.rstrip().endswith("survived")
    assert all("left to finish in the Ray session this sweep did not start" in line for line in rounds)
