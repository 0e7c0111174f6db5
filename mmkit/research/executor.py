"""Running trials: each one a Ray task, on an embedded local Ray or on a cluster, with a progress bar.

With no address, an embedded Ray is started on this machine with its cores
(``num_cpus`` to change that), lean: no dashboard, worker logs not forwarded,
a small object store, no usage statistics. ``address`` (or ``RAY_ADDRESS``)
joins an existing cluster instead, unchanged. A Ray session already started
in this process (a test session, a notebook) is used as it is and left running.

A failing trial is a result with its error (:func:`mmkit.research.trial.run_trial`
never raises); a worker that dies is recorded the same way. Ctrl-C stops
waiting and raises :class:`SweepInterrupted` after every finished trial has
been saved.

The trials still running are never passed to ``ray.cancel``: in Ray 2.60 a
cancel that meets a task finishing at that moment aborts the whole driver
(``Check failed: it != submissible_tasks_.end() Tried to complete task that
was not pending``), which turned a clean Ctrl-C into a crash with exit 1
(reproduced in ``tests/integration/research/test_sweep_interrupt.py``).
They stop with the Ray this sweep started or joined: ``ray.shutdown`` ends
the embedded Ray's workers, and a cluster ends the tasks of a driver that
leaves. In a Ray session the sweep did not start (a notebook), they are left
to finish and their results are dropped; the message says so.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from mmkit.research.store import TrialStore
from mmkit.research.trial import TrialSpec, run_trial

#: The object store of an embedded Ray: trials exchange only small dicts and their output files.
OBJECT_STORE_BYTES = 256 * 1024 * 1024


class SweepInterrupted(Exception):
    """Ctrl-C: the running trials were cancelled, the finished ones are saved."""


class RayUnavailable(Exception):
    """The Ray cluster named by --address / RAY_ADDRESS cannot be joined (or a local Ray cannot start)."""


def _problem_note(outcome: dict[str, Any]) -> str:
    """", not ranked: problem: ..." for a trial that ran but recorded a problem ("" otherwise).

    Why: its line said only ``ok`` while the backtest recorded what `mmkit backtest` exits non-zero for
    (a controller failure, data unhealthy); the ranking leaves it out, and the line says so as it happens.
    """
    from mmkit.research.metrics import report_problems

    report = outcome.get("report")
    problems = report_problems(report) if isinstance(report, dict) else []
    return f", not ranked: problem: {'; '.join(problems)}" if problems else ""


class Progress:
    """Trials done, running and failed: a rich bar on a terminal, one line per finished trial otherwise."""

    def __init__(self, enabled: bool) -> None:
        self.tty = enabled and sys.stderr.isatty()
        self.done = self.failed = self.running = self.total = 0
        self._bar: Any = None
        self._task: Any = None

    def start(self, total: int, cached: int) -> None:
        self.total, self.done = total, cached
        if self.tty:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._bar = Progress(TextColumn("sweep"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.description}"), TimeElapsedColumn(), transient=False,
                                 console=Console(file=sys.stderr))
            self._bar.start()
            self._task = self._bar.add_task(self._text(), total=total, completed=cached)
        elif cached:
            print(f"{cached} of {total} trials already finished (skipped)", file=sys.stderr, flush=True)

    def _text(self) -> str:
        return f"done {self.done}  running {self.running}  failed {self.failed}"

    def update(self, running: int, finished: dict[str, Any] | None = None) -> None:
        self.running = running
        if finished is not None:
            self.done += 1
            if finished["status"] != "ok":
                self.failed += 1
            if not self.tty:
                error = f": {finished['error']}" if finished["status"] != "ok" else _problem_note(finished)
                print(f"[{self.done}/{self.total}] trial {finished['key']} {finished['status']} "
                      f"({finished['wall_s']:.2f} s){error}", file=sys.stderr, flush=True)
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done, description=self._text())

    def stop(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


class Runner:
    """Runs a batch of trials, skipping those the store already has; returns key -> result (from the store)."""

    def __init__(self, store: TrialStore, progress: Progress | None = None) -> None:
        self.store = store
        self.progress = progress or Progress(False)
        #: Every trial key this sweep has asked for (run or found finished): what an interrupted sweep may list.
        self.planned: set[str] = set()

    def run(self, specs: Sequence[TrialSpec]) -> dict[str, dict[str, Any]]:
        unique: dict[str, TrialSpec] = {}
        for spec in specs:
            unique.setdefault(spec.key(), spec)
        self.planned.update(unique)
        for key in unique:
            damage = self.store.damage(key)
            if damage is not None:  # result.json says ok, its report cannot be read: never trusted, run again
                print(f"trial {key} is damaged ({damage}): running it again", file=sys.stderr, flush=True)
        todo = [spec for key, spec in unique.items() if not self.store.finished(key)]
        self.progress.start(len(unique), len(unique) - len(todo))
        try:
            self._execute(todo, self._finished)
        finally:
            self.progress.stop()
        return {key: self.store.result(key) for key in unique}

    def _finished(self, spec: TrialSpec, outcome: dict[str, Any], running: int) -> None:
        self.store.save(spec, outcome)
        self.progress.update(running, outcome)

    def _execute(self, todo: Sequence[TrialSpec], done: Callable[[TrialSpec, dict[str, Any], int], None]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        return None


class InProcessRunner(Runner):
    """One trial after another in this process (the bench's baseline, ``--rerun``, ``--workers 0``)."""

    def _execute(self, todo: Sequence[TrialSpec], done: Callable[[TrialSpec, dict[str, Any], int], None]) -> None:
        for i, spec in enumerate(todo):
            self.progress.update(1)
            try:
                outcome = run_trial(spec.as_dict())
            except KeyboardInterrupt as exc:
                raise SweepInterrupted(f"interrupted with {len(todo) - i} trial(s) not run") from exc
            done(spec, outcome, 0)


def start_ray(address: str | None = None, num_cpus: int | None = None) -> bool:
    """Connect to ``address`` (or RAY_ADDRESS), or start an embedded Ray; True if this call started it."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    if ray.is_initialized():
        return False
    address = address or os.environ.get("RAY_ADDRESS") or None
    common: dict[str, Any] = {"log_to_driver": False, "configure_logging": False, "include_dashboard": False}
    if address:
        try:
            ray.init(address=address, **common)
        except (ConnectionError, RuntimeError) as exc:
            raise RayUnavailable(f"cannot join the Ray cluster at {address}: {exc}".splitlines()[0]) from exc
    else:
        # Ray runs its workers at niceness 15 by default: on a machine shared with anything else the trials
        # would then crawl. A sweep is the work the user asked for: same priority as a serial backtest.
        os.environ.setdefault("RAY_worker_niceness", "0")
        ray.init(address="local", num_cpus=num_cpus or os.cpu_count() or 1,
                 object_store_memory=OBJECT_STORE_BYTES, **common)
    return True


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def remote_error(exc: BaseException) -> str:
    """One line that says why Ray could not run a trial: the error's type and its cause, without colour codes.

    Why: a RayTaskError's first line names only the task and its pid, in terminal colour codes
    (``ray::run_trial() (pid=1193, ip=...)``); the cause (``ModuleNotFoundError: No module named ...``) is
    its last line, and that first line was all results.csv and the console said.
    """
    lines = [line.strip() for line in _ANSI.sub("", str(exc)).splitlines() if line.strip()]
    cause = next((line for line in reversed(lines) if not set(line) <= set("^~ ")), "")
    head = type(exc).__name__
    return f"{head}: {cause}" if cause else head


class RayRunner(Runner):
    """Each trial a Ray task (1 CPU), as many at once as the cluster has CPUs for."""

    def __init__(self, store: TrialStore, progress: Progress | None = None, *, address: str | None = None,
                 num_cpus: int | None = None, trial: Callable[[dict[str, Any]], dict[str, Any]] = run_trial) -> None:
        super().__init__(store, progress)
        self._address, self._num_cpus = address, num_cpus
        self._trial = trial
        self._owns = False
        self._remote: Any = None

    def _start(self) -> Any:
        """Ray is started (or joined) when the first trial must run: a fully cached re-run needs none of it."""
        import ray

        if self._remote is None:
            self._owns = start_ray(self._address, self._num_cpus)
            self._remote = ray.remote(num_cpus=1, max_retries=0)(self._trial)
        return self._remote

    def _execute(self, todo: Sequence[TrialSpec], done: Callable[[TrialSpec, dict[str, Any], int], None]) -> None:
        import ray

        if not todo:
            return
        remote = self._start()
        pending: dict[Any, TrialSpec] = {remote.remote(spec.as_dict()): spec for spec in todo}
        try:
            while pending:
                self.progress.update(len(pending))
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
                for ref in ready:
                    spec = pending.pop(ref)
                    done(spec, self._outcome(ref, spec), len(pending))
        except KeyboardInterrupt as exc:
            # No ray.cancel: see the module's docstring (it can abort this process in Ray 2.60).
            if self._owns:
                fate = "stopped with the sweep's Ray"
            else:
                fate = "left to finish in the Ray session this sweep did not start (their results are dropped)"
            raise SweepInterrupted(f"interrupted: {len(pending)} unfinished trial(s) {fate}") from exc

    @staticmethod
    def _outcome(ref: Any, spec: TrialSpec) -> dict[str, Any]:
        import ray

        began = time.perf_counter()
        try:
            result: dict[str, Any] = ray.get(ref)
            return result
        except Exception as exc:  # the worker died or the task could not run: the trial failed, the sweep goes on
            return {"key": spec.key(), "status": "failed", "error": remote_error(exc),
                    "wall_s": time.perf_counter() - began, "report": None, "files": {}}

    def close(self) -> None:
        import ray

        if self._owns and ray.is_initialized():
            ray.shutdown()
