"""Keep the worst case of the resting orders within the position limit.

Why: a strategy that stops quoting the accumulating side only once the
position *reached* max_position still has orders resting on that side, and
those fill too: the shipped layered and demo strategies ended beyond the
limit by about one resting order. The only bound that holds whatever the
market does is on the worst case: the position plus every resting buy (all
filled) must stay at or below ``+max_position``, and the position minus
every resting sell at or above ``-max_position``.

What counts as resting on a side: every open order of ours, whatever its
state (one being canceled can still fill until the venue confirms), with its
remaining size; an order being replaced counts with its old remaining *plus*
its new size (a replace asks for an open quantity: what the old order fills
while the replace is in flight comes on top). Within the room left:

* replaces and places are taken innermost level first, each cut down to the
  lot so that it fits, and dropped when what fits is not a valid order;
* when the orders already resting exceed the room (the position moved
  towards the limit: a fill, a hedge, a lower limit), the outermost ones are
  canceled until the rest fits.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import attrs

from mmkit.instrument import Instrument
from mmkit.model import ZERO, Side, TargetQuote
from mmkit.orders.client_order import ClientOrder
from mmkit.orders.states import PENDING_STATES


@attrs.frozen
class BoundedActions:
    """The replaces and places that fit, and how many targets were cut or dropped."""

    replaces: list[tuple[ClientOrder, TargetQuote]]
    places: list[TargetQuote]
    limited: int


def _remaining(order: ClientOrder) -> Decimal:
    return max(order.request.qty - order.filled_qty, ZERO)


def _level(order: ClientOrder) -> int:
    return order.slot[1] if order.slot is not None else 1 << 30  # a stray counts as the outermost


def far_from_limit(
    open_orders: Sequence[ClientOrder],
    position: Decimal,
    max_position: Decimal,
    replaces: list[tuple[ClientOrder, TargetQuote]],
    places: list[TargetQuote],
) -> bool:
    """True when :func:`bound_exposure` has nothing to cut or cancel: one sum bounds both sides' worst case.

    Every resting order's remaining size plus every new size, on either side, is an upper bound of
    each side's worst case; when it fits in the room the position leaves on its tighter side, both fit.
    The executor asks this first (the usual case) and calls :func:`bound_exposure` only when it is False.
    """
    total = ZERO
    for live in open_orders:  # _remaining() inlined; a zero left adds ZERO (the sum is only compared)
        left = live.request.qty - live.filled_qty
        if left > ZERO:
            total += left
    for target in places:
        total += target.qty
    for _, target in replaces:
        total += target.qty
    return total <= max_position - abs(position)


def bound_exposure(
    instrument: Instrument,
    open_orders: Sequence[ClientOrder],
    position: Decimal,
    max_position: Decimal,
    cancels: list[ClientOrder],
    replaces: list[tuple[ClientOrder, TargetQuote]],
    places: list[TargetQuote],
) -> BoundedActions:
    """Cut ``replaces``/``places`` to the room each side has; append to ``cancels`` what must go.

    Runs on every reconcile that acts (``bench/bench_backtest.py``): the usual case, far from the
    limit, is settled by one sum over both sides (an upper bound of either side's worst case).
    """
    if far_from_limit(open_orders, position, max_position, replaces, places):
        return BoundedActions(replaces, places, 0)
    replaced = {id(order) for order, _ in replaces} if replaces else set()
    by_side: dict[Side, list[ClientOrder]] = {Side.BUY: [], Side.SELL: []}
    sums = {Side.BUY: ZERO, Side.SELL: ZERO}
    for live in open_orders:
        if id(live) in replaced:
            continue
        by_side[live.side].append(live)
        sums[live.side] += _remaining(live)
    acting = {target.side for target in places} | {target.side for _, target in replaces}
    kept_replaces: list[tuple[ClientOrder, TargetQuote]] = []
    kept_places: list[TargetQuote] = []
    limited = 0
    for side in (Side.BUY, Side.SELL):
        room = max(max_position - position if side is Side.BUY else max_position + position, ZERO)
        resting = by_side[side]
        committed = sums[side]
        if side not in acting and committed <= room:
            continue
        if committed > room:
            # Cancel the outermost resting orders until what stays fits. Those being canceled still
            # count in ``committed`` (they can fill until the venue confirms), so nothing new is
            # placed on this side before the cancels are confirmed.
            canceling = {id(o) for o in cancels}
            staying = committed
            for rest in sorted(resting, key=_level, reverse=True):
                if staying <= room:
                    break
                if id(rest) not in canceling and rest.state not in PENDING_STATES:  # in flight: next time
                    cancels.append(rest)
                    canceling.add(id(rest))
                staying -= _remaining(rest)
        actions: list[tuple[int, ClientOrder | None, TargetQuote]] = [
            (target.level, order, target) for order, target in replaces if target.side is side
        ]
        actions += [(target.level, None, target) for target in places if target.side is side]
        actions.sort(key=lambda item: (item[0], item[1] is None))
        for _level_no, order, asked in actions:
            target = asked
            # A replace asks for ``qty`` open: what the old order fills before it lands comes on top.
            left = room - committed - (ZERO if order is None else _remaining(order))
            qty = target.qty
            if qty > left:
                limited += 1
                qty = instrument.round_qty(max(left, ZERO), target.price)
                if qty <= ZERO or instrument.check_order(target.price, qty) is not None:
                    if order is not None:
                        cancels.append(order)  # the new size does not fit: pull the order instead
                        committed += _remaining(order)  # ... which can still fill until the cancel lands
                    continue
                target = TargetQuote(target.side, target.level, target.price, qty)
            if order is None:
                kept_places.append(target)
                committed += qty
            else:
                kept_replaces.append((order, target))
                committed += qty + _remaining(order)
    return BoundedActions(kept_replaces, kept_places, limited)


__all__ = ["BoundedActions", "bound_exposure", "far_from_limit"]
