"""cTrader FIX messages <-> normalized model. Pure: no QuickFIX, no I/O.

Outbound builders return (MsgType, body pairs) with only the tags cTrader lists (§2 of the
reference): the server rejects standard tags it does not know at session level.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import TypeVar

from fixadapter.connectors.fix import mapping
from fixadapter.connectors.fix import tags as t
from fixadapter.connectors.fix.kinds import SessionKind
from fixadapter.connectors.fix.sent import Sent
from fixadapter.connectors.fix.wire import (
    Fields,
    Pair,
    WireError,
    format_decimal,
    format_utc,
    parse_utc,
    to_decimal,
    to_int,
)
from fixadapter.model.enums import OrderType
from fixadapter.model.orders import Order, OrderRequest
from fixadapter.model.reports import (
    BusinessReject,
    CancelRejected,
    ExecutionReport,
    Instrument,
    PositionReport,
    RequestRefused,
    SecurityListReport,
    VenueReport,
)

Outbound = tuple[str, list[Pair]]
T = TypeVar("T")

# Tags defined in spec/FIX44-CTRADER.xml for the messages we read; anything else is counted as unknown.
KNOWN_TAGS: dict[str, frozenset[int]] = {
    "8": frozenset(
        {
            6,
            11,
            14,
            17,
            31,
            32,
            37,
            38,
            39,
            40,
            41,
            44,
            54,
            55,
            58,
            59,
            60,
            99,
            103,
            126,
            150,
            151,
            494,
            584,
            721,
            911,
            1000,
            1001,
            1002,
            1003,
            1004,
            1005,
            1006,
        }
    ),
    "9": frozenset({11, 37, 39, 41, 58, 434}),
    "j": frozenset({45, 58, 372, 379, 380}),
    "AP": frozenset({55, 702, 704, 705, 710, 721, 727, 728, 730, 1000, 1002, 1004, 1005, 1006}),
    "y": frozenset({55, 146, 320, 322, 560, 1007, 1008}),
}
HEADER_TAGS = frozenset({8, 9, 35, 34, 49, 50, 52, 56, 57, 43, 97, 122, 10})
SECURITY_LIST_ENTRY = frozenset({t.SYMBOL, t.SYMBOL_NAME, t.SYMBOL_DIGITS})
POSITION_ENTRY = frozenset({t.LONG_QTY, t.SHORT_QTY})


def unknown_tags(msg_type: str, fields: Fields) -> list[int]:
    known = KNOWN_TAGS.get(msg_type)
    if known is None:
        return []
    return [tag for tag, _ in fields.pairs if tag not in known and tag not in HEADER_TAGS]


def dedupe_key(fields: Fields) -> str:
    """cTrader sends no ExecID: OrderID+ExecType+OrdStatus+CumQty+LeavesQty+TransactTime+ClOrdID instead."""
    exec_id = fields.get(t.EXEC_ID)
    if exec_id:
        return f"fix:{exec_id}"
    parts = (t.ORDER_ID, t.EXEC_TYPE, t.ORD_STATUS, t.CUM_QTY, t.LEAVES_QTY, t.TRANSACT_TIME, t.CL_ORD_ID)
    return "fix:" + "|".join(fields.get(tag) or "" for tag in parts)


def _mapped(table: dict[str, T], code: str | None, name: str) -> T | None:
    if code is None:
        return None
    try:
        return table[code]
    except KeyError:
        raise WireError(f"{name} {code!r} is not a value cTrader documents") from None


def decode_execution_report(fields: Fields, raw: str | None = None) -> ExecutionReport:
    return ExecutionReport(
        kind=_mapped(mapping.EXEC_TYPE, fields.require(t.EXEC_TYPE), "ExecType"),
        status=_mapped(mapping.ORD_STATUS, fields.require(t.ORD_STATUS), "OrdStatus"),
        order_id=fields.require(t.ORDER_ID),
        cl_ord_id=fields.get(t.CL_ORD_ID),
        orig_cl_ord_id=fields.get(t.ORIG_CL_ORD_ID),
        symbol_id=to_int(fields.get(t.SYMBOL)),
        side=_mapped(mapping.SIDE, fields.get(t.SIDE), "Side"),
        order_type=_mapped(mapping.ORD_TYPE, fields.get(t.ORD_TYPE), "OrdType"),
        quantity=to_decimal(fields.get(t.ORDER_QTY)),
        price=to_decimal(fields.get(t.PRICE)),
        stop_price=to_decimal(fields.get(t.STOP_PX)),
        time_in_force=_mapped(mapping.TIME_IN_FORCE, fields.get(t.TIME_IN_FORCE), "TimeInForce"),
        expire_time=parse_utc(fields.get(t.EXPIRE_TIME)),
        cum_qty=to_decimal(fields.get(t.CUM_QTY)),
        leaves_qty=to_decimal(fields.get(t.LEAVES_QTY)),
        last_qty=to_decimal(fields.get(t.LAST_QTY)),
        avg_px=to_decimal(fields.get(t.AVG_PX)),
        position_id=fields.get(t.POS_MAINT_RPT_ID),
        label=fields.get(t.DESIGNATION),
        text=fields.get(t.TEXT),
        transact_time=parse_utc(fields.get(t.TRANSACT_TIME)),
        mass_status_id=fields.get(t.MASS_STATUS_REQ_ID),
        total_reports=to_int(fields.get(t.TOT_NUM_REPORTS)),
        dedupe_key=dedupe_key(fields),
        raw=raw,
    )


def decode_cancel_reject(fields: Fields, raw: str | None = None) -> CancelRejected:
    response_to = _mapped(
        mapping.CXL_REJ_RESPONSE_TO, fields.require(t.CXL_REJ_RESPONSE_TO), "CxlRejResponseTo"
    )
    return CancelRejected(
        request_id=fields.require(t.CL_ORD_ID),
        orig_cl_ord_id=fields.get(t.ORIG_CL_ORD_ID),
        order_id=fields.get(t.ORDER_ID),
        status=_mapped(mapping.ORD_STATUS, fields.get(t.ORD_STATUS), "OrdStatus"),
        response_to=response_to,
        text=fields.get(t.TEXT),
        raw=raw,
    )


def decode_business_reject(fields: Fields, raw: str | None = None) -> BusinessReject:
    return BusinessReject(
        ref_id=fields.get(t.BUSINESS_REJECT_REF_ID),
        ref_msg_type=fields.get(t.REF_MSG_TYPE),
        reason=to_int(fields.require(t.BUSINESS_REJECT_REASON)) or 0,
        text=fields.get(t.TEXT),
        raw=raw,
    )


SESSION_REJECT_REASONS = {
    "0": "invalid tag number",
    "1": "required tag missing",
    "2": "tag not defined for this message type",
    "3": "undefined tag",
    "4": "tag specified without a value",
    "5": "value is incorrect (out of range) for this tag",
    "6": "incorrect data format for value",
    "7": "decryption problem",
    "8": "signature problem",
    "9": "CompID problem",
    "10": "SendingTime accuracy problem",
    "11": "invalid MsgType",
    "12": "XML validation error",
    "13": "tag appears more than once",
    "14": "tag specified out of required order",
    "15": "repeating group fields out of order",
    "16": "incorrect NumInGroup count for repeating group",
    "17": "non-data value includes field delimiter",
    "99": "other",
}
BUSINESS_REJECT_REASONS = {
    "0": "other",
    "1": "unknown ID",
    "2": "unknown security",
    "3": "unsupported message type",
    "4": "application not available",
    "5": "conditionally required field missing",
    "6": "not authorized",
    "7": "DeliverTo firm not available",
}
REQUEST_NAMES = {
    "D": "NewOrderSingle",
    "F": "OrderCancelRequest",
    "G": "OrderCancelReplaceRequest",
    "H": "OrderStatusRequest",
    "AF": "OrderMassStatusRequest",
    "AN": "RequestForPositions",
    "x": "SecurityListRequest",
}


def decode_refusal(fields: Fields, sent: Sent, raw: str | None = None) -> RequestRefused:
    """A Reject (3) or a BusinessMessageReject (j) tied by RefSeqNum to the request `sent` carried."""
    if fields.get(t.MSG_TYPE) == "3":
        where = "at session level"
        reason = SESSION_REJECT_REASONS.get(fields.get(t.SESSION_REJECT_REASON) or "")
    else:
        where, reason = "", BUSINESS_REJECT_REASONS.get(fields.get(t.BUSINESS_REJECT_REASON) or "")
    details = [part for part in (reason, _tag_part(fields.get(t.REF_TAG_ID))) if part]
    text = fields.get(t.TEXT) or "no reason given"
    suffix = f" ({', '.join(details)})" if details else ""
    name = REQUEST_NAMES.get(sent.msg_type, sent.msg_type)
    return RequestRefused(
        request=sent.request,
        request_id=sent.request_id,
        text=" ".join(f"the venue refused the {name} {where}".split()) + f": {text}{suffix}",
        raw=raw,
    )


def _tag_part(tag: str | None) -> str | None:
    return f"tag {tag}" if tag else None


def decode_position_report(fields: Fields, raw: str | None = None) -> PositionReport:
    del raw
    result = fields.require(t.POS_REQ_RESULT)
    entries = fields.group(t.NO_POSITIONS, POSITION_ENTRY)
    entry = entries[0] if entries else Fields(())
    return PositionReport(
        request_id=fields.require(t.POS_REQ_ID),
        position_id=fields.get(t.POS_MAINT_RPT_ID),
        symbol_id=to_int(fields.get(t.SYMBOL)),
        long_qty=to_decimal(entry.get(t.LONG_QTY)) or Decimal(0),
        short_qty=to_decimal(entry.get(t.SHORT_QTY)) or Decimal(0),
        entry_price=to_decimal(fields.get(t.SETTL_PRICE)),
        total_reports=to_int(fields.require(t.TOTAL_NUM_POS_REPORTS)) or 0,
        no_positions=result == "2",
        take_profit=to_decimal(fields.get(t.ABSOLUTE_TP)),
        stop_loss=to_decimal(fields.get(t.ABSOLUTE_SL)),
    )


def decode_security_list(fields: Fields, raw: str | None = None) -> SecurityListReport:
    del raw
    instruments = tuple(
        Instrument(
            symbol_id=to_int(entry.require(t.SYMBOL)) or 0,
            name=entry.require(t.SYMBOL_NAME),
            digits=to_int(entry.get(t.SYMBOL_DIGITS)) or 0,
        )
        for entry in fields.group(t.NO_RELATED_SYM, SECURITY_LIST_ENTRY)
    )
    return SecurityListReport(
        request_id=fields.require(t.SECURITY_REQ_ID),
        ok=fields.require(t.SECURITY_REQUEST_RESULT) == "0",
        instruments=instruments,
    )


Decoder = Callable[[Fields, str | None], VenueReport]
TRADE_DECODERS: dict[str, Decoder] = {
    "8": decode_execution_report,
    "9": decode_cancel_reject,
    "j": decode_business_reject,
    "AP": decode_position_report,
    "y": decode_security_list,
}
DECODERS: dict[SessionKind, dict[str, Decoder]] = {
    SessionKind.TRADE: TRADE_DECODERS,
    SessionKind.QUOTE: {"y": decode_security_list, "j": decode_business_reject},
}


# ---- outbound -------------------------------------------------------------------------------


def _optional(pairs: list[Pair], tag: int, value: object) -> None:
    if value is None:
        return
    if isinstance(value, Decimal):
        pairs.append((tag, format_decimal(value)))
    elif isinstance(value, datetime):
        pairs.append((tag, format_utc(value, millis=False)))
    else:
        pairs.append((tag, str(value)))


def new_order_single(order: Order, now: datetime) -> Outbound:
    body: list[Pair] = [
        (t.CL_ORD_ID, order.cl_ord_id),
        (t.SYMBOL, str(order.symbol_id)),
        (t.SIDE, mapping.SIDE_CODE[order.side]),
        (t.TRANSACT_TIME, format_utc(now)),
        (t.ORDER_QTY, format_decimal(order.quantity)),
        (t.ORD_TYPE, mapping.ORD_TYPE_CODE[order.order_type]),
    ]
    if order.order_type is OrderType.LIMIT:
        _optional(body, t.PRICE, order.price)
    if order.order_type is OrderType.STOP:
        _optional(body, t.STOP_PX, order.stop_price)
    _optional(body, t.EXPIRE_TIME, order.expire_time)
    _optional(body, t.POS_MAINT_RPT_ID, order.position_id)
    _optional(body, t.DESIGNATION, order.label)
    return "D", body


def order_cancel_request(request: OrderRequest, order_id: str | None) -> Outbound:
    body: list[Pair] = [(t.ORIG_CL_ORD_ID, request.cl_ord_id), (t.CL_ORD_ID, request.request_id)]
    _optional(body, t.ORDER_ID, order_id)
    return "F", body


def order_cancel_replace_request(order: Order, request: OrderRequest) -> Outbound:
    body: list[Pair] = [
        (t.ORIG_CL_ORD_ID, order.cl_ord_id),
        (t.CL_ORD_ID, request.request_id),
        (t.ORDER_QTY, format_decimal(request.quantity or order.quantity)),
    ]
    _optional(body, t.ORDER_ID, order.order_id)
    if order.order_type is OrderType.LIMIT:
        _optional(body, t.PRICE, request.price)
    if order.order_type is OrderType.STOP:
        _optional(body, t.STOP_PX, request.price if request.stop_price is None else request.stop_price)
    _optional(body, t.EXPIRE_TIME, request.expire_time)
    return "G", body


def order_status_request(cl_ord_id: str) -> Outbound:
    return "H", [(t.CL_ORD_ID, cl_ord_id)]


def order_mass_status_request(request_id: str) -> Outbound:
    return "AF", [(t.MASS_STATUS_REQ_ID, request_id), (t.MASS_STATUS_REQ_TYPE, "7")]


def request_for_positions(request_id: str, position_id: str | None = None) -> Outbound:
    body: list[Pair] = [(t.POS_REQ_ID, request_id)]
    _optional(body, t.POS_MAINT_RPT_ID, position_id)
    return "AN", body


def security_list_request(request_id: str, symbol_id: int | None = None) -> Outbound:
    body: list[Pair] = [(t.SECURITY_REQ_ID, request_id), (t.SECURITY_LIST_REQUEST_TYPE, "0")]
    _optional(body, t.SYMBOL, symbol_id)
    return "x", body


__all__ = [
    "DECODERS",
    "Fields",
    "WireError",
    "decode_refusal",
    "dedupe_key",
    "new_order_single",
    "order_cancel_replace_request",
    "order_cancel_request",
    "order_mass_status_request",
    "order_status_request",
    "request_for_positions",
    "security_list_request",
    "unknown_tags",
]
