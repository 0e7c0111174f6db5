"""What a print, or the recorded book, moving through the price of a resting order of ours fills.

A recorded sell printed below our bid (a buy above our offer), or a recorded
best offer moving below our bid, says that someone sold through our price:
had our order been there, it would have traded first. How much it would have
traded is the question, and there are two answers (``through_fill``):

* ``"tape"`` (the default): no more than the tape shows. A print through our
  price fills at most its own quantity, shared by every order of ours it
  reaches (best price first, then in the order they arrived, and only then
  those at the print's own price, after their queue). A book crossing our
  price fills at most what it displays through our price, less what our
  orders took there already (:class:`~mmkit.sim.taken_liquidity.TakenLiquidity`
  keeps it until the recording lists that level again).
* ``"whole"``: the whole order, whatever size traded: hftbacktest's
  convention (its ``NoPartialFillExchange`` and ``PartialFillExchange``
  both fill an order completely when a trade prints through its price or
  the opposite best crosses it), kept for cross-checks against it
  (``bench/validate_hftbacktest.py``, ``bench/compare_anchors.py``).

Why "tape" is the default: on the shared Binance recording the anchors
maker (0.01 BTC a side) had 175 fills from prints through its price, and
134 of them were larger than the print that made them; over the run, a
quarter of its volume (2.39 against 1.80 BTC) was volume no recorded trade
could have given it (docs/backtesting.md, "Fill assumptions").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, TypeVar

from mmkit.model import Side

ThroughFill = Literal["tape", "whole"]
THROUGH_FILLS: tuple[ThroughFill, ...] = ("tape", "whole")

#: The printed report's line for each rule (the report states the rule it assumed: ``report["through_fill"]``).
THROUGH_FILL_LINES: dict[str, str] = {
    "tape": "tape: a print or book through our price fills no more than it traded or offered",
    "whole": "whole: a print or book through our price fills the whole order, whatever traded "
             "(hftbacktest's convention; optimistic for orders larger than the prints)",
}

_Q = TypeVar("_Q")


def by_price_priority(resting: Sequence[_Q]) -> list[_Q]:
    """Our resting orders (``.rec.side``, ``.rec.price``) best price first per side, ties in the given order.

    Bids highest first, offers lowest first: the order a seller (a buyer) sweeping through them meets them.
    """
    def key(queued: Any) -> Any:
        rec = queued.rec
        price = rec.price if rec.price is not None else 0  # (a resting order always has a price)
        return -price if rec.side is Side.BUY else price

    return sorted(resting, key=key)
