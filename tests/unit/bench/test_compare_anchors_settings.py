"""bench/anchors_settings.py: the one-level maker's settings as each engine takes them, and its price rule."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bench.anchors_mmkit import OffsetMaker, OffsetMakerConfig
from bench.anchors_settings import (
    MakerSpec,
    hftbacktest_settings,
    mmkit_settings,
    nautilus_settings,
    precision,
    quote_ticks,
)
from mmkit.connector import load_venue_rules
from mmkit.model import FairValue, Side
from mmkit.strategy import StrategyContext


def test_quote_is_mid_minus_and_plus_offset_rounded_away_from_the_mid() -> None:
    assert quote_ticks(100, 102, 500) == (-399, 601)  # mid 101 on the tick
    assert quote_ticks(6_160_201, 6_160_202, 500) == (6_159_701, 6_160_702)  # mid on the half tick: 0.5 outward
    assert quote_ticks(6_160_200, 6_160_205, 0) == (6_160_202, 6_160_203)


def test_quote_never_tighter_than_the_offset_for_any_book() -> None:
    for bid in range(1000, 1010):
        for ask in range(bid + 1, bid + 7):
            low, high = quote_ticks(bid, ask, 3)
            assert 2 * low <= bid + ask - 6 < 2 * low + 2
            assert 2 * high >= bid + ask + 6 > 2 * high - 2


def test_default_spec_is_the_issues_maker() -> None:
    spec = MakerSpec()
    assert (spec.order_size, spec.offset, spec.tick_ms) == (Decimal("0.01"), Decimal(5), 100)
    assert spec.offset_ticks == 500 and spec.size_lots == 1000


@pytest.mark.parametrize("change", [
    {"offset": Decimal("5.005")}, {"order_size": Decimal("0.000001")}, {"offset": Decimal(0)},
    {"tick_ms": 0}, {"queue_power": 0.0}, {"fee_bps": Decimal(-1)}, {"nautilus_prob_fill_on_limit": 1.5},
])
def test_spec_refuses_settings_no_engine_could_take(change: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        MakerSpec(**change)  # type: ignore[arg-type]


def test_precision_of_powers_of_ten_only() -> None:
    assert precision(Decimal("0.01")) == 2
    assert precision(Decimal("0.00001")) == 5
    assert precision(Decimal("1E-8")) == 8
    assert precision(Decimal(1)) == 0
    with pytest.raises(ValueError):
        precision(Decimal("0.05"))


def test_mmkit_settings_probabilistic_queue_without_rate_limits() -> None:
    s = mmkit_settings(MakerSpec(seed=3))
    assert s["setup"] == "replay" and s["queue"] == "probabilistic" and s["seed"] == 3
    assert s["lift_rate_limits"] is True
    assert s["latency_ns"] == (2_000_000, 2_000_000)
    assert s["through_fill"] == "whole"  # hftbacktest's no_partial_fill_exchange: matched, not mmkit's default


def test_hftbacktest_settings_in_floats_and_nanoseconds() -> None:
    s = hftbacktest_settings(MakerSpec(fee_bps=Decimal(10), entry_latency_ms=3))
    assert s["tick_size"] == 0.01 and s["lot_size"] == 0.00001 and s["order_qty"] == 0.01
    assert s["elapse_ns"] == 100_000_000
    assert (s["entry_latency_ns"], s["response_latency_ns"]) == (3_000_000, 2_000_000)
    assert s["maker_fee"] == s["taker_fee"] == 0.001
    assert s["offset_ticks"] == 500 and s["queue_power"] == 1.0
    assert any("partial" in note for note in s["unmatched"])


def test_nautilus_settings_precisions_fees_and_what_it_cannot_match() -> None:
    s = nautilus_settings(MakerSpec())
    # one size precision for book and orders: the recording's 1e-8, finer than the 0.00001 lot
    assert (s["price_precision"], s["size_precision"]) == (2, 8)
    assert (s["price_increment"], s["size_increment"], s["order_qty"]) == ("0.01", "0.00000001", "0.01")
    assert any("lot" in note for note in s["unmatched"])
    same = nautilus_settings(MakerSpec(book_size_increment=Decimal("0.00001")))
    assert (same["size_precision"], same["size_increment"]) == (5, "0.00001")
    assert not any("lot" in note for note in same["unmatched"])
    assert s["maker_fee"] == s["taker_fee"] == Decimal("0.001")
    assert s["timer_interval_ns"] == 100_000_000 and s["base_latency_ns"] == 2_000_000
    assert s["prob_fill_on_limit"] == 0.5
    assert any("queue" in note for note in s["unmatched"]) and any("latency" in note for note in s["unmatched"])


def _context(fair: Decimal | None) -> StrategyContext:
    instrument = load_venue_rules("binance").instrument("BTCUSDT")
    return StrategyContext(now_ns=0, instrument=instrument, book=None, fair=FairValue(fair, 1.0, 0),
                           position=Decimal(0))


def test_mmkit_maker_quotes_the_shared_rule_at_the_mid() -> None:
    maker = OffsetMaker(OffsetMakerConfig(offset=Decimal(5), order_size=Decimal("0.01")))
    quotes = maker.on_tick(_context(Decimal("61602.015")))  # best 61602.01 / 61602.02
    assert [(q.side, q.level, q.price, q.qty) for q in quotes] == [
        (Side.BUY, 0, Decimal("61597.01"), Decimal("0.01")),
        (Side.SELL, 0, Decimal("61607.02"), Decimal("0.01")),
    ]
    assert maker.on_tick(_context(None)) == []
