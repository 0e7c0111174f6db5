"""The order state table, checked cell by cell against an independent grid."""

from __future__ import annotations

import pytest

from mmkit.orders.states import TRANSITIONS, IllegalTransition, OrderState, Trigger, next_state

# Columns, in this order:
TRIGGERS = [
    Trigger.ACCEPTED,
    Trigger.REJECTED,
    Trigger.PARTIAL_FILL,
    Trigger.FILL,
    Trigger.CANCEL_SUBMITTED,
    Trigger.CANCELED,
    Trigger.CANCEL_REJECTED,
    Trigger.REPLACE_SUBMITTED,
    Trigger.REPLACED,
    Trigger.REPLACE_REJECTED,
    Trigger.EXPIRED,
    Trigger.NOT_FOUND,
]
ABBR = {
    "PC": OrderState.PENDING_CREATE,
    "O": OrderState.OPEN,
    "PF": OrderState.PARTIALLY_FILLED,
    "PX": OrderState.PENDING_CANCEL,
    "PR": OrderState.PENDING_REPLACE,
    "C": OrderState.CANCELED,
    "F": OrderState.FILLED,
    "R": OrderState.REJECTED,
    "X": OrderState.FAILED,
}
# "-" = illegal.        ACC REJ PFL FIL CXS CXD CXR RPS RPD RPR EXP NFD
GRID = """
PENDING_CREATE          O   R   PF  F   PX  C   -   -   -   -   C   X
OPEN                    O   -   PF  F   PX  C   O   PR  C   O   C   C
PARTIALLY_FILLED        PF  -   PF  F   PX  C   PF  PR  C   PF  C   C
PENDING_CANCEL          PX  R   PX  F   PX  C   O   -   C   PX  C   C
PENDING_REPLACE         PR  -   PR  F   PX  C   PR  -   C   O   C   C
CANCELED                C   -   C   F   -   C   C   -   -   C   C   C
FILLED                  F   -   F   F   -   F   F   -   -   F   F   F
REJECTED                -   R   -   -   -   R   R   -   -   -   -   R
FAILED                  O   R   PF  F   -   C   X   -   -   -   C   X
"""


def expected() -> dict[tuple[OrderState, Trigger], OrderState | None]:
    table: dict[tuple[OrderState, Trigger], OrderState | None] = {}
    for line in GRID.strip().splitlines():
        name, *cells = line.split()
        assert len(cells) == len(TRIGGERS)
        for trigger, cell in zip(TRIGGERS, cells, strict=True):
            table[(OrderState[name], trigger)] = None if cell == "-" else ABBR[cell]
    return table


EXPECTED = expected()


def test_grid_covers_every_state_and_trigger() -> None:
    assert set(Trigger) == set(TRIGGERS)
    assert {s for s, _ in EXPECTED} == set(OrderState)
    assert len(EXPECTED) == len(OrderState) * len(Trigger)


@pytest.mark.parametrize(("state", "trigger"), sorted(EXPECTED, key=lambda k: (k[0].value, k[1].value)))
def test_every_cell(state: OrderState, trigger: Trigger) -> None:
    want = EXPECTED[(state, trigger)]
    if want is None:
        assert (state, trigger) not in TRANSITIONS
        with pytest.raises(IllegalTransition) as info:
            next_state(state, trigger, client_id="c1")
        assert info.value.state is state and info.value.trigger is trigger
        assert "c1" in str(info.value) and state.value in str(info.value)
    else:
        assert next_state(state, trigger) is want


def test_table_has_no_extra_entries() -> None:
    legal = {k for k, v in EXPECTED.items() if v is not None}
    assert set(TRANSITIONS) == legal


@pytest.mark.parametrize(
    ("state", "trigger"),
    [
        (OrderState.PENDING_CANCEL, Trigger.CANCEL_REJECTED),
        (OrderState.PENDING_REPLACE, Trigger.REPLACE_REJECTED),
        (OrderState.FAILED, Trigger.ACCEPTED),
        (OrderState.PENDING_CREATE, Trigger.ACCEPTED),
    ],
)
def test_resting_with_fills_is_partially_filled(state: OrderState, trigger: Trigger) -> None:
    assert next_state(state, trigger, has_fills=True) is OrderState.PARTIALLY_FILLED


def test_state_classes() -> None:
    done = {s for s in OrderState if s.is_done}
    assert done == {OrderState.CANCELED, OrderState.FILLED, OrderState.REJECTED, OrderState.FAILED}
    assert not any(s.is_live for s in done)
    assert OrderState.PENDING_CREATE.is_pending and not OrderState.PENDING_CREATE.is_live
