"""Fees of simulated fills, by liquidity, from the venue's FeeSchedule.

Why a separate piece: the matching engine knows nothing about money owed,
and a backtest's PnL is only as honest as its fees (a maker rebate or a taker
fee often decides whether a quoting strategy makes money at all).
"""

from __future__ import annotations

from decimal import Decimal

import attrs

from mmkit.connector import FeeSchedule
from mmkit.model import Liquidity

__all__ = ["FeeModel"]


@attrs.frozen(slots=True)
class FeeModel:
    """Charges ``schedule`` on the notional of each fill; fees are paid in the quote asset.

    A negative fee is a rebate. Fees are exact Decimals; ``quantum`` (when
    set) rounds them to the venue's fee precision, half-up on the amount owed.
    """

    schedule: FeeSchedule = attrs.field(factory=FeeSchedule)
    quantum: Decimal | None = None

    def fee(self, price: Decimal, qty: Decimal, liquidity: Liquidity) -> Decimal:
        amount = self.schedule.fee(price * qty, liquidity is Liquidity.MAKER)
        if self.quantum is not None:
            amount = amount.quantize(self.quantum, rounding="ROUND_HALF_UP")
        return amount
