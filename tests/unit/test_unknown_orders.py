"""An order flagged unknown is left by any answer of the venue, whatever request it was waiting on."""

from __future__ import annotations

import asyncio
from pathlib import Path

from fixadapter.config import OrdersConfig
from fixadapter.connectors.fix.queries import FixQueries
from fixadapter.engine.orders import OrderEngine
from fixadapter.errors import VenueRefused
from fixadapter.metrics import Metrics
from fixadapter.model.enums import OrderStatus, RequestKind
from fixadapter.model.orders import OrderRequest
from fixadapter.model.reports import BusinessReject, CancelRejected, SecurityListReport
from fixadapter.store.repository import OrderStore

from .conftest import T0, make_order
from .test_status_queries import UnansweringConnector


def test_a_refused_cancel_of_an_order_flagged_unknown_leaves_it_working_and_clears_its_alarm(tmp_path: Path):
    store = OrderStore(f"sqlite:///{tmp_path / 'adapter.db'}")
    store.create_schema()
    working = make_order(status=OrderStatus.NEW, order_id="101", updated_at=T0)
    store.insert_order(make_order())
    store.record_execution(working, "accepted", None, None, "k1")
    cancel = OrderRequest(request_id="C1", cl_ord_id="ord-1", kind=RequestKind.CANCEL)
    pending = working.moved_to(OrderStatus.PENDING_CANCEL, pending_request_id="C1")
    store.insert_request(cancel, pending)
    store.record_execution(
        pending.moved_to(OrderStatus.UNKNOWN, reason="no answer"), "unknown", None, None, "k2"
    )

    async def scenario() -> None:
        engine = OrderEngine(store, UnansweringConnector(), Metrics(), OrdersConfig())
        await engine.start()
        try:
            assert engine.metrics.alarms.is_active("unknown_order", "ord-1")  # raised again after a restart
            events = engine.subscribe()
            engine.deliver(
                CancelRejected(
                    request_id="C1", orig_cl_ord_id="ord-1", response_to=RequestKind.CANCEL, text="busy"
                )
            )
            async with asyncio.timeout(10):
                event = await events.get()
            assert (event.order.status, event.order.pending_request_id) == (OrderStatus.NEW, None)
            assert not engine.metrics.alarms.is_active("unknown_order", "ord-1")
        finally:
            await engine.stop()

    asyncio.run(scenario())


def test_a_security_list_the_venue_refuses_is_a_refusal_not_an_empty_list():
    async def scenario() -> None:
        queries = FixQueries()
        sent: list[str] = []
        ask = asyncio.create_task(queries.instruments("S-1", lambda: sent.append("S-1")))
        await asyncio.sleep(0)
        (request_id,) = sent
        assert queries.take(SecurityListReport(request_id=request_id, ok=False))
        try:
            await ask
        except VenueRefused as exc:
            assert "refused the security list request" in str(exc)
        else:
            raise AssertionError("a refused security list must not read as an empty one")

    asyncio.run(scenario())


def test_a_late_reject_of_a_new_order_flagged_unknown_ends_it_rejected_with_the_venues_reason(tmp_path: Path):
    store = OrderStore(f"sqlite:///{tmp_path / 'adapter.db'}")
    store.create_schema()
    store.insert_order(make_order())
    flagged = make_order().moved_to(OrderStatus.UNKNOWN, reason="no answer")
    store.record_execution(flagged, "unknown", None, None, "k1")

    async def scenario() -> None:
        engine = OrderEngine(store, UnansweringConnector(), Metrics(), OrdersConfig())
        await engine.start()
        try:
            events = engine.subscribe()
            engine.deliver(
                BusinessReject(ref_id="ord-1", reason=0, text="MARKET_CLOSED: the market is closed")
            )
            async with asyncio.timeout(10):
                event = await events.get()
            assert event.order.status is OrderStatus.REJECTED
            assert event.order.reason == "MARKET_CLOSED: the market is closed"
            assert not engine.metrics.alarms.is_active("unknown_order", "ord-1")
        finally:
            await engine.stop()

    asyncio.run(scenario())
