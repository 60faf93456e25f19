"""After every TRADE logon, before any new order: make the store agree with the venue.

cTrader resets sequence numbers at each logon and replays nothing, so what happened while we were
away is learnt by asking: mass status (working orders), a status query for every order the store
holds open that the venue did not list (filled, cancelled or never received), and positions.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from fixadapter.errors import SessionError, SessionNotReady
from fixadapter.model.enums import PositionSide
from fixadapter.model.orders import Position
from fixadapter.model.reports import BusinessReject, ExecutionReport, PositionReport

if TYPE_CHECKING:
    from fixadapter.engine.orders import OrderEngine

log = logging.getLogger("fixadapter.reconcile")
RETRY_SECONDS = 2.0


def positions_from(reports: Sequence[PositionReport]) -> list[Position]:
    positions = []
    for report in reports:
        if report.no_positions or report.position_id is None:
            continue
        long = report.long_qty > 0
        positions.append(
            Position(
                position_id=report.position_id,
                symbol_id=report.symbol_id or 0,
                side=PositionSide.LONG if long else PositionSide.SHORT,
                quantity=report.long_qty if long else report.short_qty,
                entry_price=report.entry_price,
            )
        )
    return positions


async def reconcile(engine: OrderEngine) -> None:
    """Retry until it succeeds or the session drops (which cancels this task)."""
    while True:
        try:
            await _reconcile_once(engine)
        except (TimeoutError, SessionError, SessionNotReady) as exc:
            engine.metrics.reconciliations.labels("failed").inc()
            log.error(
                "reconciliation failed (%s); retrying in %.0fs, orders stay blocked", exc, RETRY_SECONDS
            )
            await asyncio.sleep(RETRY_SECONDS)
            continue
        engine.metrics.reconciliations.labels("done").inc()
        engine.mark_ready()
        return


async def _reconcile_once(engine: OrderEngine) -> None:
    started = time.monotonic()
    timeout = engine.reconcile_timeout
    instruments = await engine.load_instruments(timeout)
    working = await engine.queries.mass_status(timeout)
    # Orders the venue did not list are asked for one by one first: that also gives an order whose
    # acknowledgement was lost its OrderID, so the list below cannot mistake it for a foreign order.
    listed = {report.order_id for report in working}
    missing = [o for o in engine.open_orders() if o.order_id is None or o.order_id not in listed]
    answers = await asyncio.gather(*(engine.queries.status(o.cl_ord_id, timeout) for o in missing))
    venue_view: dict[str, ExecutionReport] = {}
    for order, answer in zip(missing, answers, strict=True):
        if isinstance(answer, BusinessReject):  # an unacknowledged one is sent again if still young
            await engine.close_unknown(order.cl_ord_id, answer.text)
        else:
            venue_view[order.cl_ord_id] = answer
    changed = 0
    for report in working:
        changed += await _apply_working(engine, report)
        order = await engine.find(report.cl_ord_id, report.order_id)
        if order is not None:
            venue_view[order.cl_ord_id] = report
    for order in engine.open_orders():
        if order.pending_request_id is not None:
            why = "no answer to the request before the session dropped; resend it if still wanted"
            await engine.settle_lost_request(order.cl_ord_id, venue_view.get(order.cl_ord_id), why)
    positions = positions_from(await engine.queries.positions(timeout))
    await engine.save_positions(positions)
    log.info(
        "reconciled in %.0f ms: %d instruments, %d working orders at the venue (%d changed), "
        "%d open orders queried, %d positions",
        (time.monotonic() - started) * 1000,
        len(instruments),
        len(working),
        changed,
        len(missing),
        len(positions),
    )


async def _apply_working(engine: OrderEngine, report: ExecutionReport) -> int:
    order = await engine.find(report.cl_ord_id, report.order_id)
    if order is None:
        log.warning("venue has order %s that the store does not: adopting it", report.order_id)
        await engine.adopt_external(report)
        return 1
    after = await engine.apply_venue_view(order, report)
    return int(after != order)
