"""Pre-trade risk: limits from the `risk` config section, the checks, and the kill switch.

Pure: nothing here sends, cancels or persists; the order engine calls `RiskEngine.check` before it
persists a new order or a replace, and cancels working orders when the kill switch is engaged.
"""

from fixadapter.risk.kill_switch import KillSwitch, KillSwitchAction, KillSwitchEvent, KillSwitchState
from fixadapter.risk.limits import RiskConfig, StrategyLimits, SymbolLimits, WithoutQuote
from fixadapter.risk.open_orders import OpenOrderCounts, OpenOrders, OpenOrderTracker, strategy_of
from fixadapter.risk.rate import SlidingWindow
from fixadapter.risk.rules import RiskEngine, Rule

__all__ = [
    "KillSwitch",
    "KillSwitchAction",
    "KillSwitchEvent",
    "KillSwitchState",
    "OpenOrderCounts",
    "OpenOrderTracker",
    "OpenOrders",
    "RiskConfig",
    "RiskEngine",
    "Rule",
    "SlidingWindow",
    "StrategyLimits",
    "SymbolLimits",
    "WithoutQuote",
    "strategy_of",
]
