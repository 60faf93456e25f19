"""StrategyClient: no event is lost between `submit()` and the first `events()` iteration, and
`final_state()` takes no event away from a later `events()` loop (each consumer gets every event).

Over both client transports: the in-process queue and Redis Streams (the daemon's publishing side is played
by appending events to the streams as the daemon's relay would).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import pytest
import redis.asyncio as aioredis

from fixadapter.client import Event, StrategyClient
from fixadapter.model.enums import OrderEventKind, OrderStatus
from fixadapter.model.requests import NewOrder
from fixadapter.queue.memory import MemoryQueue
from fixadapter.queue.redis_streams import DATA, events_stream
from fixadapter.queue.schema import OrderUpdate, encode

from .conftest import make_order

ORDER = NewOrder(symbol="EURUSD", side="buy", order_type="market", quantity=10000)


def update(cl_ord_id: str, kind: OrderEventKind, status: OrderStatus) -> bytes:
    order = make_order(cl_ord_id=cl_ord_id, status=status, strategy="momo")
    return encode(OrderUpdate(event=kind, order=order))


@dataclass
class Setup:
    client: StrategyClient
    publish: Callable[[bytes], Awaitable[None]]  # as the daemon's relay publishes for strategy "momo"


@asynccontextmanager
async def memory_setup() -> AsyncIterator[Setup]:
    queue = MemoryQueue()
    client = StrategyClient.in_process(queue, "momo")

    async def publish(data: bytes) -> None:
        await queue.sink.publish("momo", data, None)

    yield Setup(client, publish)
    await client.close()


@pytest.fixture(params=["memory", "redis"])
def make_setup(request: pytest.FixtureRequest) -> Callable[[], object]:
    if request.param == "memory":
        return memory_setup
    url: str = request.getfixturevalue("redis_url")
    prefix: str = request.getfixturevalue("queue_prefix")

    @asynccontextmanager
    async def over_redis() -> AsyncIterator[Setup]:
        server = aioredis.Redis.from_url(url)
        client = StrategyClient.redis(url, "momo", prefix=prefix)

        async def publish(data: bytes) -> None:
            await server.xadd(events_stream(prefix, "momo"), {DATA: data})

        try:
            yield Setup(client, publish)
        finally:
            await client.close()
            await server.aclose()

    return over_redis


async def take(events: AsyncIterator[Event], count: int) -> list[Event]:
    taken: list[Event] = []
    async with asyncio.timeout(10):
        async for event in events:
            taken.append(event)
            if len(taken) == count:
                break
    return taken


def kinds(events: list[Event]) -> list[tuple[str, str]]:
    return [(e.order.cl_ord_id, str(e.event)) for e in events if isinstance(e, OrderUpdate)]


def test_an_event_published_between_submit_and_the_first_iteration_is_seen(make_setup):
    """A client used without `async with` (never started): its first command fixes where events are
    read from, so the answer the daemon publishes before the loop starts is still the loop's first."""

    async def scenario() -> None:
        async with make_setup() as setup:
            client = setup.client
            await setup.publish(update("earlier", OrderEventKind.ACCEPTED, OrderStatus.NEW))  # before us
            cl_ord_id = await client.submit(ORDER.model_copy(update={"cl_ord_id": "mine-1"}))
            await setup.publish(update(cl_ord_id, OrderEventKind.SUBMITTED, OrderStatus.PENDING_NEW))
            await setup.publish(update(cl_ord_id, OrderEventKind.FILLED, OrderStatus.FILLED))
            seen = await take(client.events(), 2)
            assert kinds(seen) == [("mine-1", "submitted"), ("mine-1", "filled")]

    asyncio.run(scenario())


def test_a_started_client_sees_what_is_published_before_its_loop(make_setup):
    async def scenario() -> None:
        async with make_setup() as setup, setup.client as client:
            cl_ord_id = await client.submit(ORDER)
            await setup.publish(update(cl_ord_id, OrderEventKind.FILLED, OrderStatus.FILLED))
            await asyncio.sleep(0.05)
            assert kinds(await take(client.events(), 1)) == [(cl_ord_id, "filled")]

    asyncio.run(scenario())


def test_final_state_then_events_both_see_the_fill(make_setup):
    async def scenario() -> None:
        async with make_setup() as setup, setup.client as client:
            cl_ord_id = await client.submit(ORDER)
            await setup.publish(update(cl_ord_id, OrderEventKind.SUBMITTED, OrderStatus.PENDING_NEW))
            await setup.publish(update(cl_ord_id, OrderEventKind.ACCEPTED, OrderStatus.NEW))
            await setup.publish(update(cl_ord_id, OrderEventKind.FILLED, OrderStatus.FILLED))
            final = await asyncio.wait_for(client.final_state(cl_ord_id), 10)
            assert isinstance(final, OrderUpdate) and final.order.status == OrderStatus.FILLED
            seen = await take(client.events(), 3)
            assert kinds(seen) == [(cl_ord_id, "submitted"), (cl_ord_id, "accepted"), (cl_ord_id, "filled")]

    asyncio.run(scenario())


def test_final_state_waiting_beside_an_events_loop_loses_nothing_for_either(make_setup):
    """final_state in one task, an events() loop in another: the loop gets every event, final_state the
    fill, whichever of them reads the transport."""

    async def scenario() -> None:
        async with make_setup() as setup, setup.client as client:
            cl_ord_id = await client.submit(ORDER)
            loop = asyncio.create_task(take(client.events(), 3))
            final = asyncio.create_task(asyncio.wait_for(client.final_state(cl_ord_id), 10))
            await asyncio.sleep(0.1)
            for kind, status in (
                (OrderEventKind.SUBMITTED, OrderStatus.PENDING_NEW),
                (OrderEventKind.ACCEPTED, OrderStatus.NEW),
                (OrderEventKind.FILLED, OrderStatus.FILLED),
            ):
                await setup.publish(update(cl_ord_id, kind, status))
            done = await final
            assert isinstance(done, OrderUpdate) and done.order.status == OrderStatus.FILLED
            assert kinds(await loop) == [
                (cl_ord_id, "submitted"),
                (cl_ord_id, "accepted"),
                (cl_ord_id, "filled"),
            ]

    asyncio.run(scenario())


def test_a_loop_that_stops_leaves_the_rest_for_the_next_loop(make_setup):
    async def scenario() -> None:
        async with make_setup() as setup, setup.client as client:
            for n in range(3):
                await setup.publish(update(f"o{n}", OrderEventKind.FILLED, OrderStatus.FILLED))
            first = await take(client.events(), 1)
            rest = await take(client.events(), 2)
            assert kinds(first + rest) == [("o0", "filled"), ("o1", "filled"), ("o2", "filled")]

    asyncio.run(scenario())


def test_a_client_that_only_waits_on_final_state_keeps_a_bounded_number_of_events(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    monkeypatch.setattr("fixadapter.client.KEPT_EVENTS", 3)

    async def scenario() -> None:
        async with memory_setup() as setup, setup.client as client:
            for n in range(5):
                await setup.publish(update(f"o{n}", OrderEventKind.FILLED, OrderStatus.FILLED))
            for n in range(5):  # every one seen by final_state
                assert isinstance(await asyncio.wait_for(client.final_state(f"o{n}"), 5), OrderUpdate)
            assert kinds(await take(client.events(), 3)) == [
                ("o2", "filled"),
                ("o3", "filled"),
                ("o4", "filled"),
            ]

    asyncio.run(scenario())
    assert "3 events read and never taken by an events() loop; dropping the oldest" in caplog.text
