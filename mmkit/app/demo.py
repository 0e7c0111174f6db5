"""``mmkit demo``: the main job on a fresh machine, with no network.

A strategy quotes on the local simulated venue, priced off the shared Binance
recording replayed faster than recorded, for a bounded time; then it stops
cleanly (cancel all, confirm nothing open) and prints the final report.
"""

from __future__ import annotations

from pathlib import Path

from mmkit.app.lifecycle import start_command

DEFAULT_DEMO_CONFIG = Path(__file__).resolve().parents[2] / "strategies" / "sim_demo.yml"


def demo_command(duration_s: float, config: str | None = None) -> int:
    return start_command(str(config or DEFAULT_DEMO_CONFIG), run_for_s=duration_s)
