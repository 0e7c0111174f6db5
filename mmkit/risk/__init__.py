"""Risk: inventory limits and hedge signals, the fill-based PnL ledger, and the kill switch."""

from mmkit.risk.inventory import HedgeSignal, InventoryConfig, InventoryManager
from mmkit.risk.kill_switch import KillSwitch, KillSwitchConfig, KillSwitchEvent
from mmkit.risk.pnl import PnLConfig, PnLEvent, PnLTracker

__all__ = [
    "HedgeSignal",
    "InventoryConfig",
    "InventoryManager",
    "KillSwitch",
    "KillSwitchConfig",
    "KillSwitchEvent",
    "PnLConfig",
    "PnLEvent",
    "PnLTracker",
]
