"""A venue that refuses our messages the way other FIX acceptors do: by sequence number, not by our id.

A session-level Reject (35=3) or a BusinessMessageReject without BusinessRejectRefID names what it refuses
only by RefSeqNum; the connector ties it to the request that message carried and the engine ends that
request at once, with the venue's reason, touching nothing else.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from fixadapter.api import Adapter
from fixadapter.config import AdapterConfig, build_config
from fixadapter.errors import SessionNotReady
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
            sample = adapter.metrics.value
            assert sample("fixadapter_order_status_queries_total") == 0
            assert (await adapter.order(bystander.cl_ord_id)).status is OrderStatus.NEW  # type: ignore[union-attr]
            assert adapter.ready
            assert sample("fixadapter_logons_total", {"session": "TRADE"}) == 1
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


def quick_config(sim: SimProcess, tmp_path: Path, fault: dict[str, object]) -> AdapterConfig:
    """A venue that leaves requests unanswered is given a second; one that refuses them, ample time (the
    refusal must arrive as a refusal however loaded the machine)."""
    timeout = 1 if "silent" in fault else 10
    return build_config(
        {
            "account": sim.adapter_settings(),
            "store": {"url": f"sqlite:///{tmp_path / 'adapter.db'}"},
            "orders": {"inflight_timeout_seconds": SLOW_TIMER, "reconcile_timeout_seconds": timeout},
        },
        environ={},
    )


async def failed_reconciliations(adapter: Adapter, at_least: int) -> None:
    sample = adapter.metrics.value
    async with asyncio.timeout(30):
        while (sample("fixadapter_reconciliations_total", {"outcome": "failed"}) or 0) < at_least:
            await asyncio.sleep(0.05)


def reconcile_errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage() for r in caplog.records if r.name == "fixadapter.reconcile" and r.levelname == "ERROR"
    ]


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        (
            {"refuse": {"x": "x is not supported here"}},
            "the venue refused the SecurityListRequest: x is not supported here (unsupported message type)",
        ),
        ({"silent": ["x"]}, "no answer to the security list request within 1s"),
    ],
    ids=["refused", "unanswered"],
)
def test_a_venue_that_cannot_give_the_instrument_list_is_named_once_and_wait_ready_says_why(
    sim: SimProcess, tmp_path: Path, caplog: pytest.LogCaptureFixture, fault: dict[str, object], reason: str
):
    sim.control("/scenario", fault)

    async def scenario() -> None:
        async with Adapter(quick_config(sim, tmp_path, fault)) as adapter:
            await failed_reconciliations(adapter, 2)
            with pytest.raises(SessionNotReady) as raised:
                await adapter.wait_ready(0.1)
            assert f"reconciliation: {reason}" in str(raised.value)
            assert "no instrument list is kept in the store" in str(raised.value)
            assert "check host" not in str(raised.value)
            assert f"reconciliation: {reason}" in adapter.readiness()

    with caplog.at_level(logging.INFO):
        asyncio.run(scenario())
    errors = reconcile_errors(caplog)
    assert len(errors) == 1, errors
    assert reason in errors[0] and "()" not in errors[0]


@pytest.mark.parametrize(
    ("fault", "said"),
    [
        (
            {"refuse": {"x": "not here", "AF": "not here"}},
            [
                "the venue refused the SecurityListRequest: not here",
                "the venue refused the OrderMassStatusRequest: not here",
            ],
        ),
        (
            {"silent": ["x", "AF"]},
            [
                "no answer to the security list request within 1s",
                "no answer to the mass status request within 1s",
            ],
        ),
    ],
    ids=["refused", "unanswered"],
)
def test_without_instrument_list_or_mass_status_reconciliation_goes_on_with_the_store_and_status_queries(
    sim: SimProcess,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    fault: dict[str, object],
    said: list[str],
):
    config = quick_config(sim, tmp_path, fault)

    async def scenario() -> None:
        async with Adapter(config) as adapter:  # a first logon keeps the instruments in the store
            await adapter.wait_ready(10)
            order = await adapter.submit(resting())
            await adapter.wait_for(order.cl_ord_id, "new")
        sim.control("/scenario", fault)
        sim.control("/quote", {"symbol_id": 1, "bid": "0.8999", "ask": "0.9"})  # fills it while away
        async with Adapter(config) as adapter:
            await adapter.wait_ready(15)
            filled = await adapter.order(order.cl_ord_id)
            assert filled is not None and filled.status is OrderStatus.FILLED
            sample = adapter.metrics.value
            assert sample("fixadapter_order_status_queries_total") >= 1  # the order asked for with H
            assert sample("fixadapter_reconciliations_total", {"outcome": "done"}) == 1
            assert adapter.engine.catalog.resolve("EURUSD").symbol_id == 1

    with caplog.at_level(logging.INFO):
        asyncio.run(scenario())
    warnings = [r.getMessage() for r in caplog.records if r.name == "fixadapter.reconcile"]
    for text in said:
        assert len([m for m in warnings if text in m]) == 1, (text, warnings)
