"""The operator console of a running instance: Prometheus metrics, alert webhooks, a live dashboard.

Each part is off unless configured in the ``console`` section of the engine's
config (docs/operations.md, "Operator console").
"""
