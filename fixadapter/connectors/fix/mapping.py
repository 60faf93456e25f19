"""The only translation tables between cTrader FIX codes and the normalized enums.

Live reports and reconciliation answers both go through these, so one venue state can never
become two different internal states.
"""

from __future__ import annotations

from typing import TypeVar

from fixadapter.model.enums import ExecKind, OrderStatus, OrderType, RequestKind, Side, TimeInForce

ORD_STATUS: dict[str, OrderStatus] = {
    "0": OrderStatus.NEW,
    "1": OrderStatus.PARTIALLY_FILLED,
    "2": OrderStatus.FILLED,
    "4": OrderStatus.CANCELLED,
    "8": OrderStatus.REJECTED,
    "C": OrderStatus.EXPIRED,
    # Not sent by cTrader (no pending states on the wire) but standard FIX 4.4: tolerated.
    "6": OrderStatus.PENDING_CANCEL,
    "A": OrderStatus.PENDING_NEW,
    "E": OrderStatus.PENDING_REPLACE,
}
EXEC_TYPE: dict[str, ExecKind] = {
    "0": ExecKind.ACCEPTED,
    "4": ExecKind.CANCELLED,
    "5": ExecKind.REPLACED,
    "8": ExecKind.REJECTED,
    "C": ExecKind.EXPIRED,
    "F": ExecKind.TRADE,
    "I": ExecKind.STATUS,
}
SIDE: dict[str, Side] = {"1": Side.BUY, "2": Side.SELL}
# cTrader's FIX takes 1-3 only (the FIX connector never sends a stop-limit: capabilities), but reports an
# account's stop-limit placed over the Open API as FIX 4.4's 4, which must be read, not dropped.
ORD_TYPE: dict[str, OrderType] = {
    "1": OrderType.MARKET,
    "2": OrderType.LIMIT,
    "3": OrderType.STOP,
    "4": OrderType.STOP_LIMIT,
}
TIME_IN_FORCE: dict[str, TimeInForce] = {
    "1": TimeInForce.GOOD_TILL_CANCEL,
    "3": TimeInForce.IMMEDIATE_OR_CANCEL,
    "6": TimeInForce.GOOD_TILL_DATE,
}
CXL_REJ_RESPONSE_TO: dict[str, RequestKind] = {"1": RequestKind.CANCEL, "2": RequestKind.REPLACE}


K = TypeVar("K")
V = TypeVar("V")


def _reverse(table: dict[K, V]) -> dict[V, K]:
    reverse: dict[V, K] = {}
    for code, value in table.items():
        reverse.setdefault(value, code)
    return reverse


SIDE_CODE: dict[Side, str] = _reverse(SIDE)
ORD_TYPE_CODE: dict[OrderType, str] = _reverse(ORD_TYPE)
ORD_STATUS_CODE: dict[OrderStatus, str] = _reverse(ORD_STATUS)
EXEC_TYPE_CODE: dict[ExecKind, str] = _reverse(EXEC_TYPE)
TIME_IN_FORCE_CODE: dict[TimeInForce, str] = _reverse(TIME_IN_FORCE)
CXL_REJ_RESPONSE_TO_CODE: dict[RequestKind, str] = _reverse(CXL_REJ_RESPONSE_TO)
