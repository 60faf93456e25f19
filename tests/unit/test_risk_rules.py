"""Specification of pre-trade risk checks: each rule refuses with its name and the values it compared,
exactly-at-the-limit passes, replaces are checked on their new terms, and no section means no limits."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from fixadapter.errors import OrderRejected, RiskRejected
from fixadapter.model.enums import OrderStatus, OrderType, Side
from fixadapter.model.market import Book, PriceLevel, Quote
from fixadapter.model.orders import Order
from fixadapter.model.requests import NewOrder, ReplaceOrder
from fixadapter.risk import KillSwitch, OpenOrders, RiskConfig, RiskEngine, Rule
from tests.unit.conftest import T0, make_order

D = Decimal
NO_ORDERS = OpenOrders()
EURUSD_QUOTE = Quote(symbol_id=1, symbol="EURUSD", time=T0, bid=D("1.09990"), ask=D("1.10010"), mid=D("1.1"))


def engine(risk: dict[str, Any] | None = None, **kwargs: Any) -> RiskEngine:
    return RiskEngine(RiskConfig.model_validate(risk or {}), **kwargs)


def new_order(**changes: Any) -> NewOrder:
    values: dict[str, Any] = {"symbol": "EURUSD", "side": "buy", "order_type": "market", "quantity": "10000"}
    return NewOrder(**{**values, **changes})


def limit(price: str, quantity: str = "10000", **changes: Any) -> NewOrder:
    return new_order(order_type="limit", price=price, quantity=quantity, **changes)


def check(
    risk: RiskEngine,
    request: NewOrder | ReplaceOrder,
    *,
    strategy: str = "momo",
    open_orders: OpenOrders = NO_ORDERS,
    last_quote: Quote | Book | None = EURUSD_QUOTE,
    now: float = 0.0,
    original: Order | None = None,
) -> None:
    risk.check(
        request, strategy=strategy, open_orders=open_orders, last_quote=last_quote, now=now, original=original
    )


def refusal(risk: RiskEngine, request: NewOrder | ReplaceOrder, **kwargs: Any) -> RiskRejected:
    with pytest.raises(RiskRejected) as caught:
        check(risk, request, **kwargs)
    return caught.value


# -- no limits -----------------------------------------------------------------------------------


def test_without_a_risk_section_anything_valid_passes() -> None:
    risk = engine()

    check(risk, new_order(quantity="1000000000"), last_quote=None)
    check(risk, limit("99.5"), open_orders=OpenOrders(total=10_000, per_strategy={"momo": 10_000}))
    for tick in range(1000):
        check(risk, new_order(), now=0.0 + tick * 1e-6)


def test_a_risk_reject_is_an_order_rejected_with_rule_and_values() -> None:
    error = refusal(
        engine({"symbols": {"EURUSD": {"max_quantity": 1_000_000}}}), new_order(quantity="2000000")
    )

    assert isinstance(error, OrderRejected)
    assert error.rule == Rule.MAX_QUANTITY == "max_quantity"
    assert error.values == {"quantity": D("2000000"), "limit": D("1000000"), "symbol": "EURUSD"}
    assert str(error) == "max_quantity: 2000000 > 1000000 for EURUSD"


# -- max quantity --------------------------------------------------------------------------------


def test_max_quantity_passes_exactly_at_the_limit_and_refuses_above() -> None:
    risk = engine({"symbols": {"EURUSD": {"max_quantity": 1_000_000}}})

    check(risk, new_order(quantity="1000000"))
    error = refusal(risk, new_order(quantity="1000000.01"))

    assert str(error) == "max_quantity: 1000000.01 > 1000000 for EURUSD"


def test_symbol_limits_are_per_symbol_and_case_insensitive() -> None:
    risk = engine({"symbols": {"eurusd": {"max_quantity": 1000}}})

    check(risk, new_order(symbol="GBPUSD", quantity="5000"), last_quote=None)
    assert refusal(risk, new_order(symbol="EurUsd", quantity="5000")).rule == Rule.MAX_QUANTITY


def test_symbol_defaults_apply_to_unlisted_symbols_and_listed_ones_inherit_unset_keys() -> None:
    risk = engine(
        {
            "symbol_defaults": {"max_quantity": 1000, "max_notional": 100_000},
            "symbols": {"EURUSD": {"max_quantity": 5000}},
        }
    )

    assert str(refusal(risk, new_order(symbol="XAUUSD", quantity="1001"))).startswith(
        "max_quantity: 1001 > 1000"
    )
    check(risk, limit("1.1", quantity="5000"))  # its own max_quantity
    error = refusal(risk, limit("20.01", quantity="5000"))  # the inherited max_notional

    assert str(error) == "max_notional: 5000 x 20.01 = 100050 > 100000 for EURUSD"


def test_a_listed_symbol_can_lift_an_inherited_limit_with_null() -> None:
    risk = engine({"symbol_defaults": {"max_quantity": 1000}, "symbols": {"EURUSD": {"max_quantity": None}}})

    check(risk, new_order(quantity="1000000"))


def test_symbol_name_resolution_lets_ids_meet_their_symbols_limits() -> None:
    names = {"1": "EURUSD"}
    risk = engine(
        {"symbols": {"EURUSD": {"max_quantity": 1000}}}, symbol_name=lambda s: names.get(s, s.upper())
    )

    assert (
        str(refusal(risk, new_order(symbol="1", quantity="2000"))) == "max_quantity: 2000 > 1000 for EURUSD"
    )


# -- max notional --------------------------------------------------------------------------------


def test_max_notional_of_a_limit_order_uses_its_price_and_passes_exactly_at_the_limit() -> None:
    risk = engine({"symbols": {"EURUSD": {"max_notional": 1_100_000}}})

    check(risk, limit("1.1", quantity="1000000"))
    error = refusal(risk, limit("1.10001", quantity="1000000"))

    assert error.rule == Rule.MAX_NOTIONAL
    assert str(error) == "max_notional: 1000000 x 1.10001 = 1100010 > 1100000 for EURUSD"
    assert error.values["notional"] == D("1100010.00000")


def test_max_notional_of_a_stop_order_uses_its_stop_price() -> None:
    risk = engine({"symbols": {"EURUSD": {"max_notional": 1000}}})

    error = refusal(risk, new_order(order_type="stop", stop_price="1.2", quantity="1000"))

    assert str(error) == "max_notional: 1000 x 1.2 = 1200 > 1000 for EURUSD"


def test_max_notional_of_a_market_order_uses_the_side_it_would_meet() -> None:
    risk = engine({"symbols": {"EURUSD": {"max_notional": 11_000}}})

    check(risk, new_order(side="sell", quantity="10000.9"))  # 10000.9 x bid 1.0999 = 10999.98
    error = refusal(risk, new_order(side="buy", quantity="10000"))  # x ask 1.1001

    assert str(error) == "max_notional: 10000 x 1.1001 = 11001 > 11000 for EURUSD"


def test_max_notional_of_a_market_order_without_a_quote_is_refused_by_default() -> None:
    risk = engine({"symbols": {"EURUSD": {"max_notional": 11_000}}})

    error = refusal(risk, new_order(), last_quote=None)

    assert error.rule == Rule.MAX_NOTIONAL
    assert "no quote for EURUSD yet" in str(error) and "to value a market order" in str(error)
    assert "without_quote is refuse" in str(error)


def test_max_notional_without_a_quote_passes_when_configured_to_allow() -> None:
    risk = engine({"symbols": {"EURUSD": {"max_notional": 11_000, "without_quote": "allow"}}})

    check(risk, new_order(quantity="1000000"), last_quote=None)


def test_a_book_serves_as_the_quote_too() -> None:
    book = Book(
        symbol_id=1,
        symbol="EURUSD",
        time=T0,
        bids=(PriceLevel(D("1.0999"), D("1000000")),),
        asks=(PriceLevel(D("1.1001"), D("1000000")),),
    )
    risk = engine({"symbols": {"EURUSD": {"max_notional": 11_000, "collar_percent": 1}}})

    assert str(refusal(risk, new_order(), last_quote=book)).startswith("max_notional: 10000 x 1.1001 =")
    assert "from mid 1.1 >" in str(refusal(risk, limit("1.2", "10"), last_quote=book))


# -- price collar --------------------------------------------------------------------------------


COLLARED = {"symbols": {"EURUSD": {"collar_percent": "0.5"}}}


def test_collar_passes_prices_exactly_on_its_edges() -> None:
    risk = engine(COLLARED)

    check(risk, limit("1.1055"))  # mid 1.1 + 0.5 %
    check(risk, limit("1.0945"))  # mid 1.1 - 0.5 %
    check(risk, new_order(order_type="stop", stop_price="1.1055"))


def test_collar_refuses_a_limit_price_beyond_it_naming_price_mid_and_distance() -> None:
    error = refusal(engine(COLLARED), limit("1.1056"))

    assert error.rule == Rule.PRICE_COLLAR
    assert str(error) == "price_collar: limit price 1.1056 is 0.5091% from mid 1.1 > 0.5% for EURUSD"
    assert error.values["mid"] == D("1.1") and error.values["limit_percent"] == D("0.5")


def test_collar_refuses_a_stop_price_beyond_it_on_either_side() -> None:
    error = refusal(engine(COLLARED), new_order(order_type="stop", side="sell", stop_price="1.09"))

    assert str(error).startswith("price_collar: stop price 1.09 is 0.9091% from mid 1.1 > 0.5%")


def test_collar_computes_the_mid_when_the_quote_has_none() -> None:
    quote = EURUSD_QUOTE.model_copy(update={"mid": None})

    check(engine(COLLARED), limit("1.1055"), last_quote=quote)


def test_collar_does_not_apply_to_market_orders() -> None:
    check(engine(COLLARED), new_order(), last_quote=None)


def test_collar_without_a_quote_refuses_by_default_with_a_clear_reason() -> None:
    error = refusal(engine(COLLARED), limit("1.1"), last_quote=None)

    assert error.rule == Rule.PRICE_COLLAR
    assert str(error) == (
        "price_collar: no quote for EURUSD yet (or it is stale) to collar the limit price, "
        "and without_quote is refuse"
    )


def test_a_stale_quote_counts_as_no_quote() -> None:
    stale = EURUSD_QUOTE.model_copy(update={"stale": True})

    assert refusal(engine(COLLARED), limit("1.1"), last_quote=stale).rule == Rule.PRICE_COLLAR


def test_a_one_sided_quote_counts_as_no_quote_for_the_collar() -> None:
    one_sided = EURUSD_QUOTE.model_copy(update={"ask": None, "mid": None})

    assert refusal(engine(COLLARED), limit("1.1"), last_quote=one_sided).rule == Rule.PRICE_COLLAR


def test_collar_without_a_quote_passes_when_configured_to_allow() -> None:
    risk = engine({"symbols": {"EURUSD": {"collar_percent": "0.5", "without_quote": "allow"}}})

    check(risk, limit("9.99"), last_quote=None)


def test_a_quote_for_another_symbol_is_a_caller_bug() -> None:
    gbpusd = EURUSD_QUOTE.model_copy(update={"symbol": "GBPUSD"})

    with pytest.raises(ValueError, match="quote passed is for GBPUSD"):
        check(engine(COLLARED), limit("1.1"), last_quote=gbpusd)


# -- open orders ---------------------------------------------------------------------------------


def test_max_open_orders_counts_this_one_and_passes_exactly_at_the_limit() -> None:
    risk = engine({"max_open_orders": 3})

    check(risk, new_order(), open_orders=OpenOrders(total=2))
    error = refusal(risk, new_order(), open_orders=OpenOrders(total=3))

    assert error.rule == Rule.MAX_OPEN_ORDERS
    assert str(error) == "max_open_orders: 4 > 3 open orders (this one included)"
    assert error.values == {"open": 3, "limit": 3}


def test_max_open_orders_per_strategy_counts_only_that_strategy() -> None:
    risk = engine({"strategy_defaults": {"max_open_orders": 2}})
    open_orders = OpenOrders(total=11, per_strategy={"momo": 2, "carry": 1, "other": 8})

    check(risk, new_order(), strategy="carry", open_orders=open_orders)
    error = refusal(risk, new_order(), strategy="momo", open_orders=open_orders)

    assert error.rule == Rule.MAX_OPEN_ORDERS_PER_STRATEGY
    assert (
        str(error)
        == "max_open_orders_per_strategy: 3 > 2 open orders for strategy 'momo' (this one included)"
    )


def test_a_listed_strategy_has_its_own_open_order_limit() -> None:
    risk = engine(
        {"strategy_defaults": {"max_open_orders": 2}, "strategies": {"carry": {"max_open_orders": 10}}}
    )
    open_orders = OpenOrders(total=9, per_strategy={"carry": 9})

    check(risk, new_order(), strategy="carry", open_orders=open_orders)


# -- allowed symbols -----------------------------------------------------------------------------


def test_allowed_symbols_refuses_other_symbols_naming_the_allowed_ones() -> None:
    risk = engine({"strategies": {"momo": {"allowed_symbols": ["eurusd", "USDJPY"]}}})

    check(risk, new_order(symbol="EURUSD"))
    error = refusal(risk, new_order(symbol="GBPUSD"), last_quote=None)

    assert error.rule == Rule.ALLOWED_SYMBOLS
    assert (
        str(error) == "allowed_symbols: GBPUSD is not allowed for strategy 'momo' (allowed: EURUSD, USDJPY)"
    )


def test_allowed_symbols_absent_means_every_symbol_and_applies_per_strategy() -> None:
    risk = engine({"strategies": {"momo": {"allowed_symbols": ["EURUSD"]}}})

    check(risk, new_order(symbol="XAUUSD"), strategy="carry", last_quote=None)


def test_an_empty_allowed_list_allows_nothing() -> None:
    error = refusal(engine({"strategies": {"off": {"allowed_symbols": []}}}), new_order(), strategy="off")

    assert str(error).endswith("(allowed: none)")


# -- orders per second ---------------------------------------------------------------------------


def test_rate_limit_allows_n_in_a_second_and_refuses_the_next() -> None:
    risk = engine({"strategy_defaults": {"max_orders_per_second": 3}})

    for now in (10.0, 10.1, 10.2):
        check(risk, new_order(), now=now)
    error = refusal(risk, new_order(), now=10.999)

    assert error.rule == Rule.MAX_ORDERS_PER_SECOND
    assert str(error) == "max_orders_per_second: 4 > 3 orders in 1 s for strategy 'momo'"


def test_rate_limit_window_slides_one_second_after_each_accepted_order() -> None:
    risk = engine({"strategy_defaults": {"max_orders_per_second": 2}})
    check(risk, new_order(), now=0.0)
    check(risk, new_order(), now=0.5)

    refusal(risk, new_order(), now=0.999)
    check(risk, new_order(), now=1.0)  # the order at 0.0 has left the window: exactly one second
    refusal(risk, new_order(), now=1.4)  # 0.5 and 1.0 are still in it
    check(risk, new_order(), now=1.5)


def test_a_refused_order_does_not_use_up_the_rate() -> None:
    risk = engine(
        {"strategy_defaults": {"max_orders_per_second": 1}, "symbols": {"EURUSD": {"max_quantity": 1}}}
    )

    refusal(risk, new_order(quantity="2"), now=0.0)
    check(risk, new_order(quantity="1"), now=0.0)


def test_rate_limit_is_per_strategy() -> None:
    risk = engine(
        {
            "strategy_defaults": {"max_orders_per_second": 1},
            "strategies": {"hft": {"max_orders_per_second": 3}},
        }
    )

    check(risk, new_order(), strategy="a", now=0.0)
    check(risk, new_order(), strategy="b", now=0.0)
    refusal(risk, new_order(), strategy="a", now=0.1)
    for now in (0.0, 0.1, 0.2):
        check(risk, new_order(), strategy="hft", now=now)


# -- replaces ------------------------------------------------------------------------------------

WORKING_LIMIT = make_order(
    cl_ord_id="ord-7", order_type=OrderType.LIMIT, price=D("1.1"), status=OrderStatus.NEW, side=Side.BUY
)


def test_a_replace_is_checked_on_its_new_quantity() -> None:
    risk = engine({"symbols": {"EURUSD": {"max_quantity": 20_000}}})

    check(risk, ReplaceOrder(cl_ord_id="ord-7", quantity="20000"), original=WORKING_LIMIT)
    error = refusal(risk, ReplaceOrder(cl_ord_id="ord-7", quantity="20001"), original=WORKING_LIMIT)

    assert str(error) == "max_quantity: 20001 > 20000 for EURUSD"


def test_a_replace_is_checked_on_its_new_price_or_else_the_orders_price() -> None:
    risk = engine({"symbols": {"EURUSD": {"collar_percent": 1, "max_notional": 11_000}}})

    error = refusal(
        risk, ReplaceOrder(cl_ord_id="ord-7", quantity="9000", price="1.2"), original=WORKING_LIMIT
    )
    assert error.rule == Rule.PRICE_COLLAR
    error = refusal(risk, ReplaceOrder(cl_ord_id="ord-7", quantity="10001"), original=WORKING_LIMIT)
    assert str(error) == "max_notional: 10001 x 1.1 = 11001.1 > 11000 for EURUSD"


def test_a_replace_of_a_stop_order_takes_its_stop_price_however_given() -> None:
    stop = WORKING_LIMIT.model_copy(
        update={"order_type": OrderType.STOP, "price": None, "stop_price": D("1.1")}
    )
    risk = engine(COLLARED)

    check(risk, ReplaceOrder(cl_ord_id="ord-7", quantity="10000"), original=stop)
    assert refusal(risk, ReplaceOrder(cl_ord_id="ord-7", quantity="10000", stop_price="1.2"), original=stop)
    assert refusal(risk, ReplaceOrder(cl_ord_id="ord-7", quantity="10000", price="1.2"), original=stop)


def test_a_replace_does_not_count_as_another_open_order_but_counts_towards_the_rate() -> None:
    risk = engine({"max_open_orders": 1, "strategy_defaults": {"max_orders_per_second": 1}})
    replace = ReplaceOrder(cl_ord_id="ord-7", quantity="10000", price="1.1")

    check(risk, replace, open_orders=OpenOrders(total=1), original=WORKING_LIMIT, now=0.0)
    assert refusal(risk, replace, original=WORKING_LIMIT, now=0.5).rule == Rule.MAX_ORDERS_PER_SECOND


def test_a_replace_respects_the_strategys_allowed_symbols() -> None:
    risk = engine({"strategies": {"momo": {"allowed_symbols": ["USDJPY"]}}})

    error = refusal(risk, ReplaceOrder(cl_ord_id="ord-7", quantity="10000"), original=WORKING_LIMIT)

    assert error.rule == Rule.ALLOWED_SYMBOLS


def test_a_replace_needs_the_order_it_amends() -> None:
    with pytest.raises(ValueError, match="needs that order"):
        check(engine(), ReplaceOrder(cl_ord_id="ord-7", quantity="1"))
    with pytest.raises(ValueError, match="needs that order"):
        check(engine(), ReplaceOrder(cl_ord_id="ord-8", quantity="1"), original=WORKING_LIMIT)


# -- kill switch ---------------------------------------------------------------------------------


def test_an_engaged_kill_switch_blocks_new_orders_and_replaces_before_any_other_rule() -> None:
    switch = KillSwitch()
    risk = engine({"symbols": {"EURUSD": {"max_quantity": 1}}}, kill_switch=switch)
    switch.engage(by="ops:alice", reason="runaway strategy", at=T0)

    error = refusal(risk, new_order(quantity="5"))
    assert error.rule == Rule.KILL_SWITCH
    assert str(error) == (
        "kill_switch: engaged by ops:alice since 2024-05-06T09:30:00+00:00: runaway strategy; "
        "no new orders or replaces until it is released"
    )
    assert error.values == {"engaged_by": "ops:alice", "reason": "runaway strategy", "since": T0}
    replace = ReplaceOrder(cl_ord_id="ord-7", quantity="1")
    assert refusal(risk, replace, original=WORKING_LIMIT).rule == Rule.KILL_SWITCH


def test_a_released_kill_switch_lets_orders_through_again() -> None:
    risk = engine()
    risk.kill_switch.engage(by="ops", reason="test", at=T0)
    refusal(risk, new_order())

    risk.kill_switch.release(by="ops", reason="all clear", at=T0)

    check(risk, new_order())
