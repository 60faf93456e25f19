"""Closed vocabularies of the normalized model (venue codes are mapped only in each connector)."""

from __future__ import annotations

from enum import StrEnum


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY


class OrderType(StrEnum):
    MARKET = "market"
    LIMIT = "limit"
    STOP = "stop"
    # A stop that becomes a limit order when triggered: `stop_price` triggers, `price` is the limit. The
    # Open API has it; cTrader FIX does not (OrdType 40 is 1, 2 or 3 only).
    STOP_LIMIT = "stop_limit"


class TimeInForce(StrEnum):
    """How long an order works. cTrader FIX derives it from the order type and expiry (TimeInForce 59 is
    ignored on a NewOrderSingle); the Open API takes it. An order that names none gets the venue's default
    (`model.requests.default_time_in_force`)."""

    GOOD_TILL_CANCEL = "good_till_cancel"
    IMMEDIATE_OR_CANCEL = "immediate_or_cancel"
    GOOD_TILL_DATE = "good_till_date"


class OrderStatus(StrEnum):
    PENDING_NEW = "pending_new"
    NEW = "new"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    PENDING_CANCEL = "pending_cancel"
    PENDING_REPLACE = "pending_replace"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    EXPIRED = "expired"
    # No venue answer within orders.unknown_after_seconds: still open (the kill switch tries to cancel it),
    # left by any later answer.
    UNKNOWN = "unknown"


class ExecKind(StrEnum):
    """What the venue says happened in one execution report."""

    ACCEPTED = "accepted"
    TRADE = "trade"
    CANCELLED = "cancelled"
    REPLACED = "replaced"
    REJECTED = "rejected"
    EXPIRED = "expired"
    STATUS = "status"


class OrderEventKind(StrEnum):
    """What consumers are told happened to an order."""

    SUBMITTED = "submitted"
    ACCEPTED = "accepted"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCEL_REQUESTED = "cancel_requested"
    REPLACE_REQUESTED = "replace_requested"
    CANCELLED = "cancelled"
    REPLACED = "replaced"
    CANCEL_REJECTED = "cancel_rejected"
    REPLACE_REJECTED = "replace_rejected"
    REJECTED = "rejected"
    EXPIRED = "expired"
    RECONCILED = "reconciled"
    UNKNOWN = "unknown"  # no answer from the venue within orders.unknown_after_seconds


class RequestKind(StrEnum):
    CANCEL = "cancel"
    REPLACE = "replace"


class VenueRequest(StrEnum):
    """What we asked the venue, named without protocol words (a refusal says which one it refuses)."""

    NEW_ORDER = "new_order"
    CANCEL = "cancel"
    REPLACE = "replace"
    STATUS = "status"
    MASS_STATUS = "mass_status"
    POSITIONS = "positions"
    INSTRUMENTS = "instruments"
    CLOSE_POSITION = "close_position"
    AMEND_POSITION_PROTECTION = "amend_position_protection"


class PositionSide(StrEnum):
    LONG = "long"
    SHORT = "short"


class Channel(StrEnum):
    """What a connection of a connector carries (FIX: TRADE and QUOTE sessions; Open API: one connection
    carrying both)."""

    TRADING = "trading"
    MARKET_DATA = "market_data"


class SessionState(StrEnum):
    LOGGED_ON = "logged_on"
    LOGGED_OUT = "logged_out"


OPEN_STATUSES: frozenset[OrderStatus] = frozenset(
    {
        OrderStatus.PENDING_NEW,
        OrderStatus.NEW,
        OrderStatus.PARTIALLY_FILLED,
        OrderStatus.PENDING_CANCEL,
        OrderStatus.PENDING_REPLACE,
        OrderStatus.UNKNOWN,
    }
)
DONE_STATUSES: frozenset[OrderStatus] = frozenset(
    {OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED, OrderStatus.EXPIRED}
)
IN_FLIGHT_STATUSES: frozenset[OrderStatus] = frozenset(
    {OrderStatus.PENDING_NEW, OrderStatus.PENDING_CANCEL, OrderStatus.PENDING_REPLACE}
)
