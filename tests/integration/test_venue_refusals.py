"""A venue that refuses our messages the way other FIX acceptors do: by sequence number, not by our id.

A session-level Reject (35=3) or a BusinessMessageReject without BusinessRejectRefID names what it refuses
only by RefSeqNum; the connector ties it to the request that message carried and the engine ends that
request at once, with the venue's reason, touching nothing else.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from fixadapter.api import Adapter
from fixadapter.config import AdapterConfig, build_config
from fixadapter.model.enums import OrderStatus
from fixadapter.model.requests import NewOrder
from fixadapter.sim.process import SimProcess

SLOW_TIMER = 60.0  # the in-flight timer must not be what ends the request


def config_without_timer(sim: SimProcess, tmp_path: Path) -> AdapterConfig:
    return build_config(
        {
            "account": sim.adapter_settings(),
            "store": {"url": f"sqlite:///{tmp_path / 'adapter.db'}"},
            "orders": {"inflight_timeout_seconds": SLOW_TIMER, "reconcile_timeout_seconds": 5},
        },
        environ={},
    )


def resting(quantity: int = 10000) -> NewOrder:
    return NewOrder(symbol="EURUSD", side="buy", order_type="limit", quantity=quantity, price="0.9")


def test_a_session_level_reject_of_a_new_order_ends_it_rejected_with_the_reason_and_touches_nothing_else(
    sim: SimProcess, tmp_path: Path
):
    async def scenario() -> None:
        async with Adapter(config_without_timer(sim, tmp_path)) as adapter:
            await adapter.wait_ready(10)
            bystander = await adapter.submit(resting())
            await adapter.wait_for(bystander.cl_ord_id, "new")
            sim.control("/scenario", {"session_reject_next": "D"})
            order = await adapter.submit(resting(20000))
            rejected = await adapter.wait_for(order.cl_ord_id, timeout=10)
            assert rejected.status is OrderStatus.REJECTED
            assert rejected.reason is not None
            assert "Value is incorrect (out of range) for this tag, field=40" in rejected.reason
            assert "tag 40" in rejected.reason and "session level" in rejected.reason
            sample = adapter.metrics.registry.get_sample_value
            assert sample("fixadapter_order_status_queries_total") == 0
            assert (await adapter.order(bystander.cl_ord_id)).status is OrderStatus.NEW  # type: ignore[union-attr]
            assert adapter.ready
            assert sample("fixadapter_fix_logons_total", {"session": "TRADE"}) == 1
            after = await adapter.submit(resting(30000))
            assert (await adapter.wait_for(after.cl_ord_id, "new")).status is OrderStatus.NEW

    asyncio.run(scenario())


def test_a_session_level_reject_of_a_cancel_refuses_the_cancel_and_the_order_stays_working(
    sim: SimProcess, tmp_path: Path
):
    async def scenario() -> None:
        async with Adapter(config_without_timer(sim, tmp_path)) as adapter:
            await adapter.wait_ready(10)
            order = await adapter.submit(resting())
            await adapter.wait_for(order.cl_ord_id, "new")
            sim.control("/scenario", {"session_reject_next": "F"})
            await adapter.cancel(order.cl_ord_id)
            restored = await adapter.wait_for(order.cl_ord_id, "new", timeout=10)
            assert restored.pending_request_id is None
            last = adapter.engine.store.executions(order.cl_ord_id)[-1]
            assert last["event"] == "cancel_rejected" and "session level" in last["text"]
            await adapter.cancel(order.cl_ord_id)
            assert (await adapter.wait_for(order.cl_ord_id)).status is OrderStatus.CANCELLED

    asyncio.run(scenario())
