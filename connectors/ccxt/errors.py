"""ccxt exceptions -> mmkit's two kinds of failure.

The one rule that matters (Hummingbot #8457): a network error must never be
read as "the order is gone". ccxt's hierarchy already separates venue answers
(``ExchangeError`` subclasses) from transport trouble (``NetworkError``), but
some answers need care: ``RateLimitExceeded`` and ``DDoSProtection`` are
*network* errors in ccxt and call for backoff, and ``OrderNotFound`` is
definitive only for a status query, not for a cancel that raced a fill.
"""

from __future__ import annotations

import enum

import attrs

from connectors.ccxt.lazy import ccxt_errors
from mmkit.model import RejectReason

#: ccxt's exception classes, without importing its exchanges (connectors.ccxt.lazy).
ccxt_exc = ccxt_errors()


class ErrorKind(enum.Enum):
    DEFINITIVE = "DEFINITIVE"  # the venue answered: act on it
    TRANSIENT = "TRANSIENT"  # we could not ask: retry later, state unknown
    BACKOFF = "BACKOFF"  # transient and the venue wants us to slow down


@attrs.frozen(slots=True)
class ClassifiedError:
    kind: ErrorKind
    reason: RejectReason
    message: str

    @property
    def definitive(self) -> bool:
        return self.kind is ErrorKind.DEFINITIVE


# Order matters: subclasses before their bases (OrderNotFound is an InvalidOrder,
# RateLimitExceeded is a DDoSProtection is a NetworkError).
_TABLE: tuple[tuple[type[BaseException], ErrorKind, RejectReason], ...] = (
    (ccxt_exc.RateLimitExceeded, ErrorKind.BACKOFF, RejectReason.RATE_LIMIT),
    (ccxt_exc.DDoSProtection, ErrorKind.BACKOFF, RejectReason.RATE_LIMIT),
    (ccxt_exc.RequestTimeout, ErrorKind.TRANSIENT, RejectReason.OTHER),
    (ccxt_exc.ExchangeNotAvailable, ErrorKind.TRANSIENT, RejectReason.OTHER),
    (ccxt_exc.InvalidNonce, ErrorKind.TRANSIENT, RejectReason.OTHER),
    (ccxt_exc.NetworkError, ErrorKind.TRANSIENT, RejectReason.OTHER),
    (ccxt_exc.OrderNotFound, ErrorKind.DEFINITIVE, RejectReason.UNKNOWN_ORDER),
    (ccxt_exc.OrderImmediatelyFillable, ErrorKind.DEFINITIVE, RejectReason.POST_ONLY_WOULD_CROSS),
    (ccxt_exc.DuplicateOrderId, ErrorKind.DEFINITIVE, RejectReason.DUPLICATE_CLIENT_ID),
    (ccxt_exc.InsufficientFunds, ErrorKind.DEFINITIVE, RejectReason.INSUFFICIENT_FUNDS),
    (ccxt_exc.InvalidOrder, ErrorKind.DEFINITIVE, RejectReason.OTHER),
    (ccxt_exc.BadSymbol, ErrorKind.DEFINITIVE, RejectReason.INVALID_MESSAGE),
    (ccxt_exc.BadRequest, ErrorKind.DEFINITIVE, RejectReason.INVALID_MESSAGE),
    (ccxt_exc.AuthenticationError, ErrorKind.DEFINITIVE, RejectReason.OTHER),
    (ccxt_exc.ExchangeError, ErrorKind.DEFINITIVE, RejectReason.OTHER),
)


def classify(exc: BaseException, texts: tuple[tuple[str, RejectReason], ...] = ()) -> ClassifiedError:
    """Map any exception raised by a ccxt call to what the engine should do about it.

    Anything that is not a ccxt exception (a bug, a parse failure, a
    cancelled socket) is TRANSIENT: we do not know what the venue did.
    ``texts`` are a venue's own error words that ccxt leaves as a generic
    ExchangeError (Coinbase's INVALID_LIMIT_PRICE_POST_ONLY): a venue answer
    carrying one is a definitive reject with that reason.
    """
    if isinstance(exc, ccxt_exc.ExchangeError) and not isinstance(exc, ccxt_exc.NetworkError):
        message = str(exc)
        for needle, reason in texts:
            if needle in message:
                return ClassifiedError(ErrorKind.DEFINITIVE, reason, f"{type(exc).__name__}: {exc}")
    for cls, kind, reason in _TABLE:
        if isinstance(exc, cls):
            return ClassifiedError(kind, reason, f"{type(exc).__name__}: {exc}")
    return ClassifiedError(ErrorKind.TRANSIENT, RejectReason.OTHER, f"{type(exc).__name__}: {exc}")
