"""Conformance: after the trading route is cut and comes back, the adapter asks the venue for everything
(mass status) and every order ends in its true state before new orders go out, whatever the connector.

The venue cuts the route itself (the simulator's back office). What changed "while we were away" is made
certain, not raced: the venue front sends no report of the change (the venue acts, the adapter never
hears), the venue's own record shows the change done, and only then is the route cut. To the adapter that
is exactly an order that moved while it was disconnected; only reconciliation can tell it.
"""

from __future__ import annotations

from decimal import Decimal

from fixadapter.model.enums import OrderEventKind, OrderStatus, PositionSide

from .conftest import Harness, Trading
from .orders import FAR_BELOW, limit, market

K = OrderEventKind


def test_an_order_still_working_across_a_reconnect_is_still_working_after_it_and_can_be_cancelled(
    harness: Harness,
) -> None:
    """A working order the venue keeps across the cut is reconciled as still working (no change published),
    and after the reconnect it is cancelled like any working order (the venue still knows it by its id)."""

    async def scenario(t: Trading) -> None:
        order = await t.adapter.submit(limit(FAR_BELOW))
        before = (await t.journal.reached(order.cl_ord_id, OrderStatus.NEW))[-1].order
        await t.cut_trading_route()
        assert not t.adapter.ready
        await t.ready()
        after = await t.order(order.cl_ord_id)
        assert after.status is OrderStatus.NEW
        assert (after.order_id, after.quantity, after.price, after.cum_qty) == (
            before.order_id,
            before.quantity,
            before.price,
            Decimal(0),
        )
        assert [e.kind for e in t.journal.of(order.cl_ord_id)] == [K.SUBMITTED, K.ACCEPTED]
        await t.adapter.cancel(order.cl_ord_id)
        assert (await t.journal.reached(order.cl_ord_id))[-1].order.status is OrderStatus.CANCELLED

    harness.run(scenario)


def test_a_working_order_filled_unheard_is_filled_after_the_reconnect_with_its_fill(harness: Harness) -> None:
    """A resting order the venue fills without the adapter hearing of it is learnt at the reconnect: it ends
    filled with a fill of its whole quantity at the venue's price, and its position is open."""

    async def scenario(t: Trading) -> None:
        price = Decimal("1.05000")
        order = await t.adapter.submit(limit(price, quantity=20000))
        resting = (await t.journal.reached(order.cl_ord_id, OrderStatus.NEW))[-1].order
        t.factory.drop_next_reports(t.sim, 1)
        await t.venue.hold_prices(resting.symbol_id, bid="1.04980", ask="1.04990")
        at_venue = await t.venue.until_order(order.cl_ord_id, "filled")
        assert (await t.order(order.cl_ord_id)).status is OrderStatus.NEW

        await t.cut_trading_route()
        events = await t.journal.reached(order.cl_ord_id)
        await t.ready()
        filled = events[-1]
        assert filled.order.status is OrderStatus.FILLED
        assert filled.order.cum_qty == 20000 and filled.order.avg_px == Decimal(at_venue["avg_px"])
        fills = [e.fill for e in t.journal.of(order.cl_ord_id) if e.fill is not None]
        assert [f.quantity for f in fills] == [20000] and fills[0].price == Decimal(at_venue["avg_px"])
        position_id = filled.order.position_id
        assert position_id is not None
        positions = {p.position_id: p for p in await t.adapter.positions()}
        assert positions[position_id].quantity == 20000 and positions[position_id].side is PositionSide.LONG

    harness.run(scenario)


def test_a_cancel_answered_unheard_is_cancelled_after_the_reconnect(harness: Harness) -> None:
    """A cancel the venue carries out without the adapter hearing the answer leaves the order pending
    cancel; at the reconnect the venue's view ends it cancelled and the request is closed."""

    async def scenario(t: Trading) -> None:
        order = await t.adapter.submit(limit(FAR_BELOW))
        await t.journal.reached(order.cl_ord_id, OrderStatus.NEW)
        t.factory.drop_next_reports(t.sim, 1)
        pending = await t.adapter.cancel(order.cl_ord_id)
        assert pending.status is OrderStatus.PENDING_CANCEL
        await t.venue.until_order(order.cl_ord_id, "cancelled")
        assert (await t.order(order.cl_ord_id)).status is OrderStatus.PENDING_CANCEL

        await t.cut_trading_route()
        events = await t.journal.reached(order.cl_ord_id)
        await t.ready()
        cancelled = events[-1].order
        assert cancelled.status is OrderStatus.CANCELLED and cancelled.cum_qty == 0
        assert cancelled.pending_request_id is None

    harness.run(scenario)


def test_a_market_order_the_adapter_never_heard_of_is_filled_after_the_reconnect_and_opens_its_position(
    harness: Harness,
) -> None:
    """A market order whose every report is lost (accepted and filled at the venue, silence to us) stays
    pending; at the reconnect it is found filled, with its order id, fill and price, and the position it
    opened is among the positions."""

    async def scenario(t: Trading) -> None:
        t.factory.drop_next_reports(t.sim, 2)  # the acceptance and the fill
        order = await t.adapter.submit(market(quantity=30000))
        at_venue = await t.venue.until_order(order.cl_ord_id, "filled")
        assert (await t.order(order.cl_ord_id)).status is OrderStatus.PENDING_NEW

        await t.cut_trading_route()
        events = await t.journal.reached(order.cl_ord_id)
        await t.ready()
        filled = events[-1].order
        assert filled.status is OrderStatus.FILLED and filled.cum_qty == 30000
        assert filled.order_id == str(at_venue["order_id"])
        assert filled.avg_px == Decimal(at_venue["avg_px"])
        assert filled.position_id == str(at_venue["position_id"])
        fills = [e.fill for e in t.journal.of(order.cl_ord_id) if e.fill is not None]
        assert [f.quantity for f in fills] == [30000]
        positions = {p.position_id: p for p in await t.adapter.positions()}
        assert positions[filled.position_id].quantity == 30000
        assert positions[filled.position_id].side is PositionSide.LONG

    harness.run(scenario)


def test_positions_after_a_reconnect_are_the_venues(harness: Harness) -> None:
    """A position opened before the cut is still open with the same side, quantity and entry price after
    the reconnect, and what the adapter keeps equals what the venue reports."""

    async def scenario(t: Trading) -> None:
        order = await t.adapter.submit(market(side="sell", quantity=20000))
        filled = (await t.journal.reached(order.cl_ord_id))[-1].order
        position_id = filled.position_id
        assert position_id is not None
        await t.journal.position(position_id, lambda p: p is not None and p.quantity == 20000, "open")
        before = {p.position_id: p for p in await t.adapter.positions()}[position_id]

        await t.cut_trading_route()
        await t.ready()
        kept = {p.position_id: p for p in await t.adapter.positions()}
        assert kept[position_id].side is PositionSide.SHORT and kept[position_id].quantity == 20000
        assert kept[position_id].entry_price == before.entry_price
        venue = {p.position_id: p for p in await t.adapter.positions(refresh=True)}
        assert {k: (p.side, p.quantity, p.entry_price) for k, p in kept.items()} == {
            k: (p.side, p.quantity, p.entry_price) for k, p in venue.items()
        }

    harness.run(scenario)
