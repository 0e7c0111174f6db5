"""``mmkit status``'s live section: what the running instance's console knows that the store does not.

The store and Redis hold orders, positions and PnL, but not an order's
ladder level, its distance from the current mid, the balances per venue,
the hedge book or the run's recent errors. A running instance with the
dashboard configured publishes exactly that at ``/api/state`` (its address
is in ``<output_dir>/console/<instance>.json``); this module reads it (with
a short time-out: status must answer even when the instance hangs) and
formats it. ``--watch`` redraws the whole status in place.
"""

from __future__ import annotations

import contextlib
import json
import signal
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any


def live_snapshot(output_dir: Path, instance: str, timeout_s: float = 2.0) -> dict[str, Any] | None:
    """The running instance's dashboard snapshot, or None (no dashboard configured, not running, no answer)."""
    path = output_dir / "console" / f"{instance}.json"
    try:
        url = json.loads(path.read_text(encoding="utf-8")).get("dashboard")
    except (OSError, ValueError):
        return None
    if not url:
        return None
    try:
        with urllib.request.urlopen(url + "api/state", timeout=timeout_s) as response:
            data = json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None
    data.pop("history", None)
    return data if isinstance(data, dict) else None


def _num(value: Any, digits: int) -> str:
    return "-" if value is None else f"{float(value):.{digits}f}"


def format_live(snap: dict[str, Any]) -> str:
    """Open orders by side (asks then bids) and level with distance from mid and age; balances; hedge; errors."""
    from mmkit.app.status_cmd import table

    lines = [f"live         from the instance's console (tick {snap.get('ticks')}, mid {_num(snap.get('mid'), 2)})"]
    gates = snap.get("gates") or []
    for gate in gates:  # runner gates keep quotes off: the first thing to read, one line for each holding
        since = snap.get("ts_ns", 0) - int(gate["since_ns"])
        lines.append(f"quoting      HELD by gate {gate['gate']} ({gate['ticks']} ticks, {max(since, 0) / 1e9:.0f} s): "
                     f"{gate['reason']}")
    if not gates and snap.get("halt"):
        lines.append(f"quoting      HALTED: {snap['halt']}")
    unlimited = (snap.get("kill_switch") or {}).get("unlimited_loss")
    if unlimited:
        lines.append(f"kill switch  {unlimited}")
    orders = sorted(
        snap.get("orders", []),
        key=lambda o: (o["side"] != "sell", o["level"] if o["level"] is not None else 99, o["price"] or 0),
    )
    lines.append(f"open orders  {len(orders)} (by side and level)")
    if orders:
        rows = [["side", "level", "price", "size", "left", "from mid bps", "age s", "state"]]
        for o in orders:
            rows.append([
                o["side"], "-" if o["level"] is None else str(o["level"]), _num(o["price"], 2), _num(o["qty"], 4),
                _num(o["remaining"], 4), _num(o["distance_bps"], 1), _num(o["age_s"], 1), o["state"],
            ])  # fmt: skip
        lines += ["  " + line for line in table(rows)]
    balances = snap.get("balances") or {}
    lines.append("balances")
    if balances:
        rows = [["venue", "asset", "available"]]
        rows += [
            [venue, asset, amount] for venue, assets in sorted(balances.items()) for asset, amount in assets.items()
        ]
        lines += ["  " + line for line in table(rows)]
    else:
        lines.append("  (none reported)")
    hedge = snap.get("hedge")
    if hedge:
        state = f"STOPPED ({hedge['stopped']})" if hedge.get("stopped") else "on"
        lines.append(
            f"hedge        {hedge['venue']}: position {_num(hedge.get('position'), 4)}, in flight "
            f"{_num(hedge.get('in_flight'), 4)}, {hedge['working']} working, {state}"
        )
    inventory = snap.get("inventory") or {}
    if inventory:
        # The unit: an inverse contract's sizes are contracts, not coins (3 contracts of 100 USD is not 3 BTC).
        unit = f" {inventory['unit']}" if inventory.get("unit") else ""
        lines.append(
            f"inventory    {_num(inventory['position'], 4)}{unit} of +/-{_num(inventory['max_position'], 2)}{unit} "
            f"({float(inventory['utilization']):.0%})"
        )
    errors = list(snap.get("errors") or [])
    rejects = list(snap.get("rejects") or [])
    lines.append("last errors")
    for p in errors[-5:]:
        lines.append(f"  {p['kind']} x{p['count']}: {p['reason']}")
    for r in rejects[:5]:
        lines.append(f"  reject {r['action']} {r['reason']}: {r['message']}")
    if not errors and not rejects:
        lines.append("  (none)")
    return "\n".join(lines)


def watch(render: Callable[[], str], interval_s: float = 2.0, count: int | None = None) -> None:
    """Redraw ``render()`` in place until Ctrl-C (rich's Live when installed, else ANSI).

    Ctrl-C stops the loop between two redraws, never inside one: a KeyboardInterrupt raised in the
    middle of ``render`` (which reads the store) landed once inside SQLAlchemy closing a connection,
    which logs it with a traceback on stderr, on an exit that was otherwise clean.
    """
    stop = threading.Event()
    shown = 0
    try:
        with _ctrl_c_sets(stop):
            try:
                from rich.live import Live
                from rich.text import Text
            except ImportError:
                while not stop.is_set() and (count is None or shown < count):
                    sys.stdout.write("\x1b[H\x1b[2J" + render() + "\n")
                    sys.stdout.flush()
                    shown += 1
                    if stop.wait(interval_s):
                        break
                return
            with Live(Text(render()), auto_refresh=False) as live:
                while not stop.is_set() and (count is None or shown < count):
                    live.update(Text(render()), refresh=True)
                    shown += 1
                    if stop.wait(interval_s):
                        break
    except KeyboardInterrupt:  # not on the main thread (no handler of ours): as before
        return


@contextlib.contextmanager
def _ctrl_c_sets(stop: threading.Event) -> Iterator[None]:
    """While inside, SIGINT sets ``stop`` instead of raising KeyboardInterrupt (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, lambda signum, frame: stop.set())
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
