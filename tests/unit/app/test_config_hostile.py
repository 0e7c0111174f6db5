"""A careless or hostile operator's config: values each accepted alone that a run would get wrong.

Each case is a file `mmkit start` used to take without a word; each must now be refused at load,
naming the key (dotted path) and the reason, before any connector is built or anything is sent.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mmkit.app.config import load_engine_config
from mmkit.conf import ConfigError

REPO = Path(__file__).resolve().parents[3]
LAYERED = (REPO / "strategies" / "layered_example.yml").read_text()
TRUEX = (REPO / "strategies" / "truex_btc_pyusd.yml").read_text()


def write(tmp_path: Path, text: str, name: str = "c.yml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TRUEX_API_KEY", "TRUEX_SECRET_KEY", "KRAKEN_API_KEY", "KRAKEN_SECRET_KEY"):
        monkeypatch.setenv(name, f"{name.lower()}-value")


@pytest.mark.parametrize(
    "name",
    ["''", "'   '", "../../etc", "a/b", "'desk one'", "'lаyered'", "'btc\\tdesk'", "'x:y'", ".hidden"],
)
def test_an_instance_name_that_is_not_a_plain_ascii_name_is_refused(tmp_path: Path, name: str) -> None:
    """The instance names a directory, the control socket, Redis keys and the client-order-id prefix.

    ``../../etc`` put the store and journal outside the home; ``''`` made the home the parent of every
    instance; a Cyrillic ``а`` (a look-alike of ``a``) went into client order ids sent over FIX.
    """
    path = write(tmp_path, LAYERED.replace("instance: layered-example", f"instance: {name}"))
    with pytest.raises(ConfigError, match=r": engine\.instance: .*letters, digits"):
        load_engine_config(path)


@pytest.mark.parametrize("name", ["layered-example", "truex_btc", "mm1", "desk.v2", "A"])
def test_plain_instance_names_load(tmp_path: Path, name: str) -> None:
    path = write(tmp_path, LAYERED.replace("instance: layered-example", f"instance: {name}"))
    assert load_engine_config(path).config.engine.instance == name


@pytest.mark.parametrize(
    ("value", "reason"),
    [("-5", "must not be negative"), ("'nan'", "finite"), ("'inf'", "finite"), ("'-inf'", "finite")],
)
def test_a_store_outage_grace_that_never_or_always_halts_is_refused(tmp_path: Path, value: str, reason: str) -> None:
    """NaN compares false with everything: a store outage would never have halted quoting."""
    path = write(tmp_path, LAYERED + f"store: {{outage_grace_s: {value}}}\n")
    with pytest.raises(ConfigError, match=rf"store\.outage_grace_s: .*{reason}"):
        load_engine_config(path)


@pytest.mark.parametrize("value", ["0", "-3"])
def test_a_run_for_that_is_not_positive_is_refused(tmp_path: Path, value: str) -> None:
    path = write(tmp_path, LAYERED.replace("  tick_ms: 100", f"  tick_ms: 100\n  run_for_s: {value}"))
    with pytest.raises(ConfigError, match=r"engine\.run_for_s: must be positive when set"):
        load_engine_config(path)


def test_two_reference_sources_with_one_name_are_refused(tmp_path: Path, secrets: None) -> None:
    """The aggregator keys its venues by name: the second would silently replace the first."""
    path = write(tmp_path, TRUEX.replace("{name: kraken,", "{name: coinbase,"))
    with pytest.raises(ConfigError, match=r"reference\.sources\[1\]\.name: 'coinbase' is also the name of "
                                          r"reference\.sources\[0\]"):
        load_engine_config(path)


def test_the_same_reference_market_twice_is_refused(tmp_path: Path, secrets: None) -> None:
    """One market under two names counts twice in the fair value and outvotes the outlier filter."""
    path = write(tmp_path, TRUEX.replace(
        "{name: kraken, connector: connectors.ccxt:CcxtConnector, rules: kraken, symbol: BTC/USD}",
        "{name: coinbase2, connector: connectors.ccxt:CcxtConnector, rules: coinbase, symbol: BTC-USD}"))
    with pytest.raises(ConfigError, match=r"reference\.sources\[1\]: the same market \(coinbase BTC-USD\) as "
                                          r"reference\.sources\[0\]"):
        load_engine_config(path)


def test_flatten_on_stop_without_hedging_is_refused(tmp_path: Path, secrets: None) -> None:
    """The operator believes a stop flattens the position; with hedging off nothing would."""
    path = write(tmp_path, TRUEX.replace("  enabled: true\n  venue:", "  enabled: false\n  venue:"))
    with pytest.raises(ConfigError, match=r"hedge\.flatten_on_stop: .*hedge\.enabled is false"):
        load_engine_config(path)


@pytest.mark.parametrize("value", ["  key", "key\n", "key ", "\tkey"])
def test_a_secret_with_surrounding_whitespace_is_refused_naming_the_variable(
    tmp_path: Path, secrets: None, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    """A pasted newline or space in a key is sent to the venue as part of it (a logon that fails far away)."""
    monkeypatch.setenv("TRUEX_SECRET_KEY", value)
    path = write(tmp_path, TRUEX)
    with pytest.raises(ConfigError, match=r"venue\.settings\.secret_key: secret environment variable "
                                          r"TRUEX_SECRET_KEY has leading or trailing whitespace"):
        load_engine_config(path)


def test_the_shipped_truex_config_still_loads(tmp_path: Path, secrets: None) -> None:
    assert load_engine_config(write(tmp_path, TRUEX)).config.hedge.flatten_on_stop is True


def test_hedging_on_the_very_market_we_quote_is_refused(tmp_path: Path, secrets: None) -> None:
    """Hedge orders on our own quoting market trade against our own quotes (a wash trade), and on TrueX a
    second FIX session with the same comp ids logs the first one out."""
    text = TRUEX.replace(
        '    connector: connectors.ccxt:CcxtConnector\n    rules: kraken\n    symbol: BTC/USD\n'
        '    settings: {api_key: "${KRAKEN_API_KEY}", secret_key: "${KRAKEN_SECRET_KEY}"}',
        '    connector: connectors.truex:TrueXConnector\n    rules: truex\n    symbol: BTC-PYUSD\n'
        '    settings: {api_key: "${TRUEX_API_KEY}", secret_key: "${TRUEX_SECRET_KEY}"}')
    assert text != TRUEX
    with pytest.raises(ConfigError, match=r"hedge\.venue: the same market \(truex BTC-PYUSD\) as venue: "
                                          r"hedges would trade against our own quotes"):
        load_engine_config(write(tmp_path, text))


def test_two_simulated_venues_of_one_market_are_two_exchanges_and_load(tmp_path: Path) -> None:
    text = LAYERED + "hedge: {enabled: true, venue: {connector: sim, rules: sim, symbol: BTC-PYUSD}}\n"
    assert load_engine_config(write(tmp_path, text)).config.hedge.enabled


@pytest.mark.parametrize(
    ("setting", "key"),
    [("resume: bogus", "resume"), ("max_drawdown: -5", "max_drawdown"), ("min_confidence: 3", "min_confidence")],
)
def test_a_disabled_kill_switch_still_has_its_values_checked(tmp_path: Path, setting: str, key: str) -> None:
    """The switch is switched back on in a hurry: its limits must already be right, not fail (or mean
    something else) then."""
    path = write(tmp_path, LAYERED.replace("kill_switch: {max_drawdown: 500, max_loss: 1000, resume: manual}",
                                           f"kill_switch: {{enabled: false, {setting}}}"))
    with pytest.raises(ConfigError, match=rf"risk\.kill_switch\.{key}: "):
        load_engine_config(path)


@pytest.mark.parametrize("section", ["metrics", "dashboard"])
def test_a_console_port_past_65535_is_refused_at_load(tmp_path: Path, section: str) -> None:
    """Before: loaded and passed `mmkit check`; `mmkit start` opened the store and then refused (exit 3)."""
    path = write(tmp_path, LAYERED + f"console: {{{section}: {{port: 70000}}}}\n")
    with pytest.raises(ConfigError, match=rf"console\.{section}\.port: must be a TCP port \(0 to 65535; 0 picks"):
        load_engine_config(path)


@pytest.mark.parametrize("other", ["random_walk: {start_price: 60000}", "replay: {path: data}"])
@pytest.mark.parametrize("base", ["layered", "truex"])
def test_reference_sources_with_a_replay_or_random_walk_is_refused(
    tmp_path: Path, secrets: None, other: str, base: str
) -> None:
    """Before: on a live venue the sources won and the replay/random walk was ignored; on the simulated venue
    the replay/random walk won and the sources were ignored. Either way one of them silently did nothing."""
    sources = ("  sources:\n    - {name: kraken, connector: connectors.ccxt:CcxtConnector, rules: kraken,"
               " symbol: BTC/USD}\n")
    if base == "layered":
        text = LAYERED.replace("reference:\n", "reference:\n" + sources)
    else:
        text = TRUEX.replace("reference:\n", f"reference:\n  {other}\n")
        other = ""
    if other:
        text = text.replace("  random_walk: {start_price: 60000, volatility_bps: 5, seed: 7}\n", f"  {other}\n")
    with pytest.raises(ConfigError, match=r": reference: choose one of sources, replay and random_walk"):
        load_engine_config(write(tmp_path, text))


@pytest.mark.parametrize(("host", "token", "refused"), [
    ("0.0.0.0", "hunter2", True),  # anyone on the network may try tokens; the page can flatten and cancel all
    ("10.1.2.3", "x" * 23, True),
    ("0.0.0.0", "x" * 24, False),
    ("127.0.0.1", "hunter2", False),  # loopback: this host's users only
    ("localhost", "hunter2", False),
    ("::1", "hunter2", False),
])
def test_a_short_control_token_on_a_dashboard_reachable_from_the_network_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, host: str, token: str, refused: bool
) -> None:
    monkeypatch.setenv("MMKIT_TEST_CONSOLE_TOKEN", token)
    path = write(tmp_path, LAYERED + f"console:\n  dashboard: {{port: 0, host: '{host}', "
                                     "control_token: '${MMKIT_TEST_CONSOLE_TOKEN}'}\n")
    if not refused:
        assert load_engine_config(path).config.console.dashboard.control_token == token
        return
    with pytest.raises(ConfigError, match=rf"console\.dashboard\.control_token: control_token is {len(token)} "
                                          rf"characters and the dashboard listens on {host} \(beyond this host\)"):
        load_engine_config(path)
