"""Fees of simulated fills, by liquidity, from the venue's FeeSchedule.

Why a separate piece: the matching engine knows nothing about money owed,
and a backtest's PnL is only as honest as its fees (a maker rebate or a taker
fee often decides whether a quoting strategy makes money at all).

Linear instruments pay in the quote currency on ``price · qty``. An inverse
contract (Binance COIN-M) pays in the base coin on the fill's coin value
``contracts · contract_size / price``, as the venue charges it
(:class:`mmkit.risk.settlement.Settlement`).
"""

from __future__ import annotations

from decimal import Decimal

import attrs

from mmkit.connector import FeeSchedule
from mmkit.instrument import Instrument
from mmkit.model import Liquidity
from mmkit.risk.settlement import Settlement

__all__ = ["FeeModel"]

_MAKER = Liquidity.MAKER


@attrs.frozen(slots=True)
class FeeModel:
    """Charges ``schedule`` on the notional of each fill, in the instrument's settlement currency.

    A negative fee is a rebate. Fees are exact Decimals; ``quantum`` (when
    set) rounds them to the venue's fee precision, half-up on the amount owed.
    """

    schedule: FeeSchedule = attrs.field(factory=FeeSchedule)
    quantum: Decimal | None = None

    def fee(self, price: Decimal, qty: Decimal, liquidity: Liquidity) -> Decimal:
        """The fee of a linear fill, in the quote currency."""
        return self._rounded(self.schedule.fee(price * qty, liquidity is Liquidity.MAKER))

    def charge(self, instrument: Instrument, price: Decimal, qty: Decimal, liquidity: Liquidity) -> tuple[Decimal, str]:
        """(fee, currency) of a fill of ``instrument``: quote on ``price·qty``, or base coin for an inverse one."""
        if not instrument.inverse:  # ``fee`` spelled out (a call per fill)
            amount = self.schedule.fee(price * qty, liquidity is _MAKER)
            if self.quantum is not None:
                amount = amount.quantize(self.quantum, rounding="ROUND_HALF_UP")
            return amount, instrument.quote
        value = Settlement.of(instrument).value(price, qty)
        return self._rounded(self.schedule.fee(value, liquidity is Liquidity.MAKER)), instrument.base

    def _rounded(self, amount: Decimal) -> Decimal:
        if self.quantum is not None:
            amount = amount.quantize(self.quantum, rounding="ROUND_HALF_UP")
        return amount
