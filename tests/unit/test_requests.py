"""Specification of request validation: a malformed request is refused before it can reach a venue,
with a message naming what is wrong."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from fixadapter.model.enums import OrderType, Side
from fixadapter.model.requests import CancelOrder, NewOrder, ReplaceOrder

D = Decimal
TOMORROW = datetime(2025, 1, 2, 10, 0, tzinfo=UTC)


def new_order(**changes: Any) -> NewOrder:
    values: dict[str, Any] = {"symbol": "EURUSD", "side": "buy", "order_type": "market", "quantity": "10000"}
    return NewOrder(**{**values, **changes})


def test_new_order_market_is_accepted() -> None:
    order = new_order(label="my-label", cl_ord_id="ord-0001", strategy="mean.rev:1")

    assert (order.side, order.order_type, order.quantity) == (Side.BUY, OrderType.MARKET, D("10000"))


def test_new_order_limit_with_price_and_expiry_is_accepted() -> None:
    order = new_order(order_type="limit", price="1.08250", expire_time=TOMORROW, position_id="47888826")

    assert order.price == D("1.08250")
    assert order.expire_time == TOMORROW


def test_new_order_stop_with_stop_price_is_accepted() -> None:
    order = new_order(order_type="stop", side="sell", stop_price="1.075")

    assert order.stop_price == D("1.075")


def test_new_order_quantity_on_the_hundredth_step_is_accepted() -> None:
    assert new_order(quantity="1000.01").quantity == D("1000.01")


def test_new_order_expire_time_in_another_zone_is_converted_to_utc() -> None:
    paris = timezone(timedelta(hours=1))

    order = new_order(order_type="limit", price="1.08", expire_time=datetime(2025, 1, 2, 11, 0, tzinfo=paris))

    assert order.expire_time == TOMORROW
    assert order.expire_time.tzinfo is UTC


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"order_type": "limit"}, "a limit order needs price"),
        (
            {"order_type": "limit", "price": "1.08", "stop_price": "1.07"},
            "a limit order needs price and no stop_price",
        ),
        (
            {"order_type": "stop", "stop_price": "1.07", "price": "1.08"},
            "a stop order needs stop_price and no price",
        ),
        ({"order_type": "stop"}, "a stop order needs stop_price"),
        ({"price": "1.08"}, "a market order takes neither price nor stop_price"),
        ({"stop_price": "1.08"}, "a market order takes neither price nor stop_price"),
        ({"expire_time": TOMORROW}, "a market order cannot have an expire_time"),
    ],
    ids=[
        "limit-without-price",
        "limit-with-stop-price",
        "stop-with-price",
        "stop-without-stop-price",
        "market-with-price",
        "market-with-stop-price",
        "market-with-expire-time",
    ],
)
def test_new_order_prices_not_matching_the_type_are_rejected(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        new_order(**changes)


@pytest.mark.parametrize("quantity", ["1000.001", "0.005", "10000.5001"])
def test_new_order_quantity_finer_than_the_step_is_rejected(quantity: str) -> None:
    with pytest.raises(ValidationError, match=r"quantity\n.*finer than the venue's step of 0\.01"):
        new_order(quantity=quantity)


@pytest.mark.parametrize("quantity", ["0", "-1000"])
def test_new_order_quantity_not_positive_is_rejected(quantity: str) -> None:
    with pytest.raises(ValidationError, match=r"quantity\n.*greater than 0"):
        new_order(quantity=quantity)


def test_new_order_naive_expire_time_is_rejected() -> None:
    with pytest.raises(ValidationError, match=r"expire_time must carry a timezone"):
        new_order(order_type="limit", price="1.08", expire_time=datetime(2025, 1, 2, 10, 0))


def test_new_order_unknown_field_is_rejected() -> None:
    with pytest.raises(ValidationError, match=r"iceberg_quantity\n.*Extra inputs are not permitted"):
        new_order(iceberg_quantity="1000")


@pytest.mark.parametrize("cl_ord_id", ["has space", "pipe|id", "soh\x01id", "x" * 51, "é"])
def test_new_order_cl_ord_id_with_bad_characters_is_rejected(cl_ord_id: str) -> None:
    with pytest.raises(ValidationError, match=r"cl_ord_id\n.*should match pattern"):
        new_order(cl_ord_id=cl_ord_id)


@pytest.mark.parametrize("position_id", ["abc", "12.5", ""])
def test_new_order_position_id_not_numeric_is_rejected(position_id: str) -> None:
    with pytest.raises(ValidationError, match=r"position_id"):
        new_order(position_id=position_id)


def test_new_order_unknown_side_is_rejected() -> None:
    with pytest.raises(ValidationError, match=r"side\n.*'buy' or 'sell'"):
        new_order(side="short")


def test_new_order_is_immutable() -> None:
    order = new_order()

    with pytest.raises(ValidationError, match="frozen"):
        order.quantity = D("1")  # type: ignore[misc]


def test_cancel_order_names_the_order_by_cl_ord_id() -> None:
    assert CancelOrder(cl_ord_id="ord-0003").cl_ord_id == "ord-0003"


def test_replace_order_with_new_price_is_accepted() -> None:
    request = ReplaceOrder(cl_ord_id="ord-0003", quantity="20000", price="1.1")

    assert (request.quantity, request.price, request.stop_price) == (D("20000"), D("1.1"), None)


def test_replace_order_may_give_both_prices_for_a_stop_limit_order_the_engine_checks_the_type() -> None:
    request = ReplaceOrder(cl_ord_id="ord-0003", quantity="20000", price="1.1", stop_price="1.07")

    assert (request.price, request.stop_price) == (D("1.1"), D("1.07"))


def test_replace_order_quantity_off_step_is_rejected() -> None:
    with pytest.raises(ValidationError, match=r"quantity\n.*finer than the venue's step"):
        ReplaceOrder(cl_ord_id="ord-0003", quantity="20000.001", price="1.1")


@pytest.mark.parametrize("label", ["desk-7\x01721=47888826", "tab\there", "é"])
def test_a_label_with_control_or_non_ascii_characters_is_refused(label: str) -> None:
    with pytest.raises(ValidationError, match="label"):
        NewOrder(symbol="EURUSD", side="buy", order_type="market", quantity=1000, label=label)
