"""Cancel every working order: the kill switch's and the daemon's stop-time sweep.

An order with a cancel or replace already in flight cannot take a second request (the venue answers
one at a time), so it is retried once that answer is in; the sweep gives up on it after `timeout`,
saying which orders are left, rather than hang a shutdown or an operator's command.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from fixadapter.engine.ports import CancellableOrders
from fixadapter.errors import FixAdapterError
from fixadapter.model.enums import OrderStatus
from fixadapter.model.requests import CancelOrder

log = logging.getLogger("fixadapter.sweep")
RETRY_SECONDS = 0.05


@dataclass
class Sweep:
    """What a sweep did: cancels sent, orders already being cancelled, and those it could not cancel."""

    sent: list[str] = field(default_factory=list)
    already_cancelling: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {"sent": self.sent, "already_cancelling": self.already_cancelling, "failed": self.failed}


async def cancel_working_orders(engine: CancellableOrders, why: str, timeout: float = 5.0) -> Sweep:
    sweep = Sweep()
    deadline = time.monotonic() + timeout
    done: set[str] = set()
    while True:
        waiting, now = [], []
        for order in engine.open_orders():
            if order.cl_ord_id in done:
                continue
            done.add(order.cl_ord_id)
            if order.status is OrderStatus.PENDING_CANCEL:
                sweep.already_cancelling.append(order.cl_ord_id)
            elif order.pending_request_id is not None:
                waiting.append(order.cl_ord_id)  # a replace in flight: cancel once it is answered
                done.discard(order.cl_ord_id)
            else:
                now.append(order.cl_ord_id)
        await asyncio.gather(*(_cancel(engine, cl_ord_id, sweep) for cl_ord_id in now))
        if not waiting:
            break
        if time.monotonic() >= deadline:
            for cl_ord_id in waiting:
                sweep.failed[cl_ord_id] = (
                    f"a request was still in flight after {timeout:g}s; cancel it by hand"
                )
            break
        await asyncio.sleep(RETRY_SECONDS)
    engine.metrics.kill_switch_cancels.labels("sent").inc(len(sweep.sent))
    engine.metrics.kill_switch_cancels.labels("refused").inc(len(sweep.failed))
    log.log(
        logging.WARNING if sweep.sent or sweep.failed else logging.INFO,
        "%s: %d cancels sent, %d already being cancelled, %d not cancelled %s",
        why,
        len(sweep.sent),
        len(sweep.already_cancelling),
        len(sweep.failed),
        sweep.failed or "",
    )
    return sweep


async def _cancel(engine: CancellableOrders, cl_ord_id: str, sweep: Sweep) -> None:
    try:
        order = await engine.cancel(CancelOrder(cl_ord_id=cl_ord_id))
    except FixAdapterError as exc:
        current = await engine.get_order(cl_ord_id)
        if current is not None and current.is_done:
            return  # filled or cancelled meanwhile: nothing left to do
        sweep.failed[cl_ord_id] = str(exc)
        return
    if order.is_done:
        return
    sweep.sent.append(cl_ord_id)
