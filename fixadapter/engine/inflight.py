"""Orders with no answer after a timeout are queried with an OrderStatusRequest (H).

A cancel or replace still unanswered when the venue reports the order working was lost: it is
refused with that reason, so the order is free for the next request instead of stuck pending.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from fixadapter.errors import SessionError, SessionNotReady
from fixadapter.model.enums import IN_FLIGHT_STATUSES
from fixadapter.model.orders import utc_now
from fixadapter.model.reports import BusinessReject

if TYPE_CHECKING:
    from fixadapter.engine.orders import OrderEngine

log = logging.getLogger("fixadapter.inflight")


async def watch_in_flight(engine: OrderEngine, timeout: float) -> None:
    while True:
        await asyncio.sleep(min(timeout / 2, 1.0))
        if not engine.ready:
            continue
        now = time.monotonic()
        for order in engine.open_orders():
            if order.status not in IN_FLIGHT_STATUSES or engine.queries.is_asking_status(order.cl_ord_id):
                continue
            age = (utc_now() - order.updated_at).total_seconds()
            last = engine.queries.queried_at.get(order.cl_ord_id, 0.0)
            if age >= timeout and now - last >= timeout:
                log.warning(
                    "no answer for %s after %.1fs: asking the venue for its status", order.cl_ord_id, age
                )
                engine.spawn(query(engine, order.cl_ord_id, timeout), name=f"status-{order.cl_ord_id}")


async def query(engine: OrderEngine, cl_ord_id: str, timeout: float) -> None:
    try:
        answer = await engine.queries.status(cl_ord_id, timeout)
    except (TimeoutError, SessionNotReady, SessionError) as exc:
        log.warning("status query for %s unanswered (%s); will ask again", cl_ord_id, exc)
        return
    if isinstance(answer, BusinessReject):
        await engine.close_unknown(cl_ord_id, answer.text)
    else:
        why = f"no answer from the venue within {timeout:g}s; it reports the order {answer.status}"
        await engine.settle_lost_request(cl_ord_id, answer, why)
