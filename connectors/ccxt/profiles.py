"""What differs between the ccxt venues we use, as data.

The venue *rules* (ticks, lots, fees, rate limits) live in
``conf/venues/<venue>.yml`` like every other venue's. A profile adds what
only the ccxt adapter needs: the ccxt exchange id, the unified ccxt symbol
for each mmkit symbol (ccxt already turns Kraken's XBT into BTC), which
integrity check the book feed carries, and which order types exist.
"""

from __future__ import annotations

import enum
import re
from typing import Any

import attrs

from mmkit.model import RejectReason


class DeadMansSwitch(enum.Enum):
    """What the venue offers to cancel our orders when we stop talking to it."""

    NONE = "NONE"  # nothing: orders rest until cancelled (documented in docs/connectors/ccxt.md)
    KRAKEN_CANCEL_AFTER = "KRAKEN_CANCEL_AFTER"  # CancelAllOrdersAfter(timeout): a countdown we keep pushing back
    GEMINI_HEARTBEAT = "GEMINI_HEARTBEAT"  # /v1/heartbeat on a key with "require heartbeat": 30 s without -> cancel


class SwitchScope(enum.Enum):
    """Whose orders a venue's dead man's switch covers: what two mmkit processes must not share.

    The claim ``mmkit start`` takes (mmkit.app.market_claim) follows it: a switch that covers the whole
    API key is shared by every process on the key, whatever its symbol, so one instance per key.
    """

    #: Every order of the API key, any symbol, any process: one process hanging fires it for all, one
    #: clean stop disarms it for all (Kraken CancelAllOrdersAfter), or one process's refreshes keep a hung
    #: one's orders alive (Gemini's heartbeat session is the API key). One instance per key.
    API_KEY = "API_KEY"
    #: Only the orders of the connection that armed it (a cancel-on-disconnect per session): processes on
    #: one key do not meet through it, so instances on other symbols of the key are allowed.
    SESSION = "SESSION"


class ClientIdLookup(enum.Enum):
    """How an order is found by our client id when we do not know the venue's id (after a lost create answer)."""

    PARAM = "PARAM"  # the status call takes the client id (Kraken cl_ord_id, Gemini client_order_id)
    SCAN = "SCAN"  # list the venue's orders and match the client id (Coinbase has no by-client-id query)


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
    #: The venue's rule for client order ids (mmkit's own are <= 18 alphanumerics).
    client_id_pattern: str = r"[A-Za-z0-9]{1,18}"
    client_id_lookup: ClientIdLookup = ClientIdLookup.PARAM
    #: The venue can change a resting order's price/size in place (Kraken AmendOrder, Coinbase edit).
    replace: bool = False
    #: Pass postOnly again on a replace (Kraken's AmendOrder takes post_only; Coinbase's edit takes no flags).
    replace_post_only_param: bool = False
    #: Texts in a venue's error that mean "no such order" for a status query.
    not_found_texts: tuple[str, ...] = ()
    #: Texts in a venue's error, or in a cancelled order's reason, and the RejectReason they mean.
    reject_texts: tuple[tuple[str, RejectReason], ...] = ()
    dead_mans_switch: DeadMansSwitch = DeadMansSwitch.NONE
    #: Whose orders the switch covers (required when there is a switch: a wrong guess either lets two
    #: instances share one timer or refuses a set-up that is safe).
    dead_mans_switch_scope: SwitchScope | None = attrs.field(default=None)
    #: Send a market buy's size in base explicitly (Coinbase: ccxt would size it in quote).
    market_buy_in_base: bool = False
    #: Channels that must be subscribed for the socket to stay open (Coinbase closes idle sockets).
    heartbeat_channel: str | None = None
    #: ccxt has a sandbox for this venue (kraken and coinbase have none).
    has_sandbox: bool = False
    #: Options merged into the ccxt constructor config.
    ccxt_options: dict[str, Any] = attrs.Factory(dict)

    @dead_mans_switch_scope.validator
    def _scope_declared(self, _attribute: Any, scope: SwitchScope | None) -> None:
        if self.dead_mans_switch is not DeadMansSwitch.NONE and scope is None:
            raise ValueError(f"ccxt profile {self.venue!r}: dead_mans_switch {self.dead_mans_switch.value} needs "
                             f"dead_mans_switch_scope (API_KEY or SESSION: whose orders the venue cancels)")

    def client_id_ok(self, client_id: str) -> bool:
        return re.fullmatch(self.client_id_pattern, client_id) is not None

    def reject_reason_in(self, text: str) -> RejectReason | None:
        """The RejectReason a venue text carries, if it is one we know."""
        for needle, reason in self.reject_texts:
            if needle in text:
                return reason
        return None

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
        # cl_ord_id: "a UUID, or free text of up to 18 characters".
        client_id_pattern=r"[A-Za-z0-9-]{1,18}",
        replace=True,  # AmendOrder: same txid, queue priority kept when only the size shrinks
        replace_post_only_param=True,
        not_found_texts=("Unknown order", "Invalid order"),
        # A post-only order that would take is accepted, then cancelled with this reason.
        reject_texts=(("Post only order", RejectReason.POST_ONLY_WOULD_CROSS),),
        dead_mans_switch=DeadMansSwitch.KRAKEN_CANCEL_AFTER,
        # "cancel all orders after": all of the key's orders, every pair (and a 0 timeout disarms it for all).
        dead_mans_switch_scope=SwitchScope.API_KEY,
    ),
    "coinbase": VenueProfile(
        venue="coinbase",
        ccxt_id="coinbase",  # Advanced Trade API
        symbols={"BTC-USD": "BTC/USD", "BTC-USDT": "BTC/USDT"},
        book_check=BookCheck.COINBASE_SEQUENCE,
        book_depth=None,  # level2 has no depth parameter
        order_types=("limit", "market"),
        heartbeat_channel="heartbeats",
        # ccxt drops a "clientOrderId" param for Coinbase; client_order_id reaches the request.
        client_id_param="client_order_id",
        client_id_pattern=r"[A-Za-z0-9-]{1,64}",
        client_id_lookup=ClientIdLookup.SCAN,
        replace=True,  # POST /orders/edit: price and size of a GTC limit order, same order id
        not_found_texts=("order with this orderID was not found", "ORDER_NOT_FOUND"),
        reject_texts=(
            ("INVALID_LIMIT_PRICE_POST_ONLY", RejectReason.POST_ONLY_WOULD_CROSS),
            ("INSUFFICIENT_FUND", RejectReason.INSUFFICIENT_FUNDS),
        ),
        # ccxt sizes an Advanced Trade market BUY in quote (quote_size = amount with this option off, or
        # amount * price with it on). We size in base, so the connector sends the order configuration
        # itself (market_market_ioc.base_size), which ccxt passes through; the option only stops ccxt
        # from demanding a price first.
        ccxt_options={"options": {"createMarketBuyOrderRequiresPrice": False}},
        market_buy_in_base=True,
    ),
    "gemini": VenueProfile(
        venue="gemini",
        ccxt_id="gemini",
        symbols={"BTCUSD": "BTC/USD"},
        book_check=BookCheck.NONE,  # Gemini v2 market data has no checksum
        book_depth=None,
        order_types=("limit",),  # Gemini has no market orders: use an IOC limit
        client_id_param="client_order_id",
        # "The Client Order ID must be under 100 characters" (Gemini's ClientOrderIdTooLong).
        client_id_pattern=r"[A-Za-z0-9-]{1,99}",
        # A maker-or-cancel order that would take comes back cancelled with this reason.
        reject_texts=(("MakerOrCancelWouldTake", RejectReason.POST_ONLY_WOULD_CROSS),),
        dead_mans_switch=DeadMansSwitch.GEMINI_HEARTBEAT,
        # Gemini's "session" is the API key ("a single account may have multiple API keys provisioned; we
        # refer to these as sessions"): the heartbeat covers all of the key's orders, and the nonce must
        # increase per key, so two processes on one key meet too.
        dead_mans_switch_scope=SwitchScope.API_KEY,
        has_sandbox=True,
        # Gemini asks for no more than 5 private requests a second; ccxt's default spacing allows 10.
        ccxt_options={"rateLimit": 200},
    ),
}


def profile_for(venue: str) -> VenueProfile:
    try:
        return PROFILES[venue]
    except KeyError:
        raise KeyError(f"no ccxt profile for venue {venue!r}; known: {sorted(PROFILES)}") from None
