"""PnL of an inverse contract (Binance COIN-M): sized in contracts, settled in the base coin.

Why apart from the engine's PnL: the engine's tracker is linear (PnL =
size x price move, in the quote currency), which is right for spot and
USD-M and wrong for an inverse contract, whose size is a number of
contracts worth ``contract_size`` quote units each: a long of ``n``
contracts bought at ``p`` and sold at ``q`` earns ``n * contract_size *
(1/p - 1/q)`` *base coin*. Fees are charged on the base-coin value of the
fill (``n * contract_size / price``). The report gives the result in the base
coin and, for reading, converted to the quote currency at the closing mark.

Average cost: the position's entry is the average of ``1/price`` over the
contracts still open (the inverse of the usual average price).
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from mmkit.model import ZERO, Fill, Liquidity, Side

_BPS = Decimal(10_000)


def inverse_pnl(
    fills: Iterable[Fill],
    contract_size: Decimal,
    maker_bps: Decimal,
    taker_bps: Decimal,
    mark_price: Decimal | None,
    base: str = "BTC",
    quote: str = "USD",
) -> dict[str, Any]:
    """Realized, unrealized and fees in the base coin, and the total converted at ``mark_price``."""
    position = ZERO  # contracts, signed
    inverse_entry = ZERO  # average of 1/price over the open contracts
    realized = ZERO
    fees = ZERO
    volume_contracts = ZERO
    for fill in fills:
        qty, price = fill.qty, fill.price
        volume_contracts += qty
        bps = maker_bps if fill.liquidity is Liquidity.MAKER else taker_bps
        fees += qty * contract_size / price * bps / _BPS
        signed = qty if fill.side is Side.BUY else -qty
        if position == ZERO or (position > 0) == (signed > 0):
            total = abs(position) + qty
            inverse_entry = (inverse_entry * abs(position) + qty / price) / total
            position += signed
            continue
        closing = min(qty, abs(position))
        direction = Decimal(1) if position > 0 else Decimal(-1)
        realized += direction * closing * contract_size * (inverse_entry - 1 / price)
        position += signed
        left = qty - closing
        if position == ZERO:
            inverse_entry = ZERO
        elif left > 0:  # flipped: the rest opens a new position at this price
            inverse_entry = 1 / price
    unrealized = ZERO
    if position != ZERO and mark_price:
        direction = Decimal(1) if position > 0 else Decimal(-1)
        unrealized = direction * abs(position) * contract_size * (inverse_entry - 1 / mark_price)
    total = realized + unrealized - fees
    quantum = Decimal("0.00000001")
    result: dict[str, Any] = {
        "unit": base,
        "contract_size": str(contract_size),
        "position_contracts": str(position),
        "volume_contracts": str(volume_contracts),
        "realized": str(realized.quantize(quantum)),
        "unrealized": str(unrealized.quantize(quantum)),
        "fees": str(fees.quantize(quantum)),
        "total": str(total.quantize(quantum)),
        "mark_price": None if mark_price is None else str(mark_price),
    }
    result[f"total_{quote.lower()}"] = None if not mark_price else str((total * mark_price).quantize(Decimal("0.01")))
    return result


__all__ = ["inverse_pnl"]
