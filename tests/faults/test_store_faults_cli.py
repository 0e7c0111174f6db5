"""Issue 11, case 5 through `mmkit start` itself: disk full, read-only store at start, file modes.

The engine runs as a subprocess on the built-in simulated venue
(strategies/layered_example.yml, no data needed). "Disk full" is produced
with RLIMIT_FSIZE in the child: every write past the limit fails with EFBIG,
exactly as a full file system fails it, with no root tricks and the same in CI.
"""

from __future__ import annotations

import json
import os
import resource
import stat
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

from mmkit.app.outcome import EXIT_NOT_PERSISTED, EXIT_OK, EXIT_START_REFUSED
from tests.faults.store_faults import unwritable
from tests.faults.truex_run import REPO

INSTANCE = "layered-example"


def config(tmp_path: Path) -> Path:
    path = tmp_path / "layered.yml"
    text = (REPO / "strategies" / "layered_example.yml").read_text()
    path.write_text(text + "store:\n  outage_grace_s: 1\n")
    return path


def mmkit_start(tmp_path: Path, run_for: str, fsize: int | None = None) -> subprocess.CompletedProcess[str]:
    def limit() -> None:
        if fsize is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    return subprocess.run(
        [sys.executable, "-m", "mmkit.app.cli", "start", str(config(tmp_path)), "--quiet", "--run-for", run_for,
         "--output-dir", str(tmp_path / "out")],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=120,
        preexec_fn=limit,
    )  # fmt: skip


def test_everything_mmkit_writes_is_private(tmp_path: Path) -> None:
    done = mmkit_start(tmp_path, "3")
    assert done.returncode == EXIT_OK, done.stderr[-3000:]
    out = tmp_path / "out"
    files = [p for p in out.rglob("*") if p.is_file()]
    names = {p.name for p in files}
    assert {f"{INSTANCE}.sqlite", f"{INSTANCE}.journal", f"{INSTANCE}.jsonl"} <= names, names
    assert any(p.parent.name == "reports" for p in files)
    for path in [out, *out.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), f"{path} is {oct(mode)}"


def test_disk_full_halts_quoting_says_why_and_exits_not_persisted(tmp_path: Path) -> None:
    done = mmkit_start(tmp_path, "2")  # the store exists (its schema) before the disk fills
    assert done.returncode == EXIT_OK, done.stderr[-3000:]
    store = tmp_path / "out" / "store" / f"{INSTANCE}.sqlite"
    audit = tmp_path / "out" / "audit" / f"{INSTANCE}.jsonl"
    room = 8 * 1024
    full = max(store.stat().st_size, audit.stat().st_size) + room  # a little room, then EFBIG
    done = mmkit_start(tmp_path, "6", fsize=full)
    assert done.returncode == EXIT_NOT_PERSISTED, done.stderr[-3000:]
    assert "quoting halted" in done.stderr, done.stderr[-3000:]
    assert "File too large" in done.stderr or "disk is full" in done.stderr, done.stderr[-3000:]
    report = json.loads(sorted((tmp_path / "out" / "reports").glob("*.json"))[-1].read_text())
    assert report["open_orders_at_venue"] == []
    assert Decimal(report["position"]) == Decimal(report["position_from_fills"])


def test_a_read_only_store_refuses_to_start(tmp_path: Path) -> None:
    done = mmkit_start(tmp_path, "2")
    assert done.returncode == EXIT_OK, done.stderr[-3000:]
    store = tmp_path / "out" / "store" / f"{INSTANCE}.sqlite"
    with unwritable(store):
        done = mmkit_start(tmp_path, "5")
    assert done.returncode == EXIT_START_REFUSED, done.stderr[-3000:]
    assert "refusing to quote" in done.stderr and "store cannot be written" in done.stderr, done.stderr[-3000:]
