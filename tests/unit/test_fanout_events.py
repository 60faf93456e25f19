"""Adapter.events() (the engine's fanout): subscribed when called, not at the first iteration, so
`events = adapter.events()` before a submit sees the submit's own events; closed, it gets no more."""

from __future__ import annotations

import asyncio

from fixadapter.engine.fanout import EventFanout
from fixadapter.metrics import Metrics
from fixadapter.model.enums import OrderEventKind
from fixadapter.model.orders import OrderEvent

from .conftest import make_order


def event(cl_ord_id: str) -> OrderEvent:
    return OrderEvent(kind=OrderEventKind.SUBMITTED, order=make_order(cl_ord_id=cl_ord_id))


def test_an_event_published_between_events_and_the_first_iteration_is_seen():
    async def scenario() -> None:
        fanout = EventFanout(Metrics())
        fanout.publish(event("before"))  # before anyone asked: not for them
        events = fanout.events()
        fanout.publish(event("during-submit"))
        fanout.publish(event("later"))
        seen = [await anext(events), await anext(events)]
        assert [e.order.cl_ord_id for e in seen] == ["during-submit", "later"]

    asyncio.run(scenario())


def test_two_iterators_each_get_every_event_and_a_closed_one_none():
    async def scenario() -> None:
        fanout = EventFanout(Metrics())
        first, second = fanout.events(), fanout.events()
        fanout.publish(event("a"))
        assert (await anext(first)).order.cl_ord_id == "a"
        assert (await anext(second)).order.cl_ord_id == "a"
        await first.aclose()
        fanout.publish(event("b"))
        assert (await anext(second)).order.cl_ord_id == "b"
        async for _ in first:
            raise AssertionError("a closed iterator yields nothing")
        assert len(fanout._queues) == 1

    asyncio.run(scenario())
