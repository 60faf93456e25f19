"""Which order a venue report or a client's retry is about, and whether it can be that order's.

Pure functions: the engine decides what to do with the answers (refuse, alarm, apply).
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from decimal import Decimal
from typing import Any

from fixadapter.model.orders import Order
from fixadapter.model.reports import ExecutionReport
from fixadapter.model.requests import NewOrder

TERMS = (
    "symbol",
    "side",
    "order_type",
    "quantity",
    "price",
    "stop_price",
    "expire_time",
    "strategy",
    # Added with the Open API's order fields: terms stored before them have none of these, which reads as
    # each one's default (None, trailing off), so a retry of an order stored then still matches.
    "time_in_force",
    "stop_loss",
    "take_profit",
    "stop_loss_distance",
    "take_profit_distance",
    "trailing_stop_loss",
    "comment",
)
# Left out of a report's content: how it reached us (a mass status answer or a live report), not what it says.
_NOT_CONTENT = {"raw", "dedupe_key", "mass_status_id", "total_reports"}


def shown(value: object, limit: int = 40) -> str:
    """A venue-given value for a log line or an alarm: cut short when absurdly long (a 10 KB OrderID)."""
    text = str(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def _text(value: object) -> str | None:
    if value is None or value is False:  # False: a flag off, the same as a term stored before it existed
        return None
    if value is True:
        return "true"
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def order_terms(order: Order | NewOrder, symbol: str | None = None) -> dict[str, Any]:
    """What makes an order that order, as text: compared when a ClOrdID comes again."""
    terms = {name: _text(getattr(order, name)) for name in TERMS}
    terms["symbol"] = (symbol or order.symbol).upper()
    return terms


def differences(first: dict[str, Any], again: dict[str, Any]) -> list[str]:
    """'quantity 10000 vs 20000' for each term that differs (first as stored, then as asked again)."""
    return [
        f"{name} {first.get(name) or 'none'} vs {again.get(name) or 'none'}"
        for name in TERMS
        if first.get(name) != again.get(name)
    ]


def foreign_report(order: Order, report: ExecutionReport, orig_owner: str | None) -> str | None:
    """Why `report` cannot be about `order` though its ClOrdID names it, or None when it can.

    `orig_owner` is the order the report's OrigClOrdID belongs to when that is a request id of ours.
    """
    if report.order_id and order.order_id and report.order_id != order.order_id:
        return (
            f"a report for ClOrdID {shown(report.cl_ord_id)} carries OrderID {shown(report.order_id)}, "
            f"but order {order.cl_ord_id} is the venue's {order.order_id}"
        )
    orig = report.orig_cl_ord_id
    if orig and order.cl_ord_id not in (orig, orig_owner):
        return (
            f"a report for ClOrdID {shown(report.cl_ord_id)} (OrderID {shown(report.order_id)}) carries "
            f"OrigClOrdID {shown(orig)}, which is not order {order.cl_ord_id} nor one of its requests"
        )
    return None


def content_digest(report: ExecutionReport) -> str:
    """A fingerprint of what a report says: the same report twice has the same one, a different report
    under the same dedupe key (a venue whose ExecIDs restarted) another."""
    content = report.model_dump_json(exclude=_NOT_CONTENT)
    return hashlib.sha256(content.encode()).hexdigest()[:16]  # 64 bits: kept for each recent key


def stored_differs(row: dict[str, Any], report: ExecutionReport) -> bool:
    """Whether the execution stored under the report's key says something else than the report."""
    if row["order_id"] != report.order_id or row["status"] != str(report.status):
        return True
    stored = row["cum_qty"]
    return report.cum_qty is not None and stored is not None and Decimal(stored) != report.cum_qty
