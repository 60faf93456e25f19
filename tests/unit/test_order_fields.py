"""Specification of the order fields the Open API can send (stop-limit, time in force, stop loss / take
profit, trailing stop loss, comment), of the position commands, and of which connector may send what."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from fixadapter.connectors.base import Capabilities
from fixadapter.connectors.fix.connector import CAPABILITIES as FIX
from fixadapter.connectors.openapi.connector import CAPABILITIES as OPEN_API_CONNECTOR
from fixadapter.engine.capability_check import close_refusal, order_refusal, protection_refusal
from fixadapter.engine.identity import differences, order_terms
from fixadapter.model.enums import OrderType, TimeInForce
from fixadapter.model.requests import AmendPositionProtection, ClosePosition, NewOrder, default_time_in_force

D = Decimal
TIF = TimeInForce
LATER = datetime(2030, 1, 1, tzinfo=UTC)
OPEN_API = Capabilities(
    stop_limit=True,
    order_protection=True,
    order_comment=True,
    time_in_force=frozenset(TimeInForce),
    close_position=True,
    position_protection=True,
    name="Open API",
)


def order(**changes: Any) -> NewOrder:
    values: dict[str, Any] = {"symbol": "EURUSD", "side": "buy", "order_type": "limit", "quantity": 10000}
    values["price"] = D("1.08")
    return NewOrder(**{**values, **changes})


def refused(**changes: Any) -> str:
    with pytest.raises(ValidationError) as error:
        order(**changes)
    return str(error.value)


# -- stop-limit ---------------------------------------------------------------------------------------


def test_a_stop_limit_order_takes_its_trigger_as_stop_price_and_its_limit_as_price() -> None:
    made = order(order_type="stop_limit", stop_price=D("1.09"), price=D("1.095"))
    assert (made.order_type, made.stop_price, made.price) == (OrderType.STOP_LIMIT, D("1.09"), D("1.095"))


@pytest.mark.parametrize("missing", ["price", "stop_price"])
def test_a_stop_limit_order_without_both_prices_is_refused(missing: str) -> None:
    prices = {"price": D("1.095"), "stop_price": D("1.09"), missing: None}
    assert "stop-limit order needs stop_price" in refused(order_type="stop_limit", **prices)


# -- time in force ------------------------------------------------------------------------------------


def test_no_time_in_force_means_the_venues_default_for_the_order() -> None:
    assert order().time_in_force is None
    assert order().effective_time_in_force is TIF.GOOD_TILL_CANCEL
    assert order(expire_time=LATER).effective_time_in_force is TIF.GOOD_TILL_DATE
    market = order(order_type="market", price=None)
    assert market.effective_time_in_force is TIF.IMMEDIATE_OR_CANCEL
    assert default_time_in_force(OrderType.STOP, None) is TIF.GOOD_TILL_CANCEL


def test_good_till_date_needs_an_expire_time() -> None:
    assert "good_till_date needs an expire_time" in refused(time_in_force="good_till_date")
    assert order(time_in_force="good_till_date", expire_time=LATER).time_in_force is TIF.GOOD_TILL_DATE


@pytest.mark.parametrize("tif", ["good_till_cancel", "immediate_or_cancel"])
def test_an_expire_time_with_an_explicit_time_in_force_other_than_good_till_date_is_refused(tif: str) -> None:
    assert "expire_time makes an order good_till_date" in refused(time_in_force=tif, expire_time=LATER)


@pytest.mark.parametrize("tif", ["good_till_cancel", "good_till_date"])
def test_a_market_order_may_only_be_immediate_or_cancel(tif: str) -> None:
    assert "a market order can only be immediate_or_cancel" in refused(
        order_type="market", price=None, time_in_force=tif
    )
    assert order(order_type="market", price=None, time_in_force="immediate_or_cancel").time_in_force


# -- protection and comment ---------------------------------------------------------------------------


def test_stop_loss_and_take_profit_are_prices_or_distances() -> None:
    made = order(stop_loss=D("1.07"), take_profit_distance=D("0.002"), trailing_stop_loss=True)
    assert (made.stop_loss, made.take_profit_distance, made.trailing_stop_loss) == (
        D("1.07"),
        D("0.002"),
        True,
    )


@pytest.mark.parametrize("kind", ["stop_loss", "take_profit"])
def test_a_price_and_a_distance_of_the_same_kind_are_refused_together(kind: str) -> None:
    assert "not both" in refused(**{kind: D("1.07"), f"{kind}_distance": D("0.001")})


@pytest.mark.parametrize("field", ["stop_loss_distance", "take_profit_distance", "stop_loss", "take_profit"])
@pytest.mark.parametrize("value", [D(0), D("-0.001")])
def test_protection_prices_and_distances_are_positive(field: str, value: Decimal) -> None:
    assert "greater than 0" in refused(**{field: value})


def test_a_trailing_stop_loss_needs_a_stop_loss() -> None:
    assert "trailing_stop_loss needs a stop loss" in refused(trailing_stop_loss=True, take_profit=D("1.1"))
    assert order(trailing_stop_loss=True, stop_loss_distance=D("0.001")).trailing_stop_loss


def test_a_comment_is_printable_and_at_most_512_characters() -> None:
    assert order(comment="hedge leg 2 — é").comment == "hedge leg 2 — é"
    assert order(comment="x" * 512).comment == "x" * 512
    assert "at most 512 characters" in refused(comment="x" * 513)
    assert "comment must be printable" in refused(comment="a\x01b")
    assert "comment must be printable" in refused(comment="two\nlines")


# -- position commands --------------------------------------------------------------------------------


def test_a_close_without_quantity_closes_the_whole_position_and_its_id_is_digits() -> None:
    assert ClosePosition(position_id="721").quantity is None
    assert ClosePosition(position_id="721", quantity=5000).quantity == D(5000)
    with pytest.raises(ValidationError):
        ClosePosition(position_id="pos-1")
    with pytest.raises(ValidationError, match="finer than the venue's step"):
        ClosePosition(position_id="721", quantity=D("0.001"))


def test_a_protection_amendment_states_both_prices_and_a_trailing_stop_needs_its_stop_loss() -> None:
    clear = AmendPositionProtection(position_id="721")
    assert (clear.stop_loss, clear.take_profit, clear.trailing_stop_loss) == (None, None, False)
    with pytest.raises(ValidationError, match="trailing_stop_loss needs a stop_loss"):
        AmendPositionProtection(position_id="721", take_profit=D("1.2"), trailing_stop_loss=True)


# -- what each connector may send ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        (
            {"order_type": "stop_limit", "stop_price": D("1.09")},
            "order_type stop_limit: the FIX connector cannot send a stop-limit order",
        ),
        ({"stop_loss": D("1.07")}, "stop_loss: the FIX connector cannot set SL/TP on an order"),
        ({"take_profit": D("1.1")}, "take_profit: the FIX connector cannot set SL/TP on an order"),
        ({"stop_loss_distance": D("0.01")}, "stop_loss_distance: the FIX connector cannot set SL/TP"),
        ({"take_profit_distance": D("0.01")}, "take_profit_distance: the FIX connector cannot set SL/TP"),
        ({"comment": "why"}, "comment: the FIX connector cannot send a comment with an order"),
        (
            {"time_in_force": "immediate_or_cancel"},
            "time_in_force immediate_or_cancel: the FIX connector cannot ask for it (the venue makes this "
            "order good_till_cancel)",
        ),
    ],
)
def test_the_fix_connector_refuses_each_field_it_cannot_send_naming_it(
    changes: dict[str, Any], reason: str
) -> None:
    refusal = order_refusal(order(**changes), FIX)
    assert refusal is not None and refusal.startswith(reason)
    assert refusal.endswith("use an account with the Open API")
    assert order_refusal(order(**changes), OPEN_API) is None


def test_an_explicit_time_in_force_equal_to_the_venues_default_is_taken_by_fix() -> None:
    assert order_refusal(order(time_in_force="good_till_cancel"), FIX) is None
    assert order_refusal(order(time_in_force="good_till_date", expire_time=LATER), FIX) is None
    market = order(order_type="market", price=None, time_in_force="immediate_or_cancel")
    assert order_refusal(market, FIX) is None
    assert order_refusal(order(), FIX) is None


def test_the_fix_connector_declares_none_of_the_open_api_capabilities() -> None:
    assert not (FIX.stop_limit or FIX.order_protection or FIX.order_comment)
    assert not (FIX.close_position or FIX.position_protection) and FIX.time_in_force == frozenset()
    assert close_refusal(FIX) == (
        "close_position: the FIX connector cannot close a position; send an opposite-side order with the "
        "position_id, or use an account with the Open API"
    )
    assert (protection_refusal(FIX) or "").startswith(
        "amend_position_protection: the FIX connector cannot set SL/TP on a position"
    )
    assert close_refusal(OPEN_API) is None and protection_refusal(OPEN_API) is None


@pytest.mark.parametrize("field", ["stop_loss", "take_profit"])
def test_the_open_api_refuses_an_absolute_stop_on_a_market_order_and_says_to_give_a_distance(
    field: str,
) -> None:
    """The proto: absolute stopLoss/takeProfit are "not supported for MARKET orders"; distances are."""
    market = order(order_type="market", price=None, **{field: D("1.0")})
    refusal = order_refusal(market, OPEN_API_CONNECTOR)
    assert refusal is not None and refusal.startswith(
        f"{field}: the Open API connector cannot set an absolute"
    )
    assert f"give {field}_distance" in refusal
    distance = order(order_type="market", price=None, **{f"{field}_distance": D("0.00500")})
    assert order_refusal(distance, OPEN_API_CONNECTOR) is None
    assert order_refusal(order(**{field: D("1.0")}), OPEN_API_CONNECTOR) is None  # a limit order's: taken


# -- a retry with the same ClOrdID ----------------------------------------------------------------------


def test_a_retry_with_other_protection_is_a_different_order() -> None:
    first = order_terms(order(stop_loss=D("1.07")))
    assert differences(first, order_terms(order(stop_loss=D("1.070")))) == []
    assert differences(first, order_terms(order(stop_loss=D("1.06")))) == ["stop_loss 1.07 vs 1.06"]
    assert differences(first, order_terms(order(stop_loss=D("1.07"), trailing_stop_loss=True))) == [
        "trailing_stop_loss none vs true"
    ]


def test_terms_stored_before_the_new_fields_still_match_a_retry_naming_none_of_them() -> None:
    before = ("symbol", "side", "order_type", "quantity", "price", "stop_price", "expire_time", "strategy")
    stored = {name: value for name, value in order_terms(order()).items() if name in before}
    assert differences(stored, order_terms(order())) == []
    assert differences(stored, order_terms(order(comment="new"))) == ["comment none vs new"]
