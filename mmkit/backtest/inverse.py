"""The report figures of an inverse contract (Binance COIN-M), all taken from the engine's ledger.

Why a module of its own: an inverse contract is sized in contracts of
``contract_size`` quote units and settles in the base coin, so its report
reads differently from a linear one (PnL in BTC, volumes in contracts, USD
and BTC). The PnL itself is not computed here: it is the engine's
:class:`~mmkit.risk.pnl.PnLTracker`, which books inverse fills with
:class:`~mmkit.risk.settlement.Settlement` (one definition, the one the kill
switch and the live reports see). This module only presents it: rounded to
:data:`COIN_QUANTUM` (1 satoshi) and converted to the quote currency at the
closing mark, for reading.

Linear reports do not pass through here and are unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from mmkit.model import ZERO, Fill, Liquidity
from mmkit.risk.pnl import PnLTracker
from mmkit.risk.settlement import Settlement

#: Coin figures are shown to the satoshi (the venue's own precision for COIN-M balances).
COIN_QUANTUM = Decimal("0.00000001")
CENT = Decimal("0.01")
BPS = Decimal(10_000)


def coin(value: Decimal) -> str:
    """A coin amount as positional text to the satoshi (``0.00000000``, never ``0E-8``)."""
    return format(value.quantize(COIN_QUANTUM), "f")


def inverse_units(settlement: Settlement) -> dict[str, str]:
    """``report["units"]`` of an inverse run: what differs from a linear one's."""
    coin_name, quote = settlement.base, settlement.quote_name
    return {
        "pnl.*": f"{coin_name} (the base coin an inverse contract settles in), Decimal text to 1e-8",
        "pnl.in_quote.*": f"{quote}, converted at pnl.mark_price (the closing mark)",
        "pnl.pnl_per_hour / pnl_per_hour_se": f"{coin_name} per hour",
        "fills.volume_contracts": f"contracts of {settlement.inverse_size} {quote}",
        "fills.volume_base": f"{coin_name}: contracts x contract_size / fill price",
        "fills.volume_quote": f"{quote}: contracts x contract_size",
        "fills.pnl_per_volume_bps": f"basis points of the traded value in {coin_name}",
        "fees.by_currency": "each fee in its own currency",
        "fees.total_quote": f"{quote} (coin fees converted at the fill price)",
        "inventory.*": "contracts",
    }


def fee_totals(pnl: PnLTracker, fills: Sequence[Fill]) -> tuple[Decimal, Decimal]:
    """(maker, taker) fees in the ledger's coin, each fill's fee as the ledger books it."""
    settlement = pnl.settlement
    maker = taker = ZERO
    for f in fills:
        fee = settlement.fee_in_unit(f.fee, f.fee_currency, f.price)
        if f.liquidity is Liquidity.MAKER:
            maker += fee
        else:
            taker += fee
    return maker, taker


def pnl_section(pnl: PnLTracker, fills: Sequence[Fill]) -> dict[str, Any]:
    """realized / unrealized / fees / total / drawdown in the coin, and the same in the quote currency at the mark."""
    figures = pnl.figures()
    maker, taker = fee_totals(pnl, fills)
    mark = pnl.mark_price
    in_quote: dict[str, Any] = {"unit": pnl.settlement.quote_name, "at_price": None if mark is None else str(mark)}
    for name, value in (("total", figures.total), ("realized", figures.realized),
                        ("unrealized", figures.unrealized), ("fees", figures.fees)):
        converted = pnl.to_quote(value)
        in_quote[name] = None if converted is None else str(converted.quantize(CENT))
    return {
        "unit": pnl.unit,
        "total": coin(figures.total),
        "realized": coin(figures.realized),
        "unrealized": coin(figures.unrealized),
        "fees": coin(figures.fees),
        "maker_fees": coin(maker),
        "taker_fees": coin(taker),
        "mark_price": None if mark is None else str(mark),
        "max_drawdown": coin(pnl.max_drawdown),
        "in_quote": in_quote,
    }


def fill_volumes(pnl: PnLTracker, fills: Sequence[Fill], total: Decimal) -> dict[str, Any]:
    """Volumes in contracts, coin and quote currency, and PnL per unit of (coin) volume."""
    settlement = pnl.settlement
    contracts = sum((f.qty for f in fills), ZERO)
    base = sum((settlement.base_qty(f.price, f.qty) for f in fills), ZERO)
    quote = sum((settlement.notional_quote(f.price, f.qty) for f in fills), ZERO)
    return {
        "volume_contracts": str(contracts),
        "volume_base": coin(base),
        "volume_quote": str(quote),
        "pnl_per_volume_bps": None if base == 0 else str((total / base * BPS).quantize(Decimal("0.0001"))),
    }


def instrument_section(settlement: Settlement) -> dict[str, Any]:
    return {
        "inverse": True,
        "contract_size": str(settlement.inverse_size),
        "size_unit": "contracts",
        "pnl_unit": settlement.unit,
        "quote": settlement.quote_name,
    }


__all__ = ["COIN_QUANTUM", "coin", "fee_totals", "fill_volumes", "instrument_section", "inverse_units",
           "pnl_section"]
