"""One trial: the deterministic backtest ``mmkit backtest`` runs, for one parameter set on one data set.

A trial is described completely by a :class:`TrialSpec` (the config text
with the parameters applied, the data set and its checksum, the window, the
seed, the setup, the mmkit version) and named by a hash of exactly that
(:meth:`TrialSpec.key`): the same inputs always give the same key, so a
re-run sweep finds the trials it already has, and ``--rerun`` can check that
it reproduces one byte for byte.

:func:`run_trial` is what a Ray task executes. It calls the same public
functions as ``mmkit backtest`` (:func:`~mmkit.app.backtest_cmd.load_events`,
:func:`~mmkit.app.backtest_cmd.run_backtest`,
:func:`~mmkit.app.backtest_cmd.write_outputs`) in the worker process, in a
private temporary directory, and returns the outputs as bytes, so that the
driver (which may be on another machine) writes them. The recording is
parsed at most once per worker process (the reader's in-process cache) and
once per node (the on-disk recording cache).
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
import traceback
from functools import lru_cache
from pathlib import Path
from typing import Any

import attrs

import mmkit

#: Outputs of a trial kept next to its result (the tearsheet, its images and the exact config it ran).
OUTPUT_FILES = ("report.json", "report.html", "fills.csv", "orders.csv", "pnl.png", "inventory.png", "quotes.png",
                "config.yml")


@attrs.frozen
class TrialSpec:
    """Everything a trial's result depends on (and a few labels that do not enter its key)."""

    config_yaml: str
    #: Parameter values as JSON holds them (:func:`mmkit.research.space.plain`); the exact ones are in config_yaml.
    params: dict[str, Any]
    dataset: str
    data_path: str
    data_checksum: str
    start_ns: int | None
    end_ns: int | None
    seed: int
    setup: str
    queue: str
    version: str
    #: The base config as the sweep file names it (goes into report.json, so it must not depend on where we run).
    config_name: str = ""
    #: Setup sim: how much worse than a recorded print synthetic takers may pay (``--taker-reach-bps``), text.
    taker_reach_bps: str = "0"
    #: Latency in ms as the sweep file gives it (``--latency-ms``); empty: the backtest's default.
    latency_ms: str = ""
    #: The funding file (``--funding``) and the SHA-256 of its bytes; empty: none.
    funding_path: str = ""
    funding_checksum: str = ""
    #: Setup replay's through-price fill rule; "tape" is the backtest's default.
    through_fill: str = "tape"

    def key(self) -> str:
        """Hash of the inputs: config, parameters, data checksum, window, seed, setup, mmkit version."""
        payload = {
            "config": self.config_yaml,
            "params": self.params,
            "data": self.data_checksum,
            "start_ns": self.start_ns,
            "end_ns": self.end_ns,
            "seed": self.seed,
            "setup": self.setup,
            "queue": self.queue,
            "version": self.version,
            "config_name": self.config_name,
            "taker_reach_bps": self.taker_reach_bps,
        }
        if self.latency_ms:  # only when set: the keys of trials run before the option existed stay valid
            payload["latency_ms"] = self.latency_ms
        if self.funding_path:  # the same: and a changed file is another trial
            payload["funding"] = self.funding_checksum
        if self.through_fill != "tape":  # the same
            payload["through_fill"] = self.through_fill
        text = json.dumps(payload, sort_keys=True, default=str, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def as_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrialSpec:
        return cls(**data)


@lru_cache(maxsize=1)
def mmkit_version() -> str:
    """mmkit's version, and the git commit it runs from when it runs from a checkout: the code is an input too.

    (Uncommitted changes are not seen: after editing mmkit, use a fresh ``--out``.)
    """
    from mmkit.backtest.report import git_commit

    commit = git_commit()
    return f"{mmkit.__version__}+g{commit[:12]}" if commit else mmkit.__version__


@lru_cache(maxsize=64)
def _file_digest(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def data_checksum(path: Path) -> str:
    """SHA-256 over a recording's files (names relative to it, and contents): what the trial key depends on."""
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    digest = hashlib.sha256()
    for file in files:
        stat = file.stat()
        name = file.relative_to(path).as_posix() if path.is_dir() else file.name
        digest.update(f"{name}\0{_file_digest(str(file.resolve()), stat.st_size, stat.st_mtime_ns)}\n".encode())
    return digest.hexdigest()


def _funding_input(spec: TrialSpec, symbol: str) -> Any:
    """The trial's funding settlements (None without a file); a file that does not fit the run fails the trial."""
    if not spec.funding_path:
        return None
    from mmkit.backtest.funding import FundingInput

    return FundingInput.load(Path(spec.funding_path), symbol)


def _events(data: Path, end_ns: int | None) -> list[Any]:
    """The events ``mmkit backtest --data DATA --to END`` replays (the whole recording parsed once per process)."""
    from mmkit.app.backtest_cmd import load_events

    events = load_events(data, None, freeze=True)
    if end_ns is None:
        return events
    # load_events(data, end_ns) stops at the first event received after end_ns: the same prefix.
    for i, event in enumerate(events):
        if event.ts_recv > end_ns:
            return events[:i]
    return events


#: Where a trial's tearsheet finds plotly.js when it is shared (``trials/<key>/report.html`` -> the sweep's root).
SHARED_PLOTLY = "plotly.min.js"


@lru_cache(maxsize=1)
def _embedded_plotly() -> bytes:
    from plotly.offline import get_plotlyjs

    return b"<script>" + str(get_plotlyjs()).encode() + b"</script>"


def share_plotly(html: bytes, relative: str = f"../../{SHARED_PLOTLY}") -> bytes:
    """The tearsheet with its embedded plotly.js (about 5 MB) replaced by a reference to one shared copy.

    A sweep of hundreds of trials would otherwise store (and pass through Ray) the same bundle hundreds of
    times. The page still opens offline: the copy sits in the sweep's directory. Unchanged if not embedded.
    """
    return html.replace(_embedded_plotly(), f'<script src="{relative}"></script>'.encode(), 1)


def run_trial(spec_dict: dict[str, Any], *, shared_plotly: bool = True) -> dict[str, Any]:
    """Run one trial in this process; never raises: a failure is a result with its error.

    ``shared_plotly``: the tearsheet refers to the sweep's one copy of plotly.js (:func:`share_plotly`).

    Returns ``{"key", "status": "ok"|"failed", "error", "wall_s", "cpu_s", "report", "files": {name: bytes}}``
    (``cpu_s``: this process's CPU time for the trial, which other processes on the machine do not inflate).
    """
    from loguru import logger

    spec = TrialSpec.from_dict(spec_dict)
    key = spec.key()
    began, cpu_began = time.perf_counter(), time.process_time()
    files: dict[str, bytes] = {}
    with tempfile.TemporaryDirectory(prefix=f"mmkit-trial-{key}-") as tmp:
        out = Path(tmp)
        try:
            logger.remove()  # thousands of engine lines per trial: the errors only, into the trial's log
            log_path = out / "trial.log"
            logger.add(log_path, level="WARNING", mode="w")
            config_file = out / "config.yml"
            config_file.write_text(spec.config_yaml, encoding="utf-8")
            report = _backtest(spec, config_file, out)
            for name in OUTPUT_FILES:
                if (out / name).exists():
                    files[name] = (out / name).read_bytes()
            if shared_plotly and "report.html" in files:
                files["report.html"] = share_plotly(files["report.html"])
            status, error = "ok", ""
        except Exception as exc:  # a trial's failure is its result (Ctrl-C and cancellation go through)
            report = None
            status = "failed"
            error = f"{type(exc).__name__}: {exc}".strip()
            files["traceback.txt"] = traceback.format_exc().encode()
        finally:
            logger.remove()
        if (out / "trial.log").exists() and (out / "trial.log").stat().st_size:
            files["trial.log"] = (out / "trial.log").read_bytes()
    return {"key": key, "status": status, "error": error, "wall_s": time.perf_counter() - began,
            "cpu_s": time.process_time() - cpu_began, "report": report, "files": files}


def _backtest(spec: TrialSpec, config_file: Path, out: Path) -> dict[str, Any]:
    """What ``mmkit backtest CONFIG --data D --from --to --seed [--setup]`` does, through the same function.

    :func:`~mmkit.app.backtest_cmd.backtest_loaded` is the command's own run: setup ``auto`` is its default,
    and the quoted book's health decides a verdict that is recorded as a problem in report.json.
    """
    from decimal import Decimal

    from mmkit.app.backtest_cmd import backtest_loaded, recording_notes, write_outputs
    from mmkit.app.backtest_setup_choice import choose_setup, ignored_by_setup
    from mmkit.app.config import ConfigOverrides, load_engine_config
    from mmkit.backtest.health import DEFAULT_MAX_INVALID_PCT
    from mmkit.sim.latency import parse_latency_ms

    loaded = load_engine_config(config_file, ConfigOverrides(backtest=True))
    data = Path(spec.data_path)
    events = _events(data, spec.end_ns)
    notes = recording_notes(data)
    if not events:
        raise ValueError(f"{data}: no book or trade events in the recording")
    if spec.start_ns is not None and not any(e.ts_recv >= spec.start_ns for e in events):
        raise ValueError(f"no recorded events after {spec.start_ns} in {data}")
    choice = choose_setup(loaded, events, None if spec.setup == "auto" else spec.setup)
    ignored = ignored_by_setup(choice.setup, queue=spec.queue, through_fill=spec.through_fill,
                               taker_reach_bps=spec.taker_reach_bps)
    if ignored is not None:  # the trial fails, named: its figures would not be what the sweep file asked
        raise ValueError(ignored)
    result, _verdict = backtest_loaded(
        loaded, events, notes, data, choice, start_ns=spec.start_ns, end_ns=spec.end_ns, seed=spec.seed,
        queue=spec.queue,  # type: ignore[arg-type]
        taker_reach_bps=Decimal(spec.taker_reach_bps), max_invalid_pct=DEFAULT_MAX_INVALID_PCT,
        latency=parse_latency_ms(spec.latency_ms) if spec.latency_ms else None,
        funding=_funding_input(spec, choice.symbol or events[0].symbol),
        through_fill=spec.through_fill,  # type: ignore[arg-type]
        meta={"config": spec.config_name, "data": spec.data_path, "dataset": spec.dataset, "params": dict(spec.params)},
    )
    write_outputs(result, out)
    written: dict[str, Any] = json.loads((out / "report.json").read_text(encoding="utf-8"))
    check = (written.get("funding") or {}).get("cross_check") or {}
    if check and not check.get("agrees"):
        # The funding paid during the run and the post-run computation disagree: a PnL that cannot be trusted
        # must not be ranked. The trial fails with both figures (mmkit backtest exits 4 for the same run).
        raise RuntimeError(f"funding cross-check failed: in-run {written['funding']['total']}, post-run "
                           f"{check.get('post_run_total')}: {check.get('problem')}")
    return written
