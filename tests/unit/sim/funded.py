"""A funded spot account for the simulated venues' unit tests that are about something else than balances.

Why: a simulated spot venue refuses an order its balances cannot pay for (mmkit.sim.venue_accounts), and an
account given nothing holds nothing. Tests of queues, fills and caches start from this one, large enough
that no order of theirs is ever refused for funds; tests of the balance check give their own.
"""

from __future__ import annotations

from decimal import Decimal

FUNDED: dict[str, Decimal] = {"BTC": Decimal(10**6), "ETH": Decimal(10**6), "USD": Decimal(10**12),
                              "USDT": Decimal(10**12), "PYUSD": Decimal(10**12)}
