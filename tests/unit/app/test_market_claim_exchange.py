"""The market claim follows the exchange account, not the venue rules file's name.

Red team, a careless user: conf/venues/kraken.yml copied to kraken_fast.yml
(``venue: kraken_fast``, other rate limits), and two instances on the same
API key, one on each name. Before: the claim's venue was the configured name,
so the two claimed different markets; both started, adopted and cancelled
each other's orders and shared Kraken's per-key dead man's switch, and
nothing said so. Now every engine also claims (exchange id, identity, the
exchange's own symbol, or every symbol where the switch is per key), so the
second `mmkit start` is refused (exit 3) naming both venue names and why.

The holder is another process taking the claim as `mmkit start` does (build,
mmkit.app.market_claim.market_lock_for, claim_market): lockf locks are per
process. The refused contender is a real `mmkit start`, refused before it
connects; an allowed one takes the claim in this process and lets it go.
The e2e proof against the Kraken mock, both engines `mmkit start`, is
tests/e2e/test_market_claim_ccxt.py.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from mmkit.app.venue_account import key_fingerprint
from mmkit.store.market_lock import ALL_SYMBOLS, MarketKey, holder_venue
from tests.unit.app.claim_processes import REPO, claim_holders, set_up_desk
from tests.unit.app.claim_processes import refused_start as shared_refused_start

#: Base -> (shipped config it starts from, its rules file, the environment variable of its API key).
BASES = {
    "kraken": ("kraken_btc_usd.yml", "kraken", "KRAKEN_API_KEY"),
    "coinbase": ("coinbase_btc_usd.yml", "coinbase", "COINBASE_API_KEY"),
    "gemini": ("kraken_btc_usd.yml", "gemini", "GEMINI_API_KEY"),  # the Kraken maker, quoting on Gemini
    "truex": ("truex_btc_pyusd.yml", "truex", "TRUEX_API_KEY"),
}
SECRETS = {
    "KRAKEN_API_KEY": "desk-key", "KRAKEN_SECRET_KEY": base64.b64encode(b"s" * 64).decode(),
    "COINBASE_API_KEY": "desk-key", "COINBASE_API_SECRET": "s",
    "GEMINI_API_KEY": "desk-key", "GEMINI_API_SECRET": "s",
    "TRUEX_API_KEY": "desk-key", "TRUEX_SECRET_KEY": "s",
    "OTHER_API_KEY": "another-key",
}


@pytest.fixture(autouse=True)
def desk(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Every instance of a test on one machine-wide lock directory, with the desk's secrets set."""
    set_up_desk(monkeypatch, tmp_path, SECRETS)


def renamed_rules(tmp_path: Path, rules: str, name: str) -> Path:
    """conf/venues/<rules>.yml copied under another venue name, with other rate limits: the careless copy."""
    text = (REPO / "conf" / "venues" / f"{rules}.yml").read_text()
    text, named = re.subn(rf"^venue: {rules}$", f"venue: {name}", text, flags=re.M)
    assert named == 1
    data = yaml.safe_load(text)
    if data.get("order_rate_counter"):
        data["order_rate_counter"]["max_count"] *= 2
    else:
        data["rate_limits"] = [{**limit, "max_count": limit["max_count"] * 2} for limit in data["rate_limits"]]
    path = tmp_path / f"{name}.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def config(tmp_path: Path, base: str, instance: str, *, venue_name: str | None = None, symbol: str | None = None,
           key_env: str | None = None) -> Path:
    """A quoting config on ``base``'s exchange as ``instance`` (its own output directory); ``venue_name``: on a
    copy of the rules file under that name; ``key_env``: the API key from that variable instead."""
    shipped, rules, default_env = BASES[base]
    data: dict[str, Any] = yaml.safe_load((REPO / "strategies" / shipped).read_text())
    data["engine"] = {**data["engine"], "instance": instance, "output_dir": str(tmp_path / instance)}
    venue = data["venue"]
    if base == "gemini":
        settings = {"profile": "gemini", "api_key": "${GEMINI_API_KEY}", "secret_key": "${GEMINI_API_SECRET}"}
        venue.update(rules="gemini", symbol="BTCUSD", settings=settings)
    if venue_name is not None:
        venue["rules"] = str(renamed_rules(tmp_path, rules, venue_name))
        if base == "truex":
            venue["settings"]["venue"] = venue_name  # the TrueX connector's venue name is its settings'
        else:
            assert venue["settings"]["profile"] == base  # the ccxt profile says which exchange; the name does not
    if symbol is not None:
        venue["symbol"] = symbol
    venue["settings"]["api_key"] = "${" + (key_env or default_env) + "}"
    path = tmp_path / f"{instance}.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def built(path: Path, tmp_path: Path) -> Any:
    from mmkit.app.build import build
    from mmkit.app.config import ConfigOverrides, load_engine_config
    from mmkit.clock import Clock, ClockMode

    overrides = ConfigOverrides(sim_hedge=True, output_dir=str(tmp_path / path.stem))
    return build(load_engine_config(str(path), overrides), Clock(ClockMode.REALTIME))


@pytest.fixture
def hold(tmp_path: Path) -> Iterator[Any]:
    """``hold(config)``: another process holds that config's claim until the test ends (SIGKILL)."""
    yield from claim_holders(tmp_path, sim_hedge=True)


def refused_start(path: Path, tmp_path: Path) -> str:
    """`mmkit start` of ``path`` must exit 3 at the market claim, before it connects; returns its stderr."""
    text = shared_refused_start(path, tmp_path, [SECRETS["KRAKEN_SECRET_KEY"]], "--sim-hedge")
    assert "is quoted by another mmkit process" in text, text
    return text


def allowed(path: Path, tmp_path: Path) -> None:
    """The config's claim is taken (through the path `mmkit start` takes) and let go."""
    from mmkit.app.market_claim import claim_market, market_lock_for

    lock = market_lock_for(built(path, tmp_path))
    claim_market(lock)
    assert lock.held
    lock.release()


@pytest.mark.parametrize(("symbol", "other_symbol"), [("BTC/USD", "BTC/USD"), ("BTC/USD", "BTC/USDT")],
                         ids=["same-symbol", "other-symbol"])
def test_a_copy_of_the_kraken_rules_under_another_name_on_the_same_key_is_refused_naming_both_venues(
    tmp_path: Path, hold: Any, symbol: str, other_symbol: str
) -> None:
    holder = hold(config(tmp_path, "kraken", "kraken-btc", symbol=symbol))
    text = refused_start(config(tmp_path, "kraken", "kraken-fast", venue_name="kraken_fast", symbol=other_symbol),
                         tmp_path)
    account = key_fingerprint(SECRETS["KRAKEN_API_KEY"])
    assert (f"exchange kraken (as venue kraken_fast), account [{account}] (every symbol) is quoted by another "
            f"mmkit process: pid {holder.pid}, instance kraken-btc on ") in text, text[-3000:]
    assert ("this instance's venue kraken_fast and the holder's venue kraken are two names for one exchange "
            "account") in text, text[-3000:]
    assert "kraken's dead man's switch is per API key" in text and "its own API key" in text


def test_the_copy_holding_first_refuses_the_shipped_name_too(tmp_path: Path, hold: Any) -> None:
    holder = hold(config(tmp_path, "kraken", "kraken-fast", venue_name="kraken_fast"))
    text = refused_start(config(tmp_path, "kraken", "kraken-btc"), tmp_path)
    assert f"pid {holder.pid}, instance kraken-fast on " in text
    assert "this instance's venue kraken and the holder's venue kraken_fast are two names" in text, text[-3000:]


def test_gemini_under_another_name_on_the_same_key_is_refused_for_its_shared_heartbeat(
    tmp_path: Path, hold: Any
) -> None:
    hold(config(tmp_path, "gemini", "gemini-btc"))
    text = refused_start(config(tmp_path, "gemini", "gemini-2", venue_name="gemini_b"), tmp_path)
    assert "exchange gemini (as venue gemini_b)" in text and "(every symbol)" in text, text[-3000:]
    assert "venue gemini_b and the holder's venue gemini are two names" in text
    assert "heartbeat session is the API key" in text


def test_truex_under_another_venue_name_on_the_same_session_is_refused(tmp_path: Path, hold: Any) -> None:
    hold(config(tmp_path, "truex", "truex-btc"))
    text = refused_start(config(tmp_path, "truex", "truex-2", venue_name="truex_b"), tmp_path)
    assert ("exchange truex (as venue truex_b), account [SenderCompID=MMKIT_OE/TargetCompID=TRUEX_UAT_OE], "
            "symbol BTC-PYUSD is quoted by another mmkit process") in text, text[-3000:]
    assert "venue truex_b and the holder's venue truex are two names for one exchange account" in text


def test_other_api_keys_under_two_names_of_a_per_symbol_venue_are_allowed(tmp_path: Path, hold: Any) -> None:
    hold(config(tmp_path, "coinbase", "coinbase-btc"))
    allowed(config(tmp_path, "coinbase", "coinbase-2", venue_name="coinbase_fast", key_env="OTHER_API_KEY"), tmp_path)


def test_the_same_key_on_another_symbol_of_a_per_symbol_venue_under_another_name_is_allowed(
    tmp_path: Path, hold: Any
) -> None:
    hold(config(tmp_path, "coinbase", "coinbase-btc"))
    allowed(config(tmp_path, "coinbase", "coinbase-2", venue_name="coinbase_fast", symbol="BTC-USDT"), tmp_path)
    text = refused_start(config(tmp_path, "coinbase", "coinbase-3", venue_name="coinbase_fast"), tmp_path)
    assert "exchange coinbase (as venue coinbase_fast), account [" in text and "symbol BTC/USD" in text, text[-3000:]
    assert "would adopt and cancel each other's orders" in text


def test_other_api_keys_under_two_names_of_an_account_wide_venue_are_allowed(tmp_path: Path, hold: Any) -> None:
    hold(config(tmp_path, "kraken", "kraken-btc"))
    allowed(config(tmp_path, "kraken", "kraken-fast", venue_name="kraken_fast", key_env="OTHER_API_KEY",
                   symbol="BTC/USDT"), tmp_path)


def test_every_engine_claims_its_exchange_besides_its_name(tmp_path: Path) -> None:
    """The name keys stay (an older engine claims only those and must still meet a new one on the same name)."""
    key = key_fingerprint("desk-key")
    fast = built(config(tmp_path, "kraken", "kraken-fast", venue_name="kraken_fast", symbol="BTC/USDT"), tmp_path)
    from mmkit.app.market_claim import market_keys

    keys = market_keys(fast)
    assert keys == [MarketKey("kraken_fast", key, ALL_SYMBOLS), MarketKey("kraken", key, ALL_SYMBOLS, exchange=True)]
    assert keys[1].named == "kraken_fast"
    shipped = market_keys(built(config(tmp_path, "kraken", "kraken-btc"), tmp_path))
    assert keys[1] in shipped and keys[0] not in shipped  # they meet on the exchange, not on the name
    assert MarketKey("kraken", key, ALL_SYMBOLS) != MarketKey("kraken", key, ALL_SYMBOLS, exchange=True)
    assert {k.digest() for k in shipped} == {MarketKey("kraken", key, ALL_SYMBOLS).digest(), keys[1].digest()}


def test_the_holders_venue_is_read_back_only_when_it_was_written_whole() -> None:
    assert holder_venue("pid 7, instance kraken-btc on h (venue kraken)") == "kraken"
    assert holder_venue("mmkit pid 7 on h (kraken-btc, venue kraken_fast)") == "kraken_fast"
    assert holder_venue("mmkit pid 7 on h (kraken-btc, venue kraken_fast) from 10.0.0.2") == "kraken_fast"
    assert holder_venue("mmkit pid 7 on a-long-host-name (kraken-btc, venue kra") is None  # cut at 63 bytes
    assert holder_venue("pid 7, instance kraken-btc on h") is None  # a name key's holder (or an older engine)


def test_a_connector_declaring_a_bad_exchange_market_is_loud() -> None:
    from mmkit.app.market_claim import exchange_market

    class Odd:
        def exchange_market(self, symbol: str) -> object:
            return ("kraken", "")

    with pytest.raises(TypeError, match=r"exchange_market\('BTC/USD'\) must return"):
        exchange_market(Odd(), "BTC/USD")
    assert exchange_market(object(), "BTC/USD") is None  # declares nothing: claimed by its name only
