"""Is what came back the venue's answer about our order? Checked before anything is made of it.

Why a module of its own: ccxt parses whatever a 200 carries. A proxy's HTML error
page, an empty or cut body, or JSON of the wrong shape becomes an order with id
``None``, no status and no figures, or (Kraken's ``fetchOrder``) ccxt's own
``OrderNotFound``. Taken as an answer, that was an order "accepted as None" while
the real one rested at the venue untracked, or "not found", which closes an order
that rests. Such an answer tells nothing about the order: it is "could not ask"
(TRANSIENT: ``classify`` maps :class:`MalformedAnswer` so, not being a ccxt error),
logged at ERROR and counted (``malformed_answers``), and the order is asked about
again (by client id when its venue id is not known).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from connectors.ccxt.convert import _STATUS, _dec


class MalformedAnswer(ValueError):
    """What came back is not the venue's answer about the order asked after: it says nothing about it."""


#: Figures of an order answer that must be finite and not negative where given.
_FIGURES = ("amount", "filled", "price", "remaining")


def order_answer(raw: Any, what: str, *, venue_order_id: str | None = None, client_id: str | None = None) -> Any:
    """``raw`` if it is an order answer about the order asked after, else :class:`MalformedAnswer` naming why.

    ``venue_order_id`` / ``client_id``: what we asked about (None: not known); an answer
    about another order is no answer. A status word ccxt does not know would be taken
    for a terminal state (the order no longer polled, no event): refused too.
    """
    if not isinstance(raw, dict):
        raise MalformedAnswer(f"{what}: not an order but {type(raw).__name__} {str(raw)[:80]!r}")
    order_id = raw.get("id")
    if isinstance(order_id, bool) or not isinstance(order_id, str | int) or str(order_id).strip() in ("", "None"):
        raise MalformedAnswer(f"{what}: no order id in the answer (info: {str(raw.get('info'))[:120]!r})")
    if venue_order_id is not None and str(order_id) != venue_order_id:
        raise MalformedAnswer(f"{what}: the answer is about order {order_id}, not {venue_order_id}")
    theirs = raw.get("clientOrderId")
    if client_id is not None and isinstance(theirs, str) and theirs and theirs != client_id:
        raise MalformedAnswer(f"{what}: the answer is about client id {theirs!r}, not {client_id!r}")
    for key in _FIGURES:
        value = raw.get(key)
        if value is None:
            continue
        try:
            number = _dec(value) if not isinstance(value, bool) else Decimal("NaN")
        except (InvalidOperation, ValueError, TypeError):
            number = Decimal("NaN")
        if not number.is_finite() or number < 0:
            raise MalformedAnswer(f"{what}: order {order_id}: {key} {value!r} is not a quantity")
    status = raw.get("status")
    if status is not None and status not in _STATUS:
        raise MalformedAnswer(f"{what}: order {order_id}: unknown status {status!r}")
    return raw


def cancel_answer(raw: Any, what: str) -> Any:
    """``raw`` if the venue's JSON came back (ccxt's ``info``), else :class:`MalformedAnswer`.

    ccxt's Kraken ``cancelOrder`` wraps any 200 body as ``{"info": body}``: an HTML page
    read as "cancelled" would drop an order that may still rest.
    """
    if not isinstance(raw, dict) or not isinstance(raw.get("info"), dict | list):
        info = raw.get("info") if isinstance(raw, dict) else raw
        raise MalformedAnswer(f"{what}: not the venue's answer: {type(info).__name__} {str(info)[:80]!r}")
    return raw


def parse_failed(exc: BaseException, what: str) -> MalformedAnswer:
    """ccxt's parse choked on the body (a Python error raised inside the call): the answer was no answer."""
    return MalformedAnswer(f"{what}: ccxt could not parse the answer: {type(exc).__name__}: {exc}")


def as_malformed(exc: BaseException, what: str) -> BaseException:
    """``exc`` as a MalformedAnswer when ccxt's parse choked on the body (a Python error), else itself."""
    if isinstance(exc, MalformedAnswer) or not isinstance(exc, ArithmeticError | KeyError | TypeError | ValueError):
        return exc
    return parse_failed(exc, what)


def trade_on_other_market(trade: Any, order_market: str) -> MalformedAnswer | None:
    """A trade of our order that names another market than the order's (a fill we would book on the wrong book)."""
    market = trade.get("symbol") if isinstance(trade, dict) else None
    if market is not None and market != order_market:
        return MalformedAnswer(f"trade {trade.get('id')} of an order on {order_market} says it traded on {market}")
    return None


def balance_answer(raw: Any) -> Any:
    """``raw`` if the venue's JSON came back, else MalformedAnswer: ccxt parses a proxy's page into no balances
    at all, which a balance view takes for an account holding nothing."""
    if not isinstance(raw, dict) or not isinstance(raw.get("info"), dict | list):
        info = raw.get("info") if isinstance(raw, dict) else raw
        raise MalformedAnswer(f"fetch_balance: not the venue's answer: {type(info).__name__} {str(info)[:80]!r}")
    return raw


def venue_error_in(last_json: Any) -> bool:
    """Whether the last parsed answer carried the venue's own error words (Kraken: a non-empty ``error`` list).

    ccxt's Kraken ``fetchOrder`` raises ``OrderNotFound`` itself when the answer lacks the
    order: the venue's real "unknown order" comes as an error; without one it was no answer.
    """
    return isinstance(last_json, dict) and bool(last_json.get("error"))


class MalformedAnswers:
    """The count of answers that were not answers, and the ERROR log line once per distinct fault."""

    def __init__(self) -> None:
        self.count = 0
        self._told: set[str] = set()

    def note(self, log: Any, exc: MalformedAnswer, client_id: str = "") -> None:
        self.count += 1
        text = str(exc)
        if text in self._told:
            log.bind(client_id=client_id).debug("malformed venue answer again ({}): {}", self.count, text)
            return
        if len(self._told) < 1000:
            self._told.add(text)
        log.bind(client_id=client_id).error(
            "MALFORMED VENUE ANSWER, taken as no answer: {}; {} so far", text, self.count)
