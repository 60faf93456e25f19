"""Conformance: what the venue refuses comes back as a refusal carrying the venue's own reason, and an order
the venue never saw is found out by asking for it, whatever the connector."""

from __future__ import annotations

from decimal import Decimal

import pytest

from fixadapter.errors import OrderNotFound, OrderRejected, UnknownSymbol
from fixadapter.model.enums import OrderEventKind, OrderStatus
from fixadapter.model.requests import NewOrder, ReplaceOrder

from .conftest import Harness, Trading
from .orders import FAR_BELOW, limit, market

K = OrderEventKind


def test_an_order_for_a_symbol_the_venue_does_not_list_is_refused_naming_it_and_nothing_is_sent(
    harness: Harness,
) -> None:
    """A symbol missing from the venue's instrument list is refused before anything is sent (an
    OrderRejected naming the symbol and the close matches), and no order exists anywhere for it."""

    async def scenario(t: Trading) -> None:
        request = NewOrder(
            symbol="EURUSX", side="buy", order_type="market", quantity=10000, cl_ord_id="conf-unknown-symbol"
        )
        with pytest.raises(UnknownSymbol) as refused:
            await t.adapter.submit(request)
        assert isinstance(refused.value, OrderRejected)
        assert "'EURUSX'" in str(refused.value) and "EURUSD" in str(refused.value)
        assert await t.adapter.order("conf-unknown-symbol") is None
        assert t.journal.of("conf-unknown-symbol") == []
        assert await t.venue.order("conf-unknown-symbol") is None

    harness.run(scenario)


def test_an_order_off_the_volume_step_is_rejected_by_the_venue_with_its_reason(harness: Harness) -> None:
    """10500 units of EURUSD (the venue trades it in steps of 1000) reach the venue, which rejects the order:
    the order ends rejected, and the event and the order carry the venue's reason, TRADING_BAD_VOLUME."""

    async def scenario(t: Trading) -> None:
        order = await t.adapter.submit(market(quantity=10500))
        events = await t.journal.reached(order.cl_ord_id)
        assert [e.kind for e in events] == [K.SUBMITTED, K.REJECTED]
        rejected = events[-1]
        assert rejected.order.status is OrderStatus.REJECTED and rejected.order.cum_qty == 0
        assert rejected.reason is not None and rejected.reason.startswith("TRADING_BAD_VOLUME")
        assert "10500" in rejected.reason
        assert rejected.order.reason == rejected.reason
        assert (await t.adapter.order(order.cl_ord_id)) == rejected.order

    harness.run(scenario)


def test_a_replace_to_a_volume_off_the_step_is_refused_with_the_venues_reason_and_the_order_keeps_its_terms(
    harness: Harness,
) -> None:
    """A replace the venue refuses (a new quantity off the volume step) ends as replace-rejected with the
    venue's reason; the order is working again with its old price and quantity, free for a next request."""

    async def scenario(t: Trading) -> None:
        order = await t.adapter.submit(limit(FAR_BELOW, quantity=10000))
        await t.journal.reached(order.cl_ord_id, OrderStatus.NEW)
        await t.adapter.replace(
            ReplaceOrder(cl_ord_id=order.cl_ord_id, quantity=15500, price=Decimal("0.91"))
        )
        refused = await t.journal.event(
            order.cl_ord_id, lambda e: e.kind is K.REPLACE_REJECTED, "the replace to be refused"
        )
        assert refused.reason is not None and refused.reason.startswith("TRADING_BAD_VOLUME")
        assert "15500" in refused.reason
        kept = refused.order
        assert kept.status is OrderStatus.NEW and kept.pending_request_id is None
        assert (kept.quantity, kept.price) == (Decimal(10000), FAR_BELOW)
        await t.adapter.cancel(order.cl_ord_id)
        assert (await t.journal.reached(order.cl_ord_id))[-1].order.status is OrderStatus.CANCELLED

    harness.run(scenario)


def test_a_cancel_of_an_order_the_venue_does_not_know_is_refused_with_the_venues_reason(
    harness: Harness,
) -> None:
    """A cancel naming an order neither the store nor the venue has still asks the venue, and its refusal
    comes back as OrderRejected carrying the venue's reason (ORDER_NOT_FOUND) and the id."""

    async def scenario(t: Trading) -> None:
        if not t.adapter.connector.capabilities.cancel_by_client_id:
            # A connector that cancels by the venue's id only (the Open API) says so without asking.
            with pytest.raises(OrderNotFound) as unknown:
                await t.adapter.cancel("conf-no-such-order")
            assert "conf-no-such-order" in str(unknown.value) and "client id alone" in str(unknown.value)
            return
        with pytest.raises(OrderRejected) as refused:
            await t.adapter.cancel("conf-no-such-order")
        assert "ORDER_NOT_FOUND" in str(refused.value) and "conf-no-such-order" in str(refused.value)
        assert await t.adapter.order("conf-no-such-order") is None

    harness.run(scenario)


def test_an_order_that_never_reached_the_venue_is_asked_for_and_rejected_with_the_venues_answer(
    harness: Harness,
) -> None:
    """The order is lost on its way (the venue never sees it, so nothing answers it). Once it has been silent
    for the in-flight timeout the adapter asks the venue for it; the venue does not know it, and with no
    resending allowed the order ends rejected, saying it never reached the venue and why."""

    async def scenario(t: Trading) -> None:
        t.factory.swallow_next_requests(t.sim, 1)
        order = await t.adapter.submit(limit(FAR_BELOW))
        events = await t.journal.reached(order.cl_ord_id)
        assert [e.kind for e in events] == [K.SUBMITTED, K.REJECTED]
        rejected = events[-1].order
        assert rejected.status is OrderStatus.REJECTED and rejected.order_id is None
        why = "never reached the venue" if t.factory.resends_swallowed_orders else "sent and never answered"
        assert rejected.reason is not None and why in rejected.reason
        assert "ORDER_NOT_FOUND" in rejected.reason
        assert await t.venue.order(order.cl_ord_id) is None

    harness.run(scenario, inflight_timeout_seconds=0.5, resend_unreceived_within_seconds=0)


def test_an_order_that_never_reached_the_venue_is_sent_again_once_while_young_and_then_trades(
    harness: Harness,
) -> None:
    """The same lost order, while younger than the resend limit: asked for, unknown to the venue, so sent
    again under the same id; the venue accepts it and it works normally (one order at the venue). Where the
    connector never resends an order it wrote (the Open API), it is rejected as unanswered instead and
    the venue never has it."""

    async def scenario(t: Trading) -> None:
        t.factory.swallow_next_requests(t.sim, 1)
        order = await t.adapter.submit(limit(FAR_BELOW))
        if not t.factory.resends_swallowed_orders:
            events = await t.journal.reached(order.cl_ord_id)
            assert [e.kind for e in events] == [K.SUBMITTED, K.REJECTED]
            assert "sent and never answered" in (events[-1].order.reason or "")
            assert await t.venue.order(order.cl_ord_id) is None
            return
        events = await t.journal.reached(order.cl_ord_id, OrderStatus.NEW)
        assert [e.kind for e in events] == [K.SUBMITTED, K.ACCEPTED]
        assert events[-1].order.order_id is not None
        held = await t.venue.order(order.cl_ord_id)
        assert held is not None and held["status"] == "new"

    harness.run(scenario, inflight_timeout_seconds=0.5, resend_unreceived_within_seconds=60)
