"""TrueXConnector's awaitable reconciliation: fetch_order_status, fetch_open_orders, balances, fills.

A mixin of :class:`connectors.truex.connector.TrueXConnector` (split out of
``connector.py`` by job). With ``status_requests`` a query is a 35=H / 35=AF
whose answers complete a future (``order_answers``); without it, order
status comes from a probe (``status_probes``) and open orders from the
orders this connector saw acknowledged and not finished. TrueX's FIX API has
no balance or fill-history query.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import quickfix as fix

from connectors.truex import builders
from connectors.truex.client_app import OE
from connectors.truex.config import TrueXConfig
from connectors.truex.ids import IdGenerator
from connectors.truex.order_entry import _OrderInfo
from connectors.truex.session import now_ns
from mmkit.connector import NotConnectedError, OrderNotFoundError, TransientVenueError, VenueRules
from mmkit.model import (
    Balance,
    Fill,
    OrderNotFound,
    OrderStatusReport,
    Side,
    VenueOrderStatus,
)


class StatusQueries:
    """Awaitable status and open-order queries (see the module docstring)."""

    _config: TrueXConfig
    _ids: IdGenerator
    _logged_on: dict[str, bool]
    _mass_waiters: dict[str, tuple[asyncio.Future[list[OrderStatusReport]], list[OrderStatusReport]]]
    _orders: dict[str, _OrderInfo]
    _probes: dict[str, tuple[str, asyncio.Future[OrderStatusReport | OrderNotFound] | None]]
    _rules: VenueRules
    _status_waiters: dict[str, tuple[str, asyncio.Future[OrderStatusReport | OrderNotFound]]]

    if TYPE_CHECKING:  # provided by TrueXConnector and its other mixins; for the type checker only

        @property
        def venue(self) -> str: ...

        def _send(self, kind: str, message: fix.Message, msg_type: str) -> bool: ...

        def _probe(
            self, client_id: str, symbol: str, future: asyncio.Future[OrderStatusReport | OrderNotFound] | None
        ) -> bool: ...

    async def fetch_order_status(self, client_id: str, symbol: str) -> OrderStatusReport:
        loop = asyncio.get_running_loop()
        if not self._config.status_requests:
            return await self._fetch_by_probe(client_id, symbol)
        info = self._orders.get(client_id)
        request_id = self._ids.next("s")
        future: asyncio.Future[OrderStatusReport | OrderNotFound] = loop.create_future()
        self._status_waiters[request_id] = (client_id, future)
        message = builders.order_status_request(
            client_id,
            info.side if info else Side.BUY,
            self._rules.venue_symbol(symbol),
            request_id,
            self._config.party_id,
        )
        if not self._send(OE, message, "H"):
            self._status_waiters.pop(request_id, None)
            raise NotConnectedError("OE session down")
        try:
            result = await asyncio.wait_for(future, timeout=float(self._config.request_timeout_s))
        except TimeoutError:
            self._status_waiters.pop(request_id, None)
            raise TransientVenueError(f"no status answer for {client_id} in time") from None
        if isinstance(result, OrderNotFound):
            raise OrderNotFoundError(client_id)
        return result

    async def _fetch_by_probe(self, client_id: str, symbol: str) -> OrderStatusReport:
        future: asyncio.Future[OrderStatusReport | OrderNotFound] = asyncio.get_running_loop().create_future()
        if not self._probe(client_id, symbol, future):
            raise NotConnectedError("OE session down")
        try:
            result = await asyncio.wait_for(future, timeout=float(self._config.request_timeout_s))
        except TimeoutError:
            for probe_id, (_, waiting) in list(self._probes.items()):
                if waiting is future:
                    del self._probes[probe_id]
            raise TransientVenueError(f"no answer to the status probe of {client_id} in time") from None
        if isinstance(result, OrderNotFound):
            raise OrderNotFoundError(client_id)
        return result

    def _own_open_orders(self, symbol: str | None) -> list[OrderStatusReport]:
        """Without 35=AF: the orders this connector saw acknowledged and not finished (module docstring)."""
        venue_symbol = None if symbol is None else self._rules.venue_symbol(symbol)
        ts = now_ns()
        return [
            OrderStatusReport(
                self.venue, client_id, "", info.symbol, info.side, info.price, info.qty, info.cum_qty,
                VenueOrderStatus.PARTIALLY_FILLED if info.cum_qty > 0 else VenueOrderStatus.NEW, ts, ts,
            )
            for client_id, info in self._orders.items()
            if venue_symbol is None or info.symbol == venue_symbol
        ]

    async def fetch_open_orders(self, symbol: str | None = None) -> list[OrderStatusReport]:
        loop = asyncio.get_running_loop()
        if not self._config.status_requests:
            if not self._logged_on[OE]:
                raise NotConnectedError("OE session down")
            return self._own_open_orders(symbol)
        request_id = self._ids.next("m")
        future: asyncio.Future[list[OrderStatusReport]] = loop.create_future()
        self._mass_waiters[request_id] = (future, [])
        venue_symbol = None if symbol is None else self._rules.venue_symbol(symbol)
        if not self._send(
            OE, builders.order_mass_status_request(request_id, venue_symbol, self._config.party_id), "AF"
        ):
            self._mass_waiters.pop(request_id, None)
            raise NotConnectedError("OE session down")
        try:
            reports = await asyncio.wait_for(future, timeout=float(self._config.request_timeout_s))
        except TimeoutError:
            self._mass_waiters.pop(request_id, None)
            raise TransientVenueError("no mass status answer in time") from None
        return [r for r in reports if r.status.is_open]

    async def fetch_balances(self) -> list[Balance]:
        """TrueX's FIX API has no balance query; balances come from the desk's own ledger."""
        return []

    async def fetch_fills(self, symbol: str, since_ns: int) -> list[Fill]:
        """No fill history over FIX (``rules.supports_fill_history`` is False)."""
        return []
