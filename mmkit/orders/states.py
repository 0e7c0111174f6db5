"""Order states and the ONE table of allowed transitions.

Why a table: every race a venue can produce (fill before ack, fill while a
cancel is in flight, a late fill after the cancel, an ack after a status
query said "not found") must have a written-down answer, reviewed in one
place and tested cell by cell. Anything not in the table is illegal: the
tracker logs and counts it and keeps running (it never crashes on a venue's
odd ordering).

Decisions worth knowing:

* **Live vs. open.** ``OPEN`` in the table means "resting". An order that has
  some fills is reported as ``PARTIALLY_FILLED`` instead; :func:`next_state`
  applies that rule so the table does not have to say it twice.
* **Fills while PENDING_CANCEL / PENDING_REPLACE** keep the pending state
  (the cancel or replace is still in flight) unless the order is now fully
  filled, which wins (``FILLED``).
* **Late fills after CANCELED** are booked (money moved) and the state stays
  ``CANCELED``, unless they complete the order: then ``FILLED``, because that
  is what really happened at the venue.
* **Fills after FILLED** are legal: a status report may have told us FILLED
  before the individual fills arrived. Over-fills are detected by quantity in
  the tracker, not here.
* **REPLACED** closes the *old* client id (final state ``CANCELED``, with
  ``replaced_by`` set on the order); the order lives on under its new id,
  which goes PENDING_CREATE -> OPEN on the same event. A replace confirmation
  that arrives after we gave up on it (OPEN / PARTIALLY_FILLED) is honoured.
* **NOT_FOUND** (definitive) for PENDING_CREATE means it never went live:
  ``FAILED``. For an order that was live it means it no longer rests:
  ``CANCELED`` (fills we know of stay booked; a status report is the only way
  to learn of fills we missed).
* **The venue's word wins over our give-up.** ``FAILED`` + ACCEPTED goes back
  to ``OPEN``: an order the venue says is live must be tracked (and pulled),
  never forgotten. ``REJECTED`` + ACCEPTED stays illegal: a venue that rejects
  then accepts the same id is broken and must be looked at.
* EXPIRED is a venue-side cancel: ``CANCELED``.
"""

from __future__ import annotations

import enum


class OrderState(enum.Enum):
    PENDING_CREATE = "PENDING_CREATE"
    OPEN = "OPEN"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    PENDING_CANCEL = "PENDING_CANCEL"
    PENDING_REPLACE = "PENDING_REPLACE"
    CANCELED = "CANCELED"
    FILLED = "FILLED"
    REJECTED = "REJECTED"
    FAILED = "FAILED"

    # Identity hash in C: enum's default hashes the name in Python, and the table and the
    # state-class sets are looked up on every event (see bench/bench_decision.py).
    __hash__ = object.__hash__

    @property
    def is_done(self) -> bool:
        """Finished from our side (late events may still arrive and are matched)."""
        return self in DONE_STATES

    @property
    def is_pending(self) -> bool:
        return self in PENDING_STATES

    @property
    def is_live(self) -> bool:
        """Resting at the venue (possibly with a cancel or replace in flight)."""
        return self in LIVE_STATES


class Trigger(enum.Enum):
    ACCEPTED = "ACCEPTED"
    REJECTED = "REJECTED"
    PARTIAL_FILL = "PARTIAL_FILL"
    FILL = "FILL"  # this fill completes the order
    CANCEL_SUBMITTED = "CANCEL_SUBMITTED"
    CANCELED = "CANCELED"
    CANCEL_REJECTED = "CANCEL_REJECTED"
    REPLACE_SUBMITTED = "REPLACE_SUBMITTED"
    REPLACED = "REPLACED"
    REPLACE_REJECTED = "REPLACE_REJECTED"
    EXPIRED = "EXPIRED"
    NOT_FOUND = "NOT_FOUND"

    __hash__ = object.__hash__


#: The state classes, as sets: ``state in DONE_STATES`` is ``state.is_done`` without a property call (hot paths).
DONE_STATES = frozenset({OrderState.CANCELED, OrderState.FILLED, OrderState.REJECTED, OrderState.FAILED})
PENDING_STATES = frozenset({OrderState.PENDING_CREATE, OrderState.PENDING_CANCEL, OrderState.PENDING_REPLACE})
LIVE_STATES = frozenset(
    {OrderState.OPEN, OrderState.PARTIALLY_FILLED, OrderState.PENDING_CANCEL, OrderState.PENDING_REPLACE}
)

S = OrderState
T = Trigger

#: (state, trigger) -> new state. Missing pairs are illegal transitions.
TRANSITIONS: dict[tuple[OrderState, Trigger], OrderState] = {
    # -- PENDING_CREATE: sent, not yet acknowledged --------------------
    (S.PENDING_CREATE, T.ACCEPTED): S.OPEN,
    (S.PENDING_CREATE, T.REJECTED): S.REJECTED,
    (S.PENDING_CREATE, T.PARTIAL_FILL): S.PARTIALLY_FILLED,  # fill overtook the ack
    (S.PENDING_CREATE, T.FILL): S.FILLED,
    (S.PENDING_CREATE, T.CANCEL_SUBMITTED): S.PENDING_CANCEL,  # cancel-all on stop
    (S.PENDING_CREATE, T.CANCELED): S.CANCELED,
    (S.PENDING_CREATE, T.EXPIRED): S.CANCELED,
    (S.PENDING_CREATE, T.NOT_FOUND): S.FAILED,  # never went live
    # -- OPEN ------------------------------------------------------------
    (S.OPEN, T.ACCEPTED): S.OPEN,  # duplicate ack / status report
    (S.OPEN, T.PARTIAL_FILL): S.PARTIALLY_FILLED,
    (S.OPEN, T.FILL): S.FILLED,
    (S.OPEN, T.CANCEL_SUBMITTED): S.PENDING_CANCEL,
    (S.OPEN, T.CANCELED): S.CANCELED,  # unsolicited (cancel-on-disconnect, STP)
    (S.OPEN, T.CANCEL_REJECTED): S.OPEN,  # stale reject of an earlier cancel
    (S.OPEN, T.REPLACE_SUBMITTED): S.PENDING_REPLACE,
    (S.OPEN, T.REPLACED): S.CANCELED,  # late confirmation of a replace we gave up on
    (S.OPEN, T.REPLACE_REJECTED): S.OPEN,  # stale
    (S.OPEN, T.EXPIRED): S.CANCELED,
    (S.OPEN, T.NOT_FOUND): S.CANCELED,
    # -- PARTIALLY_FILLED -------------------------------------------------
    (S.PARTIALLY_FILLED, T.ACCEPTED): S.PARTIALLY_FILLED,  # ack after a fill
    (S.PARTIALLY_FILLED, T.PARTIAL_FILL): S.PARTIALLY_FILLED,
    (S.PARTIALLY_FILLED, T.FILL): S.FILLED,
    (S.PARTIALLY_FILLED, T.CANCEL_SUBMITTED): S.PENDING_CANCEL,
    (S.PARTIALLY_FILLED, T.CANCELED): S.CANCELED,
    (S.PARTIALLY_FILLED, T.CANCEL_REJECTED): S.PARTIALLY_FILLED,
    (S.PARTIALLY_FILLED, T.REPLACE_SUBMITTED): S.PENDING_REPLACE,
    (S.PARTIALLY_FILLED, T.REPLACED): S.CANCELED,
    (S.PARTIALLY_FILLED, T.REPLACE_REJECTED): S.PARTIALLY_FILLED,
    (S.PARTIALLY_FILLED, T.EXPIRED): S.CANCELED,
    (S.PARTIALLY_FILLED, T.NOT_FOUND): S.CANCELED,
    # -- PENDING_CANCEL ---------------------------------------------------
    (S.PENDING_CANCEL, T.ACCEPTED): S.PENDING_CANCEL,  # ack of a create we already cancel
    (S.PENDING_CANCEL, T.REJECTED): S.REJECTED,  # the create itself was refused
    (S.PENDING_CANCEL, T.PARTIAL_FILL): S.PENDING_CANCEL,
    (S.PENDING_CANCEL, T.FILL): S.FILLED,
    (S.PENDING_CANCEL, T.CANCEL_SUBMITTED): S.PENDING_CANCEL,  # re-sent after a timeout
    (S.PENDING_CANCEL, T.CANCELED): S.CANCELED,
    (S.PENDING_CANCEL, T.CANCEL_REJECTED): S.OPEN,  # still resting (PARTIALLY_FILLED if fills)
    (S.PENDING_CANCEL, T.REPLACED): S.CANCELED,  # a replace in flight before the cancel won
    (S.PENDING_CANCEL, T.REPLACE_REJECTED): S.PENDING_CANCEL,
    (S.PENDING_CANCEL, T.EXPIRED): S.CANCELED,
    (S.PENDING_CANCEL, T.NOT_FOUND): S.CANCELED,
    # -- PENDING_REPLACE --------------------------------------------------
    (S.PENDING_REPLACE, T.ACCEPTED): S.PENDING_REPLACE,
    (S.PENDING_REPLACE, T.PARTIAL_FILL): S.PENDING_REPLACE,
    (S.PENDING_REPLACE, T.FILL): S.FILLED,  # the replace will be refused: nothing left
    (S.PENDING_REPLACE, T.CANCEL_SUBMITTED): S.PENDING_CANCEL,  # cancel-all on stop
    (S.PENDING_REPLACE, T.CANCELED): S.CANCELED,
    (S.PENDING_REPLACE, T.CANCEL_REJECTED): S.PENDING_REPLACE,  # stale
    (S.PENDING_REPLACE, T.REPLACED): S.CANCELED,  # old id closed; lives on under the new id
    (S.PENDING_REPLACE, T.REPLACE_REJECTED): S.OPEN,  # still resting as it was
    (S.PENDING_REPLACE, T.EXPIRED): S.CANCELED,
    (S.PENDING_REPLACE, T.NOT_FOUND): S.CANCELED,
    # -- CANCELED (late events) -------------------------------------------
    (S.CANCELED, T.ACCEPTED): S.CANCELED,
    (S.CANCELED, T.PARTIAL_FILL): S.CANCELED,  # late fill: booked, still canceled
    (S.CANCELED, T.FILL): S.FILLED,  # late fill completing the order: it really filled
    (S.CANCELED, T.CANCELED): S.CANCELED,
    (S.CANCELED, T.CANCEL_REJECTED): S.CANCELED,
    (S.CANCELED, T.REPLACE_REJECTED): S.CANCELED,
    (S.CANCELED, T.EXPIRED): S.CANCELED,
    (S.CANCELED, T.NOT_FOUND): S.CANCELED,
    # -- FILLED (late events) ---------------------------------------------
    (S.FILLED, T.ACCEPTED): S.FILLED,
    (S.FILLED, T.PARTIAL_FILL): S.FILLED,  # fills trailing a FILLED status report
    (S.FILLED, T.FILL): S.FILLED,
    (S.FILLED, T.CANCELED): S.FILLED,  # cancel raced the last fill
    (S.FILLED, T.CANCEL_REJECTED): S.FILLED,  # "too late to cancel"
    (S.FILLED, T.REPLACE_REJECTED): S.FILLED,
    (S.FILLED, T.EXPIRED): S.FILLED,
    (S.FILLED, T.NOT_FOUND): S.FILLED,  # venues purge filled orders
    # -- REJECTED ---------------------------------------------------------
    (S.REJECTED, T.REJECTED): S.REJECTED,
    (S.REJECTED, T.CANCELED): S.REJECTED,
    (S.REJECTED, T.CANCEL_REJECTED): S.REJECTED,  # our cancel of a refused create
    (S.REJECTED, T.NOT_FOUND): S.REJECTED,
    # -- FAILED (we concluded it never went live) ------------------------
    (S.FAILED, T.ACCEPTED): S.OPEN,  # the venue says it is live: track it again
    (S.FAILED, T.PARTIAL_FILL): S.PARTIALLY_FILLED,
    (S.FAILED, T.FILL): S.FILLED,
    (S.FAILED, T.REJECTED): S.REJECTED,
    (S.FAILED, T.CANCELED): S.CANCELED,
    (S.FAILED, T.CANCEL_REJECTED): S.FAILED,
    (S.FAILED, T.EXPIRED): S.CANCELED,
    (S.FAILED, T.NOT_FOUND): S.FAILED,
}

del S, T


class IllegalTransition(Exception):
    """A (state, trigger) pair that is not in :data:`TRANSITIONS`."""

    def __init__(self, state: OrderState, trigger: Trigger, client_id: str = "") -> None:
        self.state = state
        self.trigger = trigger
        self.client_id = client_id
        who = f"order {client_id}: " if client_id else ""
        super().__init__(f"{who}illegal transition {state.value} --{trigger.value}-->")


def next_state(state: OrderState, trigger: Trigger, has_fills: bool = False, client_id: str = "") -> OrderState:
    """Look the transition up; a resting order with fills is PARTIALLY_FILLED, not OPEN."""
    try:
        new = TRANSITIONS[(state, trigger)]
    except KeyError:
        raise IllegalTransition(state, trigger, client_id) from None
    if new is OrderState.OPEN and has_fills:
        return OrderState.PARTIALLY_FILLED
    return new
