"""The order lifecycle's hot-path shortcuts must give what the long way gives (issue 16).

Each shortcut leans on a fact that a later change could break without any
other test noticing; these tests state the facts and compare the results:

* ``ClientOrder.apply`` inlines :func:`next_state` (the table lookup and the
  OPEN -> PARTIALLY_FILLED rule);
* ``ClientOrderTracker.replace`` skips ``_file`` because REPLACE_SUBMITTED from
  OPEN / PARTIALLY_FILLED never finishes an order;
* ``submit`` and ``replace`` build ``ClientOrder`` positionally, spelling out
  the defaults: a field added or moved in ``ClientOrder`` must not shift them.
"""

from __future__ import annotations

from decimal import Decimal

import attrs
import pytest

from mmkit.model import OrderAccepted, OrderRequest, Side
from mmkit.orders.client_order import ClientOrder
from mmkit.orders.states import (
    DONE_STATES,
    TRANSITIONS,
    IllegalTransition,
    OrderState,
    Trigger,
    next_state,
)
from mmkit.orders.tracker import ClientOrderTracker
from mmkit.testing.fake_connector import FakeConnector

D = Decimal


def _request(client_id: str = "c1", qty: str = "1") -> OrderRequest:
    return OrderRequest(client_id, "sim", "BTC-PYUSD", Side.BUY, D(qty), D("100"))


@pytest.mark.parametrize("filled", ["0", "0.4"])
@pytest.mark.parametrize("trigger", list(Trigger))
@pytest.mark.parametrize("state", list(OrderState))
def test_apply_moves_as_next_state_says(state: OrderState, trigger: Trigger, filled: str) -> None:
    order = ClientOrder(_request(), state=state, filled_qty=D(filled), updated_ns=5, query_attempts=3, next_query_ns=9)
    try:
        want = next_state(state, trigger, D(filled) > 0, "c1")
    except IllegalTransition as exc:
        with pytest.raises(IllegalTransition) as raised:
            order.apply(trigger, 100)
        assert str(raised.value) == str(exc)
        assert (order.state, order.updated_ns, order.query_attempts) == (state, 5, 3)  # unchanged
        return
    assert order.apply(trigger, 100) is want
    assert order.state is want
    if want is state:
        assert (order.updated_ns, order.query_attempts, order.next_query_ns) == (5, 3, 9)
    else:
        assert (order.updated_ns, order.query_attempts, order.next_query_ns) == (100, 0, 0)


@pytest.mark.parametrize("state", [OrderState.OPEN, OrderState.PARTIALLY_FILLED])
def test_replace_submitted_never_finishes_an_order(state: OrderState) -> None:
    # What lets ClientOrderTracker.replace skip _file: the original stays in the active map.
    assert TRANSITIONS[(state, Trigger.REPLACE_SUBMITTED)] not in DONE_STATES


def _replace_once(fake: FakeConnector, tracker: ClientOrderTracker) -> tuple[ClientOrder, ClientOrder]:
    orig = tracker.submit(_request("c1"), now_ns=10, slot=(Side.BUY, 2))
    tracker.on_event(OrderAccepted("sim", "c1", "V1", 11, 11))
    new = tracker.replace("c1", D("101"), D("0.5"), now_ns=20, new_client_id="c2")
    assert new is not None
    return orig, new


def test_replace_keeps_the_original_active_and_pending(fake: FakeConnector, tracker: ClientOrderTracker) -> None:
    orig, _new = _replace_once(fake, tracker)
    assert orig.state is OrderState.PENDING_REPLACE
    assert orig.replaced_by == "c2"
    assert [o.client_id for o in tracker.open_orders()] == ["c1", "c2"]
    assert tracker.finished_orders() == []


def test_positional_client_orders_equal_the_keyword_ones(fake: FakeConnector, tracker: ClientOrderTracker) -> None:
    orig, new = _replace_once(fake, tracker)
    want_orig = ClientOrder(orig.request, slot=(Side.BUY, 2), created_ns=10, updated_ns=10)
    want_new = ClientOrder(new.request, slot=(Side.BUY, 2), created_ns=20, updated_ns=20, replaces="c1")
    # The original has since been accepted and replaced: compare what submit() built, field by field.
    built_orig = attrs.asdict(orig, recurse=False)
    built_orig.update(state=OrderState.PENDING_CREATE, venue_order_id="", updated_ns=10, replaced_by=None)
    assert built_orig == attrs.asdict(want_orig, recurse=False)
    assert attrs.asdict(new, recurse=False) == attrs.asdict(want_new, recurse=False)
    assert new.request == OrderRequest("c2", "sim", "BTC-PYUSD", Side.BUY, D("0.5"), D("101"), ts_created=20)


def test_submit_refuses_an_id_already_tracked_active_or_finished(
    fake: FakeConnector, tracker: ClientOrderTracker
) -> None:
    tracker.submit(_request("c1"))
    with pytest.raises(ValueError, match="c1 is already tracked"):
        tracker.submit(_request("c1"))
    tracker.on_event(OrderAccepted("sim", "c1", "V1", 1, 1))
    tracker.cancel("c1")
    fake.confirm_cancel("c1")
    tracker.on_events(fake.drain())
    assert tracker.open_orders() == [] and tracker.get("c1") is not None  # finished, still remembered
    with pytest.raises(ValueError, match="c1 is already tracked"):
        tracker.submit(_request("c1"))
