"""What differs between the ccxt venues we use, as data.

The venue *rules* (ticks, lots, fees, rate limits) live in
``conf/venues/<venue>.yml`` like every other venue's. A profile adds what
only the ccxt adapter needs: the ccxt exchange id, the unified ccxt symbol
for each mmkit symbol (ccxt already turns Kraken's XBT into BTC), which
integrity check the book feed carries, and which order types exist.
"""

from __future__ import annotations

import enum
from typing import Any

import attrs


class BookCheck(enum.Enum):
    NONE = "NONE"
    KRAKEN_CRC32 = "KRAKEN_CRC32"  # CRC32 of the top 10 levels in every book message
    COINBASE_SEQUENCE = "COINBASE_SEQUENCE"  # sequence_num per connection, no gaps allowed


@attrs.frozen(slots=True)
class VenueProfile:
    """ccxt-specific facts about one venue."""

    venue: str
    ccxt_id: str
    #: mmkit symbol -> ccxt unified symbol.
    symbols: dict[str, str]
    book_check: BookCheck = BookCheck.NONE
    #: Depth to subscribe with (Kraken accepts 10, 25, 100, 500, 1000).
    book_depth: int | None = 10
    order_types: tuple[str, ...] = ("limit", "market")
    #: ccxt params name for our client order id on create/fetch/cancel.
    client_id_param: str = "clientOrderId"
    #: Channels that must be subscribed for the socket to stay open (Coinbase closes idle sockets).
    heartbeat_channel: str | None = None
    #: ccxt has a sandbox for this venue (kraken and coinbase have none).
    has_sandbox: bool = False
    #: Options merged into the ccxt constructor config.
    ccxt_options: dict[str, Any] = attrs.Factory(dict)

    def ccxt_symbol(self, symbol: str) -> str:
        try:
            return self.symbols[symbol]
        except KeyError:
            raise KeyError(f"{self.venue}: no ccxt symbol for {symbol!r}") from None

    def mmkit_symbol(self, ccxt_symbol: str) -> str:
        for ours, theirs in self.symbols.items():
            if theirs == ccxt_symbol:
                return ours
        raise KeyError(f"{self.venue}: no mmkit symbol for ccxt symbol {ccxt_symbol!r}")


PROFILES: dict[str, VenueProfile] = {
    "kraken": VenueProfile(
        venue="kraken",
        ccxt_id="kraken",
        # Kraken's own pair names are XXBTZUSD (REST) and XBT/USD (ws v1), BTC/USD (ws v2);
        # ccxt's unified symbol is BTC/USD for all of them.
        symbols={"BTC/USD": "BTC/USD", "BTC/USDT": "BTC/USDT"},
        book_check=BookCheck.KRAKEN_CRC32,
        book_depth=10,
        order_types=("limit", "market"),
    ),
    "coinbase": VenueProfile(
        venue="coinbase",
        ccxt_id="coinbase",  # Advanced Trade API
        symbols={"BTC-USD": "BTC/USD", "BTC-USDT": "BTC/USDT"},
        book_check=BookCheck.COINBASE_SEQUENCE,
        book_depth=None,  # level2 has no depth parameter
        order_types=("limit", "market"),
        heartbeat_channel="heartbeats",
        # Advanced Trade market buys are sized in quote by default; we size in base.
        ccxt_options={"options": {"createMarketBuyOrderRequiresPrice": False}},
    ),
    "gemini": VenueProfile(
        venue="gemini",
        ccxt_id="gemini",
        symbols={"BTCUSD": "BTC/USD"},
        book_check=BookCheck.NONE,  # Gemini v2 market data has no checksum
        book_depth=None,
        order_types=("limit",),  # Gemini has no market orders: use an IOC limit
        has_sandbox=True,
    ),
}


def profile_for(venue: str) -> VenueProfile:
    try:
        return PROFILES[venue]
    except KeyError:
        raise KeyError(f"no ccxt profile for venue {venue!r}; known: {sorted(PROFILES)}") from None
