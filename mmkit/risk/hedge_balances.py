"""What the hedge venue lets us spend, and how much of a hedge it can pay for.

Why its own module: a hedge sent into an insufficient-funds reject is worse
than no hedge (a reject loop, a cool-down, a rate-limit ban), and the hedge
decision runs on the tick, where it cannot wait for a REST call. So the
hedger keeps a local view of the hedge venue's balances
(:class:`HedgeBalances`, fed by its balance events, by snapshots the app
fetches, and by reservations for what was sent since), and cuts each hedge
to what that view can fund (:class:`HedgeFunding`): base to sell, quote to
buy. What cannot be funded is reported, loudly and once, never sent blindly.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING

from mmkit.model import ZERO, Balance, Side

if TYPE_CHECKING:
    from loguru import Logger

    from mmkit.connector import Connector
    from mmkit.instrument import Instrument
    from mmkit.risk.hedge_gate import Reporter


class HedgeBalances:
    """What the hedge venue says we can spend, kept current from its balance events and fetches.

    Why a local view: the hedge decision runs on the tick and cannot wait for
    a REST call. The view is fed by the venue's ``BalanceUpdate`` events, by
    :meth:`set` (a snapshot fetched by the app before quoting and on a
    period) and, between snapshots, by :meth:`reserve`: what we sent since
    the last snapshot is taken out of ``available`` so two hedges in one
    second cannot spend the same coins.
    """

    def __init__(self) -> None:
        self._available: dict[str, Decimal] = {}
        self._reserved: dict[str, Decimal] = {}
        self.known = False
        self.updated_ns = 0

    def set(self, balances: Sequence[Balance], ts_ns: int) -> None:
        """A fresh snapshot: replaces the view and forgets local reservations."""
        self._available = {b.asset.upper(): b.available for b in balances}
        self._reserved.clear()
        self.known = True
        self.updated_ns = ts_ns

    def update(self, balances: Sequence[Balance], ts_ns: int) -> None:
        """A partial update (the assets it names): their reservations are settled by it."""
        for b in balances:
            asset = b.asset.upper()
            self._available[asset] = b.available
            self._reserved.pop(asset, None)
        self.known = True
        self.updated_ns = ts_ns

    def available(self, asset: str) -> Decimal:
        asset = asset.upper()
        return self._available.get(asset, ZERO) - self._reserved.get(asset, ZERO)

    def reserve(self, asset: str, amount: Decimal) -> None:
        asset = asset.upper()
        self._reserved[asset] = self._reserved.get(asset, ZERO) + amount

    def release(self, asset: str, amount: Decimal) -> None:
        """Give back what a hedge reserved and did not spend (it was canceled, rejected or expired).

        Never below zero: a snapshot or update since the reservation already settled it.
        """
        asset = asset.upper()
        left = self._reserved.get(asset, ZERO) - amount
        if left > 0:
            self._reserved[asset] = left
        else:
            self._reserved.pop(asset, None)

    def as_dict(self) -> dict[str, str]:
        return {asset: str(self.available(asset)) for asset in sorted(self._available)}

    async def refresh(self, connector: Connector) -> None:
        """Fetch a snapshot from ``connector`` (raises what the connector raises)."""
        self.set(await connector.fetch_balances(), time.time_ns())


class HedgeFunding:
    """Cuts a hedge to what the balances can pay for, and says a shortfall once (log and report)."""

    def __init__(self, instrument: Instrument, venue: str, log: Logger, report: Reporter) -> None:
        self.instrument = instrument
        self.venue = venue
        self._log = log
        self._report = report
        #: The last hedge that could not be (fully) funded, until a hedge is funded again.
        self.problem: str | None = None

    def funded(self, balances: HedgeBalances | None, side: Side, qty: Decimal, price: Decimal,
               position: Decimal) -> Decimal:
        """How much of ``qty`` the hedge venue's available balance can pay for; a shortfall is reported.

        Selling needs the base asset, buying needs ``qty * price`` of the quote asset. No balance view
        (``balances`` None: the check is off) funds everything.
        """
        if balances is None:
            return qty
        base, quote = self.instrument.base, self.instrument.quote
        problem: str | None
        if not balances.known:
            problem = f"hedge of {qty} not sent: balances on {self.venue} unknown"
            funded = ZERO
        else:
            if side is Side.SELL:
                funded = max(ZERO, min(qty, balances.available(base)))
                have = f"{balances.available(base)} {base}"
            else:
                funded = max(ZERO, min(qty, balances.available(quote) / price))
                have = f"{balances.available(quote)} {quote}"
            problem = None if funded >= qty else (
                f"hedge {side.value} {qty} cannot be funded on {self.venue}: available {have}; "
                f"{qty - funded} not sent"
            )
        if problem != self.problem:
            if problem is None:
                self._log.info("hedge venue {} funds hedges again", self.venue)
            else:
                self._log.error("HEDGE NOT FUNDED: {}", problem)
                self._report("hedge_unfunded", reason=problem, position=str(position))
            self.problem = problem
        return funded
