"""The strategy config the tests of USD-M recordings share: a one-level ladder on binance_usdm BTCUSDT."""

USDM_CONFIG = """
engine: {instance: bt, tick_ms: 100}
venue: {connector: sim, rules: binance_usdm, symbol: BTCUSDT}
strategy:
  controller: strategies.skewed_ladder:SkewedLadderController
  params: {base_spread_bps: 1, levels: 1, base_size: 0.01}
risk:
  inventory: {max_position: 0.2, hedge_threshold: 0.1, emergency_position: 0.4}
"""
