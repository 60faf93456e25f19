"""What a strategy asks for. Validated at the boundary so a malformed request never reaches a venue."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from fixadapter.model.enums import OrderType, Side

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


Quantity = Annotated[Decimal, Field(gt=0, max_digits=20), AfterValidator(_on_step)]
Price = Annotated[Decimal, Field(gt=0, max_digits=20)]
ClientId = Annotated[str, Field(pattern=ID_PATTERN)]
Expiry = Annotated[datetime | None, AfterValidator(_aware_utc)]


class _Request(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class NewOrder(_Request):
    """A new order. Quantity is in units (EURUSD 1 lot = 100000), never lots.

    `cl_ord_id` is the idempotency key: a strategy that retries with the same id gets the
    existing order back instead of a second one. Left empty, the adapter allocates one.
    `position_id` targets an existing position (hedged accounts): an opposite-side order with it
    closes, without it opens a hedge.
    """

    symbol: Annotated[str, Field(pattern=r"^[A-Za-z0-9._/#\-]{1,32}$")]
    side: Side
    order_type: OrderType
    quantity: Quantity
    price: Price | None = None
    stop_price: Price | None = None
    expire_time: Expiry = None
    position_id: Annotated[str, Field(pattern=r"^[0-9]{1,20}$")] | None = None
    # Printable ASCII only: a SOH in a label would end up as an extra FIX field (e.g. a 721).
    label: Annotated[str, Field(pattern=r"^[\x20-\x7e]{1,100}$")] | None = None
    cl_ord_id: ClientId | None = None
    strategy: Annotated[str, Field(pattern=ID_PATTERN)] | None = None

    @model_validator(mode="after")
    def _prices_match_type(self) -> Self:
        kind = self.order_type
        if kind is OrderType.LIMIT and (self.price is None or self.stop_price is not None):
            raise ValueError("a limit order needs price and no stop_price")
        if kind is OrderType.STOP and (self.stop_price is None or self.price is not None):
            raise ValueError("a stop order needs stop_price and no price")
        if kind is OrderType.MARKET:
            if self.price is not None or self.stop_price is not None:
                raise ValueError("a market order takes neither price nor stop_price")
            if self.expire_time is not None:
                raise ValueError("a market order cannot have an expire_time (it is immediate-or-cancel)")
        return self


class CancelOrder(_Request):
    """Cancel a working order, named by the ClOrdID it was submitted with."""

    cl_ord_id: ClientId
    request_id: ClientId | None = None


class ReplaceOrder(_Request):
    """Amend a working limit or stop order: quantity is the new total, prices as for NewOrder."""

    cl_ord_id: ClientId
    quantity: Quantity
    price: Price | None = None
    stop_price: Price | None = None
    expire_time: Expiry = None
    request_id: ClientId | None = None

    @model_validator(mode="after")
    def _one_price(self) -> Self:
        if self.price is not None and self.stop_price is not None:
            raise ValueError("give price (limit) or stop_price (stop), not both")
        return self
