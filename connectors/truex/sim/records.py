"""What the simulated TrueX exchange is configured with and remembers about each order.

Split out of ``exchange.py`` (which keeps the sessions and order entry) so
that each module has one job: this one holds the plain data.
"""

from __future__ import annotations

from decimal import Decimal

import attrs

from connectors.truex.dictionary import CONF_FIX_DIR
from connectors.truex.signing import DEFAULT_SIGNER
from mmkit.connector import VenueRules, load_venue_rules
from mmkit.model import Side, VenueOrderStatus

OE_COMP_ID = "TRUEX_UAT_OE"
MD_COMP_ID = "TRUEX_UAT_MD"
TAKER_OWNER = "taker:sim"
MAKER_OWNER = "maker:sim"


@attrs.frozen(slots=True)
class ExchangeAccount:
    """A client allowed to log on: its two SenderCompIDs and its API key/secret."""

    oe_comp_id: str
    md_comp_id: str
    api_key: str
    secret: str


@attrs.frozen(slots=True)
class ExchangeConfig:
    oe_port: int
    md_port: int
    accounts: tuple[ExchangeAccount, ...]
    rules: VenueRules = attrs.field(factory=lambda: load_venue_rules("truex"))
    symbol: str = "BTC-PYUSD"
    oe_comp_id: str = OE_COMP_ID
    md_comp_id: str = MD_COMP_ID
    enforce_rate_limits: bool = True
    #: Cancel a client's resting orders when its OE session drops (TrueX does: rules.cancel_on_disconnect).
    cancel_on_disconnect: bool | None = None
    signer: str = DEFAULT_SIGNER
    dictionary_dir: str = str(CONF_FIX_DIR)
    log_messages: bool = False
    #: Append one JSON line per execution of a client order here (flushed per line); None: no log.
    fills_log: str | None = None
    #: TrueX's published order-entry set only (D, F, G answered by 8 and 9): refuse 35=H and 35=AF
    #: with a BusinessMessageReject, as a venue that does not offer them would.
    strict: bool = False
    #: Send fills without Commission(12), so the client must book the fee from the venue's schedule.
    omit_commission: bool = False
    #: Prefix of OrderIDs and ExecIDs; None: derived from the start time, so that ids never repeat
    #: across restarts of the exchange (a client dedupes fills on ExecID). Tests set it to replay
    #: a venue whose counters restart.
    id_epoch: str | None = None
    #: Fault tests only: after each client's first real fill, send one bad trade report of this kind
    #: (connectors/truex/sim/hostile.py). None: an honest venue.
    hostile: str | None = None
    #: Fault tests only: damage each client's first real trade report this way before it is sent
    #: (connectors/truex/sim/tamper.py). None: reports leave as built.
    tamper: str | None = None


@attrs.define(slots=True)
class _Record:
    """The exchange's memory of one ClOrdID (open or not), for status queries."""

    order_id: str
    client_id: str
    owner: str
    side: Side
    price: Decimal
    qty: Decimal
    cum_qty: Decimal
    status: VenueOrderStatus
    #: Sum of price * qty of the executions on this order chain (AvgPx(6) = notional / cum_qty).
    notional: Decimal = Decimal(0)


@attrs.define(slots=True)
class ExchangeStats:
    orders: int = 0
    rejects: dict[str, int] = attrs.Factory(dict)
    fills: int = 0
    md_messages: int = 0
    bad_logons: int = 0


def _owner(comp_id: str) -> str:
    return f"client:{comp_id}"
