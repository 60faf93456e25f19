"""The engine's inbox: events in arrival order; an answer waits until every event that arrived before
it is handled, however many are being handled at once; events put back come first again."""

from __future__ import annotations

import asyncio

from fixadapter.engine.inbox import Inbox
from fixadapter.model.reconciliation import arrival_mark
from tests.unit.conftest import make_report


def test_an_answer_waits_for_every_earlier_event_being_handled_side_by_side() -> None:
    async def scenario() -> None:
        inbox = Inbox()
        inbox.bind(asyncio.get_running_loop())
        for n in range(3):
            inbox.deliver(make_report(cl_ord_id=f"ord-{n}"))
        first, second, third = [await inbox.take() for _ in range(3)]
        answered = arrival_mark()  # an answer that arrived after all three
        waiting = asyncio.create_task(inbox.handled_through(answered))
        inbox.done(second[0])
        await asyncio.sleep(0)
        assert not waiting.done()  # the first is still being handled
        inbox.done(first[0])
        await asyncio.sleep(0)
        assert not waiting.done()  # and the third
        inbox.done(third[0])
        await asyncio.wait_for(waiting, 1)

    asyncio.run(scenario())


def test_events_put_back_are_taken_again_first_in_arrival_order() -> None:
    async def scenario() -> None:
        inbox = Inbox()
        inbox.bind(asyncio.get_running_loop())
        for n in range(4):
            inbox.deliver(make_report(cl_ord_id=f"ord-{n}"))
        taken = [await inbox.take() for _ in range(3)]
        inbox.put_back([taken[2], taken[0]])
        inbox.done(taken[1][0])
        again = [inbox.take_nowait()[1].cl_ord_id for _ in range(3)]
        assert again == ["ord-0", "ord-2", "ord-3"]

    asyncio.run(scenario())
