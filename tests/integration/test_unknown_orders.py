"""An order no venue ever answers is flagged unknown with an alarm, and resolved by the first answer.

The simulator swallows the order (the D never reaches its venue) and leaves every status query (H)
unanswered: no execution report and no reject ever comes, which is what 'unknown' means.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from fixadapter.api import Adapter
from fixadapter.config import AdapterConfig, build_config
from fixadapter.model.enums import OrderStatus
from fixadapter.model.requests import NewOrder
from fixadapter.sim.process import SimProcess


def config(sim: SimProcess, tmp_path: Path) -> AdapterConfig:
    return build_config(
        {
            "account": sim.adapter_settings(),
            "store": {"url": f"sqlite:///{tmp_path / 'adapter.db'}"},
            "orders": {
                "inflight_timeout_seconds": 0.5,
                "status_query_backoff_max_seconds": 1,
                "unknown_after_seconds": 2,
                "reconcile_timeout_seconds": 5,
                "resend_unreceived_within_seconds": 0,  # a swallowed order is rejected, never sent again
            },
        },
        environ={},
    )


def resting() -> NewOrder:
    return NewOrder(symbol="EURUSD", side="buy", order_type="limit", quantity=10000, price="0.9")


async def swallowed_order(adapter: Adapter, sim: SimProcess) -> str:
    """An order whose D the venue never sees and whose status queries it never answers, flagged unknown."""
    await adapter.wait_ready(10)
    sim.control("/scenario", {"ignore_requests": 1, "silent": ["H"]})
    order = await adapter.submit(resting())
    flagged = await adapter.wait_for(order.cl_ord_id, "unknown", timeout=20)
    assert flagged.status is OrderStatus.UNKNOWN and flagged.is_open
    assert flagged.reason is not None and "state at the venue is unknown" in flagged.reason
    return order.cl_ord_id


def test_a_swallowed_order_is_flagged_unknown_with_an_alarm_and_an_answer_resolves_it_and_clears_it(
    sim: SimProcess, tmp_path: Path
):
    async def scenario() -> None:
        async with Adapter(config(sim, tmp_path)) as adapter:
            cl_ord_id = await swallowed_order(adapter, sim)
            sample = adapter.metrics.value
            shown = adapter.metrics.alarms.describe()["shown"]
            assert [(a["kind"], a["key"], a["blocking"]) for a in shown] == [  # type: ignore[union-attr]
                ("unknown_order", cl_ord_id, False)
            ]
            assert sample("fixadapter_alarms_active", {"kind": "unknown_order"}) == 1
            assert adapter.ready  # not blocking: other orders still trade
            assert adapter.engine.store.executions(cl_ord_id)[-1]["event"] == "unknown"
            assert cl_ord_id in [o.cl_ord_id for o in adapter.engine.open_orders()]

            sim.control("/scenario", {"silent": []})  # the venue answers again: it never had the order
            resolved = await adapter.wait_for(cl_ord_id, timeout=20)
            assert resolved.status is OrderStatus.REJECTED
            assert resolved.reason is not None and "never reached the venue" in resolved.reason
            assert not adapter.metrics.alarms.is_active("unknown_order", cl_ord_id)
            assert sample("fixadapter_alarms_active", {"kind": "unknown_order"}) == 0

    asyncio.run(scenario())


def test_the_kill_switch_still_tries_to_cancel_an_unknown_order(sim: SimProcess, tmp_path: Path):
    async def scenario() -> None:
        async with Adapter(config(sim, tmp_path)) as adapter:
            cl_ord_id = await swallowed_order(adapter, sim)
            _, sweep = await adapter.engage_kill_switch("test", "everything out")
            assert sweep.sent == [cl_ord_id]

    asyncio.run(scenario())


def test_after_a_restart_an_order_the_venue_never_answers_does_not_block_reconciliation_and_is_flagged(
    sim: SimProcess, tmp_path: Path
):
    settings = config(sim, tmp_path)

    async def scenario() -> None:
        async with Adapter(settings) as adapter:
            await adapter.wait_ready(10)
            sim.control("/scenario", {"ignore_requests": 1, "silent": ["H"]})
            order = await adapter.submit(resting())
        async with Adapter(settings) as adapter:
            await adapter.wait_ready(15)  # the unanswered status query is left to the in-flight watch
            flagged = await adapter.wait_for(order.cl_ord_id, "unknown", timeout=20)
            assert flagged.status is OrderStatus.UNKNOWN
            assert adapter.metrics.alarms.is_active("unknown_order", order.cl_ord_id)

    asyncio.run(scenario())
