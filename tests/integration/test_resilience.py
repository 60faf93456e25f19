"""A garbled message or an unknown tag from the server is logged and counted; nothing stops."""

from __future__ import annotations

import asyncio
import logging

import pytest

from fixadapter.api import Adapter
from fixadapter.connectors.fix.wire import frame
from fixadapter.model.enums import OrderStatus
from fixadapter.model.requests import NewOrder
from fixadapter.sim.faults import FaultProxy
from fixadapter.sim.process import SimProcess

from .conftest import ConfigFactory

SERVER_HEADER = [
    (34, "999"),
    (49, "CSERVER"),
    (50, "TRADE"),
    (52, "20250101-10:00:00.000"),
    (56, "demo.sim.1234567"),
    (57, "TRADE"),
]


def garbled_execution_report() -> bytes:
    """A well-framed ER whose checksum is wrong, as line noise would leave it."""
    good = frame("8", SERVER_HEADER, [(37, "1"), (39, "0"), (150, "0")])
    return (good[: -len("000\x01")] + "999\x01").encode()


def test_garbled_message_and_unknown_tag_are_counted_and_both_sessions_stay_up(
    sim: SimProcess, make_config: ConfigFactory, caplog: pytest.LogCaptureFixture
):
    proxy = FaultProxy(sim.trade_port).start()

    async def scenario() -> None:
        # The proxy slips plain FIX bytes into the TRADE stream, which TLS would refuse: TRADE goes plain.
        async with Adapter(make_config(sim, trade_port=proxy.port, trade_tls=False)) as adapter:
            await adapter.wait_ready(10)
            sample = adapter.metrics.value
            assert proxy.inject_to_client(garbled_execution_report()) == 1
            sim.control("/scenario", {"extra_tag": [4321, "surprise"]})
            order = await adapter.submit(
                NewOrder(symbol="EURUSD", side="buy", order_type="market", quantity=1000)
            )
            assert (await adapter.wait_for(order.cl_ord_id)).status is OrderStatus.FILLED
            await asyncio.sleep(0.2)
            assert (
                sample("fixadapter_malformed_messages_total", {"session": "TRADE", "reason": "garbled"}) == 1
            )
            assert sample("fixadapter_unknown_fields_total", {"session": "TRADE", "message_type": "8"}) == 1
            assert adapter.ready
            assert sample("fixadapter_session_logged_on", {"session": "QUOTE"}) == 1
            assert sample("fixadapter_session_logged_on", {"session": "TRADE"}) == 1
            assert sample("fixadapter_logons_total", {"session": "TRADE"}) == 1, "no reconnect was needed"
            after = await adapter.submit(
                NewOrder(symbol="EURUSD", side="sell", order_type="market", quantity=1000)
            )
            assert (await adapter.wait_for(after.cl_ord_id)).status is OrderStatus.FILLED

    with caplog.at_level(logging.WARNING):
        try:
            asyncio.run(scenario())
        finally:
            proxy.stop()
    messages = [r.getMessage() for r in caplog.records]
    assert any("garbled" in m for m in messages)
    assert any("4321" in m for m in messages)


def test_an_order_whose_answers_are_lost_is_queried_after_the_timeout_and_completes(
    sim: SimProcess, make_config: ConfigFactory
):
    async def scenario() -> None:
        async with Adapter(make_config(sim)) as adapter:
            await adapter.wait_ready(10)
            sim.control("/scenario", {"drop_reports": 2})  # the New and the Fill ER of the next order
            order = await adapter.submit(
                NewOrder(symbol="EURUSD", side="buy", order_type="market", quantity=1000)
            )
            filled = await adapter.wait_for(order.cl_ord_id, timeout=10)
            assert filled.status is OrderStatus.FILLED and filled.cum_qty == 1000
            sample = adapter.metrics.value
            assert sample("fixadapter_order_status_queries_total") >= 1

    asyncio.run(scenario())


def test_a_cancel_lost_on_the_way_is_refused_after_the_timeout_and_the_order_can_be_cancelled_again(
    sim: SimProcess, make_config: ConfigFactory
):
    async def scenario() -> None:
        async with Adapter(make_config(sim)) as adapter:
            await adapter.wait_ready(10)
            order = await adapter.submit(
                NewOrder(symbol="EURUSD", side="buy", order_type="limit", quantity=1000, price="0.9")
            )
            await adapter.wait_for(order.cl_ord_id, "new")
            sim.control("/scenario", {"ignore_requests": 1})
            await adapter.cancel(order.cl_ord_id)
            restored = await adapter.wait_for(order.cl_ord_id, "new", timeout=10)
            assert restored.pending_request_id is None
            events = adapter.engine.store.executions(order.cl_ord_id)
            assert events[-1]["event"] == "cancel_rejected" and "no answer" in events[-1]["text"]
            await adapter.cancel(order.cl_ord_id)
            assert (await adapter.wait_for(order.cl_ord_id)).status is OrderStatus.CANCELLED

    asyncio.run(scenario())
