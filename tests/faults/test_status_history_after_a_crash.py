"""`mmkit status` and `mmkit history` after a crash, and on a store written by a newer mmkit.

After a SIGKILL (or during a store outage) the write-ahead journal holds fills
the store does not have yet; the next start catches the store up. Until then
``status`` printed the store's position as the instance's position and
``history`` its trades, both silently short of the journal's fills. Now both
count the journal's fills too and say how many came from it. A store whose
schema is newer than this mmkit (written by an upgraded engine) is refused in
one line (exit 3) rather than read with an older idea of its tables.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from decimal import Decimal as D
from pathlib import Path

import pytest

from mmkit.app.config import StoreSection
from mmkit.app.persistence import attach_persistence, default_store_url
from mmkit.model import ZERO, Side
from mmkit.testing.fake_connector import FakeConnector
from mmkit.testing.harness import Harness
from strategies.simple import SimpleConfig, SimpleController

REPO = Path(__file__).resolve().parents[2]
INSTANCE = "layered-example"  # the instance the shipped example config names


def mmkit(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mmkit.app.cli", *args], cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True, text=True, timeout=120,
    )


def config_for(out: Path) -> Path:
    config = out / "layered.yml"
    text = (REPO / "strategies" / "layered_example.yml").read_text()
    config.write_text(text.replace("status_interval_s: 2", f"status_interval_s: 2\n  output_dir: {out}"))
    return config


async def crashed_run(out: Path) -> FakeConnector:
    """The bid fills 0.004 (stored); the store stops taking records; the ask fills 0.003 (journal only); the
    process dies."""
    venue = FakeConnector(load_rules())
    h = Harness(SimpleController(SimpleConfig(half_spread_bps=D(10), order_size=D("0.01"))), rules=venue.rules,
                venue=venue)
    p = attach_persistence(h.engine, StoreSection(), INSTANCE, out)
    await h.engine.start()
    h.set_fair("60000")
    h.tick(2)
    venue.fill(next(o for o in venue.open_orders if o.side is Side.BUY).client_id, "0.004")
    h.tick()
    assert p.recorder.flush()
    p.recorder.record_fill = lambda fill: False  # type: ignore[method-assign]
    p.recorder.record_order = lambda *a, **k: False  # type: ignore[method-assign]
    venue.fill(next(o for o in venue.open_orders if o.side is Side.SELL).client_id, "0.003")
    h.tick()
    assert h.position == D("0.001")
    assert p.journal is not None
    p.journal.close()  # SIGKILL: the kernel closes it; nothing else is written
    p.recorder.engine.dispose()
    return venue


def load_rules():  # type: ignore[no-untyped-def]
    from mmkit.connector import load_venue_rules

    return load_venue_rules("sim")


def signed(venue: FakeConnector) -> D:
    return sum((f.qty * f.side.sign for f in venue.fills), ZERO)


async def test_status_and_history_count_the_fills_only_the_journal_holds(tmp_path: Path) -> None:
    venue = await crashed_run(tmp_path)
    config = config_for(tmp_path)

    done = mmkit("status", str(config), "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    answer = json.loads(done.stdout)
    position = D(answer["status"]["positions"]["sim:BTC-PYUSD"])
    assert position == signed(venue) == D("0.001")  # before: 0.004, the store's alone, and no word of it
    assert any("1 fill(s) only the journal holds" in note for note in answer["notes"]), answer["notes"]

    done = mmkit("history", str(config), "--by", "day", "--csv", str(tmp_path / "fills.csv"))
    assert done.returncode == 0, done.stderr[-2000:]
    assert "1 fill(s) only the journal holds" in done.stdout + done.stderr
    rows = (tmp_path / "fills.csv").read_text().splitlines()[1:]
    assert sorted(r.split(",")[4] for r in rows) == sorted(f.trade_id for f in venue.fills)


@pytest.mark.parametrize("command", ["status", "history"])
async def test_a_store_of_a_newer_schema_is_refused_in_one_line(tmp_path: Path, command: str) -> None:
    await crashed_run(tmp_path)
    database = default_store_url(StoreSection(), INSTANCE, tmp_path).removeprefix("sqlite:///")
    with sqlite3.connect(database) as conn:  # an upgraded mmkit migrated it (its step 99 may mean anything)
        conn.execute("INSERT INTO schema_version VALUES (99, 'from the future', ?)", (time.time_ns(),))
    done = mmkit(command, str(config_for(tmp_path)))
    assert done.returncode == 3, done.stdout + done.stderr
    assert "schema is at version 99, newer than this mmkit's" in done.stderr
    assert "Traceback" not in done.stderr
