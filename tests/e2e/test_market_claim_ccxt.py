"""Two instances on one Kraken API key: the second `mmkit start` is refused, whatever its symbol; the first's
orders live.

Red team, on a venue where one API key may be used by any number of
processes at once (ccxt): ``kraken-btc`` quotes; ``kraken-btc-2`` (another
instance name, home and output directory, so no instance lock meets) starts
on the same key.

* Same symbol. Before: its start-up reconciliation adopted the first engine's
  resting ladder and its executor cancelled it as strays; at stop it
  cancelled whatever was open on the symbol.
* Another symbol (BTC/USDT). Before: allowed, yet Kraken's dead man's switch
  (CancelAllOrdersAfter) is per API key: the two shared one timer, so one that
  hung had the venue cancel both engines' orders, and one that stopped cleanly
  disarmed it (timeout 0) and left the other's quotes unprotected.

Now it is refused (exit 3) before it connects, naming the venue, the account
(the key's fingerprint, never the key), the shared dead man's switch and the
holder; the first engine's orders are untouched at the venue (the mock's book
of record) and the timer was never disarmed. A SIGKILLed holder frees the
account for the next start.
"""

from __future__ import annotations

import asyncio
import signal
import socket
from pathlib import Path
from typing import Any

import pytest
import yaml

from mmkit.app.outcome import EXIT_START_REFUSED
from mmkit.app.venue_account import key_fingerprint
from tests.e2e.test_ccxt_start import (  # noqa: F401  (server: the mock venue fixture)
    SECRETS,
    derive_config,
    server,
    start,
    stop,
    two_sided,
    until,
    venue_orders,
)
from tests.integration.ccxt.mock_venue import MockVenueServer

REPO = Path(__file__).resolve().parents[2]


def second_instance(config: Path, tmp_path: Path, symbol: str | None = None, name: str = "kraken-btc-2") -> Path:
    """The same settings (API key, venue) under another instance name, home and output directory; ``symbol``:
    another symbol of the venue (default: the same)."""
    data = yaml.safe_load(config.read_text())
    data["engine"] = {**data["engine"], "instance": name, "output_dir": str(tmp_path / name)}
    if symbol is not None:
        data["venue"] = {**data["venue"], "symbol": symbol}
    path = tmp_path / f"{name}.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


async def exit_code(proc: Any, timeout_s: float = 60) -> int | None:
    """The process's exit code, or None if it still ran after ``timeout_s`` (then it is killed)."""
    try:
        code: int | None = await asyncio.wait_for(proc.wait(), timeout=timeout_s)
    except TimeoutError:
        code = None
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return code


async def refused_by(first: Any, config: Path, tmp_path: Path, name: str) -> str:
    """Start ``config`` as ``name``; it must exit 3 naming the first engine and the shared dead man's switch
    before it lists an order. Returns its log."""
    second = await start(config, tmp_path, name)
    code = await exit_code(second)  # before: it started, and ran until stopped
    err = (tmp_path / f"{name}.err").read_text()
    assert code == EXIT_START_REFUSED, err[-3000:]
    account = key_fingerprint(SECRETS["KRAKEN_API_KEY"])
    assert (f"venue kraken, account [{account}] (every symbol) is quoted by another mmkit process: "
            f"pid {first.pid}, instance kraken-btc on {socket.gethostname()}") in err, err[-3000:]
    assert "kraken's dead man's switch is per API key" in err, err[-3000:]
    assert SECRETS["KRAKEN_API_KEY"] not in err
    assert "start-up reconciliation" not in err and "adopted" not in err  # refused before it listed orders
    return err


@pytest.mark.parametrize("symbol", ["BTC/USD", "BTC/USDT"], ids=["same-symbol", "other-symbol"])
async def test_a_second_instance_on_the_same_api_key_is_refused_and_the_first_keeps_its_orders(
    symbol: str, server: MockVenueServer, tmp_path: Path  # noqa: F811
) -> None:
    config = derive_config("kraken", server, tmp_path)
    first = await start(config, tmp_path, "first")
    try:
        await until(lambda: two_sided(server, "kraken"), 60, "the first engine's ladder at the venue", first)
        resting = {o[0] for o in venue_orders(server, "kraken")}

        await refused_by(first, second_instance(config, tmp_path, symbol), tmp_path, "second")

        # Every order at the venue is the first engine's (it may have re-priced its ladder meanwhile): the
        # second placed nothing, never touched the key's timer (no disarm: 0), and the first still quotes.
        assert first.returncode is None
        prefix = first_prefix(resting)
        assert all(o[0].startswith(prefix) for o in venue_orders(server, "kraken"))
        assert 0 not in server.kraken_deadman_calls and server.kraken_deadman_fired == 0
        await until(lambda: two_sided(server, "kraken"), 30, "the first engine still quoting", first)
        await stop(first, tmp_path, "first")  # exit 0: a clean run and a flat stop
    finally:
        if first.returncode is None:
            first.kill()
            await first.wait()


async def test_sigkill_of_the_holder_frees_the_whole_account_for_the_next_start(
    server: MockVenueServer, tmp_path: Path  # noqa: F811
) -> None:
    config = derive_config("kraken", server, tmp_path)
    first = await start(config, tmp_path, "first")
    try:
        await until(lambda: two_sided(server, "kraken"), 60, "the first engine's ladder at the venue", first)
        await refused_by(first, second_instance(config, tmp_path, "BTC/USDT"), tmp_path, "second")
    finally:
        first.send_signal(signal.SIGKILL)  # no release, no stop: the kernel drops its lock
        await first.wait()
    killed = {o[0] for o in venue_orders(server, "kraken")}
    third = await start(second_instance(config, tmp_path, name="kraken-btc-3"), tmp_path, "third")
    try:  # it claims the account, adopts and cancels the killed engine's quotes, and quotes afresh
        await until(lambda: two_sided(server, "kraken") and not killed & {o[0] for o in venue_orders(server, "kraken")},
                    90, "the next instance quoting on the key", third)
    finally:
        await stop(third, tmp_path, "third")
    assert venue_orders(server, "kraken") == []


async def test_a_copy_of_the_kraken_rules_under_another_name_on_the_same_key_is_refused_naming_both(
    server: MockVenueServer, tmp_path: Path  # noqa: F811
) -> None:
    """The careless copy: conf/venues/kraken.yml as kraken_fast.yml (``venue: kraken_fast``, twice the order
    counter), the same settings (``profile: kraken``, the same API key) under it. Before: the claims were keyed by
    the configured name, so both engines started on one Kraken key and shared its dead man's switch."""
    config = derive_config("kraken", server, tmp_path)
    rules = (REPO / "conf" / "venues" / "kraken.yml").read_text()
    assert rules.count("\nvenue: kraken\n") == 1 and rules.count("max_count: 60\n") == 1
    copy = tmp_path / "kraken_fast.yml"
    copy.write_text(rules.replace("\nvenue: kraken\n", "\nvenue: kraken_fast\n").replace("max_count: 60\n",
                                                                                           "max_count: 120\n"))
    fast = second_instance(config, tmp_path, "BTC/USDT", name="kraken-fast")
    data = yaml.safe_load(fast.read_text())
    data["venue"]["rules"] = str(copy)
    assert data["venue"]["settings"]["profile"] == "kraken"
    fast.write_text(yaml.safe_dump(data, sort_keys=False))
    first = await start(config, tmp_path, "first")
    try:
        await until(lambda: two_sided(server, "kraken"), 60, "the first engine's ladder at the venue", first)
        resting = {o[0] for o in venue_orders(server, "kraken")}
        second = await start(fast, tmp_path, "second")
        code = await exit_code(second)  # before: it started, and ran until stopped
        err = (tmp_path / "second.err").read_text()
        assert code == EXIT_START_REFUSED, err[-3000:]
        text = " ".join(err.split())
        account = key_fingerprint(SECRETS["KRAKEN_API_KEY"])
        assert (f"exchange kraken (as venue kraken_fast), account [{account}] (every symbol) is quoted by another "
                f"mmkit process: pid {first.pid}, instance kraken-btc on {socket.gethostname()} (venue kraken) "
                f"holds it") in text, err[-3000:]
        assert "this instance's venue kraken_fast and the holder's venue kraken are two names for one exchange " \
               "account" in text, err[-3000:]
        assert "kraken's dead man's switch is per API key" in text and SECRETS["KRAKEN_API_KEY"] not in err
        assert "start-up reconciliation" not in err and "adopted" not in err  # refused before it listed orders
        assert first.returncode is None
        prefix = first_prefix(resting)
        assert all(o[0].startswith(prefix) for o in venue_orders(server, "kraken"))
        assert 0 not in server.kraken_deadman_calls and server.kraken_deadman_fired == 0
        await stop(first, tmp_path, "first")
    finally:
        if first.returncode is None:
            first.kill()
            await first.wait()


def first_prefix(client_ids: set[str]) -> str:
    """The client-order-id prefix the first engine's ids share (mmkit.orders.ids.instance_prefix)."""
    prefixes = {c[:6] for c in client_ids}
    assert len(prefixes) == 1, prefixes
    return prefixes.pop()
