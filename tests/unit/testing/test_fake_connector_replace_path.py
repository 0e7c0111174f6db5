"""FakeConnector.replace asks its checks in one expression for the usual case; every other case must end
exactly as :meth:`FakeConnector._check_replace` decides (issue 16: the decision bench's connector cost)."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import attrs
import pytest

from mmkit.connector import load_venue_rules
from mmkit.model import OrderCancelRejected, OrderReplaced, OrderRequest, RejectReason, ReplaceRequest, Side
from mmkit.testing.fake_connector import FakeConnector

D = Decimal
SYM = "BTC-PYUSD"


def _fake(validate: bool, supports_replace: bool = True) -> FakeConnector:
    rules = attrs.evolve(load_venue_rules("sim"), supports_replace=supports_replace)
    fake = FakeConnector(rules, validate=validate)
    fake.place(OrderRequest("a", "sim", SYM, Side.BUY, D("0.01"), D("60000.0")))
    fake.place(OrderRequest("b", "sim", SYM, Side.BUY, D("0.01"), D("59990.0")))
    fake.drain()
    return fake


#: Each case scripts the fake before the replace of "a" by "a2" (or of the id named in the request).
CASES: dict[str, Callable[[FakeConnector], None]] = {
    "usual": lambda fake: None,
    "disconnected": lambda fake: fake.disconnect(),
    "scripted reject": lambda fake: fake.reject_next(RejectReason.OTHER, "scripted"),
    "original lost": lambda fake: fake.lose_order("a"),
    "original closed": lambda fake: fake.cancel("a", SYM),
    "new id taken": lambda fake: fake.place(OrderRequest("a2", "sim", SYM, Side.SELL, D("0.01"), D("61000.0"))),
}


def _outcome(fake: FakeConnector, request: ReplaceRequest, *, reference: bool) -> list[object]:
    fake.drain()
    if reference:  # the long way: _check_replace decides, as before the shortcut
        reason = fake._check_replace(request)
        fake.replaced.append(request)
        if reason is not None:
            fake._cancel_reject(request.orig_client_id, reason[0], reason[1], request.client_id)
        else:
            fake._do_replace(request)
    else:
        fake.replace(request)
    events = fake.drain()
    return [*events, sorted((o.client_id, o.status.value) for o in fake._orders.values()), fake._reject_next]


@pytest.mark.parametrize("supports_replace", [True, False])
@pytest.mark.parametrize("validate", [True, False])
@pytest.mark.parametrize("qty", ["0.01", "0.00001"])  # 0.00001 is off the sim's lot: invalid when validated
@pytest.mark.parametrize("case", list(CASES))
def test_replace_ends_as_check_replace_decides(case: str, qty: str, validate: bool, supports_replace: bool) -> None:
    request = ReplaceRequest("a2", "a", "sim", SYM, Side.BUY, D(qty), D("60001.0"))
    outcomes = []
    for reference in (False, True):
        fake = _fake(validate, supports_replace)
        CASES[case](fake)
        outcomes.append(_outcome(fake, request, reference=reference))
    assert outcomes[0] == outcomes[1]
    kinds = {type(e) for e in outcomes[0][:-2]}
    usual = case == "usual" and supports_replace and not (validate and qty == "0.00001")
    assert kinds == ({OrderReplaced} if usual else {OrderCancelRejected})


def test_the_usual_replace_is_recorded_and_moves_the_order() -> None:
    fake = _fake(validate=False)
    request = ReplaceRequest("a2", "a", "sim", SYM, Side.BUY, D("0.02"), D("60001.0"), 7)
    fake.replace(request)
    assert fake.replaced == [request]
    assert fake.actions[-1].request is request and fake.actions[-1].client_id == "a"
    assert [o.client_id for o in fake.open_orders] == ["b", "a2"]
    [event] = fake.drain()
    assert isinstance(event, OrderReplaced)
    assert (event.client_id, event.orig_client_id, event.price, event.qty) == ("a2", "a", D("60001.0"), D("0.02"))
