"""A backtest's starting balances: given (``--balance ASSET=AMOUNT``) or the documented default, and reported.

Why a module of its own: a simulated spot venue refuses an order its
balances cannot pay for (:mod:`mmkit.sim.venue_accounts`), so what the
account starts with decides which orders the backtest may fill. Before
this, a backtest's venue started with nothing and let balances go
negative, booking sells of coins it never held. A run that names no
balances must not become unlimited either: it gets the default below,
stated in ``report["balances"]`` with where it came from.

The default (spot instruments): the strategy's own inventory limit in the
base asset (``risk.inventory.max_position``: the executor keeps our
position and resting orders within it, so a maker that keeps its limit
never sells a coin it does not hold), and twice that position's value at
the first recorded price in the quote asset (room for buying the whole
limit, its fees, and a price that rises meanwhile). Contracts (perpetuals,
futures) are margined; margin is not modelled, so they get no default
and no check (``Instrument.spot``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import ROUND_CEILING, Decimal, InvalidOperation
from typing import Any

from mmkit.backtest.replay import ReplayEvent
from mmkit.instrument import Instrument
from mmkit.model import BookSnapshot, Trade
from mmkit.sim.base_venue import SimulatedVenue

__all__ = ["DEFAULT_RULE", "balances_section", "default_balances", "format_balances", "parse_balances",
           "starting_balances"]

#: How the default is worked out, as the report and docs/backtesting.md state it.
DEFAULT_RULE = ("default: risk.inventory.max_position of the base asset, and twice that position's value "
                "at the first recorded price of the quote asset")


def parse_balances(texts: Iterable[str], inst: Instrument) -> dict[str, Decimal]:
    """``--balance ASSET=AMOUNT`` options as a mapping; ValueError (naming the option) for a bad one.

    Only the quoted instrument's two assets are accepted: a misspelt asset would otherwise leave the real
    one at zero and every order refused, with the cause hidden in a mapping nobody reads.
    """
    balances: dict[str, Decimal] = {}
    for text in texts:
        asset, sep, amount = text.partition("=")
        asset = asset.strip()
        if not sep or not asset:
            raise ValueError(f"--balance {text}: expected ASSET=AMOUNT, e.g. --balance {inst.base}=1")
        if asset not in (inst.base, inst.quote):
            raise ValueError(f"--balance {text}: {asset} is not an asset of {inst.symbol} "
                             f"({inst.base} or {inst.quote})")
        if asset in balances:
            raise ValueError(f"--balance {text}: {asset} is given twice")
        try:
            value = Decimal(amount.strip())
        except InvalidOperation:
            raise ValueError(f"--balance {text}: {amount.strip()!r} is not a number") from None
        if not value.is_finite() or value < 0:
            raise ValueError(f"--balance {text}: a starting balance is a finite amount of at least 0")
        balances[asset] = value
    return balances


def first_price(events: Sequence[ReplayEvent]) -> Decimal | None:
    """The first recorded price: a snapshot's mid (both sides listed), or a trade's price, whichever comes first."""
    for event in events:
        if isinstance(event, BookSnapshot) and event.bids and event.asks:
            return (event.bids[0][0] + event.asks[0][0]) / 2
        if isinstance(event, Trade):
            return event.price
    return None


def default_balances(inst: Instrument, max_position: Decimal, price: Decimal | None) -> dict[str, Decimal]:
    """The documented default (:data:`DEFAULT_RULE`) for spot ``inst``; ValueError without a price to value it."""
    if price is None or price <= 0:
        raise ValueError("no recorded price to set the default starting balances from: "
                         f"give them (--balance {inst.base}=AMOUNT --balance {inst.quote}=AMOUNT)")
    quote = (2 * max_position * price).to_integral_value(rounding=ROUND_CEILING)
    return {inst.base: max_position, inst.quote: quote}


def starting_balances(
    inst: Instrument, given: Mapping[str, Decimal] | None, max_position: Decimal, events: Sequence[ReplayEvent],
) -> tuple[dict[str, Decimal], str]:
    """(balances, where they came from) for a backtest quoting ``inst``.

    ``given`` (even empty: an account that holds nothing) is used as it is, an asset not named starting at 0.
    None: the default for a spot instrument; nothing for a contract (margin is not modelled).
    """
    if given is not None:
        full = {inst.base: Decimal(0), inst.quote: Decimal(0)}
        full.update(given)
        return full, "given"
    if not inst.spot:
        return {}, "none: a margined contract (balances are not checked)"
    return default_balances(inst, max_position, first_price(events)), DEFAULT_RULE


def balances_section(venue: SimulatedVenue, inst: Instrument, start: Mapping[str, Decimal], source: str
                     ) -> dict[str, Any]:
    """``report["balances"]``: what the account started and ended with, and whether orders were held to it."""
    end = {b.asset: str(b.total) for b in venue.balances()}
    return {
        "enforced": inst.spot,
        "note": ("spot: an order the balances cannot pay for is rejected INSUFFICIENT_FUNDS" if inst.spot
                 else "margined contract: balances are not checked (margin is not modelled)"),
        "source": source,
        "start": {asset: str(amount) for asset, amount in sorted(start.items())},
        "end": dict(sorted(end.items())),
        "overdrafts": venue.overdrafts,
    }


def format_balances(report: Mapping[str, Any]) -> list[str]:
    """The terminal's lines: starting and ending balances, and orders refused by reason (loud when for funds)."""
    lines: list[str] = []
    section = report.get("balances")
    if section:
        start = ", ".join(f"{a} {v}" for a, v in section["start"].items()) or "nothing"
        end = ", ".join(f"{a} {v}" for a, v in section["end"].items()) or "nothing"
        checked = "spot, enforced" if section["enforced"] else "not checked (margined contract)"
        lines.append(f"  {'balances'.ljust(31)}  start {start} ({section['source']}); end {end}; {checked}")
    rejections = report.get("rejections")
    if rejections and (rejections["orders"] or rejections["replaces"]):
        by_reason = {**rejections["orders_by_reason"]}
        for reason, count in rejections["replaces_by_reason"].items():
            by_reason[f"{reason} (replace)"] = count
        text = ", ".join(f"{reason} {count:,}" for reason, count in by_reason.items())
        mark = "!!" if any(r.startswith("INSUFFICIENT_FUNDS") for r in by_reason) else "  "
        lines.append(f"{mark}{'rejected by the venue'.ljust(31)}  {text}")
    return lines
