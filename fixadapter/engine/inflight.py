"""Orders with no answer after a timeout are queried with a status request, backing off per order.

A cancel or replace still unanswered when the venue reports the order working was lost: it is
refused with that reason, so the order is free for the next request instead of stuck pending.

An overloaded or broken venue must not be flooded: each order is asked first after `timeout` of
silence, then after twice as long each time up to a cap (VenueQueries also caps how many are in flight
at once). An order the venue never answers at all is flagged `unknown` after `unknown_after` seconds,
with an alarm; it is still asked now and then, and any answer resolves it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime

from fixadapter.engine.ports import WatchedOrders
from fixadapter.errors import AnswerAwaited, RequestStillQueued, SessionError, SessionNotReady
from fixadapter.model.enums import IN_FLIGHT_STATUSES, OrderStatus
from fixadapter.model.orders import Order, utc_now
from fixadapter.model.reconciliation import OrderUnknown

log = logging.getLogger("fixadapter.inflight")
QUERIED_STATUSES = IN_FLIGHT_STATUSES | {OrderStatus.UNKNOWN}


class StatusSchedule:
    """When each unanswered order is asked next (monotonic seconds): after `first`, then doubling to `cap`."""

    def __init__(self, first: float, cap: float) -> None:
        self._first = first
        self._cap = max(cap, first)
        self._next: dict[str, float] = {}
        self._interval: dict[str, float] = {}
        self._times: dict[str, int] = {}

    def due(self, cl_ord_id: str, now: float) -> bool:
        return now >= self._next.get(cl_ord_id, 0.0)

    def asked(self, cl_ord_id: str, now: float) -> int:
        """Note a query sent now; returns how many times this order has been asked."""
        previous = self._interval.get(cl_ord_id)
        interval = self._first if previous is None else min(previous * 2, self._cap)
        self._interval[cl_ord_id] = interval
        self._next[cl_ord_id] = now + interval
        self._times[cl_ord_id] = self._times.get(cl_ord_id, 0) + 1
        return self._times[cl_ord_id]

    def keep_only(self, cl_ord_ids: set[str]) -> None:
        """Forget orders no longer waiting: one that waits again later starts from `first`."""
        for gone in set(self._next) - cl_ord_ids:
            del self._next[gone], self._interval[gone], self._times[gone]


async def watch_in_flight(
    engine: WatchedOrders, timeout: float, backoff_cap: float, unknown_after: float
) -> None:
    schedule = StatusSchedule(timeout, backoff_cap)
    while True:
        await asyncio.sleep(min(timeout / 2, 1.0))
        if engine.ready:
            await check_in_flight(engine, schedule, timeout, unknown_after, time.monotonic(), utc_now())


async def check_in_flight(
    engine: WatchedOrders,
    schedule: StatusSchedule,
    timeout: float,
    unknown_after: float,
    now: float,
    wall: datetime,
) -> None:
    """One round of the watch: query the orders that are due, flag those silent for too long."""
    waiting = [o for o in engine.open_orders() if o.status in QUERIED_STATUSES]
    schedule.keep_only({o.cl_ord_id for o in waiting})
    for order in waiting:
        silent = (wall - order.updated_at).total_seconds()
        if order.status is not OrderStatus.UNKNOWN and silent >= unknown_after:
            await engine.flag_unknown(order.cl_ord_id, silent)
        if not engine.capabilities.status_query:
            continue  # flagged unknown above; the next reconciliation's mass status resolves it
        if silent < timeout or engine.queries.is_asking_status(order.cl_ord_id):
            continue
        if not schedule.due(order.cl_ord_id, now):
            continue
        times = schedule.asked(order.cl_ord_id, now)
        log.log(
            logging.WARNING if times == 1 else logging.DEBUG,
            "no answer for %s after %.1fs: asking the venue for its status (time %d)",
            order.cl_ord_id,
            silent,
            times,
        )
        engine.spawn(query(engine, order, timeout), name=f"status-{order.cl_ord_id}")


async def query(engine: WatchedOrders, order: Order, timeout: float) -> None:
    cl_ord_id = order.cl_ord_id
    try:
        answer = await engine.queries.status(order, timeout)
    except TimeoutError:
        log.debug("status query for %s: no answer within %gs; asked again later", cl_ord_id, timeout)
        return
    except RequestStillQueued as exc:  # a burst behind the rate limit: one line per order per round
        log.debug("status query for %s not sent (%s); asked again later", cl_ord_id, exc)
        return
    except AnswerAwaited as exc:  # said once by the connector
        log.debug("status query for %s: %s; asked again later", cl_ord_id, exc)
        return
    except (SessionNotReady, SessionError) as exc:
        log.warning("status query for %s failed (%s); asked again later", cl_ord_id, exc)
        return
    if isinstance(answer, OrderUnknown):
        await engine.close_unknown(cl_ord_id, answer.text, answer.sent)
    elif await engine.apply_status_answer(order, answer):
        venue = answer.report
        why = f"no answer from the venue within {timeout:g}s; it reports the order {venue.status}"
        await engine.settle_lost_request(cl_ord_id, venue, why)
