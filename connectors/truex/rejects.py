"""The TrueX reject vocabulary, shared by the client and the local exchange.

Split out of ``messages.py`` by job: ``VenueReject`` is what the simulator
sends (OrdRejReason code and Text) and ``map_reject`` is how the client reads
it back into a ``RejectReason``; keeping both in one module keeps the texts
the simulator sends exactly the texts the client maps.
"""

from __future__ import annotations

import enum

from mmkit.model import RejectReason


class VenueReject(enum.Enum):
    """A TrueX reject: (OrdRejReason 103, text). The text is what the client matches on first."""

    RATE_LIMIT = ("99", "Rate limit exceeded")
    TICK = ("18", "Invalid price increment")
    LOT = ("13", "Invalid quantity increment")
    MIN_NOTIONAL = ("99", "Order notional below minimum")
    PRICE_BAND = ("16", "Price outside price band")
    POST_ONLY = ("99", "Post only order would cross")
    DUPLICATE_ORDER = ("6", "Duplicate order")
    DUPLICATE_CLORDID = ("6", "Duplicate ClOrdID")
    CLORDID_LENGTH = ("99", "Invalid ClOrdID length")
    ORIG_SENDING_TIME = ("99", "Tag 122 OrigSendingTime not supported")
    UNKNOWN_SYMBOL = ("1", "Unknown symbol")
    UNKNOWN_ORDER = ("5", "Unknown order")
    UNSUPPORTED = ("11", "Unsupported order characteristic")

    @property
    def code(self) -> str:
        return self.value[0]

    @property
    def text(self) -> str:
        return self.value[1]


#: Most specific first: matched case-insensitively against Text (58).
_TEXT_REASONS: tuple[tuple[str, RejectReason], ...] = (
    ("rate limit", RejectReason.RATE_LIMIT),
    ("throttl", RejectReason.RATE_LIMIT),
    ("post only", RejectReason.POST_ONLY_WOULD_CROSS),
    ("post-only", RejectReason.POST_ONLY_WOULD_CROSS),
    ("would cross", RejectReason.POST_ONLY_WOULD_CROSS),
    ("notional", RejectReason.MIN_NOTIONAL),
    ("duplicate clordid", RejectReason.DUPLICATE_CLIENT_ID),
    ("clordid", RejectReason.INVALID_CLIENT_ID),
    ("duplicate", RejectReason.DUPLICATE_ORDER),
    ("band", RejectReason.PRICE_BAND),
    ("price increment", RejectReason.INVALID_PRICE),
    ("tick", RejectReason.INVALID_PRICE),
    ("quantity", RejectReason.INVALID_QTY),
    ("insufficient", RejectReason.INSUFFICIENT_FUNDS),
    ("unknown order", RejectReason.UNKNOWN_ORDER),
    ("origsendingtime", RejectReason.INVALID_MESSAGE),
)
_CODE_REASONS = {
    "5": RejectReason.UNKNOWN_ORDER,
    "6": RejectReason.DUPLICATE_ORDER,
    "13": RejectReason.INVALID_QTY,
    "16": RejectReason.PRICE_BAND,
    "18": RejectReason.INVALID_PRICE,
}


def map_reject(code: str | None, text: str | None) -> RejectReason:
    """Normalize a TrueX reject (OrdRejReason/CxlRejReason code and Text) to a RejectReason."""
    lowered = (text or "").lower()
    for needle, reason in _TEXT_REASONS:
        if needle in lowered:
            return reason
    return _CODE_REASONS.get(code or "", RejectReason.OTHER)
