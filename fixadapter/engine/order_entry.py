"""Orders in: a new order, a cancel or a replace is checked, its id claimed, persisted, then sent.

Nothing goes out that the store does not have. A new order's ClOrdID seen before returns that order when
asked again with the same terms (a retry) and is refused with other terms; an id used for an order or a
request is never used again. A send refused because the session dropped reached nothing, so it is sent
again once the session is back, or the order is rejected as not sent when that takes too long.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from fixadapter.config import OrdersConfig
from fixadapter.connectors.base import TradeConnector
from fixadapter.crash_points import NO_CRASH, CrashPoint, CrashPoints
from fixadapter.engine.capability_check import order_refusal
from fixadapter.engine.claims import CommandIds
from fixadapter.engine.executions import Executions
from fixadapter.engine.fanout import EventFanout
from fixadapter.engine.identity import differences, order_terms
from fixadapter.engine.instruments import Catalog
from fixadapter.engine.journaling import Journaling
from fixadapter.engine.known_orders import KnownOrders
from fixadapter.engine.pre_trade import PreTrade
from fixadapter.engine.readiness import Readiness
from fixadapter.engine.recorder import Recorder
from fixadapter.engine.refusals import Refusals
from fixadapter.engine.store_thread import StoreThread
from fixadapter.errors import (
    ClientIdInUse,
    CommandIdReused,
    OrderNotFound,
    OrderRejected,
    SessionError,
    SessionNotReady,
    StoreError,
    UnknownSymbol,
)
from fixadapter.metrics import Metrics
from fixadapter.model.enums import OrderEventKind, OrderStatus, OrderType, RequestKind
from fixadapter.model.ids import IdAllocator
from fixadapter.model.orders import Order, OrderEvent, OrderRequest
from fixadapter.model.reports import Instrument
from fixadapter.model.requests import ORDER_TERMS, CancelOrder, CommandUse, NewOrder, ReplaceOrder
from fixadapter.store.repository import OrderStore

log = logging.getLogger("fixadapter.engine")


class OrderEntry:
    def __init__(
        self,
        *,
        store: OrderStore,
        db: StoreThread,
        connector: TradeConnector,
        config: OrdersConfig,
        ids: IdAllocator,
        catalog: Catalog,
        known: KnownOrders,
        readiness: Readiness,
        recorder: Recorder,
        refusals: Refusals,
        executions: Executions,
        fanout: EventFanout,
        metrics: Metrics,
        pre_trade: PreTrade | None = None,
        crash_points: CrashPoints = NO_CRASH,
        journaling: Journaling | None = None,
        command_ids: CommandIds | None = None,
    ) -> None:
        self.pre_trade = pre_trade
        self._journaling = journaling
        self._command_ids = command_ids or CommandIds()
        self._crash_points = crash_points
        self._store = store
        self._db = db
        self._connector = connector
        self._config = config
        self._ids = ids
        self._catalog = catalog
        self._known = known
        self._readiness = readiness
        self._recorder = recorder
        self._refusals = refusals
        self._executions = executions
        self._fanout = fanout
        self._metrics = metrics

    async def submit(self, request: NewOrder, command: CommandUse | None = None) -> Order:
        """Persist, then send. A ClOrdID seen before returns that order instead of sending again (when
        asked with the same terms by the same strategy; otherwise it is refused). An order in memory is
        found at once; one only the store has is found by the insert's claim on its id, or looked for
        when the request is refused before the insert (a retry gets its order whatever the checks would
        say today), so a new order costs no lookup in the store.

        `command`: the strategy command placing the order. Its id is recorded in the new order's own
        transaction; when no order is inserted (a retry, a refusal) it is recorded on its own. Either
        way a command id used before for another command raises CommandIdReused, whatever else the
        request would have met."""
        if command is None:
            return (await self._submit(request, None))[0]
        try:
            order, recorded = await self._submit(request, command)
        except (StoreError, CommandIdReused):
            raise  # the store could not say (the command is retried whole), or it said: a reuse
        except Exception:
            await self._record_command(command)
            raise
        if not recorded:
            await self._record_command(command)
        return order

    async def _record_command(self, command: CommandUse) -> None:
        if not await self.first_use_of_command(command):
            raise CommandIdReused(command.command_id)

    async def first_use_of_command(self, command: CommandUse) -> bool:
        """Record a command id: True when new or a redelivery of the same command, False when used for
        another. One journaled and not yet in the store (by any engine of the daemon) is answered here."""
        pending = self._command_ids.pending_digest(command)
        if pending is not None:
            return pending == command.digest
        first = await self._db.run(
            self._store.first_use_of_command, command.strategy, command.command_id, command.digest
        )
        self._command_ids.seen(command)
        return first

    async def _submit(self, request: NewOrder, command: CommandUse | None) -> tuple[Order, bool]:
        """The order, and whether `command` was recorded with it (a new order's insert)."""
        self.check_capabilities(request)
        if request.cl_ord_id is not None:
            existing = self._known.cached(request.cl_ord_id)
            if existing is not None:
                return await self._same_order(existing, request), False
            self._known.check_unused("ClOrdID", request.cl_ord_id)
        try:
            instrument = await self._checked(request)
        except OrderRejected:
            stored = await self._stored(request.cl_ord_id)
            if stored is None:
                raise
            return await self._same_order(stored, request), False
        order = Order(
            cl_ord_id=request.cl_ord_id or self._new_id(),
            symbol_id=instrument.symbol_id,
            symbol=instrument.name,
            **request.model_dump(include={*ORDER_TERMS, "strategy"}),
        )
        self._known.track(order)  # counted before the first await: concurrent submits see it
        try:
            stored = await self._persist(order, request, command)
        except OrderRejected:
            self._known.track(order.moved_to(OrderStatus.REJECTED))
            raise
        if stored is not None:
            self._known.track(stored)
            return stored, False
        return await self._send_new(order), command is not None

    async def _persist(self, order: Order, request: NewOrder, command: CommandUse | None) -> Order | None:
        """Make the new order durable and claim its id; the order stored before under that id instead,
        when there is one (a retry)."""
        journaling = self._journaling
        if journaling is not None and journaling.active and self._certainly_new(order, command):
            # Nothing to ask the store: the ids are claimed here, and journaled the order is durable.
            try:
                position = journaling.new_order(order, order_terms(order), command)
            except StoreError:  # nothing was written: the order is not counted any more
                self._known.track(order.moved_to(OrderStatus.REJECTED))
                raise
            self._known.keep_seen_ids().add(order.cl_ord_id)
            if command is not None:
                self._command_ids.claim(command, lambda: journaling.written(position))
            return None
        if command is not None:
            pending = self._command_ids.pending_digest(command)
            if pending is not None and pending != command.digest:  # journaled, perhaps by another account
                raise CommandIdReused(command.command_id)
        inserted = await self._db.run(self._store.insert_order, order, order_terms(order), command)
        if command is not None:
            self._command_ids.seen(command)
        if inserted:
            return None
        stored = await self._db.run(self._store.get_order, order.cl_ord_id)
        if stored is None:
            raise OrderRejected(f"ClOrdID {order.cl_ord_id} collides with an existing order")
        return await self._same_order(stored, request)

    def _certainly_new(self, order: Order, command: CommandUse | None) -> bool:
        """Whether the order's ClOrdID and its command's id are unused, known without the store (a
        redelivered or retried command, or a rare false positive, asks the store)."""
        if not self._known.certainly_unused(order.cl_ord_id):
            return False
        return command is None or self._command_ids.certainly_new(command)  # a pending id is seen too

    def _new_id(self) -> str:
        """An id of the allocator's that no order in memory has (a strategy may have given one as its own)."""
        while True:
            cl_ord_id = self._ids.next()
            if self._known.cached(cl_ord_id) is None and self._known.request(cl_ord_id) is None:
                return cl_ord_id

    async def _send_new(self, order: Order) -> Order:
        """A new order, durable, goes out."""
        self._known.remember(order)
        self._fanout.publish(OrderEvent(kind=OrderEventKind.SUBMITTED, order=order))
        self._crash_points.hit(CrashPoint.ORDER_STORED_BEFORE_SEND)
        try:
            await self.send_when_ready(order)
        except SessionError as exc:
            return await self.reject_unsent(order, str(exc))
        self._metrics.orders_submitted.inc()
        return order

    async def _stored(self, cl_ord_id: str | None) -> Order | None:
        return None if cl_ord_id is None else await self._db.run(self._store.get_order, cl_ord_id)

    async def _checked(self, request: NewOrder) -> Instrument:
        """The order's instrument once the account trades and the order passes every check."""
        await self._readiness.wait()
        instrument = self._catalog.resolve(request.symbol)
        if request.expire_time is not None and request.expire_time <= datetime.now(UTC):
            raise OrderRejected(f"expire_time {request.expire_time.isoformat()} is already past")
        if self.pre_trade is not None:
            self.pre_trade.check(request)
        return instrument

    def check_capabilities(self, request: NewOrder) -> None:
        """Refuse, before anything is stored, an order asking what the connector cannot send."""
        refusal = order_refusal(request, self._connector.capabilities)
        if refusal is not None:
            self._metrics.order_rejects.labels("adapter", "UNSUPPORTED").inc()
            raise OrderRejected(refusal)

    async def _same_order(self, existing: Order, request: NewOrder) -> Order:
        """A retry gets its order back; a ClOrdID reused for another order, or by another strategy, is
        refused, saying how (never naming the other strategy)."""
        owner = existing.strategy or existing.label
        if request.strategy is not None and owner != request.strategy:
            raise OrderRejected(
                f"ClOrdID {existing.cl_ord_id} is taken by another strategy's order; give the order a new "
                "ClOrdID"
            )
        first = await self._db.run(self._store.order_terms, existing.cl_ord_id) or order_terms(existing)
        try:
            symbol = self._catalog.resolve(request.symbol).name
        except UnknownSymbol:
            symbol = request.symbol
        changed = differences(first, order_terms(request, symbol))
        if changed:
            raise OrderRejected(
                f"ClOrdID {existing.cl_ord_id} was used for a different order: {', '.join(changed)}; "
                "give the new order a new ClOrdID (the same id is only for retrying the same order)"
            )
        return existing

    async def send_when_ready(self, order: Order) -> None:
        """Send; if the session dropped under us (nothing was written), send again once it is back.

        QuickFIX refuses to send while logged out and, with PersistMessages=N, keeps nothing to
        replay, so a refused send is known not to have reached the venue and may be repeated.
        """
        while True:
            self._recorder.sent(order.cl_ord_id)
            try:
                await self._connector.submit(order)
                self._known.unsent.discard(order.cl_ord_id)
                return
            except SessionError as exc:
                # Reconciliation must not ask the venue about it: it is known not to be there.
                self._known.unsent.add(order.cl_ord_id)
                self._readiness.clear()
                log.warning("%s not sent (%s); sending when the trading route is back", order.cl_ord_id, exc)
                try:
                    await self._readiness.wait()
                except SessionNotReady as timeout:
                    self._known.unsent.discard(order.cl_ord_id)
                    raise SessionError(str(timeout)) from exc

    async def cancel(self, request: CancelOrder) -> Order:
        """Ask the venue to cancel. An order we never stored is still asked for: the venue decides."""
        await self._readiness.wait()
        if await self._known.get(request.cl_ord_id) is None:
            return await self._cancel_untracked(request)
        async with self._known.lock(request.cl_ord_id):
            order = await self._known.get(request.cl_ord_id)
            if order is None:
                raise OrderNotFound(f"order {request.cl_ord_id} vanished from the store")
            self._check_amendable(order, "cancel")
            venue_request = OrderRequest(
                request_id=request.request_id or self._ids.next("C"),
                cl_ord_id=order.cl_ord_id,
                kind=RequestKind.CANCEL,
            )
            pending = order.moved_to(OrderStatus.PENDING_CANCEL, pending_request_id=venue_request.request_id)
            return await self._send_request(pending, venue_request, OrderEventKind.CANCEL_REQUESTED)

    async def replace(self, request: ReplaceOrder) -> Order:
        await self._readiness.wait()
        async with self._known.lock(request.cl_ord_id):
            return await self._replace_locked(request)

    async def _replace_locked(self, request: ReplaceOrder) -> Order:
        order = await self._known.get(request.cl_ord_id)
        if order is None:
            raise OrderNotFound(f"no order with ClOrdID {request.cl_ord_id} in the store")
        self._check_amendable(order, "replace")
        if order.order_type is OrderType.MARKET:
            raise OrderRejected("a market order cannot be replaced (cTrader amends pending orders only)")
        both = request.price is not None and request.stop_price is not None
        if both and order.order_type is not OrderType.STOP_LIMIT:
            raise OrderRejected(
                f"give price (limit) or stop_price (stop), not both: order {order.cl_ord_id} is a "
                f"{order.order_type} order (only a stop-limit order has both)"
            )
        if request.quantity <= order.cum_qty:
            raise OrderRejected(f"new quantity {request.quantity} must exceed the filled {order.cum_qty}")
        if self.pre_trade is not None:
            self.pre_trade.check(request, order)
        venue_request = OrderRequest(
            request_id=request.request_id or self._ids.next("R"),
            cl_ord_id=order.cl_ord_id,
            kind=RequestKind.REPLACE,
            quantity=request.quantity,
            price=request.price,
            stop_price=request.stop_price,
            expire_time=request.expire_time,
        )
        pending = order.moved_to(OrderStatus.PENDING_REPLACE, pending_request_id=venue_request.request_id)
        return await self._send_request(pending, venue_request, OrderEventKind.REPLACE_REQUESTED)

    @staticmethod
    def _check_amendable(order: Order, action: str) -> None:
        if order.is_done:
            raise OrderRejected(f"order {order.cl_ord_id} is already {order.status}: nothing to {action}")
        if order.pending_request_id is not None:
            raise OrderRejected(
                f"order {order.cl_ord_id} has request {order.pending_request_id} in flight; "
                f"wait for its answer before another {action}"
            )

    async def _send_request(self, pending: Order, request: OrderRequest, kind: OrderEventKind) -> Order:
        self._known.check_unused("request id", request.request_id)
        await self._db.run(self._store.insert_request, request, pending)
        self._known.add_request(request)
        self._known.remember(pending)
        self._fanout.publish(OrderEvent(kind=kind, order=pending))
        self._recorder.sent(request.request_id)
        try:
            if request.kind is RequestKind.CANCEL:
                await self._connector.cancel(pending, request)
            else:
                await self._connector.replace(pending, request)
        except SessionError as exc:
            await self._refusals.refuse_request(pending, request.request_id, None, f"not sent: {exc}")
        return self._known.latest(pending)

    async def _cancel_untracked(self, request: CancelOrder) -> Order:
        request_id = request.request_id or self._ids.next("C")
        self._known.check_unused("request id", request_id)
        usage = await self._db.run(self._store.client_id_usage, request_id)
        if usage is not None:
            raise ClientIdInUse.of("request id", request_id, *usage)
        if not self._connector.capabilities.cancel_by_client_id:
            raise OrderNotFound(
                f"no order {request.cl_ord_id} in the store, and this connector cannot cancel an order "
                "by its client id alone"
            )
        venue_request = OrderRequest(
            request_id=request_id, cl_ord_id=request.cl_ord_id, kind=RequestKind.CANCEL
        )
        try:
            async with asyncio.timeout(self._config.reconcile_timeout_seconds):
                report = await self._connector.cancel_unknown(venue_request)
        except SessionError as exc:
            raise OrderRejected(f"cancel of {request.cl_ord_id} not sent: {exc}") from exc
        except TimeoutError:
            raise OrderRejected(f"no answer from the venue to the cancel of {request.cl_ord_id}") from None
        return await self._executions.adopt_external(report)

    async def reject_unsent(self, order: Order, reason: str) -> Order:
        """Reject an order that never reached the venue, saying so (takes its lock)."""
        async with self._known.lock(order.cl_ord_id):
            order = self._known.latest(order)
            return await self.reject_unsent_locked(order, reason)

    async def reject_unsent_locked(self, order: Order, reason: str) -> Order:
        """Reject an order that never reached the venue, saying so (the caller holds its lock)."""
        rejected = order.moved_to(OrderStatus.REJECTED, reason=f"{reason}; not sent, resubmit when ready")
        await self._recorder.record(rejected, OrderEventKind.REJECTED, None, f"unsent:{order.cl_ord_id}")
        self._metrics.order_rejects.labels("adapter", "NOT_SENT").inc()
        return rejected

    async def reject_unanswered_locked(self, order: Order, reason: str) -> Order:
        """Reject an order that was sent, never answered, and that the venue does not list (the caller
        holds its lock): never sent again, since the venue may yet have it."""
        text = f"{reason}; check the venue's orders before resubmitting"
        rejected = order.moved_to(OrderStatus.REJECTED, reason=text)
        await self._recorder.record(rejected, OrderEventKind.REJECTED, None, f"unanswered:{order.cl_ord_id}")
        self._metrics.order_rejects.labels("adapter", "UNANSWERED").inc()
        return rejected
