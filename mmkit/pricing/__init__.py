"""Reference pricing: fair value and confidence from several venues."""

from mmkit.pricing.aggregator import AggregatorConfig, PriceAggregator

__all__ = ["AggregatorConfig", "PriceAggregator"]
