"""PriceAggregator: weighting, outliers, staleness, confidence and wake-ups."""

from __future__ import annotations

from decimal import Decimal

import pytest

from mmkit.model import NS_PER_MS
from mmkit.pricing.aggregator import AggregatorConfig, PriceAggregator

D = Decimal
S = 1_000 * NS_PER_MS


class Waker:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


def make(**kwargs: object) -> tuple[PriceAggregator, Waker]:
    waker = Waker()
    return PriceAggregator(AggregatorConfig(**kwargs), wake=waker, now_ns=lambda: 0), waker  # type: ignore[arg-type]


def test_no_data_means_no_price_and_zero_confidence() -> None:
    agg, _ = make()
    fair = agg.fair(0)
    assert fair.price is None and fair.confidence == 0.0 and fair.sources == 0


def test_three_agreeing_venues_give_the_mean_with_full_confidence() -> None:
    agg, _ = make()
    agg.update("kraken", D("99"), D("101"), 0)
    agg.update("coinbase", D("99"), D("101"), 0)
    agg.update("gemini", D("99"), D("101"), 0)
    fair = agg.fair(0)
    assert fair.price == D("100")
    assert fair.confidence == 1.0
    assert fair.sources == 3


def test_weights_tilt_the_fair_value() -> None:
    agg, _ = make(weights={"kraken": D(3), "coinbase": D(1)}, outlier_bps=D(1000))
    agg.update("kraken", D("99.9"), D("100.1"), 0)  # mid 100
    agg.update("coinbase", D("100.9"), D("101.1"), 0)  # mid 101
    assert agg.fair(0).price == D("100.25")


def test_outlier_far_from_the_median_is_rejected() -> None:
    agg, _ = make(outlier_bps=D(50))
    agg.update("kraken", D("99"), D("101"), 0)
    agg.update("coinbase", D("99.5"), D("100.5"), 0)
    agg.update("gemini", D("109"), D("111"), 0)  # mid 110: 10 % off
    fair = agg.fair(0)
    assert fair.price == D("100")
    assert fair.sources == 2
    assert agg.rejected_outliers == 1


def test_stale_venue_drops_out_and_confidence_falls() -> None:
    agg, _ = make(stale_ms=2_000)
    agg.update("kraken", D("99"), D("101"), 0)
    agg.update("coinbase", D("99"), D("101"), 0)
    agg.update("gemini", D("99"), D("101"), 1 * S)
    full = agg.fair(1 * S).confidence
    one_left = agg.fair(2 * S + 1)  # kraken and coinbase are older than 2 s now
    assert full == 1.0
    assert one_left.sources == 1
    assert 0.0 < one_left.confidence < full
    assert agg.fair(3 * S + 1).confidence == 0.0
    assert agg.fair(3 * S + 1).price is None


def test_exactly_at_staleness_limit_is_still_fresh() -> None:
    agg, _ = make(stale_ms=2_000)
    agg.update("kraken", D("99"), D("101"), 0)
    assert agg.fair(2 * S).sources == 1
    assert agg.fair(2 * S + 1).sources == 0


def test_dispersion_lowers_confidence() -> None:
    tight, _ = make()
    wide, _ = make(outlier_bps=D(1000))
    for agg, spread in ((tight, D("0")), (wide, D("0.3"))):
        agg.update("kraken", D("99") - spread, D("101") - spread, 0)
        agg.update("coinbase", D("99"), D("101"), 0)
        agg.update("gemini", D("99") + spread, D("101") + spread, 0)
    assert tight.fair(0).confidence == 1.0
    assert 0.0 < wide.fair(0).confidence < 1.0


def test_crossed_or_empty_book_removes_the_venue() -> None:
    agg, _ = make()
    agg.update("kraken", D("99"), D("101"), 0)
    agg.update("kraken", D("101"), D("99"), 0)
    assert agg.fair(0).sources == 0
    agg.update("kraken", D("99"), D("101"), 0)
    agg.on_book("kraken", None, D("101"), 0)
    assert agg.fair(0).sources == 0


def test_wake_only_when_fair_value_moves_past_threshold() -> None:
    agg, waker = make(reprice_bps=D(10))  # 0.1 %
    agg.update("kraken", D("99"), D("101"), 0)
    assert waker.count == 1  # first price ever
    agg.update("kraken", D("99.05"), D("101.05"), 1)  # +5 bps
    assert waker.count == 1
    agg.update("kraken", D("99.1"), D("101.1"), 2)  # +10 bps since last wake
    assert waker.count == 2


def test_wake_when_a_venue_is_lost() -> None:
    agg, waker = make(reprice_bps=D(1000))
    agg.update("kraken", D("99"), D("101"), 0)
    agg.update("coinbase", D("99"), D("101"), 0)
    before = waker.count
    agg.mark_down("coinbase")
    assert waker.count == before + 1
    assert agg.fair(0).sources == 1


def test_all_venues_lost_wakes_so_quotes_can_be_pulled() -> None:
    agg, waker = make()
    agg.update("kraken", D("99"), D("101"), 0)
    before = waker.count
    agg.mark_down("kraken")
    assert waker.count == before + 1
    assert agg.fair(0).confidence == 0.0


def test_config_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        AggregatorConfig(stale_ms=0)
    with pytest.raises(ValueError):
        AggregatorConfig(weights={"kraken": D(-1)})
