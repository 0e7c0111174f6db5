"""`mmkit start` on the shipped Kraken and Coinbase configs, against the offline mock venue.

What a desk would do with strategies/kraken_btc_usd.yml or coinbase_btc_usd.yml, as a
subprocess: the shipped file is read, and only the endpoints are pointed at the local mock
venue (settings.urls, a markets file, ccxt's throttle and the poll cadence shortened for the
test); secrets come from the environment as in production. The mock plays all three venues:
the quoting venue's order entry, the other two venues' books for the fair value, and the
hedge venue.

Checked at the venue (the mock's own order book of record, not the engine's belief): the
ladder rests on both sides; a reference move re-prices it (in place where the venue replaces:
Kraken AmendOrder, Coinbase edit); a fill at the venue is booked; SIGINT stops cleanly with
nothing open. The restart case SIGKILLs the engine, fills an order at the venue while it is
down, and checks the restarted engine books that fill from the venue's fill history.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.ccxt.conftest import MARKETS
from tests.integration.ccxt.mock_venue import MockVenueServer, venue_urls

pytestmark = [pytest.mark.e2e, pytest.mark.shared_data]

REPO = Path(__file__).resolve().parents[2]
D = Decimal
MID = D("63300")
#: Quoting venue -> (shipped config, symbol there).
CONFIGS = {
    "kraken": ("strategies/kraken_btc_usd.yml", "BTC/USD"),
    "coinbase": ("strategies/coinbase_btc_usd.yml", "BTC-USD"),
}
#: Quoting venue -> where its config hedges.
HEDGE = {"kraken": "coinbase", "coinbase": "kraken"}
SECRETS = {
    "KRAKEN_API_KEY": "test-key",
    "KRAKEN_SECRET_KEY": base64.b64encode(b"s" * 64).decode(),
    "COINBASE_API_KEY": "test-key",
    "COINBASE_API_SECRET": "coinbase-test-secret",
}


def _point(settings: dict[str, Any], venue: str, server: MockVenueServer, markets_dir: Path) -> dict[str, Any]:
    """The shipped settings plus what aims them at the mock (secrets untouched: still ${NAME})."""
    return {
        **settings,
        "profile": venue,
        "urls": venue_urls(server, venue),
        "markets_file": str(markets_dir / f"{venue}.json"),
        "ccxt_options": {"rateLimit": 5},
        "poll_interval_s": 0.1,
        "backoff_initial_s": 0.05,
        "backoff_max_s": 0.5,
    }


def derive_config(quoting: str, server: MockVenueServer, tmp_path: Path) -> Path:
    markets_dir = tmp_path / "markets"
    markets_dir.mkdir(exist_ok=True)
    for venue, markets in MARKETS.items():
        (markets_dir / f"{venue}.json").write_text(json.dumps(markets()))
    data = yaml.safe_load((REPO / CONFIGS[quoting][0]).read_text())
    data["engine"] = {**data["engine"], "output_dir": str(tmp_path / "var"), "status_interval_s": 1}
    data["venue"]["settings"] = _point(data["venue"]["settings"], quoting, server, markets_dir)
    for source in data["reference"]["sources"]:
        source["settings"] = _point(source.get("settings") or {}, source["rules"], server, markets_dir)
    hedge = data["hedge"]["venue"]
    hedge["settings"] = _point(hedge["settings"], hedge["rules"], server, markets_dir)
    path = tmp_path / f"{quoting}.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture
async def server() -> AsyncIterator[MockVenueServer]:
    srv = MockVenueServer()
    await srv.start()
    bases = {venue: MID for venue in ("kraken", "coinbase", "gemini")}
    srv.bases = bases  # type: ignore[attr-defined]

    async def wiggle() -> None:  # live venues update their books many times a second
        step = 0
        while True:
            step += 1
            for venue, base in bases.items():
                await srv.set_mid(venue, base + D(step % 2))
            await asyncio.sleep(0.2)

    task = asyncio.get_running_loop().create_task(wiggle())
    yield srv
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await srv.stop()


def venue_orders(server: MockVenueServer, venue: str) -> list[tuple[str, str, Decimal, Decimal]]:
    """(client id, side, price, qty) of our open orders, as the venue holds them."""
    if venue == "kraken":
        return [(o.cl_ord_id or "", o.side, o.price, o.vol - o.vol_exec)
                for o in server.kraken_orders.values() if o.status == "open"]
    return [(o.client_id, o.side, o.price, o.qty - o.filled) for o in server.open_orders_of(venue)]


async def until(condition: Callable[[], bool], timeout_s: float, what: str, proc: Any = None) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout_s
    while not condition():
        if proc is not None and proc.returncode is not None:
            raise AssertionError(f"mmkit exited ({proc.returncode}) while waiting for {what}")
        if loop.time() > end:
            raise AssertionError(f"not within {timeout_s} s: {what}")
        await asyncio.sleep(0.05)


async def start(config: Path, tmp_path: Path, name: str) -> Any:
    env = {**os.environ, **SECRETS, "PYTHONPATH": str(REPO)}
    out = (tmp_path / f"{name}.out").open("w")
    err = (tmp_path / f"{name}.err").open("w")
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mmkit.app.cli", "start", str(config), cwd=REPO, env=env, stdout=out, stderr=err
    )


async def stop(proc: Any, tmp_path: Path, name: str) -> str:
    proc.send_signal(signal.SIGINT)
    try:
        await asyncio.wait_for(proc.wait(), timeout=60)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    err = (tmp_path / f"{name}.err").read_text()
    assert proc.returncode == 0, err[-4000:]
    return err


def final_report(tmp_path: Path) -> dict[str, Any]:
    reports = sorted((tmp_path / "var" / "reports").glob("*.json"), key=lambda p: p.stat().st_mtime)
    assert reports, "no final report written"
    report: dict[str, Any] = json.loads(reports[-1].read_text())
    return report


def two_sided(server: MockVenueServer, venue: str) -> bool:
    sides = [o[1] for o in venue_orders(server, venue)]
    return sides.count("buy") >= 2 and sides.count("sell") >= 2


def reprice_calls(server: MockVenueServer, venue: str) -> int:
    if venue == "kraken":
        return sum(1 for method, _ in server.kraken_calls if method in ("AmendOrder", "CancelOrder"))
    return sum(1 for call, _ in server.calls[venue] if call in ("POST orders/edit", "POST orders/batch_cancel"))


@pytest.mark.parametrize("quoting", ["kraken", "coinbase"])
async def test_start_quotes_reprices_fills_and_stops_clean(
    quoting: str, server: MockVenueServer, tmp_path: Path
) -> None:
    proc = await start(derive_config(quoting, server, tmp_path), tmp_path, "run")
    try:
        await until(lambda: two_sided(server, quoting), 60, "a two-sided ladder resting at the venue", proc)
        best_bid = max(o[2] for o in venue_orders(server, quoting) if o[1] == "buy")

        # The fair value moves up 80 USD (about 13 bps, past both configs' reprice thresholds) on every venue:
        # the ladder follows.
        before = reprice_calls(server, quoting)
        for venue in server.bases:  # type: ignore[attr-defined]
            server.bases[venue] = MID + 80  # type: ignore[attr-defined]
        await until(
            lambda: any(o[1] == "buy" and o[2] > best_bid + 40 for o in venue_orders(server, quoting)),
            30, "the ladder re-priced at the venue", proc,
        )
        assert reprice_calls(server, quoting) > before
        if quoting == "kraken":
            assert any(method == "AmendOrder" for method, _ in server.kraken_calls), "Kraken replaces in place"
        else:
            assert any(call == "POST orders/edit" for call, _ in server.calls["coinbase"]), "Coinbase edits in place"

        # A counterparty takes our best bid at the venue.
        client_id, _, price, qty = max((o for o in venue_orders(server, quoting) if o[1] == "buy"), key=lambda o: o[2])
        server.fill(quoting, client_id, qty, price)
        out = tmp_path / "run.out"
        await until(lambda: "| fills 1" in out.read_text(), 60, "the fill booked (the live status line)", proc)
        await until(lambda: two_sided(server, quoting), 30, "quoting on after the fill", proc)
    finally:
        err = await stop(proc, tmp_path, "run")
    assert venue_orders(server, quoting) == [], "nothing may stay open at the venue after a stop"
    report = final_report(tmp_path)
    assert report["open_orders_at_venue"] == []
    # The quoting fill, then the stop's flatten (as the TrueX config): the rest hedged on the other venue.
    assert report["fills"] == 2, err[-3000:]
    assert f"flattening position {qty} on {HEDGE[quoting]}" in err
    assert D(str(report["position"])) == 0 == D(str(report["position_from_fills"]))
    assert report["problems"] == []
    # What the connectors caught and handled by themselves: the quoting venue and the hedge venue, none of it
    # happened in this clean run (mmkit.connector.health_counters).
    counters = report["venue_counters"]
    assert set(counters) == {quoting, HEDGE[quoting]}
    for venue in counters.values():
        assert venue["malformed_trades"] == venue["ledger_check_errors"] == venue["loop_restarts"] == 0


@pytest.mark.parametrize("quoting", ["kraken", "coinbase"])
async def test_fill_while_the_engine_is_down_is_booked_on_restart(
    quoting: str, server: MockVenueServer, tmp_path: Path
) -> None:
    config = derive_config(quoting, server, tmp_path)
    proc = await start(config, tmp_path, "first")
    try:
        await until(lambda: two_sided(server, quoting), 60, "a two-sided ladder resting at the venue", proc)
        # No wait here: an order is journaled before it is sent (write-ahead), so what rests at the venue is
        # already in the killed engine's ledger.
    finally:
        proc.send_signal(signal.SIGKILL)  # no stop, no cancel, no final report
        await proc.wait()
    resting = venue_orders(server, quoting)
    assert resting, "a killed engine leaves its quotes at the venue (on Kraken until its timer runs out)"

    # While mmkit is down, a counterparty sells to our best bid.
    client_id, _, price, qty = max((o for o in resting if o[1] == "buy"), key=lambda o: o[2])
    server.fill(quoting, client_id, qty, price)

    old_ids = {o[0] for o in resting}
    proc = await start(config, tmp_path, "second")
    try:
        # The restarted engine adopts the killed one's orders, cancels them and quotes afresh.
        await until(
            lambda: two_sided(server, quoting) and not old_ids & {o[0] for o in venue_orders(server, quoting)},
            90, "the old quotes replaced by the restarted engine's", proc,
        )
    finally:
        err = await stop(proc, tmp_path, "second")
    assert "not in the store: booking it now" in err, err[-4000:]
    assert server.kraken_deadman_fired == 0, (server.kraken_deadman_calls, err[-3000:])
    assert venue_orders(server, quoting) == []
    # The missed fill was booked at restart: the position it made is what the stop flattened.
    assert f"flattening position {qty} on {HEDGE[quoting]}" in err, err[-4000:]
    report = final_report(tmp_path)
    assert D(str(report["position"])) == 0 == D(str(report["position_from_fills"]))
    assert report["open_orders_at_venue"] == []


@pytest.mark.parametrize("quoting", ["kraken", "coinbase"])
def test_check_passes_the_shipped_config_and_names_a_missing_secret(quoting: str) -> None:
    config = CONFIGS[quoting][0]
    env = {**os.environ, **SECRETS, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-m", "mmkit.app.cli", "check", config], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"SkewedLadderController on {quoting}:{CONFIGS[quoting][1]}" in result.stdout
    other = "coinbase" if quoting == "kraken" else "kraken"
    assert f"hedging on {other}" in result.stdout
    key = "KRAKEN_API_KEY" if quoting == "kraken" else "COINBASE_API_KEY"
    env.pop(key)
    result = subprocess.run([sys.executable, "-m", "mmkit.app.cli", "check", config], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert f"{config}: venue.settings.api_key: secret environment variable {key} is not set" in result.stderr
