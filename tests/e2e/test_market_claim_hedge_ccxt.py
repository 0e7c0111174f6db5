"""The shipped Kraken maker, and the shipped Coinbase maker hedging on Kraken with the same API key: the second
`mmkit start` is refused, in either order; with its own hedge key, both run.

Red team, the desk's careless set-up: strategies/kraken_btc_usd.yml quotes
Kraken with ``${KRAKEN_API_KEY}`` and strategies/coinbase_btc_usd.yml hedges
on Kraken with the same variable. Before: the hedge venue was not claimed, so
both started, and the Coinbase maker's Kraken hedge connector refreshed
Kraken's CancelAllOrdersAfter on that key (a hung Kraken maker's quotes stayed
alive on the hedger's refreshes) and disarmed it for the whole key (timeout 0)
when it stopped cleanly.

Now the second is refused (exit 3) before it connects, naming the holder,
that Kraken is the refused config's hedge venue (or that the holder may hedge
there) and the per-key switch; the first engine's quotes are untouched at the
venue (the mock's book of record) and the timer was never disarmed. Given its
own Kraken key for hedging, the Coinbase maker starts beside the Kraken maker
and both quote and stop cleanly.
"""

from __future__ import annotations

import socket
from pathlib import Path

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
from tests.e2e.test_market_claim_ccxt import exit_code
from tests.integration.ccxt.mock_venue import MockVenueServer

pytestmark = [pytest.mark.e2e, pytest.mark.shared_data]

INSTANCE = {"kraken": "kraken-btc", "coinbase": "coinbase-btc"}


def maker(quoting: str, server: MockVenueServer, tmp_path: Path, hedge_key_env: str | None = None) -> Path:  # noqa: F811
    """The shipped ``quoting`` maker aimed at the mock, in its own directory (output dir, markets, config);
    ``hedge_key_env``: its hedge venue's API key from that variable instead of the shipped one."""
    home = tmp_path / quoting
    home.mkdir()
    path = derive_config(quoting, server, home)
    data = yaml.safe_load(path.read_text())
    assert data["engine"]["instance"] == INSTANCE[quoting]
    if hedge_key_env is not None:
        data["hedge"]["venue"]["settings"]["api_key"] = "${" + hedge_key_env + "}"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.mark.parametrize("first_quotes", ["kraken", "coinbase"], ids=["kraken-maker-first", "coinbase-maker-first"])
async def test_the_second_of_a_maker_and_a_hedger_on_one_kraken_key_is_refused(
    first_quotes: str, server: MockVenueServer, tmp_path: Path  # noqa: F811
) -> None:
    second_quotes = "coinbase" if first_quotes == "kraken" else "kraken"
    first = await start(maker(first_quotes, server, tmp_path), tmp_path, "first")
    try:
        await until(lambda: two_sided(server, first_quotes), 60, "the first engine's ladder at the venue", first)
        # The first engine, quoting or hedging on Kraken, keeps the key's timer armed.
        await until(lambda: bool(server.kraken_deadman_calls), 30, "the key's dead man's switch armed", first)
        resting = {o[0] for o in venue_orders(server, first_quotes)}

        second = await start(maker(second_quotes, server, tmp_path), tmp_path, "second")
        code = await exit_code(second)  # before: it started, and ran until stopped
        err = (tmp_path / "second.err").read_text()
        text = " ".join(err.split())
        assert code == EXIT_START_REFUSED, err[-3000:]
        account = key_fingerprint(SECRETS["KRAKEN_API_KEY"])
        assert (f"venue kraken, account [{account}] (every symbol) is quoted by another mmkit process: pid "
                f"{first.pid}, instance {INSTANCE[first_quotes]} on {socket.gethostname()}") in text, err[-3000:]
        assert "kraken's dead man's switch is per API key" in text, err[-3000:]
        if second_quotes == "coinbase":  # the refused config's hedge venue is the held key
            assert "kraken is this config's HEDGE venue (hedge.venue)" in text, err[-3000:]
            assert "give the hedger its own API key (hedge.venue.settings)" in text
        else:  # the holder hedges there
            assert "the holder may quote on the key or hedge on it" in text, err[-3000:]
        assert SECRETS["KRAKEN_API_KEY"] not in err and SECRETS["KRAKEN_SECRET_KEY"] not in err
        assert "start-up reconciliation" not in err and "adopted" not in err  # refused before it listed orders

        # The first engine's quotes are untouched (it may have re-priced them: same instance prefix), the
        # second never touched the key's timer (no disarm: 0), and the first still quotes.
        assert first.returncode is None
        prefixes = {c[:6] for c in resting}
        assert len(prefixes) == 1
        assert all(o[0][:6] in prefixes for o in venue_orders(server, first_quotes))
        assert 0 not in server.kraken_deadman_calls and server.kraken_deadman_fired == 0
        await until(lambda: two_sided(server, first_quotes), 30, "the first engine still quoting", first)
        await stop(first, tmp_path, "first")  # exit 0: a clean run and a flat stop
    finally:
        if first.returncode is None:
            first.kill()
            await first.wait()


async def test_the_coinbase_maker_hedging_on_its_own_kraken_key_runs_beside_the_kraken_maker(
    server: MockVenueServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    monkeypatch.setenv("HEDGER_KRAKEN_KEY", "hedger-key")
    kraken = await start(maker("kraken", server, tmp_path), tmp_path, "kraken")
    coinbase = None
    try:
        await until(lambda: two_sided(server, "kraken"), 60, "the Kraken maker's ladder", kraken)
        coinbase = await start(maker("coinbase", server, tmp_path, "HEDGER_KRAKEN_KEY"), tmp_path, "coinbase")
        await until(lambda: two_sided(server, "coinbase"), 60, "the Coinbase maker's ladder", coinbase)
        assert kraken.returncode is None
        err = (tmp_path / "coinbase.err").read_text()
        assert f"venue kraken, account [{key_fingerprint('hedger-key')}] (every symbol)" in err  # its hedge key's
        await stop(coinbase, tmp_path, "coinbase")
        await until(lambda: two_sided(server, "kraken"), 30, "the Kraken maker still quoting", kraken)
        await stop(kraken, tmp_path, "kraken")
    finally:
        for proc in (kraken, coinbase):
            if proc is not None and proc.returncode is None:
                proc.kill()
                await proc.wait()
