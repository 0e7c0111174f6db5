"""A market claim on the hedge venue's key lost while `mmkit start` runs: the hedger stops for good, and says so.

Red team, the desk's race: the shipped Coinbase maker hedges on Kraken, whose
dead man's switch is per API key, so its Kraken key is claimed (every
symbol). While it runs, the lock file of that claim is replaced under it
(a cleaner deleted it, and the shipped Kraken maker, started on the same key,
took the new file first). From then on the key's orders and the switch are
not this run's alone: a hedge sized on a position it can no longer trust is
a new risk, not a reduction.

The wiring under test is ``lifecycle.run``'s ``MarketClaimGate(..., hedge=
built.hedge)``, until now covered by unit tests only. Checked at the venue
(the Kraken mock's record of every call, at the internet edge) and in what
the run says:

* a hedge was due and working when the claim went: a protective limit sell
  resting on Kraken (the mock fills no marketable limit, as a thin book would
  not). The hold cancels it by its own id, and its unfilled rest does NOT go
  to market, during the run or in the stop's flatten (``flatten_on_stop``):
  the only AddOrder Kraken ever saw is that limit;
* the run is loud: ``HEDGING STOPPED: hedging held: market lock lost: ...``
  naming the holder's pid, ``cannot flatten position ...`` at the stop, the
  final report's problems carry the LEDGER_HALT with the reason and the
  position left, and the exit code is 5 (docs/operations.md, market claim);
* the key's dead man's switch is left to its new holder: never disarmed.

How the claim is taken away, without a race: the holder takes the Kraken
maker's claim in a staging lock directory through ``mmkit start``'s own steps
(tests/unit/app/claim_processes.py), and its locked files are renamed over the
engine's files of the same names (one atomic step per file: a delete and a
take by another instance, with no moment the engine could take it back).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from mmkit.app.outcome import EXIT_LEDGER_HALT
from tests.e2e.test_ccxt_start import (  # noqa: F401  (server: the mock venue fixture)
    SECRETS,
    server,
    start,
    two_sided,
    until,
    venue_orders,
)
from tests.e2e.test_market_claim_hedge_ccxt import maker
from tests.integration.ccxt.mock_venue import MockVenueServer
from tests.unit.app.claim_processes import claim_holders, set_up_desk

pytestmark = [pytest.mark.e2e, pytest.mark.shared_data]

D = Decimal


def hedging_maker(server: MockVenueServer, tmp_path: Path) -> Path:  # noqa: F811
    """The shipped Coinbase maker (hedging on Kraken, ``flatten_on_stop``), with two changes only: one quote
    filled is past the hedge threshold, so a hedge is due at once; and a limit hedge waits a minute before its
    market fallback, so the hedge still rests on Kraken when the claim goes however slow the machine is."""
    path = maker("coinbase", server, tmp_path)
    data = yaml.safe_load(path.read_text())
    assert data["hedge"]["flatten_on_stop"] is True and data["hedge"]["venue"]["rules"] == "kraken"
    data["risk"]["inventory"]["hedge_threshold"] = 0.005  # YAML reads it as Decimal from its text
    data["hedge"]["params"]["limit_timeout_ms"] = 60_000
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def kraken_adds(server: MockVenueServer) -> list[dict[str, str]]:  # noqa: F811
    return [form for method, form in server.kraken_calls if method == "AddOrder"]


def flat_text(path: Path) -> str:
    """The log on one line, however it wrapped."""
    return " ".join(path.read_text().split())


async def test_a_lost_claim_on_the_hedge_key_cancels_the_working_hedge_sends_no_other_and_exits_5(
    server: MockVenueServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    locks, staging = tmp_path / "locks", tmp_path / "staging"
    set_up_desk(monkeypatch, tmp_path, SECRETS)  # MMKIT_LOCK_DIR=locks for the engine
    engine = await start(hedging_maker(server, tmp_path), tmp_path, "engine")
    holders = claim_holders(tmp_path, sim_hedge=True)
    hold = next(holders)
    try:
        # The would-be new holder: the shipped Kraken maker's claim (Kraken key, every symbol), taken in a
        # staging directory while the engine starts (its simulated hedge venue claims nothing).
        monkeypatch.setenv("MMKIT_LOCK_DIR", str(staging))
        holder = await asyncio.to_thread(hold, maker("kraken", server, tmp_path))
        monkeypatch.setenv("MMKIT_LOCK_DIR", str(locks))

        await until(lambda: two_sided(server, "coinbase"), 60, "the Coinbase ladder at the venue", engine)
        await until(lambda: bool(server.kraken_deadman_calls), 30, "the hedge key's dead man's switch armed", engine)
        assert kraken_adds(server) == []

        # A counterparty takes our best bid on Coinbase: long 0.01, past the 0.005 threshold: a hedge is due.
        client_id, _, price, qty = max((o for o in venue_orders(server, "coinbase") if o[1] == "buy"),
                                       key=lambda o: o[2])
        server.fill("coinbase", client_id, qty, price)
        await until(lambda: any(o[1] == "sell" for o in venue_orders(server, "kraken")), 60,
                    "the protective limit hedge resting on Kraken", engine)
        [hedge] = venue_orders(server, "kraken")
        assert hedge[3] == qty and len(kraken_adds(server)) == 1 and kraken_adds(server)[0]["ordertype"] == "limit"

        # The claim goes: the holder's locked files replace the engine's files of the same names.
        taken = sorted(p.name for p in staging.iterdir()) if staging.is_dir() else []
        ours = {p.name for p in locks.iterdir()}
        assert taken and set(taken) <= ours, (taken, ours)  # the Kraken key's files (its name and the exchange)
        assert ours - set(taken), "the engine's Coinbase claim stays its own"
        for name in taken:
            os.replace(staging / name, locks / name)

        err = tmp_path / "engine.err"
        await until(lambda: "HEDGING STOPPED: hedging held: market lock lost" in flat_text(err), 30,
                    "the hedger held, loudly", engine)
        # The working hedge is cancelled at the venue by the hold (not by its time-out, a minute away), and the
        # quotes are pulled (LEDGER_HALT).
        await until(lambda: not venue_orders(server, "kraken") and not venue_orders(server, "coinbase"), 30,
                    "the hedge cancelled and the quotes pulled at the venues", engine)
        assert any(method == "CancelOrder" for method, _ in server.kraken_calls)
    finally:
        engine.send_signal(signal.SIGINT)
        code = await exit_code_within(engine, 60)
        next(holders, None)  # SIGKILL the holder
    log = flat_text(tmp_path / "engine.err")
    assert code == EXIT_LEDGER_HALT, log[-4000:]

    stopped = log[log.index("HEDGING STOPPED: hedging held: market lock lost"):][:1500]
    assert f"pid {holder.pid}" in stopped and "kraken-btc" in stopped, stopped
    assert "cancelling hedge: hedging held: market lock lost" in log
    assert "limit hedge timed out" not in log
    assert f"cannot flatten position {qty}: hedging held: market lock lost" in log, log[-4000:]
    # What the hedge venue received, from first to last: one limit hedge, its cancel; no market order, no other
    # hedge (before: the cancelled rest went to market, then the stop's flatten hedged the position again).
    assert len(kraken_adds(server)) == 1, kraken_adds(server)
    assert venue_orders(server, "kraken") == []
    assert 0 not in server.kraken_deadman_calls  # the new holder's switch was never disarmed

    report = final_report(tmp_path / "coinbase")
    assert D(str(report["position"])) == qty  # left for the operator, not hedged on a ledger it cannot trust
    [problem] = [p for p in report["problems"] if p["kind"] == "ledger_halt"]
    assert problem["reason"].startswith("market lock lost:") and f"pid {holder.pid}" in problem["reason"]
    assert problem["exit_code"] == EXIT_LEDGER_HALT


async def exit_code_within(proc: Any, timeout_s: float) -> int:
    try:
        code: int = await asyncio.wait_for(proc.wait(), timeout=timeout_s)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return code


def final_report(home: Path) -> dict[str, Any]:
    reports = sorted((home / "var" / "reports").glob("*.json"), key=lambda p: p.stat().st_mtime)
    assert reports, f"no final report written under {home}"
    report: dict[str, Any] = json.loads(reports[-1].read_text())
    return report
