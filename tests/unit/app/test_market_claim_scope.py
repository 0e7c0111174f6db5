"""Where a venue's dead man's switch covers the whole API key, `mmkit start` claims every symbol of the account.

Why: Kraken's CancelAllOrdersAfter and Gemini's heartbeat session cover every
order of the key, whatever the symbol: two instances on one key on different
symbols shared one timer (one hanging had the venue cancel both; one stopping
cleanly disarmed it for both). The scope is the ccxt profile's data
(``dead_mans_switch_scope``), not a venue name in mmkit; the e2e proof with
two processes is tests/e2e/test_market_claim_ccxt.py.
"""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest

from connectors.ccxt.deadman import shared_switch
from connectors.ccxt.profiles import PROFILES, DeadMansSwitch, SwitchScope, VenueProfile
from mmkit.app.market_claim import account_wide_claim, market_keys
from mmkit.app.venue_account import key_fingerprint
from mmkit.store.market_lock import ALL_SYMBOLS, MarketInUse, MarketKey, MarketLock
from tests.unit.store.test_market_lock import spawn_holder

REPO = Path(__file__).resolve().parents[3]


def built_from(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, config: str, symbol: str | None = None) -> object:
    """The shipped config built as `mmkit start` builds it (nothing connects), on ``symbol`` if given."""
    import yaml

    from mmkit.app.build import build
    from mmkit.app.config import ConfigOverrides, load_engine_config
    from mmkit.clock import Clock, ClockMode

    for name in ("KRAKEN_API_KEY", "COINBASE_API_KEY"):
        monkeypatch.setenv(name, "desk-key")
    monkeypatch.setenv("KRAKEN_SECRET_KEY", "c2VjcmV0")
    monkeypatch.setenv("COINBASE_API_SECRET", "s")
    path = REPO / "strategies" / config
    if symbol is not None:
        data = yaml.safe_load(path.read_text())
        data["venue"]["symbol"] = symbol
        path = tmp_path / config
        path.write_text(yaml.safe_dump(data, sort_keys=False))
    overrides = ConfigOverrides(sim_hedge=True, output_dir=str(tmp_path))
    return build(load_engine_config(str(path), overrides), Clock(ClockMode.REALTIME))


@pytest.mark.parametrize("symbol", ["BTC/USD", "BTC/USDT"])
def test_kraken_claims_every_symbol_of_the_key_for_its_shared_dead_mans_switch(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, symbol: str
) -> None:
    keys = market_keys(built_from(monkeypatch, tmp_path, "kraken_btc_usd.yml", symbol))
    assert keys == [MarketKey("kraken", key_fingerprint("desk-key"), ALL_SYMBOLS),  # whatever the symbol
                    MarketKey("kraken", key_fingerprint("desk-key"), ALL_SYMBOLS, exchange=True)]  # and the name
    for key in keys:
        assert "kraken's dead man's switch is per API key" in key.shared
        assert "CancelAllOrdersAfter" in key.shared


def test_coinbase_without_a_dead_mans_switch_keeps_per_symbol_claims(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for symbol in ("BTC-USD", "BTC-USDT"):
        keys = market_keys(built_from(monkeypatch, tmp_path, "coinbase_btc_usd.yml", symbol))
        native = symbol.replace("-", "/")  # ccxt's unified symbol, the exchange's market whatever mmkit calls it
        assert keys == [MarketKey("coinbase", key_fingerprint("desk-key"), symbol),
                        MarketKey("coinbase", key_fingerprint("desk-key"), native, exchange=True)]
        assert [k.shared for k in keys] == ["", ""]


def test_the_scope_is_the_profiles_data_and_a_switch_without_one_is_refused() -> None:
    assert PROFILES["kraken"].dead_mans_switch_scope is SwitchScope.API_KEY
    # Gemini's "session" is the API key (its docs: an account's API keys are its sessions): one key, one timer.
    assert PROFILES["gemini"].dead_mans_switch_scope is SwitchScope.API_KEY
    assert "heartbeat session is the API key" in (shared_switch(PROFILES["gemini"]) or "")
    assert shared_switch(PROFILES["coinbase"]) is None  # no switch: nothing shared
    per_session = attrs.evolve(PROFILES["gemini"], dead_mans_switch_scope=SwitchScope.SESSION)
    assert shared_switch(per_session) is None  # a switch per connection: per-symbol claims stay
    with pytest.raises(ValueError, match=r"'kraken'.*needs dead_mans_switch_scope"):
        VenueProfile(venue="kraken", ccxt_id="kraken", symbols={}, dead_mans_switch=DeadMansSwitch.KRAKEN_CANCEL_AFTER)


def test_a_connector_declaring_a_bad_account_wide_claim_is_loud() -> None:
    class Odd:
        account_wide_claim = ""

    with pytest.raises(TypeError, match="non-empty str or None"):
        account_wide_claim(Odd())
    assert account_wide_claim(object()) is None  # a connector that declares nothing: per symbol


def test_a_whole_account_claim_held_elsewhere_refuses_every_symbol_naming_the_reason(tmp_path: Path) -> None:
    whole = MarketKey("gemini", "api-key-sha256:abc", ALL_SYMBOLS, "gemini's dead man's switch is per API key: ...")
    holder = spawn_holder(tmp_path, "gemini-btc", whole)
    try:
        lock = MarketLock([whole], "gemini-eth", directory=tmp_path)
        with pytest.raises(MarketInUse) as refused:
            lock.acquire()
        text = str(refused.value)
        assert f"venue gemini, account [api-key-sha256:abc] (every symbol) is quoted by another mmkit process: pid " \
               f"{holder.pid}, instance gemini-btc" in text
        assert "dead man's switch is per API key" in text and "its own API key" in text and "'gemini-eth'" in text
        assert not lock.held
        other_key = MarketLock([MarketKey("gemini", "api-key-sha256:def", ALL_SYMBOLS, "x")], "g2", directory=tmp_path)
        other_key.acquire()  # another key of the account: its own timer, allowed
        other_key.release()
        holder.kill()  # SIGKILL: the kernel frees the account
        holder.wait(timeout=30)
        lock.acquire()
        lock.release()
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.wait(timeout=30)
