"""One fresh-process backtest of the shared recording, for ``bench_backtest`` (not a benchmark itself).

Run as ``python -m bench.backtest_child``: times the imports, the load of the
recording (from the on-disk cache when ``MMKIT_CACHE_DIR`` holds it, else the
raw parse) and one setup (a) simulate, and prints them as one JSON line.
"""

from __future__ import annotations

import time

began = time.perf_counter()

import json  # noqa: E402 -- the imports are part of what is timed
import sys  # noqa: E402

from loguru import logger  # noqa: E402

from bench.bench_backtest import RISK, _controller, _data_dir  # noqa: E402
from mmkit.app.backtest_cmd import load_events, run_backtest  # noqa: E402


def main() -> None:
    imported = time.perf_counter()
    logger.remove()
    events = load_events(_data_dir(), freeze=True)  # as mmkit backtest loads it
    loaded = time.perf_counter()
    result = run_backtest(_controller(), events, setup="replay", risk=RISK)
    json.dump(
        {
            "import_s": imported - began,
            "load_s": loaded - imported,
            "simulate_s": result.run_s,
            "events": result.events,
            "fills": result.report["fills"]["count"],
        },
        sys.stdout,
    )
    print()


if __name__ == "__main__":
    main()
