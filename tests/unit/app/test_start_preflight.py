"""The controller's first quotes, checked against the venue's rules before `mmkit check` says OK and
before `mmkit start` builds anything.

Why: a size below the venue's lot or minimum notional, or a spread outside its price band, loaded and
ran; the executor then dropped every target on every tick (a warning each time) and the instance sat
"healthy" quoting nothing. `mmkit start` did not even run the synthetic tick that `mmkit check` runs,
so a ladder whose one side exceeds max_position started too.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mmkit.app import cli
from mmkit.app.build import check_config
from mmkit.app.config import load_engine_config
from mmkit.app.start_checks import preflight
from mmkit.conf import ConfigError

REPO = Path(__file__).resolve().parents[3]
LAYERED = (REPO / "strategies" / "layered_example.yml").read_text()


def write(tmp_path: Path, text: str, name: str = "c.yml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


SIMPLE = LAYERED.replace("""  controller: strategies.layered:LayeredController
  params:
    levels: 3
    base_spread_pct: 0.1      # innermost bid/ask at mid -/+ 0.05 %
    price_step_pct: 0.05      # each further level one step further out
    order_size: 0.01
    update_interval: 2        # seconds between re-quotes (6 orders each: 1 s spent the venue's 300/min)
""", """  controller: strategies.simple:SimpleController
  params: {half_spread_bps: 10, order_size: 0.01}
""")

#: A controller of the operator's own that hands over sizes as configured, without rounding them to the lot.
RAW_CONTROLLER = """
from decimal import Decimal
from mmkit.model import Side, TargetQuote
from mmkit.strategy import Controller

class Raw(Controller):
    def on_tick(self, ctx):
        fair = ctx.fair.price
        return [TargetQuote(Side.BUY, 0, fair - 100, Decimal("0.00001")),
                TargetQuote(Side.SELL, 0, fair + 100, Decimal("0.00001"))]
"""

# conf/venues/sim.yml (BTC-PYUSD): lot 0.0001 under 100000, min notional 1 PYUSD, price band 2.5 %.
REFUSED = r"strategy\.params: .* would be refused by sim: "
BAD_QUOTES = [
    # The built-in strategy checks its configured size itself (mmkit.strategy.venue_size): the parameter is named.
    pytest.param("order_size: 0.01}", "order_size: 0.0001}",
                 r"strategy\.params\.order_size: the first quotes of SimpleController \(synthetic tick at fair 5000\): "
                 r"order_size 0\.0001 at 4995\.00 \(sim BTC-PYUSD\): notional 0\.4995\d* below the venue's minimum "
                 r"\(1\); nothing could be quoted",
                 id="below-min-notional"),
    pytest.param("half_spread_bps: 10,", "half_spread_bps: 300,",
                 REFUSED + r"BUY L0 0\.0100 @ 4850\.00: more than 2\.5 % from the fair price "
                 r"\(the venue's price band\)",
                 id="outside-price-band"),
    pytest.param("strategies.simple:SimpleController\n  params: {half_spread_bps: 10, order_size: 0.01}",
                 "raw_strategy:Raw",
                 REFUSED + r"BUY L0 0\.00001 @ 4900: the size rounds to 0 at the venue's lot \(0\.0001\)",
                 id="below-lot"),
]


@pytest.fixture
def raw_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "raw_strategy.py").write_text(RAW_CONTROLLER)
    monkeypatch.syspath_prepend(str(tmp_path))


def _simple(old: str, new: str) -> str:
    text = SIMPLE.replace("start_price: 60000", "start_price: 5000").replace(old, new)
    assert text != SIMPLE and "SimpleController" in SIMPLE
    return text


@pytest.mark.parametrize(("old", "new", "reason"), BAD_QUOTES)
def test_check_refuses_first_quotes_the_venue_would_refuse(
    tmp_path: Path, raw_module: None, old: str, new: str, reason: str
) -> None:
    path = write(tmp_path, _simple(old, new))
    with pytest.raises(ConfigError, match=rf": {reason}"):
        check_config(path)


@pytest.mark.parametrize(("old", "new", "reason"), BAD_QUOTES)
def test_start_refuses_them_before_anything_is_built(
    tmp_path: Path, raw_module: None, old: str, new: str, reason: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, _simple(old, new))
    code = cli.main(["start", str(path), "--quiet", "--run-for", "1"])
    err = capsys.readouterr().err
    assert code == cli.EXIT_CONFIG, err
    lines = [line for line in err.splitlines() if line.startswith("config error:")]
    assert len(lines) == 1 and "strategy.params" in lines[0], err
    home = tmp_path / "var" / "layered-example"
    assert not list(home.rglob("*.sqlite")) and not (home / "control").exists()  # no store, no control socket


def test_a_valid_simple_config_passes(tmp_path: Path) -> None:
    assert ": OK" in check_config(write(tmp_path, _simple("half_spread_bps: 10,", "half_spread_bps: 20,")))


def test_start_refuses_a_ladder_side_larger_than_max_position_as_check_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, LAYERED.replace("order_size: 0.01", "order_size: 0.5"))  # 3 levels x 0.5 > 1
    code = cli.main(["start", str(path), "--quiet", "--run-for", "1"])
    err = capsys.readouterr().err
    assert code == cli.EXIT_CONFIG, err
    assert "strategy.params: one side of the ladder quotes 1.5" in err


def test_the_shipped_configs_pass_the_start_preflight(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TRUEX_API_KEY", "TRUEX_SECRET_KEY", "KRAKEN_API_KEY", "KRAKEN_SECRET_KEY", "COINBASE_API_KEY",
                 "COINBASE_API_SECRET"):
        monkeypatch.setenv(name, "x")
    for path in sorted((REPO / "strategies").glob("*.yml")):
        preflight(load_engine_config(path))  # builds nothing: no recording is read, no connector made


@pytest.mark.parametrize(("controller", "params", "key", "words"), [
    ("strategies.layered:LayeredController", "{levels: 2, base_spread_pct: 0.1, price_step_pct: 0.05, "
     "order_size: 0.00004}", "order_size", "order_size 0.00004 at 4997.50 (sim BTC-PYUSD): the size rounds to 0 "
     "at the venue's lot (0.0001)"),
    ("strategies.skewed_ladder:SkewedLadderController", "{base_size: 0.0001}", "base_size",
     "base_size 0.0001 at 4987.50 (sim BTC-PYUSD): notional 0.498750 below the venue's minimum (1)"),
    ("strategies.avellaneda:AvellanedaStoikovController", "{order_size: 0.00001, sigma: 5}", "order_size",
     "the size rounds to 0 at the venue's lot (0.0001)"),
])
def test_a_built_in_strategys_size_the_venue_refuses_names_its_parameter(
    tmp_path: Path, controller: str, params: str, key: str, words: str
) -> None:
    """Before: each strategy dropped the level without a word, quoting nothing, and both checks passed."""
    text = SIMPLE.replace("start_price: 60000", "start_price: 5000").replace(
        "strategies.simple:SimpleController\n  params: {half_spread_bps: 10, order_size: 0.01}",
        f"{controller}\n  params: {params}")
    assert controller in text
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        check_config(path)
    assert caught.value.key_path == f"strategy.params.{key}"
    assert words in caught.value.reason, caught.value.reason
    with pytest.raises(ConfigError) as again:
        preflight(load_engine_config(path))
    assert again.value.key_path == f"strategy.params.{key}"
