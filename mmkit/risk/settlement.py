"""How a fill's size turns into money: linear (spot, USD-M) or inverse (COIN-M) settlement.

Why one small module: the PnL tracker, the kill switch, the simulated venue's
fees, the backtest report and the ledger behind ``mmkit history`` all need the
same answer to "what is this fill worth, in what currency". Before it existed
each assumed a linear instrument, and an inverse contract's PnL was right only
in a side computation of the backtest report.

* **Linear** (spot, USD-M): the size is in the base asset; money is in the
  quote currency. A long of ``q`` bought at ``p`` and sold at ``x`` earns
  ``q · (x − p)`` quote.
* **Inverse** (Binance COIN-M, e.g. BTCUSD_PERP): the size is a number of
  contracts, each worth ``contract_size`` quote units (100 USD); money is in
  the base coin (BTC), the coin the contract is margined and settled in. A long
  of ``n`` contracts bought at ``p`` and sold at ``x`` earns
  ``n · contract_size · (1/p − 1/x)`` BTC, and a fee of ``bps`` on a fill is
  charged on its base-coin value ``n · contract_size / price``.

The **PnL unit** (:attr:`Settlement.unit`) is the currency the ledger keeps:
the quote currency for linear instruments, the base coin for inverse ones.
Figures are converted to the quote currency (``to_quote``) only for reading,
at a price the caller names (a fill price, the closing mark).
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:
    from mmkit.instrument import Instrument

ZERO = Decimal(0)

__all__ = ["Settlement"]


@attrs.frozen(slots=True)
class Settlement:
    """The money side of one instrument: its base and quote, and ``inverse_size`` for an inverse contract."""

    base: str = "BTC"
    #: The quote currency's name ("" when the caller does not know it: figures are then "quote").
    quote: str = ""
    #: Quote value of one contract of an inverse instrument (BTCUSD_PERP: 100 USD); None for linear ones.
    inverse_size: Decimal | None = None

    def __attrs_post_init__(self) -> None:
        if self.inverse_size is not None and self.inverse_size <= 0:
            raise ValueError(f"contract_size of an inverse instrument must be positive, got {self.inverse_size}")

    @classmethod
    def of(cls, instrument: Instrument) -> Settlement:
        """The instrument's settlement; an inverse instrument without a contract size is refused (no guess)."""
        if not instrument.inverse:
            return cls(instrument.base, instrument.quote)
        if instrument.contract_size is None or instrument.contract_size <= 0:
            raise ValueError(f"{instrument.venue}:{instrument.symbol} is inverse but has no positive contract_size "
                             "(conf/venues: the quote value of one contract)")
        return cls(instrument.base, instrument.quote, instrument.contract_size)

    @property
    def inverse(self) -> bool:
        return self.inverse_size is not None

    @property
    def unit(self) -> str:
        """The currency PnL is kept in: the base coin for an inverse contract, else the quote currency."""
        return self.base if self.inverse_size is not None else (self.quote or "quote")

    @property
    def quote_name(self) -> str:
        return self.quote or "quote"

    @property
    def size_unit(self) -> str:
        """What a size (qty, position) counts: contracts for an inverse contract, else the base asset."""
        return "contracts" if self.inverse_size is not None else self.base

    def realized(self, entry: Decimal, exit_price: Decimal, qty: Decimal) -> Decimal:
        """PnL of closing a *long* of ``qty`` opened at ``entry`` at ``exit_price`` (negate for a short)."""
        if self.inverse_size is None:
            return (exit_price - entry) * qty
        # n·size·(1/entry − 1/exit) with one division, so a round trip at one price is exactly zero.
        return (exit_price - entry) * qty * self.inverse_size / (entry * exit_price)

    def value(self, price: Decimal, qty: Decimal) -> Decimal:
        """A fill's value in the PnL unit, the base fees are charged on: ``n·size/price`` BTC, or ``price·qty``."""
        if self.inverse_size is None:
            return price * qty
        return qty * self.inverse_size / price

    def notional_quote(self, price: Decimal, qty: Decimal) -> Decimal:
        """A fill's value in the quote currency: ``n·size`` for an inverse contract, else ``price·qty``."""
        if self.inverse_size is None:
            return price * qty
        return qty * self.inverse_size

    def base_qty(self, price: Decimal, qty: Decimal) -> Decimal:
        """A fill's size in the base asset: ``n·size/price`` coins for an inverse contract, else ``qty``."""
        if self.inverse_size is None:
            return qty
        return qty * self.inverse_size / price

    def to_quote(self, amount: Decimal, price: Decimal) -> Decimal:
        """An amount in the PnL unit in the quote currency at ``price`` (the identity for linear instruments)."""
        return amount if self.inverse_size is None else amount * price

    def fee_in_unit(self, fee: Decimal, currency: str, price: Decimal) -> Decimal:
        """A fee as charged, in the PnL unit: converted at the fill price when charged in the other currency.

        Linear: a fee in the base asset becomes ``fee·price`` quote. Inverse: a fee in the quote currency
        becomes ``fee/price`` coin. A fee in any other currency (a venue token) is taken as is, as before.
        """
        charged = currency.upper()
        if self.inverse_size is None:
            return fee * price if charged == self.base.upper() else fee
        if self.quote and charged == self.quote.upper():
            return fee / price
        return fee
