"""HedgeConfig: the hedger's parameters (``hedge.params`` in a config), checked when they are built.

Why its own module: the config is read by three parts that do not need the
executor (the YAML loader in ``mmkit.app.build``, the clip-size checks
against the hedge venue's rules, and the research parameter space), and a
bad value must be refused at load, naming the key, before any venue is
touched. The executor (``mmkit.risk.hedge``) only reads it.
"""

from __future__ import annotations

from decimal import Decimal

import attrs

from mmkit.model import ZERO

#: Longest hedge id prefix: 3 + 4 (instance) + 7 (start ms) leaves 4 counter digits (1.7 M hedges a run).
MAX_HEDGE_PREFIX_LEN = 3


@attrs.frozen(slots=True)
class HedgeConfig:
    symbol: str = "BTC/USD"
    limit_timeout_ms: int = 5_000
    #: How far past the touch the protective limit may trade.
    protection_bps: Decimal = Decimal(10)
    min_qty: Decimal = Decimal("0.001")
    max_qty: Decimal = Decimal("1.0")
    #: After a reject, wait this long before trying again (a reject loop is a rate-limit ban).
    reject_cooldown_ms: int = 1_000
    #: 1 to 3 ASCII letters or digits. Ids are ``prefix + 4 digits of the instance + start ms + counter``
    #: (:class:`mmkit.risk.hedge_ids.HedgeClientIds`); a longer prefix would leave the counter no room.
    client_id_prefix: str = "H"
    #: Stop hedging once what hedging has cost (slippage against the hedge venue's mid at send,
    #: plus fees, in the hedge instrument's quote currency) reaches this. None: no limit.
    max_loss: Decimal | None = None
    #: Check the hedge venue's available balance before hedging (the app keeps the view current).
    check_balance: bool = True
    #: How often the app re-fetches the hedge venue's balances (seconds).
    balance_refresh_s: Decimal = Decimal(30)

    def __attrs_post_init__(self) -> None:
        if not ZERO < self.min_qty <= self.max_qty:
            raise ValueError(f"need 0 < min_qty <= max_qty, got {self.min_qty} / {self.max_qty}")
        if self.limit_timeout_ms <= 0 or self.protection_bps < 0:
            raise ValueError("limit_timeout_ms must be positive and protection_bps not negative")
        if self.max_loss is not None and self.max_loss <= 0:
            raise ValueError(f"max_loss must be positive (or left out), got {self.max_loss}")
        if self.balance_refresh_s <= 0:
            raise ValueError(f"balance_refresh_s must be positive, got {self.balance_refresh_s}")
        prefix = self.client_id_prefix
        if not (0 < len(prefix) <= MAX_HEDGE_PREFIX_LEN and prefix.isascii() and prefix.isalnum()):
            raise ValueError(f"client_id_prefix must be 1 to {MAX_HEDGE_PREFIX_LEN} ASCII letters or digits "
                             f"(the rest of an 18-character id is the instance, the start and a counter), "
                             f"got {prefix!r}")
