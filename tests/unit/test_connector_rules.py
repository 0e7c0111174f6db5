from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path

import pytest

from mmkit.conf import ConfigError
from mmkit.connector import DEFAULT_VENUES_DIR, FeeSchedule, Inbox, load_venue_rules
from mmkit.model import NS_PER_MS, ConnectionStatus, Side


def test_truex_rules_from_conf() -> None:
    rules = load_venue_rules("truex")
    inst = rules.instrument("BTC-PYUSD")
    assert inst.tick_for(D("99999.9")) == D("0.10")
    assert inst.tick_for(D("100000")) == D("0.50")
    assert inst.tick_for(D("500000")) == D("1")
    assert inst.lot_for(D("500000")) == D("0.000001")
    assert inst.min_notional == D("1")
    assert inst.price_band == D("0.025")
    windows = [(r.max_count, r.window_ns) for r in rules.rate_limits]
    assert windows == [(10, 1000 * NS_PER_MS), (300, 60_000 * NS_PER_MS)]
    assert rules.duplicate_order_window_ns == 500 * NS_PER_MS
    assert rules.supports_replace
    assert rules.fees == FeeSchedule(D(0), D(10))
    assert inst.round_price(D("100000.3"), Side.SELL) == D("100000.5")
    with pytest.raises(KeyError):
        rules.instrument("ETH-PYUSD")


def test_every_shipped_venue_file_loads() -> None:
    files = sorted(DEFAULT_VENUES_DIR.glob("*.yml"))
    assert files, "no venue rule files shipped"
    for path in files:
        rules = load_venue_rules(path)
        assert rules.venue == path.stem
        assert rules.instruments


def test_bad_venue_file_names_the_key(tmp_path: Path) -> None:
    path = tmp_path / "bad.yml"
    path.write_text(
        "venue: bad\ninstruments:\n  - {symbol: X, base: B, quote: Q, increments: [{min_price: 0, tick: 0, lot: 1}]}\n"
    )
    with pytest.raises(ConfigError, match="tick and lot must be positive"):
        load_venue_rules(path)
    path.write_text("venue: bad\ninstruments: []\nfees: {maker_bps: 1, taker: 2}\n")
    with pytest.raises(ConfigError) as info:
        load_venue_rules(path)
    assert info.value.key_path == "fees"


def test_fee_schedule() -> None:
    fees = FeeSchedule(D("-1"), D("10"))
    assert fees.fee(D("10000"), is_maker=True) == D("-1")
    assert fees.fee(D("10000"), is_maker=False) == D("10")


def test_inbox_keeps_order_and_drains_once() -> None:
    inbox = Inbox()
    for i in range(3):
        inbox.put(ConnectionStatus("v", "OE", bool(i % 2), str(i), i))
    assert [e.reason for e in inbox.drain()] == ["0", "1", "2"]  # type: ignore[union-attr]
    assert inbox.drain() == []
    assert inbox.received == 3
