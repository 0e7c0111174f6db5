"""Which Binance market a recording comes from, and how its depth diffs chain: declared, not guessed.

Binance publishes the same ``depthUpdate`` message on three markets whose
sequencing rules differ, and a reader that applies one market's rule to
another silently loses the book (every futures diff looks like a gap under
spot's rule):

==========  ===============  =====================================================================
market      venue (conf)     diff chaining
==========  ===============  =====================================================================
spot        binance          ``U == previous u + 1``; first diff after the snapshot:
                             ``U <= lastUpdateId + 1 <= u``
usdm        binance_usdm     ``pu == previous u``; first diff after the snapshot:
                             ``U <= lastUpdateId <= u``
coinm       binance_coinm    as usdm; sizes are contracts (inverse, e.g. 100 USD for BTCUSD_PERP)
==========  ===============  =====================================================================

The market is read from the data, from the first depth diff of the
recording: a diff with ``pu`` is futures (its ``s`` with ``_`` or a ``ps``
pair field makes it COIN-M, otherwise USD-M), one without is spot. The
symbol is the diff's ``s``. Every later diff must agree (same symbol, ``pu``
present exactly when the market has it), or the reader stops with an error
naming the file and line.

How a futures diff becomes an mmkit :class:`~mmkit.model.BookDelta`:
``first_seq = pu + 1`` and ``seq = u``. The delta then reads "every change
after ``pu`` up to ``u``", which is exactly what ``pu`` promises (no update
of this symbol lies between the previous diff's ``u`` and this diff's
``U``: futures update ids are shared across symbols, so ``U`` is usually far
above ``pu + 1``). With that, the one sequencing rule every mmkit book uses
(:class:`mmkit.book.OrderBookTracker`, :class:`mmkit.backtest.sequencing.BookSequencer`:
``first_seq == previous seq + 1``, first diff ``first_seq <= snapshot + 1 <= seq``)
is the futures rule: ``pu == previous u``, and ``pu <= lastUpdateId < u``
(which admits every diff the documented ``U <= lastUpdateId <= u`` admits,
plus one whose ``U`` lies above the snapshot with nothing in between, which
is also consistent; a diff with ``u == lastUpdateId`` is already in the
snapshot and dropped).
"""

from __future__ import annotations

from typing import Any, Literal

import attrs

MarketName = Literal["spot", "usdm", "coinm"]
Chaining = Literal["U/u", "pu"]


@attrs.frozen
class BinanceMarket:
    """One Binance market's recording semantics and the ``conf/venues/`` file of its rules."""

    name: MarketName
    #: The venue name events carry and the rules file (``conf/venues/<venue>.yml``).
    venue: str
    chaining: Chaining
    #: Sizes are contracts of a fixed quote value, PnL is in the base coin.
    inverse: bool
    description: str


SPOT = BinanceMarket("spot", "binance", "U/u", False, "Binance spot")
USDM = BinanceMarket("usdm", "binance_usdm", "pu", False, "Binance USD-M futures (linear)")
COINM = BinanceMarket("coinm", "binance_coinm", "pu", True, "Binance COIN-M futures (inverse, sized in contracts)")
MARKETS: dict[str, BinanceMarket] = {m.name: m for m in (SPOT, USDM, COINM)}


@attrs.frozen
class RecordedInstrument:
    """What the data says it is: market (with its chaining rule) and symbol."""

    market: BinanceMarket
    symbol: str

    @property
    def venue(self) -> str:
        return self.market.venue


def classify_diff(data: dict[str, Any], stream: str = "") -> RecordedInstrument:
    """The market and symbol of one ``depthUpdate`` payload (the ``data`` object) on ``stream``.

    The symbol is the payload's ``s``, else the stream name's (``btcusdt@depth`` -> BTCUSDT).
    Raises KeyError/ValueError when neither names one.
    """
    symbol = str(data["s"]) if "s" in data else stream.split("@", 1)[0].upper()
    if not symbol:
        raise ValueError("depth diff without a symbol ('s')")
    if "pu" in data:
        market = COINM if ("_" in symbol or "ps" in data) else USDM
    else:
        market = SPOT
    return RecordedInstrument(market, symbol)


__all__ = ["COINM", "MARKETS", "SPOT", "USDM", "BinanceMarket", "RecordedInstrument", "classify_diff"]
