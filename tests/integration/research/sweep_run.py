"""`mmkit sweep` as the command line runs it, for the sweep tests (one place that knows its arguments)."""

from __future__ import annotations

import argparse
from pathlib import Path

from mmkit.research.command import sweep_command


def run_sweep(sweep: Path, out: Path, *, in_process: bool = True, rerun: str | None = None) -> int:
    """``mmkit sweep SWEEP --out OUT`` (in this process unless ``in_process`` is False: then on Ray)."""
    args = argparse.Namespace(sweep=str(sweep), out=str(out), address=None, num_cpus=None, in_process=in_process,
                              rerun=rerun, no_progress=True)
    return sweep_command(args)
