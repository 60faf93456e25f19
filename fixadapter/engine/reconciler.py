"""After every logon of the trading route, before any new order: make the store agree with the venue.

cTrader resets sequence numbers at each logon and replays nothing, so what happened while we were
away is learnt by asking: mass status (working orders), a status query for every order the store
holds open that the venue did not list (filled, cancelled or never received), and positions. What the
venue answers is the authority (a contradicting local state is corrected, see model/corrections.py).

A venue that refuses or never answers one of these requests is named in the failure, said once per
logon, and where it is safe reconciliation goes on without it: the instruments kept in the store, every
open order asked for one by one instead of the mass status, positions kept from fills.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from typing import TypeVar

from fixadapter.engine.inflight import QUERIED_STATUSES
from fixadapter.engine.ports import ReconciledOrders
from fixadapter.errors import AnswerAwaited, SessionError, SessionNotReady, StoreError, VenueRefused
from fixadapter.model.orders import Order
from fixadapter.model.reconciliation import MassStatus, OrderUnknown, PositionsReport
from fixadapter.model.reports import ExecutionReport

log = logging.getLogger("fixadapter.reconcile")
RETRY_SECONDS = 2.0
T = TypeVar("T")


class StepFailed(SessionError):
    """One request of the reconciliation failed; the text names which and why (never empty)."""

    def __init__(self, text: str, *, venue_cannot: bool) -> None:
        super().__init__(text)
        self.venue_cannot = venue_cannot  # refused or unanswered by a logged-on venue (not a dropped session)


async def _ask(what: str, timeout: float, query: Awaitable[T]) -> T:
    """`query` with a failure that says what was asked and why it failed (TimeoutError's str is empty)."""
    try:
        return await query
    except TimeoutError:
        raise StepFailed(f"no answer to the {what} within {timeout:g}s", venue_cannot=True) from None
    except (VenueRefused, AnswerAwaited) as exc:  # an order's: left to the in-flight watch
        raise StepFailed(str(exc), venue_cannot=True) from None
    except (SessionError, SessionNotReady) as exc:
        raise StepFailed(f"the {what} failed: {exc or type(exc).__name__}", venue_cannot=False) from None


class Notes:
    """What the venue cannot answer is said once per logon, not at every retry."""

    def __init__(self) -> None:
        self._said: set[str] = set()

    def once(self, level: int, text: str) -> None:
        if text in self._said:
            log.debug("%s (again)", text)
            return
        self._said.add(text)
        log.log(level, "%s", text)


async def reconcile(engine: ReconciledOrders) -> None:
    """Retry until it succeeds or the session drops (which cancels this task)."""
    notes = Notes()
    while True:
        try:
            await _reconcile_once(engine, notes)
        except (TimeoutError, SessionError, SessionNotReady, StoreError) as exc:
            # A database cut mid-reconciliation is retried like a venue that did not answer: the task must
            # not end (orders would stay blocked until the next logon).
            reason = str(exc) or f"{type(exc).__name__} without a message"
            engine.metrics.reconciliations.labels("failed").inc()
            engine.reconcile_problem = reason
            notes.once(
                logging.ERROR,
                f"reconciliation failed: {reason}; retrying every {RETRY_SECONDS:.0f}s, orders stay blocked",
            )
            await asyncio.sleep(RETRY_SECONDS)
            continue
        engine.reconcile_problem = None
        engine.metrics.reconciliations.labels("done").inc()
        engine.mark_ready()
        return


async def _instruments(engine: ReconciledOrders, notes: Notes, timeout: float) -> int:
    """The venue's list; if it cannot give one, the list kept in the store (if any) is safe to go on with."""
    try:
        return len(await _ask("security list request", timeout, engine.load_instruments(timeout)))
    except StepFailed as exc:
        kept = len(engine.catalog)
        if not exc.venue_cannot:
            raise
        if kept == 0:
            text = f"{exc}; no instrument list is kept in the store to go on with"
            raise StepFailed(text, venue_cannot=True) from None
        notes.once(logging.WARNING, f"{exc}; going on with the {kept} instruments kept in the store")
        return kept


async def _working(engine: ReconciledOrders, notes: Notes, timeout: float) -> MassStatus | None:
    """The venue's working orders; if it cannot list them (None), every open order is asked for one by one."""
    try:
        mass = await _ask("mass status request", timeout, engine.queries.mass_status(timeout))
    except StepFailed as exc:
        if not exc.venue_cannot:
            raise
        notes.once(logging.WARNING, f"{exc}; asking for every open order one by one instead")
        return None
    await engine.caught_up(mass.arrived)
    return mass


async def _statuses(
    engine: ReconciledOrders, notes: Notes, missing: list[Order], timeout: float
) -> tuple[dict[str, ExecutionReport], set[str]]:
    """Each order the venue did not list, asked for; those it no longer knows are closed (or sent again).

    Returns the venue's view by ClOrdID and the in-flight orders whose query went unanswered: those are
    left to the in-flight watch (asked again with backoff, flagged unknown), not allowed to block
    every other order's trading; any other failure fails this reconciliation."""
    if missing and not engine.capabilities.status_query:
        notes.once(
            logging.WARNING,
            f"{len(missing)} open orders the venue did not list are left as they are: this connector "
            "cannot be asked about one order",
        )
        return {}, {o.cl_ord_id for o in missing}
    asks = (
        _ask(f"status request for {o.cl_ord_id}", timeout, engine.queries.status(o, timeout)) for o in missing
    )
    answers = await asyncio.gather(*asks, return_exceptions=True)
    venue_view: dict[str, ExecutionReport] = {}
    failures: list[BaseException] = []
    left: set[str] = set()
    for order, answer in zip(missing, answers, strict=True):
        if _left_to_watch(order, answer):
            left.add(order.cl_ord_id)
            notes.once(
                logging.WARNING, f"{answer}; left to the in-flight watch (asked again, flagged unknown)"
            )
        elif isinstance(answer, BaseException):
            failures.append(answer)
        elif isinstance(answer, OrderUnknown):  # an unacknowledged one is sent again if still young
            await engine.close_unknown(order.cl_ord_id, answer.text, answer.sent)
        elif await engine.apply_status_answer(order, answer):
            venue_view[order.cl_ord_id] = answer.report
    if failures:
        first = failures[0]
        if not isinstance(first, StepFailed):
            raise first
        more = f" (and {len(failures) - 1} more status requests)" if len(failures) > 1 else ""
        raise StepFailed(f"{first}{more}", venue_cannot=first.venue_cannot)
    return venue_view, left


def _left_to_watch(order: Order, answer: object) -> bool:
    return isinstance(answer, StepFailed) and answer.venue_cannot and order.status in QUERIED_STATUSES


async def _reconcile_once(engine: ReconciledOrders, notes: Notes) -> None:
    started = time.monotonic()
    timeout = engine.reconcile_timeout
    instruments = await _instruments(engine, notes, timeout)
    mass = await _working(engine, notes, timeout)
    working = mass.orders if mass is not None else ()
    arrived = mass.arrived if mass is not None else 0
    # Orders the venue did not list are asked for one by one first: that also gives an order whose
    # acknowledgement was lost its OrderID, so the list below cannot mistake it for a foreign order.
    listed = {report.order_id for report in working}
    missing = [o for o in engine.open_orders() if o.order_id is None or o.order_id not in listed]
    venue_view, left = await _statuses(engine, notes, missing, timeout)
    changed = 0
    for report in working:
        changed += await _apply_working(engine, report, arrived)
        order = await engine.find(report.cl_ord_id, report.order_id)
        if order is not None:
            venue_view[order.cl_ord_id] = report
    for order in engine.open_orders():
        if order.pending_request_id is not None and order.cl_ord_id not in left:
            why = "no answer to the request before the session dropped; resend it if still wanted"
            await engine.settle_lost_request(order.cl_ord_id, venue_view.get(order.cl_ord_id), why)
    # Positions that came with the mass status predate the answers asked for one by one above: a fill
    # found in one of those is already in them, so they are asked for again, after it.
    given = mass.positions if mass is not None and not missing else None
    positions = await _positions(engine, notes, timeout, given)
    log.info(
        "reconciled in %.0f ms: %d instruments, %d working orders at the venue (%d changed), "
        "%d open orders queried, %s",
        (time.monotonic() - started) * 1000,
        instruments,
        len(working),
        changed,
        len(missing),
        f"{positions} positions" if positions is not None else "positions kept from fills",
    )


async def _positions(
    engine: ReconciledOrders, notes: Notes, timeout: float, given: PositionsReport | None
) -> int | None:
    """The venue's positions (from its mass status where it gives them there); if it cannot give them,
    those kept from fills stand until the next check."""
    answer = given
    if answer is None:
        try:
            answer = await _ask("positions request", timeout, engine.queries.positions(timeout))
        except StepFailed as exc:
            if not exc.venue_cannot:
                raise
            notes.once(logging.WARNING, f"{exc}; positions are kept from fills until the venue answers")
            return None
    return len(await engine.save_positions(answer))


async def _apply_working(engine: ReconciledOrders, report: ExecutionReport, arrived: int) -> int:
    order = await engine.find(report.cl_ord_id, report.order_id)
    if order is None:
        log.warning("venue has order %s that the store does not: adopting it", report.order_id)
        await engine.adopt_external(report)
        return 1
    after = await engine.apply_venue_view(order, report, arrived)
    return int(after != order)
