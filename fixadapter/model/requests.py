"""What a strategy asks for. Validated at the boundary so a malformed request never reaches a venue."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from fixadapter.model.enums import OrderType, Side, TimeInForce

QUANTITY_STEP = Decimal("0.01")
ID_PATTERN = r"^[A-Za-z0-9._:\-]{1,50}$"
# A strategy name becomes part of queue keys (`<prefix>:events:<name>`): no ":", so no name reaches another
# namespace (the queue's internal keys, another strategy's streams).
STRATEGY_PATTERN = r"^[A-Za-z0-9._\-]{1,50}$"
# An account name is a metric label, a part of environment variable names (FIXADAPTER_ACCOUNTS__<NAME>__...)
# and of compliance session names: lower-case letters, digits and underscores.
ACCOUNT_PATTERN = r"^[a-z][a-z0-9_]{0,31}$"
# The account a single-account config, store, metric series or queue marker of earlier versions belongs to.
DEFAULT_ACCOUNT = "default"


def _on_step(value: Decimal) -> Decimal:
    if value % QUANTITY_STEP != 0:
        raise ValueError(f"quantity {value} is finer than the venue's step of {QUANTITY_STEP} units")
    return value


def _aware_utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("expire_time must carry a timezone (UTC is what the venue uses)")
    return value.astimezone(UTC)


def _printable(value: str) -> str:
    if not value.isprintable():
        raise ValueError("comment must be printable text (no control characters such as SOH or newlines)")
    return value


Quantity = Annotated[Decimal, Field(gt=0, max_digits=20), AfterValidator(_on_step)]
Price = Annotated[Decimal, Field(gt=0, max_digits=20)]
# A distance from the entry (fill) price, in price units (0.0020 is 20 pips on EURUSD): the venue turns it
# into a price once the order fills.
Distance = Annotated[Decimal, Field(gt=0, max_digits=20)]
ClientId = Annotated[str, Field(pattern=ID_PATTERN)]
Expiry = Annotated[datetime | None, AfterValidator(_aware_utc)]
PositionId = Annotated[str, Field(pattern=r"^[0-9]{1,20}$")]
StrategyName = Annotated[str, Field(pattern=ID_PATTERN)]
# The Open API's comment is at most 512 characters; printable, so it cannot end up as a wire field.
Comment = Annotated[str, Field(min_length=1, max_length=512), AfterValidator(_printable)]

# A new order's fields beyond what cTrader FIX can send; each needs a connector capability (see
# fixadapter.engine.capability_check).
PROTECTION_FIELDS = ("stop_loss", "take_profit", "stop_loss_distance", "take_profit_distance")


def default_time_in_force(order_type: OrderType, expire_time: datetime | None) -> TimeInForce:
    """What cTrader gives an order that names no time in force: a market order is immediate-or-cancel, a
    pending order good till cancelled, or good till `expire_time` when it has one."""
    if order_type is OrderType.MARKET:
        return TimeInForce.IMMEDIATE_OR_CANCEL
    if expire_time is not None:
        return TimeInForce.GOOD_TILL_DATE
    return TimeInForce.GOOD_TILL_CANCEL


@dataclass(frozen=True)
class CommandUse:
    """A strategy's command id and the digest of the command's content, recorded with the order the
    command places, in that order's own transaction: the same id with the same digest is a redelivery,
    with another digest a reuse (refused)."""

    strategy: str
    command_id: str
    digest: str


class _Request(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


# What a NewOrder hands on to the Order it becomes, besides its symbol, ClOrdID and strategy.
ORDER_TERMS = (
    "side",
    "order_type",
    "quantity",
    "price",
    "stop_price",
    "expire_time",
    "time_in_force",
    "position_id",
    "label",
    "stop_loss",
    "take_profit",
    "stop_loss_distance",
    "take_profit_distance",
    "trailing_stop_loss",
    "comment",
)


class NewOrder(_Request):
    """A new order. Quantity is in units (EURUSD 1 lot = 100000), never lots.

    `cl_ord_id` is the idempotency key: a strategy that retries with the same id gets the
    existing order back instead of a second one. Left empty, the adapter allocates one.
    `position_id` targets an existing position (hedged accounts): an opposite-side order with it
    closes, without it opens a hedge.

    A stop-limit order has `stop_price` (the trigger) and `price` (the limit). `time_in_force` None is the
    venue's default (`default_time_in_force`); good_till_date needs `expire_time`, and `expire_time` with
    another explicit time in force is refused rather than one of them silently ignored. Protection of the
    position the order opens: `stop_loss` / `take_profit` as prices, or `stop_loss_distance` /
    `take_profit_distance` from the fill price (in price units), one form per kind; `trailing_stop_loss`
    makes the stop loss trail and needs one. Stop-limit, protection, comment and an explicit time in force
    other than the default need the account's connector to have them (the engine refuses otherwise: cTrader
    FIX has none of them).
    """

    symbol: Annotated[str, Field(pattern=r"^[A-Za-z0-9._/#\-]{1,32}$")]
    side: Side
    order_type: OrderType
    quantity: Quantity
    price: Price | None = None
    stop_price: Price | None = None
    expire_time: Expiry = None
    time_in_force: TimeInForce | None = None
    position_id: PositionId | None = None
    # Printable ASCII only: a SOH in a label would end up as an extra FIX field (e.g. a 721).
    label: Annotated[str, Field(pattern=r"^[\x20-\x7e]{1,100}$")] | None = None
    stop_loss: Price | None = None
    take_profit: Price | None = None
    stop_loss_distance: Distance | None = None
    take_profit_distance: Distance | None = None
    trailing_stop_loss: bool = False
    comment: Comment | None = None
    cl_ord_id: ClientId | None = None
    strategy: StrategyName | None = None

    @model_validator(mode="after")
    def _prices_match_type(self) -> Self:
        kind = self.order_type
        if kind is OrderType.LIMIT and (self.price is None or self.stop_price is not None):
            raise ValueError("a limit order needs price and no stop_price")
        if kind is OrderType.STOP and (self.stop_price is None or self.price is not None):
            raise ValueError("a stop order needs stop_price and no price")
        if kind is OrderType.STOP_LIMIT and (self.price is None or self.stop_price is None):
            raise ValueError("a stop-limit order needs stop_price (the trigger) and price (the limit)")
        if kind is OrderType.MARKET:
            if self.price is not None or self.stop_price is not None:
                raise ValueError("a market order takes neither price nor stop_price")
            if self.expire_time is not None:
                raise ValueError("a market order cannot have an expire_time (it is immediate-or-cancel)")
        return self

    @model_validator(mode="after")
    def _time_in_force_fits(self) -> Self:
        tif = self.time_in_force
        if tif is None:
            return self
        if self.order_type is OrderType.MARKET and tif is not TimeInForce.IMMEDIATE_OR_CANCEL:
            raise ValueError(f"time_in_force {tif}: a market order can only be immediate_or_cancel")
        if tif is TimeInForce.GOOD_TILL_DATE and self.expire_time is None:
            raise ValueError("time_in_force good_till_date needs an expire_time")
        if tif is not TimeInForce.GOOD_TILL_DATE and self.expire_time is not None:
            raise ValueError(
                f"expire_time makes an order good_till_date, but time_in_force is {tif}: "
                "give good_till_date (or leave time_in_force out) with an expire_time"
            )
        return self

    @model_validator(mode="after")
    def _protection_fits(self) -> Self:
        if self.stop_loss is not None and self.stop_loss_distance is not None:
            raise ValueError("give stop_loss (a price) or stop_loss_distance (from the fill price), not both")
        if self.take_profit is not None and self.take_profit_distance is not None:
            raise ValueError(
                "give take_profit (a price) or take_profit_distance (from the fill price), not both"
            )
        if self.trailing_stop_loss and self.stop_loss is None and self.stop_loss_distance is None:
            raise ValueError("trailing_stop_loss needs a stop loss: stop_loss or stop_loss_distance")
        return self

    @property
    def effective_time_in_force(self) -> TimeInForce:
        """The time in force the order works with: the one asked, else the venue's default."""
        return self.time_in_force or default_time_in_force(self.order_type, self.expire_time)


class CancelOrder(_Request):
    """Cancel a working order, named by the ClOrdID it was submitted with."""

    cl_ord_id: ClientId
    request_id: ClientId | None = None


class ReplaceOrder(_Request):
    """Amend a working limit, stop or stop-limit order: quantity is the new total, prices as for NewOrder.

    Both prices at once only for a stop-limit order (its trigger and its limit); the engine refuses them
    for another order, whose type only it knows.
    """

    cl_ord_id: ClientId
    quantity: Quantity
    price: Price | None = None
    stop_price: Price | None = None
    expire_time: Expiry = None
    request_id: ClientId | None = None


class ClosePosition(_Request):
    """Close an open position, whole (`quantity` None) or in part (`quantity` units of it).

    The venue does it with a closing market order of the opposite side: the adapter stores that order
    (its ClOrdID is `request_id`, allocated when left out) and its execution reports come back as that
    order's events, like any order's. Positions belong to the account, not to a strategy: `strategy` is
    whose events the closing order's are. Needs a connector with `close_position`.
    """

    position_id: PositionId
    quantity: Quantity | None = None
    request_id: ClientId | None = None
    strategy: StrategyName | None = None


class AmendPositionProtection(_Request):
    """Set an open position's stop loss and take profit, as prices.

    The amendment states the whole protection wanted, as the Open API's AmendPositionSLTPReq does: a
    price left None removes that protection (None and None removes both). `trailing_stop_loss` makes the
    stop loss trail and needs one. The venue's answer comes back as a live `PositionProtection` report.
    Needs a connector with `position_protection`.
    """

    position_id: PositionId
    stop_loss: Price | None = None
    take_profit: Price | None = None
    trailing_stop_loss: bool = False
    request_id: ClientId | None = None
    strategy: StrategyName | None = None

    @model_validator(mode="after")
    def _trailing_needs_stop(self) -> Self:
        if self.trailing_stop_loss and self.stop_loss is None:
            raise ValueError("trailing_stop_loss needs a stop_loss")
        return self
