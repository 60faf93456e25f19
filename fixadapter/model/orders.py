"""The order, its state machine, and how a venue report moves it.

`TRANSITIONS` is the single source of truth for status changes: `Order.moved_to` is the only
way a status changes, and an illegal move raises `InvalidTransition` instead of being overwritten.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from fixadapter.errors import InvalidTransition
from fixadapter.model.enums import (
    DONE_STATUSES,
    OPEN_STATUSES,
    OrderEventKind,
    OrderStatus,
    OrderType,
    PositionSide,
    RequestKind,
    Side,
    TimeInForce,
)

S = OrderStatus

TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    # A cancel may chase an unacknowledged order: cTrader identifies it by ClOrdID alone.
    S.PENDING_NEW: frozenset(
        {S.NEW, S.PARTIALLY_FILLED, S.FILLED, S.REJECTED, S.CANCELLED, S.EXPIRED, S.PENDING_CANCEL, S.UNKNOWN}
    ),
    S.NEW: frozenset(
        {S.PARTIALLY_FILLED, S.FILLED, S.PENDING_CANCEL, S.PENDING_REPLACE, S.CANCELLED, S.EXPIRED}
    ),
    # cTrader cancels the unfilled rest of a partially filled IOC order: 39=4 after 39=1.
    S.PARTIALLY_FILLED: frozenset(
        {S.PARTIALLY_FILLED, S.FILLED, S.PENDING_CANCEL, S.PENDING_REPLACE, S.CANCELLED, S.EXPIRED}
    ),
    # A fill can race a cancel; the cancel answer (ER 150=4 or a reject) still follows.
    # ... and a refused cancel rolls back, even to PENDING_NEW when it chased an unacknowledged order.
    S.PENDING_CANCEL: frozenset(
        {S.CANCELLED, S.PARTIALLY_FILLED, S.FILLED, S.EXPIRED, S.NEW, S.REJECTED, S.PENDING_NEW, S.UNKNOWN}
    ),
    # A replace is answered by ER 150=5 with 39=0 (or 1 when partly filled), or refused.
    S.PENDING_REPLACE: frozenset(
        {S.NEW, S.PARTIALLY_FILLED, S.FILLED, S.CANCELLED, S.EXPIRED, S.PENDING_CANCEL, S.UNKNOWN}
    ),
    # Nothing heard for too long: any answer of the venue decides; a cancel may still be tried.
    S.UNKNOWN: frozenset(
        {S.NEW, S.PARTIALLY_FILLED, S.FILLED, S.CANCELLED, S.REJECTED, S.EXPIRED, S.PENDING_CANCEL}
    ),
    S.FILLED: frozenset(),
    S.CANCELLED: frozenset(),
    S.REJECTED: frozenset(),
    S.EXPIRED: frozenset(),
}


def utc_now() -> datetime:
    return datetime.now(UTC)


class Order(BaseModel):
    """One order as the adapter knows it; immutable, each change is a new copy."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cl_ord_id: str
    symbol_id: int
    symbol: str
    side: Side
    order_type: OrderType
    quantity: Decimal
    price: Decimal | None = None
    stop_price: Decimal | None = None
    expire_time: datetime | None = None
    # As asked (None: the venue's default, see model.requests.default_time_in_force).
    time_in_force: TimeInForce | None = None
    position_id: str | None = None
    label: str | None = None
    # Protection of the position the order opens, and a comment, as asked (connectors that have them).
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    stop_loss_distance: Decimal | None = None
    take_profit_distance: Decimal | None = None
    trailing_stop_loss: bool = False
    comment: str | None = None
    strategy: str | None = None
    status: OrderStatus = OrderStatus.PENDING_NEW
    previous_status: OrderStatus | None = None
    order_id: str | None = None
    cum_qty: Decimal = Decimal(0)
    avg_px: Decimal | None = None
    pending_request_id: str | None = None
    reason: str | None = None
    created_at: datetime = Field(default_factory=utc_now)
    updated_at: datetime = Field(default_factory=utc_now)

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def is_done(self) -> bool:
        return self.status in DONE_STATUSES

    @property
    def leaves_qty(self) -> Decimal:
        return self.quantity - self.cum_qty if self.is_open else Decimal(0)

    def moved_to(self, status: OrderStatus, **changes: object) -> Order:
        """Return a copy in `status`; staying in the same status is allowed and changes nothing else."""
        if status != self.status and status not in TRANSITIONS[self.status]:
            raise InvalidTransition(self.cl_ord_id, self.status, status)
        previous = self.status if status != self.status else self.previous_status
        return self.model_copy(
            update={"status": status, "previous_status": previous, "updated_at": utc_now(), **changes}
        )


class Fill(BaseModel):
    """One execution of quantity. Its price is the deal's where the venue says it (the Open API), else
    derived from the change of AvgPx (cTrader's FIX sends no LastPx). Commission and swap are the venue's,
    in the account's deposit currency (negative: charged), where it gives them (Open API deals); None is
    not zero but unknown."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    fill_id: str
    cl_ord_id: str
    order_id: str | None
    symbol_id: int
    side: Side
    quantity: Decimal
    price: Decimal
    time: datetime
    commission: Decimal | None = None
    swap: Decimal | None = None


class OrderEvent(BaseModel):
    """What consumers receive: the order after the change, what happened, and the fill if any."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: OrderEventKind
    order: Order
    fill: Fill | None = None
    reason: str | None = None
    time: datetime = Field(default_factory=utc_now)
    # The store's sequence number of this change (its executions row): a relay that died mid-way resumes
    # after the last one it published. None for submits and cancel/replace requests, which have no row.
    seq: int | None = None


class OrderRequest(BaseModel):
    """A cancel or replace sent for an order; its own ClOrdID is how the venue's answer finds the order."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    request_id: str
    cl_ord_id: str
    kind: RequestKind
    quantity: Decimal | None = None
    price: Decimal | None = None
    stop_price: Decimal | None = None
    expire_time: datetime | None = None
    created_at: datetime = Field(default_factory=utc_now)


class PositionClose(BaseModel):
    """A close of a position as the connector sends it (capabilities.close_position).

    `cl_ord_id` is the closing order's, stored PENDING_NEW before this is sent: the connector reports the
    closing order's executions under it (the venue names only its own ids: the connector maps them).
    `quantity` is resolved, never None: the whole position's when the close asked for all of it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    cl_ord_id: str
    position_id: str
    symbol_id: int
    side: Side  # the closing order's side: the opposite of the position's
    quantity: Decimal
    whole: bool  # the whole position (the venue closes what is left even if a fill moved it meanwhile)


class PositionProtectionChange(BaseModel):
    """A change of a position's stop loss and take profit as the connector sends it
    (capabilities.position_protection): both stated, None removes; answered by a live PositionProtection."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    request_id: str
    position_id: str
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    trailing_stop_loss: bool = False


class Position(BaseModel):
    """An open position as the venue reports it (the venue is the authority, never our fills)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    position_id: str
    symbol_id: int
    side: PositionSide
    quantity: Decimal
    entry_price: Decimal | None = None
    # Its protection as the venue last said (a positions answer, or a PositionProtection report).
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    trailing_stop_loss: bool = False
    updated_at: datetime = Field(default_factory=utc_now)
