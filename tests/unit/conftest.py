"""Builders shared by the unit tests: valid defaults that each test overrides with what it is about."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from fixadapter.model.enums import ExecKind, OrderStatus, OrderType, Side
from fixadapter.model.orders import Order
from fixadapter.model.reports import ExecutionReport

T0 = datetime(2024, 5, 6, 9, 30, tzinfo=UTC)
D = Decimal


def make_order(**changes: Any) -> Order:
    """A 10000-unit EURUSD market buy, not yet acknowledged (PENDING_NEW)."""
    values: dict[str, Any] = {
        "cl_ord_id": "ord-1",
        "symbol_id": 1,
        "symbol": "EURUSD",
        "side": Side.BUY,
        "order_type": OrderType.MARKET,
        "quantity": D("10000"),
        "created_at": T0,
        "updated_at": T0,
    }
    return Order(**{**values, **changes})


def make_report(**changes: Any) -> ExecutionReport:
    """The venue's acknowledgement (150=0/39=0) of `ord-1` as cTrader order 101."""
    values: dict[str, Any] = {
        "kind": ExecKind.ACCEPTED,
        "status": OrderStatus.NEW,
        "order_id": "101",
        "cl_ord_id": "ord-1",
        "quantity": D("10000"),
        "cum_qty": D(0),
        "transact_time": T0,
        "position_id": "721",
    }
    values.update(changes)
    values.setdefault("dedupe_key", f"{values['kind']}|{values['status']}|{values['cum_qty']}")
    return ExecutionReport(**values)
