"""Conformance: orders go out, and the venue's answers come back as the same normalized events whatever the
connector (submit, fill, partial fill, cancel, replace)."""

from __future__ import annotations

from decimal import Decimal

from fixadapter.model.enums import OrderEventKind, OrderStatus, OrderType, Side
from fixadapter.model.requests import ReplaceOrder

from .conftest import Harness, Trading
from .orders import FAR_BELOW, limit, market

K = OrderEventKind


def test_a_market_order_is_submitted_accepted_and_filled_in_full_with_one_fill(harness: Harness) -> None:
    """A market order: submitted, accepted with the venue's order id, then filled in full; the fill carries
    the quantity and a price, and the order's average price is that price."""

    async def scenario(t: Trading) -> None:
        order = await t.adapter.submit(market(quantity=10000, label="conformance"))
        assert (order.status, order.order_type, order.side) == (
            OrderStatus.PENDING_NEW,
            OrderType.MARKET,
            Side.BUY,
        )
        events = await t.journal.reached(order.cl_ord_id)
        assert [e.kind for e in events] == [K.SUBMITTED, K.ACCEPTED, K.FILLED]
        accepted, filled = events[1], events[2]
        assert accepted.order.status is OrderStatus.NEW and accepted.order.order_id is not None
        assert filled.order.status is OrderStatus.FILLED
        assert filled.fill is not None and filled.fill.quantity == 10000 and filled.fill.price > 0
        assert filled.fill.order_id == accepted.order.order_id
        assert (filled.order.cum_qty, filled.order.leaves_qty) == (Decimal(10000), Decimal(0))
        assert filled.order.avg_px == filled.fill.price
        assert filled.order.position_id is not None
        assert await t.adapter.order(order.cl_ord_id) == filled.order

    harness.run(scenario)


def test_a_limit_order_below_the_market_is_accepted_and_rests_working(harness: Harness) -> None:
    """A limit order the market does not reach is accepted and stays working (new, nothing filled), with
    the venue's order id and its own price and quantity."""

    async def scenario(t: Trading) -> None:
        order = await t.adapter.submit(limit(FAR_BELOW, quantity=20000))
        events = await t.journal.reached(order.cl_ord_id, OrderStatus.NEW)
        assert [e.kind for e in events] == [K.SUBMITTED, K.ACCEPTED]
        resting = events[-1].order
        assert resting.order_id is not None and resting.is_open
        assert (resting.price, resting.quantity, resting.cum_qty) == (FAR_BELOW, Decimal(20000), Decimal(0))
        assert (await t.adapter.order(order.cl_ord_id)) == resting

    harness.run(scenario)


def test_a_resting_limit_order_fills_at_its_price_or_better_once_the_market_crosses(harness: Harness) -> None:
    """A buy limit order rests until the ask comes down to it, then fills in full at no more than its
    price."""

    async def scenario(t: Trading) -> None:
        price = Decimal("1.05000")
        order = await t.adapter.submit(limit(price))
        resting = (await t.journal.reached(order.cl_ord_id, OrderStatus.NEW))[-1].order
        await t.venue.hold_prices(resting.symbol_id, bid="1.04980", ask="1.04990")
        events = await t.journal.reached(order.cl_ord_id)
        filled = events[-1]
        assert filled.kind is K.FILLED and filled.order.status is OrderStatus.FILLED
        assert filled.fill is not None and filled.fill.quantity == 10000
        assert filled.fill.price <= price and filled.order.avg_px == filled.fill.price

    harness.run(scenario)


def test_a_market_order_filled_in_parts_reports_each_part_and_ends_filled(harness: Harness) -> None:
    """A market order the venue executes in four parts: each part is a partial fill with its quantity and
    the running cumulative quantity, the last one fills the order; the fills add up to its quantity."""

    async def scenario(t: Trading) -> None:
        await t.venue.fill_market_orders_in(4)
        order = await t.adapter.submit(market(quantity=40000))
        events = await t.journal.reached(order.cl_ord_id)
        assert [e.kind for e in events] == [K.SUBMITTED, K.ACCEPTED] + [K.PARTIALLY_FILLED] * 3 + [K.FILLED]
        fills = [e.fill for e in events if e.fill is not None]
        assert [f.quantity for f in fills] == [10000] * 4
        assert [e.order.cum_qty for e in events[2:]] == [10000, 20000, 30000, 40000]
        assert all(e.order.status is OrderStatus.PARTIALLY_FILLED for e in events[2:5])
        final = events[-1].order
        assert final.status is OrderStatus.FILLED and final.cum_qty == 40000 and final.avg_px is not None
        assert len({f.fill_id for f in fills}) == 4  # four distinct fills, none counted twice

    harness.run(scenario)


def test_a_working_order_is_cancelled_on_request(harness: Harness) -> None:
    """A cancel of a working order: cancel requested (pending), then cancelled by the venue, nothing
    filled."""

    async def scenario(t: Trading) -> None:
        order = await t.adapter.submit(limit())
        await t.journal.reached(order.cl_ord_id, OrderStatus.NEW)
        pending = await t.adapter.cancel(order.cl_ord_id)
        assert pending.status is OrderStatus.PENDING_CANCEL
        events = await t.journal.reached(order.cl_ord_id)
        assert [e.kind for e in events] == [K.SUBMITTED, K.ACCEPTED, K.CANCEL_REQUESTED, K.CANCELLED]
        cancelled = events[-1].order
        assert cancelled.status is OrderStatus.CANCELLED and cancelled.cum_qty == 0
        assert cancelled.pending_request_id is None
        assert (await t.venue.order(order.cl_ord_id) or {}).get("status") == "cancelled"

    harness.run(scenario)


def test_a_working_limit_order_is_replaced_to_a_new_price_then_to_a_new_quantity(harness: Harness) -> None:
    """A replace amends a working limit order in place: first its price (same quantity), then its quantity
    (same price); each is requested (pending), then replaced, and the order stays working with the new
    terms, as the venue holds it."""

    async def scenario(t: Trading) -> None:
        order = await t.adapter.submit(limit(FAR_BELOW, quantity=10000))
        await t.journal.reached(order.cl_ord_id, OrderStatus.NEW)

        pending = await t.adapter.replace(
            ReplaceOrder(cl_ord_id=order.cl_ord_id, quantity=10000, price=Decimal("0.91"))
        )
        assert pending.status is OrderStatus.PENDING_REPLACE
        repriced = await t.journal.event(order.cl_ord_id, lambda e: e.kind is K.REPLACED, "the first replace")
        assert repriced.order.status is OrderStatus.NEW
        assert (repriced.order.price, repriced.order.quantity) == (Decimal("0.91"), Decimal(10000))

        await t.adapter.replace(
            ReplaceOrder(cl_ord_id=order.cl_ord_id, quantity=30000, price=Decimal("0.91"))
        )
        resized = await t.journal.event(
            order.cl_ord_id,
            lambda e: e.kind is K.REPLACED and e.order.quantity == 30000,
            "the second replace",
        )
        assert resized.order.status is OrderStatus.NEW and resized.order.price == Decimal("0.91")
        assert resized.order.order_id == repriced.order.order_id  # amended, not a new order
        kinds = [e.kind for e in t.journal.of(order.cl_ord_id)]
        assert kinds == [
            K.SUBMITTED,
            K.ACCEPTED,
            K.REPLACE_REQUESTED,
            K.REPLACED,
            K.REPLACE_REQUESTED,
            K.REPLACED,
        ]
        held = await t.venue.order(order.cl_ord_id)
        assert held is not None and held["status"] == "new"
        assert (Decimal(held["price"]), Decimal(held["quantity"])) == (Decimal("0.91"), Decimal(30000))

    harness.run(scenario)
