"""What a venue tells us, normalized. Each connector's codec produces these and nothing else."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, ConfigDict

from fixadapter.model.enums import (
    Channel,
    ExecKind,
    OrderStatus,
    OrderType,
    RequestKind,
    SessionState,
    Side,
    TimeInForce,
    VenueRequest,
)


class _Report(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ExecutionReport(_Report):
    """One execution report. `cl_ord_id` is the id of the request it answers (the D's, F's or G's).

    cTrader sends no ExecID, so `dedupe_key` is built by the connector from what it does send.
    """

    kind: ExecKind
    status: OrderStatus
    order_id: str
    cl_ord_id: str | None = None
    orig_cl_ord_id: str | None = None
    symbol_id: int | None = None
    side: Side | None = None
    order_type: OrderType | None = None
    quantity: Decimal | None = None
    price: Decimal | None = None
    stop_price: Decimal | None = None
    time_in_force: TimeInForce | None = None
    expire_time: datetime | None = None
    cum_qty: Decimal | None = None
    leaves_qty: Decimal | None = None
    last_qty: Decimal | None = None
    last_px: Decimal | None = None  # the deal's price, where the venue gives it (Open API)
    commission: Decimal | None = None  # the deal's, deposit currency, negative when charged (Open API)
    swap: Decimal | None = None  # booked by a closing deal (Open API)
    avg_px: Decimal | None = None
    position_id: str | None = None
    label: str | None = None
    text: str | None = None
    transact_time: datetime | None = None
    mass_status_id: str | None = None
    total_reports: int | None = None
    dedupe_key: str
    raw: str | None = None


class CancelRejected(_Report):
    """The venue refused a cancel or replace (cTrader: OrderCancelReject, e.g. order under execution)."""

    request_id: str
    orig_cl_ord_id: str | None = None
    order_id: str | None = None
    status: OrderStatus | None = None
    response_to: RequestKind
    text: str | None = None
    raw: str | None = None


class BusinessReject(_Report):
    """An application-level refusal; `ref_id` is the business id of what was refused."""

    ref_id: str | None = None
    ref_msg_type: str | None = None
    reason: int
    text: str | None = None
    raw: str | None = None

    @property
    def code(self) -> str | None:
        """cTrader's reason code, the part of the text before the first colon (e.g. ORDER_NOT_FOUND)."""
        if not self.text or ":" not in self.text:
            return None
        return self.text.split(":", 1)[0].strip()


class RequestRefused(_Report):
    """The venue refused one of our requests without naming it (a session-level reject, or a business
    reject with no reference id): the connector tied it to the request it sent, `text` says why."""

    request: VenueRequest
    request_id: str
    text: str
    raw: str | None = None


class PositionReport(_Report):
    """One open position; `no_positions` marks the venue's 'no open positions' answer."""

    request_id: str
    position_id: str | None = None
    symbol_id: int | None = None
    long_qty: Decimal = Decimal(0)
    short_qty: Decimal = Decimal(0)
    entry_price: Decimal | None = None
    total_reports: int = 0
    no_positions: bool = False
    take_profit: Decimal | None = None
    stop_loss: Decimal | None = None


class PositionProtection(_Report):
    """A position's stop loss and take profit as the venue now has them: the live answer to an
    amend_position_protection (`request_id` set), or a change the venue made itself (a trailing stop moved).
    None is no protection of that kind."""

    position_id: str
    request_id: str | None = None
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    trailing_stop_loss: bool = False
    text: str | None = None


class Instrument(_Report):
    symbol_id: int
    name: str
    digits: int


class SecurityListReport(_Report):
    request_id: str
    ok: bool
    instruments: tuple[Instrument, ...] = ()


class ConnectionStatus(_Report):
    """A connection of a connector logged on or off, with what the venue said (a Logout's text)."""

    connector: str
    channel: Channel
    state: SessionState
    text: str | None = None


class MalformedMessage(_Report):
    """A message that arrived but could not be turned into a report; kept for the log, never fatal."""

    channel: Channel
    msg_type: str | None
    error: str
    raw: str


VenueReport = (
    ExecutionReport
    | CancelRejected
    | BusinessReject
    | RequestRefused
    | PositionReport
    | PositionProtection
    | SecurityListReport
    | ConnectionStatus
    | MalformedMessage
)
