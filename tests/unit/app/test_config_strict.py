"""Config, stricter (issue 13, item 4), and config paths that do not depend on the current directory (item 5)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmkit.app.build import build, check_config
from mmkit.app.config import ConfigOverrides, load_engine_config
from mmkit.clock import Clock, ClockMode
from mmkit.conf import ConfigError
from mmkit.model import NS_PER_S

REPO = Path(__file__).resolve().parents[3]
LAYERED = (REPO / "strategies" / "layered_example.yml").read_text()


def write(tmp_path: Path, text: str, name: str = "c.yml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_duplicate_key_is_an_error_naming_both_lines(tmp_path: Path) -> None:
    text = LAYERED.replace("  tick_ms: 100\n", "  tick_ms: 100\n  status_interval_s: 1\n")
    path = write(tmp_path, text)
    lines = text.splitlines()
    first = lines.index("  status_interval_s: 1") + 1
    second = lines.index("  status_interval_s: 2") + 1
    with pytest.raises(ConfigError) as info:
        load_engine_config(path)
    assert str(info.value) == (f"{path}:{second}: status_interval_s: duplicate key (lines {first} and {second}); "
                               "YAML would silently keep the last one")


def test_a_yaml_syntax_error_names_the_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, LAYERED.replace("symbol: BTC-PYUSD", "symbol: [BTC-PYUSD"))
    with pytest.raises(ConfigError) as info:
        load_engine_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}:") and "invalid YAML" in message
    assert "<unicode string>" not in message
    assert info.value.line is not None and info.value.line > 10


def test_a_bad_value_is_shown(tmp_path: Path) -> None:
    path = write(tmp_path, LAYERED.replace("    levels: 3", "    levels: two"))
    with pytest.raises(ConfigError, match=r"strategy\.params\.levels: expected an integer, got 'two'"):
        check_config(path)


def test_an_unknown_key_suggests_the_closest_known_one(tmp_path: Path) -> None:
    path = write(tmp_path, LAYERED.replace("  tick_ms: 100", "  tick_msec: 100"))
    with pytest.raises(ConfigError, match=r"engine: unknown key\(s\) 'tick_msec' \(did you mean 'tick_ms'\?\)"):
        load_engine_config(path)


@pytest.mark.parametrize("key", ["api_key", "secret_key", "password"])
def test_a_literal_secret_is_refused(tmp_path: Path, key: str) -> None:
    text = LAYERED + (
        "hedge:\n  enabled: false\n  venue:\n    connector: connectors.ccxt:CcxtConnector\n    rules: kraken\n"
        f"    symbol: BTC/USD\n    settings: {{{key}: abc123pasted}}\n"
    )
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=rf"hedge\.venue\.settings\.{key}: a secret must not be written in the file"):
        load_engine_config(path)


def test_a_store_url_may_be_literal_unless_it_carries_a_password(tmp_path: Path) -> None:
    ok = write(tmp_path, LAYERED + "store: {url: 'postgresql://mmkit@db.example/mmkit'}\n", "ok.yml")
    assert load_engine_config(ok).config.store.url == "postgresql://mmkit@db.example/mmkit"
    bad = write(tmp_path, LAYERED + "store: {url: 'postgresql://mmkit:s3cret@db.example/mmkit'}\n", "bad.yml")
    with pytest.raises(ConfigError, match=r"store\.url: a secret must not be written"):
        load_engine_config(bad)


def test_the_shipped_configs_use_one_secret_style() -> None:
    for path in (REPO / "strategies").glob("*.yml"):
        text = path.read_text()
        assert "_env:" not in text, f"{path.name} names a secret with the old *_env style"


def test_truex_refuses_the_old_secret_style(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRUEX_API_KEY", "k")
    monkeypatch.setenv("TRUEX_SECRET_KEY", "s")
    text = (REPO / "strategies" / "truex_btc_pyusd.yml").read_text().replace(
        'api_key: "${TRUEX_API_KEY}"', "api_key_env: TRUEX_API_KEY")
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=r"venue\.settings\.api_key_env: write api_key"):
        build(load_engine_config(path, ConfigOverrides(sim_hedge=True)),
              Clock(ClockMode.REALTIME))


@pytest.mark.parametrize(
    ("inventory", "key", "reason"),
    [
        ("{max_position: 1, hedge_threshold: 1.5, emergency_position: 2}", "risk.inventory.hedge_threshold",
         r"hedge_threshold \(1.5\) must be below max_position \(1\)"),
        ("{max_position: 1, hedge_threshold: 0.5, emergency_position: 1}", "risk.inventory.emergency_position",
         r"emergency_position \(1\) must be above max_position \(1\)"),
    ],
)
def test_contradicting_inventory_limits_are_refused(tmp_path: Path, inventory: str, key: str, reason: str) -> None:
    path = write(tmp_path, LAYERED.replace(
        "inventory: {max_position: 1, hedge_threshold: 0.5, emergency_position: 1.2}", f"inventory: {inventory}"))
    with pytest.raises(ConfigError, match=rf"{key.replace('.', '[.]')}: {reason}"):
        load_engine_config(path)


@pytest.mark.parametrize(
    ("kill_switch", "key"),
    [
        ("{max_drawdown: 0}", "max_drawdown"),
        ("{max_loss: -5}", "max_loss"),
        ("{stale_after_s: 0.05}", "stale_after_s"),
        ("{max_rejects: 0}", "max_rejects"),
        ("{max_drawdown: 5000, max_loss: 100}", "max_loss"),
    ],
)
def test_kill_switch_thresholds_are_checked(tmp_path: Path, kill_switch: str, key: str) -> None:
    path = write(tmp_path, LAYERED.replace("kill_switch: {max_drawdown: 500, max_loss: 1000, resume: manual}",
                                           f"kill_switch: {kill_switch}"))
    with pytest.raises(ConfigError, match=rf"risk\.kill_switch\.{key}: "):
        load_engine_config(path)


def test_a_ladder_side_larger_than_max_position_fails_check(tmp_path: Path) -> None:
    path = write(tmp_path, LAYERED.replace("order_size: 0.01", "order_size: 0.5"))  # 3 levels x 0.5 > 1
    with pytest.raises(ConfigError, match=r"strategy\.params: one side of the ladder quotes 1\.5.* more than "
                                          r"risk\.inventory\.max_position \(1\)"):
        check_config(path)


def test_every_engine_setting_is_used(tmp_path: Path) -> None:
    path = write(tmp_path, LAYERED.replace("  tick_ms: 100", "  tick_ms: 100\n  pnl_log_interval_s: 7\n"
                                                             "  controller_max_failures: 3"))
    built = build(load_engine_config(path), Clock(ClockMode.REALTIME))
    assert built.engine.pnl.config.log_period_ns == 7 * NS_PER_S
    assert built.engine.runner.max_consecutive_failures == 3


def test_a_controller_without_on_tick_fails_check_naming_the_key(tmp_path: Path) -> None:
    module = tmp_path / "lazy_strategy.py"
    module.write_text("from mmkit.strategy import Controller\n\nclass Lazy(Controller):\n    pass\n")
    path = write(tmp_path, LAYERED.replace("strategies.layered:LayeredController", "lazy_strategy:Lazy")
                 .replace("  params:\n", "  params: {}\n  old_params:\n"))
    import sys

    sys.path.insert(0, str(tmp_path))
    try:
        text = path.read_text()
        start = text.index("  old_params:")
        end = text.index("risk:")
        path.write_text(text[:start] + text[end:])
        with pytest.raises(ConfigError, match=r"strategy\.controller: Lazy does not implement on_tick\(ctx\)"):
            check_config(path)
    finally:
        sys.path.remove(str(tmp_path))


def test_check_runs_the_controller_once_on_a_synthetic_tick(tmp_path: Path) -> None:
    module = tmp_path / "raising_strategy.py"
    module.write_text(
        "from mmkit.strategy import Controller\n\n"
        "class Boom(Controller):\n"
        "    def on_tick(self, ctx):\n"
        "        return ctx.fair.price / 0\n"
    )
    text = LAYERED.replace("strategies.layered:LayeredController", "raising_strategy:Boom")
    start, end = text.index("  params:"), text.index("risk:")
    path = write(tmp_path, text[:start] + text[end:])
    import sys

    sys.path.insert(0, str(tmp_path))
    try:
        with pytest.raises(ConfigError, match=r"strategy\.controller: Boom failed on a synthetic tick \(fair 60000\)"
                                              r": (DivisionByZero|ZeroDivisionError)"):
            check_config(path)
    finally:
        sys.path.remove(str(tmp_path))


# -- item 5: paths ------------------------------------------------------------------------------------


def test_relative_paths_resolve_against_the_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MMKIT_HOME", raising=False)
    folder = tmp_path / "configs"
    folder.mkdir()
    text = LAYERED.replace("  random_walk: {start_price: 60000, volatility_bps: 5, seed: 7}",
                           "  replay: {path: data/rec}") + "store: {audit_path: audit/trail.jsonl}\n"
    path = write(folder, text)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config = load_engine_config(path).config
    assert config.reference.replay is not None and config.reference.replay.path == str(folder / "data" / "rec")
    assert config.store.audit_path == str(folder / "audit" / "trail.jsonl")
    assert config.engine.output_dir == str(folder / "var" / "layered-example")


def test_the_instance_home_follows_mmkit_home_then_the_config_then_the_option(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, LAYERED)
    monkeypatch.setenv("MMKIT_HOME", str(tmp_path / "homes"))
    assert load_engine_config(path).config.engine.output_dir == str(tmp_path / "homes" / "layered-example")
    configured = write(tmp_path, LAYERED.replace("  tick_ms: 100", "  tick_ms: 100\n  output_dir: run"), "d.yml")
    assert load_engine_config(configured).config.engine.output_dir == str(tmp_path / "run")
    monkeypatch.chdir(tmp_path)
    override = ConfigOverrides(output_dir="cli-dir")
    assert load_engine_config(configured, override).config.engine.output_dir == str(tmp_path / "cli-dir")
