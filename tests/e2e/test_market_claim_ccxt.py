"""Two instances on one Kraken API key and one symbol: the second `mmkit start` is refused, the first's orders live.

Red team, on a venue where one API key may be used by any number of
processes at once (ccxt): ``kraken-btc`` quotes; ``kraken-btc-2`` (another
instance name, home and output directory, so no instance lock meets) starts
on the same key and symbol. Before: its start-up reconciliation adopted the
first engine's resting ladder and its executor cancelled it as strays; at
stop it cancelled whatever was open on the symbol. Now it is refused (exit 3)
before it connects, naming the venue, the account (the key's fingerprint,
never the key), the symbol and the holder, and the first engine's orders are
untouched at the venue (the mock's book of record).
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

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


def second_instance(config: Path, tmp_path: Path) -> Path:
    """The same settings (API key, venue, symbol) under another instance name, home and output directory."""
    data = yaml.safe_load(config.read_text())
    data["engine"] = {**data["engine"], "instance": "kraken-btc-2", "output_dir": str(tmp_path / "second")}
    path = tmp_path / "second.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


async def test_a_second_instance_on_the_same_api_key_and_symbol_is_refused_and_the_first_keeps_its_orders(
    server: MockVenueServer, tmp_path: Path  # noqa: F811
) -> None:
    config = derive_config("kraken", server, tmp_path)
    first = await start(config, tmp_path, "first")
    try:
        await until(lambda: two_sided(server, "kraken"), 60, "the first engine's ladder at the venue", first)
        resting = {o[0] for o in venue_orders(server, "kraken")}

        second = await start(second_instance(config, tmp_path), tmp_path, "second")
        try:  # before: it started, and ran until stopped
            code: int | None = await asyncio.wait_for(second.wait(), timeout=60)
        except TimeoutError:
            code = None  # still running: it started on the first engine's account and symbol
        finally:
            if second.returncode is None:
                second.kill()
                await second.wait()
        assert code == EXIT_START_REFUSED, (tmp_path / "second.err").read_text()[-3000:]
        err = (tmp_path / "second.err").read_text()
        account = key_fingerprint(SECRETS["KRAKEN_API_KEY"])
        assert (f"venue kraken, account [{account}], symbol BTC/USD is quoted by another mmkit process: "
                f"pid {first.pid}, instance kraken-btc on {socket.gethostname()}") in err, err[-3000:]
        assert SECRETS["KRAKEN_API_KEY"] not in err
        assert "start-up reconciliation" not in err and "adopted" not in err  # refused before it listed orders

        # Every order at the venue is the first engine's (it may have re-priced its ladder meanwhile): the
        # second placed nothing, and the first still quotes both sides.
        assert first.returncode is None
        prefix = first_prefix(resting)
        assert all(o[0].startswith(prefix) for o in venue_orders(server, "kraken"))
        await until(lambda: two_sided(server, "kraken"), 30, "the first engine still quoting", first)
        await stop(first, tmp_path, "first")  # exit 0: a clean run and a flat stop
    finally:
        if first.returncode is None:
            first.kill()
            await first.wait()


def first_prefix(client_ids: set[str]) -> str:
    """The client-order-id prefix the first engine's ids share (mmkit.orders.ids.instance_prefix)."""
    prefixes = {c[:6] for c in client_ids}
    assert len(prefixes) == 1, prefixes
    return prefixes.pop()
