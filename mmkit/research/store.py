"""Where a sweep's trials live on disk, keyed by the hash of their inputs.

Layout of a sweep's output directory::

    trials/<key>/trial.json     the TrialSpec (everything the result depends on)
    trials/<key>/result.json    status, error, wall and CPU time, mmkit version (written last: the trial is finished)
    trials/<key>/report.json    the backtest's report (the same bytes ``mmkit backtest`` writes)
    trials/<key>/report.html    its tearsheet, with fills.csv and orders.csv (plotly.js from ../../plotly.min.js)
    trials/<key>/config.yml     the exact config the trial ran (``mmkit backtest`` can run it as it is)

A trial directory is written under a temporary name and renamed into place,
so a sweep stopped at any moment (Ctrl-C, a crash) leaves finished trials
and nothing half-written under a real key: the next run skips the finished
ones and runs the rest.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from mmkit.research.trial import SHARED_PLOTLY, TrialSpec


class NotPersisted(Exception):
    """A sweep's output could not be written (a full or failing disk): what was written whole is kept."""


class TrialStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.trials = root / "trials"
        try:
            self.trials.mkdir(parents=True, exist_ok=True)
            self._write_plotly()
        except OSError as exc:
            raise NotPersisted(f"the sweep's directory {root} cannot be written ({exc})") from exc

    def _write_plotly(self) -> None:
        """The one copy of plotly.js the trials' tearsheets load (they do not embed it: see share_plotly)."""
        from plotly.offline import get_plotlyjs

        target = self.root / SHARED_PLOTLY
        text = str(get_plotlyjs())
        if not target.is_file() or target.stat().st_size != len(text.encode()):
            tmp = target.with_suffix(".tmp")
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(target)

    def path(self, key: str) -> Path:
        return self.trials / key

    def finished(self, key: str) -> bool:
        """A trial that ran to a report (failed and damaged ones are tried again by the next run)."""
        return self._status(key) == "ok" and self.damage(key) is None

    def _status(self, key: str) -> str | None:
        result = self.path(key) / "result.json"
        if not result.is_file():
            return None
        try:
            status = json.loads(result.read_text(encoding="utf-8")).get("status")
        except (OSError, ValueError, AttributeError):
            return None
        return str(status)

    def damage(self, key: str) -> str | None:
        """Why a trial whose result.json says ok cannot be read as one (None: it can, or it did not finish).

        Why: the directory is renamed into place whole, but a disk that lost a write (nothing is fsynced), or
        a person, can leave result.json saying ok beside a report.json cut short or gone. The sweep then
        died on a JSON traceback when it resumed, or listed the trial as failed with no error and exited 0.
        Such a trial is run again, and the sweep says so.
        """
        if self._status(key) != "ok":
            return None
        report = self.path(key) / "report.json"
        try:
            data = json.loads(report.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return "report.json is missing"
        except (OSError, ValueError) as exc:
            return f"report.json cannot be read ({type(exc).__name__}: {exc})"
        return None if isinstance(data, dict) else "report.json is not a JSON object"

    def save(self, spec: TrialSpec, outcome: dict[str, Any]) -> None:
        """Write a trial's spec, outputs and result atomically (rename of a complete directory).

        NotPersisted on a failing disk: the trial is not published (a half directory stays hidden).
        """
        try:
            self._save(spec, outcome)
        except OSError as exc:
            raise NotPersisted(f"trial {outcome['key']} could not be saved in {self.trials} ({exc})") from exc

    def _save(self, spec: TrialSpec, outcome: dict[str, Any]) -> None:
        key = outcome["key"]
        final = self.path(key)
        tmp = self.trials / f".{key}.{os.getpid()}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        (tmp / "trial.json").write_text(json.dumps(spec.as_dict(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
        for name, data in outcome.get("files", {}).items():
            (tmp / name).write_bytes(data)
        result = {
            "key": key,
            "status": outcome["status"],
            "error": outcome.get("error", ""),
            "wall_s": round(float(outcome.get("wall_s", 0.0)), 4),
            "cpu_s": round(float(outcome.get("cpu_s", 0.0)), 4),
            "mmkit_version": spec.version,
        }
        (tmp / "result.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)

    def spec(self, key: str) -> TrialSpec:
        return TrialSpec.from_dict(json.loads((self.path(key) / "trial.json").read_text(encoding="utf-8")))

    def result(self, key: str) -> dict[str, Any]:
        """result.json with the report (None for a failed trial) under ``report``."""
        directory = self.path(key)
        result: dict[str, Any] = json.loads((directory / "result.json").read_text(encoding="utf-8"))
        report_path = directory / "report.json"
        result["report"] = json.loads(report_path.read_text(encoding="utf-8")) if report_path.is_file() else None
        return result

    def find(self, prefix: str) -> str | None:
        """The key a (possibly shortened) trial id names, if exactly one matches."""
        matches = [p.name for p in self.trials.iterdir() if p.is_dir() and p.name.startswith(prefix)
                   and not p.name.startswith(".")]
        return matches[0] if len(matches) == 1 else None
