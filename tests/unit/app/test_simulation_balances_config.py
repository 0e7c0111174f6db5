"""``simulation.balances`` in the strategy file: the starting account of every simulated run of it.

A careless file (a negative amount, text, NaN, a misspelt asset, a number written as a float from Python)
is refused before anything runs, naming ``simulation.balances.<ASSET>``; a good one is read exactly and
is the account the sim connector (demo) and paper trading start from. Without it, the documented demo
account (mmkit.app.backtest_balances.DEMO_FUNDS_*) as before.
"""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path

import pytest

from mmkit.app.backtest_balances import DEMO_FUNDS_BASE, DEMO_FUNDS_QUOTE, check_balances, starting_balances
from mmkit.app.build import build
from mmkit.app.config import ConfigOverrides, load_engine_config
from mmkit.clock import Clock, ClockMode
from mmkit.conf import ConfigError
from mmkit.instrument import IncrementBand, Instrument

REPO = Path(__file__).resolve().parents[3]
LAYERED = (REPO / "strategies" / "layered_example.yml").read_text(encoding="utf-8")
TRUEX = (REPO / "strategies" / "truex_btc_pyusd.yml").read_text(encoding="utf-8")
SPOT = Instrument("binance", "BTCUSDT", "BTC", "USDT", (IncrementBand(D(0), D("0.01"), D("0.00001")),))


def write(tmp_path: Path, text: str, name: str = "strategy.yml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def venue_balances(built: object) -> dict[str, D]:
    return {b.asset: b.total for b in built.engine.venue.balances()}  # type: ignore[attr-defined]


def test_balances_are_read_exactly_from_their_text(tmp_path: Path) -> None:
    path = write(tmp_path, LAYERED + "simulation:\n  balances: {BTC: 0.1, PYUSD: 1e-3}\n")
    balances = load_engine_config(path).config.simulation.balances
    assert balances == {"BTC": D("0.1"), "PYUSD": D("0.001")}
    assert str(balances["BTC"]) == "0.1"  # not 0.1000000000000000055511151231257827 (a float's)


def test_without_the_section_nothing_is_configured(tmp_path: Path) -> None:
    assert load_engine_config(write(tmp_path, LAYERED)).config.simulation.balances is None


@pytest.mark.parametrize(("yaml_text", "key", "words"), [
    ("{BTC: -1}", "simulation.balances.BTC", "at least 0"),
    ("{BTC: lots}", "simulation.balances.BTC", "not a number"),
    ("{BTC: nan}", "simulation.balances.BTC", "a finite amount"),
    ("{BTC: '-inf'}", "simulation.balances.BTC", "a finite amount"),
    ("{BTC: true}", "simulation.balances.BTC", "expected a number"),
    ("{BTC: [1]}", "simulation.balances.BTC", "expected a number"),
    ("{BTC: null}", "simulation.balances.BTC", "expected a number"),
    ("{'': 1}", "simulation.balances", "asset"),
    ("5", "simulation.balances", "a mapping of asset to amount"),
])
def test_a_bad_balance_is_refused_naming_the_key(tmp_path: Path, yaml_text: str, key: str, words: str) -> None:
    path = write(tmp_path, LAYERED + f"simulation:\n  balances: {yaml_text}\n")
    with pytest.raises(ConfigError) as caught:
        load_engine_config(path)
    assert caught.value.key_path == key and words in caught.value.reason, str(caught.value)
    assert caught.value.file == str(path)


def test_a_yaml_nan_or_inf_is_refused_at_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, LAYERED + "simulation:\n  balances:\n    BTC: .nan\n")
    with pytest.raises(ConfigError) as caught:
        load_engine_config(path)
    assert caught.value.line == LAYERED.count("\n") + 3 and "not a finite number" in caught.value.reason


def test_an_unknown_key_in_the_section_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, LAYERED + "simulation:\n  balance: {BTC: 1}\n")
    with pytest.raises(ConfigError, match=r"simulation: unknown key\(s\) 'balance' \(did you mean 'balances'\?\)"):
        load_engine_config(path)


def test_an_asset_that_is_not_the_instruments_is_refused_when_the_engine_is_built(tmp_path: Path) -> None:
    """XBT for BTC: the real asset would start at 0 and every order be refused, for a reason nobody reads."""
    path = write(tmp_path, LAYERED + "simulation:\n  balances: {XBT: 1, PYUSD: 1000}\n")
    loaded = load_engine_config(path, ConfigOverrides(output_dir=str(tmp_path / "home")))
    with pytest.raises(ConfigError) as caught:
        build(loaded, Clock(ClockMode.REALTIME))
    assert caught.value.key_path == "simulation.balances.XBT"
    assert "XBT is not an asset of BTC-PYUSD (BTC or PYUSD)" in caught.value.reason


def test_the_sim_connector_demo_starts_from_the_configured_account(tmp_path: Path) -> None:
    path = write(tmp_path, LAYERED + "simulation:\n  balances: {BTC: 0.25, PYUSD: 15000}\n")
    built = build(load_engine_config(path, ConfigOverrides(output_dir=str(tmp_path / "home"))),
                  Clock(ClockMode.REALTIME))
    assert venue_balances(built) == {"BTC": D("0.25"), "PYUSD": D(15000)}


def test_an_asset_left_out_starts_at_zero(tmp_path: Path) -> None:
    path = write(tmp_path, LAYERED + "simulation:\n  balances: {BTC: 2}\n")
    built = build(load_engine_config(path, ConfigOverrides(output_dir=str(tmp_path / "home"))),
                  Clock(ClockMode.REALTIME))
    assert venue_balances(built) == {"BTC": D(2), "PYUSD": D(0)}


def test_without_balances_the_demo_account_is_as_before(tmp_path: Path) -> None:
    built = build(load_engine_config(write(tmp_path, LAYERED), ConfigOverrides(output_dir=str(tmp_path / "h"))),
                  Clock(ClockMode.REALTIME))
    assert venue_balances(built) == {"BTC": DEMO_FUNDS_BASE, "PYUSD": DEMO_FUNDS_QUOTE}


def test_paper_trading_starts_from_the_configured_account(tmp_path: Path) -> None:
    """The live TrueX file with a small account: --paper simulates the venue, from those balances."""
    path = write(tmp_path, TRUEX + "simulation:\n  balances: {BTC: 0.5, PYUSD: 30000}\n")
    paper = ConfigOverrides(paper=True, sim_hedge=True, output_dir=str(tmp_path / "home"))
    built = build(load_engine_config(path, paper), Clock(ClockMode.REALTIME))
    assert venue_balances(built) == {"BTC": D("0.5"), "PYUSD": D(30000)}


def test_a_live_run_of_the_same_file_loads_and_ignores_the_section(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The section is the simulation's: the file that is backtested is also started live, unchanged."""
    monkeypatch.setenv("TRUEX_API_KEY", "k")
    monkeypatch.setenv("TRUEX_SECRET_KEY", "s")
    path = write(tmp_path, TRUEX + "simulation:\n  balances: {BTC: 0.5, PYUSD: 30000}\n")
    built = build(load_engine_config(path, ConfigOverrides(sim_hedge=True, output_dir=str(tmp_path / "home"))),
                  Clock(ClockMode.REALTIME))
    assert not hasattr(built.engine.venue, "overdrafts")  # the real connector: no simulated account at all


@pytest.mark.parametrize(("given", "words"), [
    ({"BTC": 0.1}, "BTC: 0.1 is a float"),
    ({"BTC": D(-1)}, "BTC: a starting balance is a finite amount of at least 0"),
    ({"BTC": D("NaN")}, "BTC: a starting balance is a finite amount"),
    ({"XBT": D(1)}, "XBT is not an asset of BTCUSDT (BTC or USDT)"),
])
def test_the_library_entry_refuses_what_the_file_refuses(given: dict[str, object], words: str) -> None:
    """run_backtest(balances=...) goes through the same check (a float would reach the ledger otherwise)."""
    with pytest.raises(ValueError, match=words.replace("(", r"\(").replace(")", r"\)")):
        starting_balances(SPOT, given, D(5), [])  # type: ignore[arg-type]


def test_check_balances_names_the_key_it_is_given() -> None:
    with pytest.raises(ValueError, match=r"^simulation\.balances\.XBT: XBT is not an asset of BTCUSDT"):
        check_balances({"XBT": D(1)}, SPOT, "simulation.balances")
