"""A hedge venue whose dead man's switch is per API key is claimed like a quoting venue there.

Red team, the shipped pair on one desk: strategies/kraken_btc_usd.yml quotes
Kraken with ``${KRAKEN_API_KEY}``; strategies/coinbase_btc_usd.yml hedges on
Kraken with the same variable. Before: the hedge venue was not claimed, so
both started; the Coinbase maker's Kraken hedge connector kept Kraken's
CancelAllOrdersAfter armed on that key (a hung Kraken maker's quotes stayed
alive on the hedger's refreshes) and disarmed it for the whole key when it
stopped. Now whichever starts second is refused (exit 3) naming the holder,
that the key is this config's (or the holder's) hedge venue, and why.

A hedge venue with per-symbol claims (Coinbase, no switch) stays unclaimed:
several makers hedging into one account is an ordinary desk set-up there
(mmkit.app.market_claim says why). The e2e proof against the mock venues, both
engines `mmkit start`, is tests/e2e/test_market_claim_hedge_ccxt.py.

The holder is another process taking the claim as `mmkit start` does (lockf
locks are per process); a refused contender is a real `mmkit start`.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from mmkit.app.venue_account import key_fingerprint
from mmkit.store.market_lock import ALL_SYMBOLS, MarketKey
from tests.unit.app.claim_processes import REPO, claim_holders, set_up_desk
from tests.unit.app.claim_processes import refused_start as shared_refused_start

SHIPPED = {"kraken": "kraken_btc_usd.yml", "coinbase": "coinbase_btc_usd.yml"}
SECRETS = {
    "KRAKEN_API_KEY": "desk-kraken-key", "KRAKEN_SECRET_KEY": base64.b64encode(b"s" * 64).decode(),
    "COINBASE_API_KEY": "desk-coinbase-key", "COINBASE_API_SECRET": "coinbase-desk-secret",
    "OTHER_KRAKEN_KEY": "hedger-kraken-key",
}


@pytest.fixture(autouse=True)
def desk(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Every instance of a test on one machine-wide lock directory, with the desk's secrets set."""
    set_up_desk(monkeypatch, tmp_path, SECRETS)


def config(tmp_path: Path, quoting: str, instance: str | None = None, *, hedge_key_env: str | None = None,
           symbol: str | None = None) -> Path:
    """The shipped ``quoting`` maker (its real hedge venue, not simulated) as ``instance`` with its own output
    directory; ``hedge_key_env``: the hedge venue's API key from that variable instead; ``symbol``: quoting it."""
    data: dict[str, Any] = yaml.safe_load((REPO / "strategies" / SHIPPED[quoting]).read_text())
    instance = instance or data["engine"]["instance"]
    data["engine"] = {**data["engine"], "instance": instance, "output_dir": str(tmp_path / instance)}
    if hedge_key_env is not None:
        data["hedge"]["venue"]["settings"]["api_key"] = "${" + hedge_key_env + "}"
    if symbol is not None:
        data["venue"]["symbol"] = symbol
    path = tmp_path / f"{instance}.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def built(path: Path, tmp_path: Path, **overrides: Any) -> Any:
    from mmkit.app.build import build
    from mmkit.app.config import ConfigOverrides, load_engine_config
    from mmkit.clock import Clock, ClockMode

    loaded = load_engine_config(str(path), ConfigOverrides(output_dir=str(tmp_path / path.stem), **overrides))
    return build(loaded, Clock(ClockMode.REALTIME))


@pytest.fixture
def hold(tmp_path: Path) -> Iterator[Any]:
    """``hold(config)``: another process holds that config's claim until the test ends (SIGKILL)."""
    yield from claim_holders(tmp_path, sim_hedge=False)


def refused_start(path: Path, tmp_path: Path) -> str:
    """`mmkit start` of ``path`` (its real hedge venue) must exit 3 at the market claim, before it connects."""
    text = shared_refused_start(path, tmp_path, SECRETS.values())
    return text


def allowed(path: Path, tmp_path: Path) -> None:
    """The config's claim is taken (through the path `mmkit start` takes) and let go."""
    from mmkit.app.market_claim import claim_market, market_lock_for

    lock = market_lock_for(built(path, tmp_path))
    claim_market(lock)
    assert lock.held
    lock.release()


def test_a_kraken_hedge_venue_is_claimed_on_every_symbol_of_its_key_by_name_and_exchange(tmp_path: Path) -> None:
    from mmkit.app.market_claim import market_keys

    keys = market_keys(built(config(tmp_path, "coinbase"), tmp_path))
    coinbase, kraken = key_fingerprint(SECRETS["COINBASE_API_KEY"]), key_fingerprint(SECRETS["KRAKEN_API_KEY"])
    assert keys == [
        MarketKey("coinbase", coinbase, "BTC-USD"), MarketKey("coinbase", coinbase, "BTC/USD", exchange=True),
        MarketKey("kraken", kraken, ALL_SYMBOLS), MarketKey("kraken", kraken, ALL_SYMBOLS, exchange=True),
    ]  # before: the first two only
    for key in keys[2:]:
        assert "this config's HEDGE venue (hedge.venue)" in key.shared
        assert "kraken's dead man's switch is per API key" in key.shared and "its own API key" in key.shared
    assert keys[3].named == "kraken"
    # A simulated hedge venue (--sim-hedge) arms no switch at Kraken: nothing of it is claimed.
    assert market_keys(built(config(tmp_path, "coinbase"), tmp_path, sim_hedge=True)) == keys[:2]


def test_a_per_symbol_hedge_venue_stays_unclaimed(tmp_path: Path) -> None:
    """The Kraken maker hedges on Coinbase (no dead man's switch): its claim is Kraken's only, as before."""
    from mmkit.app.market_claim import market_keys

    kraken = key_fingerprint(SECRETS["KRAKEN_API_KEY"])
    assert market_keys(built(config(tmp_path, "kraken"), tmp_path)) == [
        MarketKey("kraken", kraken, ALL_SYMBOLS), MarketKey("kraken", kraken, ALL_SYMBOLS, exchange=True)]


def test_paper_trading_with_a_live_kraken_hedge_still_claims_the_hedge_key(tmp_path: Path) -> None:
    """``--paper`` simulates the quoting venue only: the hedge connector is real and arms Kraken's switch."""
    from mmkit.app.market_claim import market_keys

    keys = market_keys(built(config(tmp_path, "coinbase"), tmp_path, paper=True))
    kraken = key_fingerprint(SECRETS["KRAKEN_API_KEY"])
    assert keys == [MarketKey("kraken", kraken, ALL_SYMBOLS), MarketKey("kraken", kraken, ALL_SYMBOLS, exchange=True)]


def test_the_coinbase_maker_hedging_on_the_kraken_makers_key_is_refused_naming_its_hedge_venue(
    tmp_path: Path, hold: Any
) -> None:
    holder = hold(config(tmp_path, "kraken"))
    text = refused_start(config(tmp_path, "coinbase"), tmp_path)  # before: it started
    account = key_fingerprint(SECRETS["KRAKEN_API_KEY"])
    assert (f"venue kraken, account [{account}] (every symbol) is quoted by another mmkit process: pid "
            f"{holder.pid}, instance kraken-btc on ") in text, text[-3000:]
    assert "kraken is this config's HEDGE venue (hedge.venue)" in text, text[-3000:]
    assert "kraken's dead man's switch is per API key" in text and "CancelAllOrdersAfter" in text
    assert "give the hedger its own API key (hedge.venue.settings)" in text, text[-3000:]


def test_the_kraken_maker_after_a_coinbase_maker_hedging_on_its_key_is_refused_naming_the_hedger(
    tmp_path: Path, hold: Any
) -> None:
    holder = hold(config(tmp_path, "coinbase"))
    text = refused_start(config(tmp_path, "kraken"), tmp_path)  # before: it started
    account = key_fingerprint(SECRETS["KRAKEN_API_KEY"])
    assert (f"venue kraken, account [{account}] (every symbol) is quoted by another mmkit process: pid "
            f"{holder.pid}, instance coinbase-btc on ") in text, text[-3000:]
    assert "kraken's dead man's switch is per API key" in text
    assert "the holder may quote on the key or hedge on it" in text, text[-3000:]


def test_two_makers_hedging_on_one_kraken_key_are_refused(tmp_path: Path, hold: Any) -> None:
    """Claimed like a quoting venue: two hedgers on one key share its switch too (the second quotes another
    Coinbase symbol, which alone would be allowed)."""
    hold(config(tmp_path, "coinbase"))
    text = refused_start(config(tmp_path, "coinbase", "coinbase-usdt", symbol="BTC-USDT"), tmp_path)
    assert "kraken is this config's HEDGE venue (hedge.venue)" in text and "instance coinbase-btc on " in text


def test_the_hedger_on_its_own_kraken_key_is_allowed(tmp_path: Path, hold: Any) -> None:
    hold(config(tmp_path, "kraken"))
    allowed(config(tmp_path, "coinbase", hedge_key_env="OTHER_KRAKEN_KEY"), tmp_path)


def test_a_coinbase_hedge_on_the_coinbase_makers_key_is_allowed(tmp_path: Path, hold: Any) -> None:
    """The Kraken maker hedges on Coinbase with ``${COINBASE_API_KEY}``, the Coinbase maker's key: per-symbol
    claims there, the hedger's taker orders under its own ids; allowed, as documented (the Coinbase maker hedges
    on its own Kraken key so the pair does not meet on Kraken)."""
    hold(config(tmp_path, "coinbase", hedge_key_env="OTHER_KRAKEN_KEY"))
    allowed(config(tmp_path, "kraken"), tmp_path)
