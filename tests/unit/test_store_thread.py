"""The store thread: calls run one at a time in the order asked; the store calls found waiting together
share one transaction (one commit), each caller hears its own result, and a failing call costs the others
nothing (SQLite and, when FIXADAPTER_TEST_POSTGRES_URL is set, PostgreSQL)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import event

from fixadapter.crash_points import CrashPoint, CrashPoints
from fixadapter.engine.store_thread import StoreThread
from fixadapter.errors import ClientIdInUse, StoreError
from fixadapter.metrics import Metrics
from fixadapter.model.enums import ExecKind, OrderStatus, RequestKind
from fixadapter.model.orders import OrderRequest
from fixadapter.store.repository import CommitUnconfirmed, OrderStore
from tests.unit.conftest import T0, make_order, make_report


@pytest.fixture
def thread() -> Iterator[StoreThread]:
    running = StoreThread(Metrics())
    yield running
    running.shutdown()


def commits(store: OrderStore) -> list[int]:
    counted = [0]

    def count(_conn: Any) -> None:
        counted[0] += 1

    event.listen(store.engine, "commit", count)
    return counted


Calls = list[tuple[Callable[..., Any], tuple[Any, ...]]]


def together(thread: StoreThread, calls: Calls) -> list[Future[Any]]:
    """Submit `calls` while the thread is held, so that it finds them all waiting at once."""
    entered, release = threading.Event(), threading.Event()
    thread.submit(lambda: (entered.set(), release.wait(30)))
    assert entered.wait(30)
    answers = [thread.submit(fn, *args) for fn, args in calls]
    release.set()
    for answer in answers:
        answer.exception(30)
    return answers


def batch_sizes(metrics: Metrics) -> float:
    return sum(s.value for s in metrics.store_batch_calls.collect()[0].samples if s.name.endswith("_count"))


def test_orders_waiting_together_are_committed_at_once(store: OrderStore, thread: StoreThread) -> None:
    counted = commits(store)
    orders = [make_order(cl_ord_id=f"ord-{n}") for n in range(20)]
    answers = together(thread, [(store.insert_order, (order,)) for order in orders])
    assert [answer.result() for answer in answers] == [True] * 20
    assert counted[0] == 1
    assert {o.cl_ord_id for o in store.orders()} == {o.cl_ord_id for o in orders}
    assert batch_sizes(thread.metrics) == 1


def test_a_call_that_fails_in_a_batch_fails_alone_and_the_others_are_kept(
    store: OrderStore, thread: StoreThread
) -> None:
    store.insert_order(make_order(cl_ord_id="ord-0", status=OrderStatus.NEW))
    request = OrderRequest(request_id="taken", cl_ord_id="ord-0", kind=RequestKind.CANCEL, created_at=T0)
    store.insert_request(request, make_order(cl_ord_id="ord-0", status=OrderStatus.NEW))
    answers = together(
        thread,
        [
            (store.insert_order, (make_order(cl_ord_id="ord-1"),)),
            (store.insert_order, (make_order(cl_ord_id="taken"),)),  # a request's id: refused
            (store.insert_order, (make_order(cl_ord_id="ord-1"),)),  # the caller's retry: no second row
            (store.insert_order, (make_order(cl_ord_id="ord-2"),)),
        ],
    )
    assert answers[0].result() is True
    assert isinstance(answers[1].exception(), ClientIdInUse)
    assert answers[2].result() is False
    assert answers[3].result() is True
    assert sorted(o.cl_ord_id for o in store.orders()) == ["ord-0", "ord-1", "ord-2"]


def test_a_report_recorded_twice_in_one_batch_is_kept_once(store: OrderStore, thread: StoreThread) -> None:
    order = make_order(cl_ord_id="ord-1", status=OrderStatus.NEW, order_id="101")
    store.insert_order(make_order(cl_ord_id="ord-1"))
    report = make_report()
    filled = make_report(kind=ExecKind.TRADE, status=OrderStatus.FILLED, cum_qty=Decimal(10000))
    answers = together(
        thread,
        [
            (store.record_execution, (order, "accepted", report, None, "k-1")),
            (store.record_execution, (order, "accepted", report, None, "k-1")),  # the same report again
            (store.record_execution, (order, "filled", filled, None, "k-2")),
        ],
    )
    first, again, last = (answer.result() for answer in answers)
    assert first is not None and last is not None and last > first
    assert again is None
    assert [row["dedupe_key"] for row in store.executions("ord-1")] == ["k-1", "k-2"]


def test_when_the_commit_fails_no_call_is_run_again_and_every_caller_hears_it(
    store: OrderStore, thread: StoreThread
) -> None:
    """A failed COMMIT may have landed (a connection lost during it): running the calls again would take
    the orders for retries and the reports for duplicates. Each caller gets the store error instead."""
    failed = [False]

    def fail_first_commit(_conn: Any) -> None:
        if not failed[0]:
            failed[0] = True
            raise RuntimeError("connection lost during COMMIT (simulated)")

    event.listen(store.engine, "commit", fail_first_commit)
    orders = [make_order(cl_ord_id=f"ord-{n}") for n in range(3)]
    answers = together(thread, [(store.insert_order, (order,)) for order in orders])
    assert failed[0]
    for answer in answers:
        error = answer.exception()
        assert isinstance(error, CommitUnconfirmed) and isinstance(error, StoreError)
        assert "did not confirm a commit" in str(error)
    assert thread.submit(store.insert_order, orders[0]).result(30) is True  # the store goes on


def test_a_method_that_bypasses_the_stores_transactions_is_never_batched(
    store: OrderStore, thread: StoreThread
) -> None:
    counted = commits(store)
    answers = together(
        thread,
        [
            (store.insert_order, (make_order(cl_ord_id="ord-1"),)),
            (store.create_schema, ()),
            (store.insert_order, (make_order(cl_ord_id="ord-2"),)),
        ],
    )
    assert [answer.exception() for answer in answers] == [None, None, None]
    assert batch_sizes(thread.metrics) == 0  # three calls alone
    assert counted[0] >= 2


def test_calls_run_in_the_order_asked_across_stores_and_plain_functions(
    store: OrderStore, thread: StoreThread
) -> None:
    seen: list[str] = []
    answers = together(
        thread,
        [
            (store.insert_order, (make_order(cl_ord_id="ord-1"),)),
            (lambda: seen.append(",".join(o.cl_ord_id for o in store.orders())), ()),
            (store.insert_order, (make_order(cl_ord_id="ord-2"),)),
        ],
    )
    assert [answer.exception() for answer in answers] == [None, None, None]
    assert seen == ["ord-1"]  # the plain call ran after the first insert was committed, before the second


def test_a_stopped_store_thread_runs_what_was_asked_and_refuses_more(store: OrderStore) -> None:
    running = StoreThread(Metrics())
    asked = running.submit(store.insert_order, make_order(cl_ord_id="ord-1"))
    running.shutdown()
    assert asked.result() is True
    with pytest.raises(RuntimeError, match="stopped"):
        running.submit(store.orders)


def test_asyncio_callers_of_calls_run_together_are_answered_in_one_wake_up(
    store: OrderStore, thread: StoreThread
) -> None:
    async def scenario() -> tuple[list[bool], int]:
        loop = asyncio.get_running_loop()
        wake_ups = [0]
        call_soon_threadsafe = loop.call_soon_threadsafe

        def counted(*args: Any, **kwargs: Any) -> Any:
            wake_ups[0] += 1
            return call_soon_threadsafe(*args, **kwargs)

        loop.call_soon_threadsafe = counted  # type: ignore[method-assign]
        entered, release = threading.Event(), threading.Event()
        thread.submit(lambda: (entered.set(), release.wait(30)))
        assert entered.wait(30)
        asked = [
            asyncio.ensure_future(thread.run(store.insert_order, make_order(cl_ord_id=f"ord-{n}")))
            for n in range(10)
        ]
        await asyncio.sleep(0)  # every call queued behind the held thread
        release.set()
        return list(await asyncio.gather(*asked)), wake_ups[0]

    answers, wake_ups = asyncio.run(scenario())
    assert answers == [True] * 10
    assert wake_ups == 1


class SeenAt(CrashPoints):
    """Records, at each crash point reached, the commits so far and whether any caller had its answer."""

    def __init__(self, counted: list[int]) -> None:
        self.counted = counted
        self.answers: list[Future[Any]] = []
        self.seen: list[tuple[CrashPoint, int, bool]] = []

    def hit(self, point: CrashPoint) -> None:
        self.seen.append((point, self.counted[0], any(answer.done() for answer in self.answers)))


def test_a_batchs_crash_points_come_before_its_commit_and_before_any_answer(store: OrderStore) -> None:
    counted = commits(store)
    points = SeenAt(counted)
    thread = StoreThread(Metrics(), crash_points=points)
    try:
        entered, release = threading.Event(), threading.Event()
        thread.submit(lambda: (entered.set(), release.wait(30)))
        assert entered.wait(30)
        orders = [make_order(cl_ord_id=f"ord-{n}") for n in range(3)]
        points.answers = [thread.submit(store.insert_order, order) for order in orders]
        release.set()
        assert [answer.result(30) for answer in points.answers] == [True] * 3
        assert points.seen == [
            (CrashPoint.BATCH_BEFORE_COMMIT, 0, False),
            (CrashPoint.BATCH_COMMITTED_BEFORE_ANSWER, 1, False),
        ]
        points.seen.clear()
        assert thread.submit(store.insert_order, make_order(cl_ord_id="alone")).result(30) is True
        assert points.seen == [], "a call alone is no batch"
    finally:
        thread.shutdown()


def test_a_call_whose_asyncio_caller_gave_up_before_it_ran_is_never_run(thread: StoreThread) -> None:
    ran: list[str] = []
    entered, release = threading.Event(), threading.Event()

    async def scenario() -> None:
        thread.submit(lambda: (entered.set(), release.wait(30)))
        assert await asyncio.to_thread(entered.wait, 30)
        given_up = asyncio.create_task(thread.run(ran.append, "given up"))
        await asyncio.sleep(0)  # its call is queued behind the held one
        given_up.cancel()
        with pytest.raises(asyncio.CancelledError):
            await given_up
        release.set()
        await thread.run(ran.append, "asked after")

    asyncio.run(scenario())

    assert ran == ["asked after"]
