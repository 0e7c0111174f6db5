"""TrueXConnector's market-data subscriptions: 35=V for the book (and trades), and resync requests.

A mixin of :class:`connectors.truex.connector.TrueXConnector` (split out of
``connector.py`` by job). Subscriptions are remembered so that every MD
logon asks for them again; a resync after a sequence gap is a new 35=V.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import quickfix as fix

from connectors.truex import builders
from connectors.truex.client_app import MD
from connectors.truex.ids import IdGenerator
from mmkit.connector import VenueRules

if TYPE_CHECKING:
    from loguru import Logger



class MarketDataSubscriptions:
    """Market-data subscriptions of the TrueX connector (see the module docstring)."""

    _ids: IdGenerator
    _log: Logger
    _logged_on: dict[str, bool]
    _md_symbols: set[str]
    _md_req_ids: set[str]
    _rules: VenueRules
    _trade_symbols: set[str]

    if TYPE_CHECKING:  # provided by TrueXConnector and its other mixins; for the type checker only

        def _send(self, kind: str, message: fix.Message, msg_type: str) -> bool: ...

    def subscribe_book(self, symbol: str) -> None:
        venue_symbol = self._rules.venue_symbol(symbol)
        new = venue_symbol not in self._md_symbols
        self._md_symbols.add(venue_symbol)
        if new and self._logged_on[MD]:
            self._send_md_request(venue_symbol)

    def subscribe_trades(self, symbol: str) -> None:
        venue_symbol = self._rules.venue_symbol(symbol)
        self._trade_symbols.add(venue_symbol)
        self.subscribe_book(symbol)

    def request_resync(self, symbol: str) -> None:
        """Ask for a fresh snapshot (a new 35=V) after the book tracker saw a gap."""
        self._send_md_request(self._rules.venue_symbol(symbol))

    def _send_md_request(self, symbol: str) -> None:
        request_id = self._ids.next("v")
        self._md_req_ids.add(request_id)  # a few per MD logon or resync: never pruned
        if not self._send(MD, builders.market_data_request(request_id, symbol), "V"):
            self._log.warning("market data request for {} not sent: MD session down", symbol)
