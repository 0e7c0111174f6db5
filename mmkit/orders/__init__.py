"""Orders: the state table, client ids, ClientOrder and the ClientOrderTracker."""

from mmkit.orders.client_order import ClientOrder, Slot
from mmkit.orders.ids import ClientIdGenerator, Sequencer
from mmkit.orders.states import TRANSITIONS, IllegalTransition, OrderState, Trigger, next_state
from mmkit.orders.tracker import ClientOrderTracker, ReconcileResult

__all__ = [
    "TRANSITIONS",
    "ClientIdGenerator",
    "ClientOrder",
    "ClientOrderTracker",
    "IllegalTransition",
    "OrderState",
    "ReconcileResult",
    "Sequencer",
    "Slot",
    "Trigger",
    "next_state",
]
