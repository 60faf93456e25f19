"""OrderEngine: validate -> persist -> send; venue reports -> state machine -> store -> consumers.

Everything here runs on one asyncio loop. Reports arrive from connector threads through
`deliver` (call_soon_threadsafe) and are handled strictly in arrival order by one task; the
store runs on one worker thread so writes keep that order and the loop never blocks on I/O.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ParamSpec, TypeVar

from fixadapter.config import OrdersConfig
from fixadapter.connectors.base import Capabilities, TradeConnector
from fixadapter.engine.fanout import EventCallback, EventFanout
from fixadapter.engine.identity import (
    content_digest,
    differences,
    foreign_report,
    order_terms,
    shown,
    stored_differs,
)
from fixadapter.engine.inbox import Inbox
from fixadapter.engine.inflight import watch_in_flight
from fixadapter.engine.instruments import Catalog
from fixadapter.engine.positions import PositionBook, PositionFill
from fixadapter.engine.pre_trade import PreTrade
from fixadapter.engine.reconciler import reconcile
from fixadapter.engine.tasks import TaskGroup
from fixadapter.engine.venue_queries import VenueQueries
from fixadapter.errors import (
    ClientIdInUse,
    InvalidTransition,
    OrderNotFound,
    OrderRejected,
    SessionError,
    SessionNotReady,
    StoreError,
    UnknownSymbol,
    UnstorableData,
)
from fixadapter.metrics import Metrics
from fixadapter.model.corrections import contradiction, corrected
from fixadapter.model.enums import (
    IN_FLIGHT_STATUSES,
    ExecKind,
    OrderEventKind,
    OrderStatus,
    OrderType,
    RequestKind,
    SessionKind,
    SessionState,
    Side,
    VenueRequest,
)
from fixadapter.model.ids import IdAllocator
from fixadapter.model.orders import Fill, Order, OrderEvent, OrderRequest, Position
from fixadapter.model.reconciliation import OrderStatusReport, PositionsReport
from fixadapter.model.reports import (
    BusinessReject,
    CancelRejected,
    ExecutionReport,
    Instrument,
    MalformedMessage,
    RequestRefused,
    SessionStatus,
    VenueReport,
)
from fixadapter.model.requests import CancelOrder, NewOrder, ReplaceOrder
from fixadapter.model.transitions import (
    apply_execution,
    event_reason,
    impossible_fill,
    reason_code,
    replace_took_effect,
)
from fixadapter.store.repository import OrderStore

log = logging.getLogger("fixadapter.engine")
P = ParamSpec("P")
T = TypeVar("T")
RECENT_KEYS = 50_000
RECENT_ORDERS = 10_000
STORE_OUTAGE_ALARM_SECONDS = 3.0  # a head report waiting this long for the database: not ready

SessionCallback = Callable[[SessionStatus], None]
Handler = Callable[[Any, int | None], Awaitable[None]]


class OrderEngine:
    def __init__(
        self,
        store: OrderStore,
        connector: TradeConnector,
        metrics: Metrics,
        config: OrdersConfig,
        ids: IdAllocator | None = None,
        pre_trade: PreTrade | None = None,
    ) -> None:
        self.store = store
        self.catalog = Catalog()
        self.metrics = metrics
        self.pre_trade = pre_trade
        self.fanout = EventFanout(metrics)
        self._connector = connector
        self._config = config
        self._ids = ids or IdAllocator()
        self._db_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fixadapter-store")
        self._orders: OrderedDict[str, Order] = OrderedDict()
        self._by_request: dict[str, OrderRequest] = {}
        self._by_venue_id: dict[str, str] = {}
        self._seen_keys: OrderedDict[str, str] = OrderedDict()  # dedupe key -> what the report said
        self._sent_at: dict[str, float] = {}
        self._unsent: set[str] = set()
        self._locks: dict[str, asyncio.Lock] = {}
        self.queries = VenueQueries(connector, metrics, config.max_status_queries)
        self._session_callbacks: list[SessionCallback] = []
        self._ready = asyncio.Event()
        self._trade_up = False
        self.last_session_text: str | None = None
        self.reconcile_problem: str | None = None  # why the last reconciliation failed, while it retries
        self._inbox = Inbox()
        self._live_mark: dict[str, int] = {}  # ClOrdID -> arrival of the last live report applied to it
        self._tasks = TaskGroup(metrics)
        self._reconcile_task: asyncio.Task[None] | None = None
        self._positions_refresh: asyncio.Task[None] | None = None
        self._positions_publish: asyncio.Task[None] | None = None
        self._positions = PositionBook()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.store_outage_alarm_seconds = STORE_OUTAGE_ALARM_SECONDS
        self._handlers: dict[type[Any], Handler] = {
            ExecutionReport: self._on_execution,
            CancelRejected: lambda report, _arrived: self._on_cancel_rejected(report),
            BusinessReject: lambda report, _arrived: self._on_business_reject(report),
            RequestRefused: lambda report, _arrived: self._on_request_refused(report),
            SessionStatus: lambda report, _arrived: self._on_session_status(report),
            MalformedMessage: lambda report, _arrived: self._on_malformed(report),
        }

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Recover open orders from the store, then start the connector; orders wait for reconciliation."""
        self._loop = asyncio.get_running_loop()
        self._inbox.bind(self._loop)
        await self._db(self.store.create_schema)
        recovered = await self._db(self.store.open_orders)
        for order in recovered:
            self._remember(order)
            if order.status is OrderStatus.UNKNOWN:  # alarms live in memory: raised again for a person
                self.metrics.alarms.raise_alarm("unknown_order", order.cl_ord_id, order.reason or "unknown")
        for request in await self._db(self.store.requests):
            self._by_request[request.request_id] = request
        self.catalog.replace(await self._db(self.store.instruments))
        self._positions.replace(await self._db(self.store.positions))
        if recovered:
            log.info(
                "recovered %d open orders from the store; they are reconciled after logon", len(recovered)
            )
        self._tasks.spawn(self._process_reports(), name="reports")
        watch = watch_in_flight(
            self,
            self._config.inflight_timeout_seconds,
            self._config.status_query_backoff_max_seconds,
            self._config.unknown_after_seconds,
        )
        self._tasks.spawn(watch, name="in-flight")
        if self._config.positions_refresh_seconds > 0:
            self._tasks.spawn(
                self._check_positions_every(self._config.positions_refresh_seconds), name="positions"
            )
        await self._connector.start(self.deliver)

    async def stop(self) -> None:
        """Log out, then handle every report that arrived, then close the store."""
        self._ready.clear()
        await self._connector.stop()
        await self._tasks.cancel_all()
        while not self._inbox.empty():
            arrived, report = self._inbox.take_nowait()
            await self._handle(report, arrived)
            self._inbox.done()
        await asyncio.to_thread(self._db_thread.shutdown, True)
        self.store.close()

    def deliver(self, report: VenueReport) -> None:
        """Thread-safe entry for live events from the connector: O(1), hands the report to the loop."""
        self._inbox.deliver(report)

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    @property
    def store_thread(self) -> ThreadPoolExecutor:
        """The one thread that writes the store (an in-memory SQLite database exists only on it)."""
        return self._db_thread

    async def until_ready(self) -> None:
        await self._ready.wait()

    async def wait_ready(self, timeout: float | None = None) -> None:
        wait = self._config.ready_timeout_seconds if timeout is None else timeout
        try:
            await asyncio.wait_for(self._ready.wait(), wait)
        except TimeoutError:
            if self._trade_up and self.reconcile_problem:
                raise SessionNotReady(
                    f"TRADE is logged on but not reconciled after {wait:g}s: reconciliation: "
                    f"{self.reconcile_problem}; it is retried until the venue answers "
                    "(see the log; ask the broker if it persists)"
                ) from None
            reason = f" (last: {self.last_session_text})" if self.last_session_text else ""
            raise SessionNotReady(
                f"TRADE is not logged on and reconciled after {wait:g}s{reason}; "
                "check host, ports and credentials, or retry when the session is back"
            ) from None

    def not_ready_reason(self) -> str:
        """Why new orders wait, in words (for /readyz and the blotter)."""
        if self.ready:
            return "TRADE logged on and reconciled"
        if self._trade_up and self.reconcile_problem:
            return f"TRADE logged on, not reconciled: reconciliation: {self.reconcile_problem}"
        text = self.last_session_text
        return "TRADE not logged on and reconciled" + (f" (last: {text})" if text else "")

    async def _db(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        timer = self.metrics.store_seconds.labels(getattr(fn, "__name__", "other"))

        def timed() -> T:
            with timer.time():
                return fn(*args, **kwargs)

        return await asyncio.get_running_loop().run_in_executor(self._db_thread, timed)

    # -- consumers ----------------------------------------------------------------------------

    def on_event(self, callback: EventCallback) -> None:
        self.fanout.on_event(callback)

    def on_session(self, callback: SessionCallback) -> None:
        self._session_callbacks.append(callback)

    def subscribe(self) -> asyncio.Queue[OrderEvent]:
        return self.fanout.subscribe()

    def unsubscribe(self, queue: asyncio.Queue[OrderEvent]) -> None:
        self.fanout.unsubscribe(queue)

    def events(self) -> AsyncIterator[OrderEvent]:
        return self.fanout.events()

    def _publish(self, event: OrderEvent) -> None:
        self.fanout.publish(event)

    # -- orders in ----------------------------------------------------------------------------

    async def submit(self, request: NewOrder) -> Order:
        """Persist, then send. A ClOrdID seen before returns that order instead of sending again (when
        asked with the same terms; other terms are refused)."""
        if request.cl_ord_id is not None:
            existing = await self.get_order(request.cl_ord_id)
            if existing is not None:
                return await self._same_order(existing, request)
            self._check_unused("ClOrdID", request.cl_ord_id)
        await self.wait_ready()
        instrument = self.catalog.resolve(request.symbol)
        if request.expire_time is not None and request.expire_time <= datetime.now(UTC):
            raise OrderRejected(f"expire_time {request.expire_time.isoformat()} is already past")
        if self.pre_trade is not None:
            self.pre_trade.check(request)
        order = Order(
            cl_ord_id=request.cl_ord_id or self._ids.next(),
            symbol_id=instrument.symbol_id,
            symbol=instrument.name,
            **request.model_dump(
                include={
                    "side",
                    "order_type",
                    "quantity",
                    "price",
                    "stop_price",
                    "expire_time",
                    "position_id",
                    "label",
                    "strategy",
                }
            ),
        )
        self._track(order)  # counted before the first await: concurrent submits see it
        try:
            inserted = await self._db(self.store.insert_order, order, order_terms(order))
            stored = None if inserted else await self._db(self.store.get_order, order.cl_ord_id)
            if not inserted and stored is None:
                raise OrderRejected(f"ClOrdID {order.cl_ord_id} collides with an existing order")
            if stored is not None:
                stored = await self._same_order(stored, request)
        except OrderRejected:
            self._track(order.moved_to(OrderStatus.REJECTED))
            raise
        if stored is not None:
            self._track(stored)
            return stored
        self._remember(order)
        self._publish(OrderEvent(kind=OrderEventKind.SUBMITTED, order=order))
        try:
            await self._send_when_ready(order)
        except SessionError as exc:
            return await self._reject_unsent(order, str(exc))
        self.metrics.orders_submitted.inc()
        return order

    async def _same_order(self, existing: Order, request: NewOrder) -> Order:
        """A retry gets its order back; a ClOrdID reused for another order is refused, saying how."""
        first = await self._db(self.store.order_terms, existing.cl_ord_id) or order_terms(existing)
        try:
            symbol = self.catalog.resolve(request.symbol).name
        except UnknownSymbol:
            symbol = request.symbol
        changed = differences(first, order_terms(request, symbol))
        if changed:
            raise OrderRejected(
                f"ClOrdID {existing.cl_ord_id} was used for a different order: {', '.join(changed)}; "
                "give the new order a new ClOrdID (the same id is only for retrying the same order)"
            )
        return existing

    def _check_unused(self, role: str, client_id: str) -> None:
        """Refuse an id used for an order or a request before (the store checks again, atomically)."""
        request = self._by_request.get(client_id)
        if request is not None:
            raise ClientIdInUse.of(role, client_id, str(request.kind), request.cl_ord_id)
        if client_id in self._orders:
            raise ClientIdInUse.of(role, client_id, "order", client_id)

    async def _send_when_ready(self, order: Order) -> None:
        """Send; if the session dropped under us (nothing was written), send again once it is back.

        QuickFIX refuses to send while logged out and, with PersistMessages=N, keeps nothing to
        replay, so a refused send is known not to have reached the venue and may be repeated.
        """
        while True:
            self._sent_at[order.cl_ord_id] = time.perf_counter()
            try:
                await self._connector.submit(order)
                self._unsent.discard(order.cl_ord_id)
                return
            except SessionError as exc:
                # Reconciliation must not ask the venue about it: it is known not to be there.
                self._unsent.add(order.cl_ord_id)
                self._ready.clear()
                log.warning("%s not sent (%s); sending when TRADE is back", order.cl_ord_id, exc)
                try:
                    await self.wait_ready()
                except SessionNotReady as timeout:
                    self._unsent.discard(order.cl_ord_id)
                    raise SessionError(str(timeout)) from exc

    async def cancel(self, request: CancelOrder) -> Order:
        """Ask the venue to cancel. An order we never stored is still asked for: the venue decides."""
        await self.wait_ready()
        if await self.get_order(request.cl_ord_id) is None:
            return await self._cancel_untracked(request)
        async with self._lock(request.cl_ord_id):
            order = await self.get_order(request.cl_ord_id)
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
        await self.wait_ready()
        async with self._lock(request.cl_ord_id):
            return await self._replace_locked(request)

    async def _replace_locked(self, request: ReplaceOrder) -> Order:
        order = await self.get_order(request.cl_ord_id)
        if order is None:
            raise OrderNotFound(f"no order with ClOrdID {request.cl_ord_id} in the store")
        self._check_amendable(order, "replace")
        if order.order_type is OrderType.MARKET:
            raise OrderRejected("a market order cannot be replaced (cTrader amends pending orders only)")
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
        self._check_unused("request id", request.request_id)
        await self._db(self.store.insert_request, request, pending)
        self._by_request[request.request_id] = request
        self._remember(pending)
        self._publish(OrderEvent(kind=kind, order=pending))
        self._sent_at[request.request_id] = time.perf_counter()
        try:
            if request.kind is RequestKind.CANCEL:
                await self._connector.cancel(pending, request)
            else:
                await self._connector.replace(pending, request)
        except SessionError as exc:
            await self._refuse_request(pending, request.request_id, None, f"not sent: {exc}")
        return self._latest(pending)

    async def _cancel_untracked(self, request: CancelOrder) -> Order:
        request_id = request.request_id or self._ids.next("C")
        self._check_unused("request id", request_id)
        usage = await self._db(self.store.client_id_usage, request_id)
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
        return await self.adopt_external(report)

    async def _reject_unsent(self, order: Order, reason: str) -> Order:
        async with self._lock(order.cl_ord_id):
            order = self._latest(order)
            return await self._reject_unsent_locked(order, reason)

    async def _reject_unsent_locked(self, order: Order, reason: str) -> Order:
        rejected = order.moved_to(OrderStatus.REJECTED, reason=f"{reason}; not sent, resubmit when ready")
        await self._record(rejected, OrderEventKind.REJECTED, None, f"unsent:{order.cl_ord_id}")
        self.metrics.order_rejects.labels("adapter", "NOT_SENT").inc()
        return rejected

    def _lock(self, cl_ord_id: str) -> asyncio.Lock:
        """One lock per order, held by each read-change-write of it: no change overwrites another."""
        lock = self._locks.get(cl_ord_id)
        if lock is None:
            lock = self._locks[cl_ord_id] = asyncio.Lock()
        return lock

    def _latest(self, order: Order) -> Order:
        return self._orders.get(order.cl_ord_id, order)

    async def get_order(self, cl_ord_id: str) -> Order | None:
        cached = self._orders.get(cl_ord_id)
        if cached is not None:
            return cached
        return await self._db(self.store.get_order, cl_ord_id)

    def _track(self, order: Order) -> None:
        if self.pre_trade is not None:
            self.pre_trade.track(order)

    def _remember(self, order: Order) -> None:
        self._track(order)
        self._orders[order.cl_ord_id] = order
        self._orders.move_to_end(order.cl_ord_id)
        if order.order_id:
            self._by_venue_id[order.order_id] = order.cl_ord_id
        while len(self._orders) > RECENT_ORDERS:
            _, oldest = next(iter(self._orders.items()))
            if oldest.is_open:
                break
            self._orders.popitem(last=False)
            self._locks.pop(oldest.cl_ord_id, None)
            self._live_mark.pop(oldest.cl_ord_id, None)
            if oldest.order_id:
                self._by_venue_id.pop(oldest.order_id, None)

    async def find(self, cl_ord_id: str | None, order_id: str | None) -> Order | None:
        """The order a report is about: by its ClOrdID, a cancel/replace id, or the venue's OrderID."""
        if cl_ord_id:
            if cl_ord_id in self._orders:
                return self._orders[cl_ord_id]
            request = self._by_request.get(cl_ord_id)
            if request is not None:
                return await self.get_order(request.cl_ord_id)
        if order_id and order_id in self._by_venue_id:
            return await self.get_order(self._by_venue_id[order_id])
        found = None
        if cl_ord_id:
            found = await self._db(self.store.get_order, cl_ord_id)
            found = found or await self._db(self.store.order_for_request, cl_ord_id)
        if found is None and order_id:
            found = await self._db(self.store.order_by_venue_id, order_id)
        return found

    # -- reports in ---------------------------------------------------------------------------

    async def _process_reports(self) -> None:
        while True:
            arrived, report = await self._inbox.take()
            try:
                await self._handle_until_stored(report, arrived)
            finally:
                self._inbox.done()

    async def _handle_until_stored(self, report: VenueReport, arrived: int | None) -> None:
        """A report is never dropped because the database failed: it is retried, in order, until stored.

        One the store can never take (a value too long or invalid) is set aside instead, so the reports
        behind it go on. While the head report waits longer than `store_outage_alarm_seconds`, a blocking
        alarm makes the adapter not ready.
        """
        delay = 0.2
        started = time.monotonic()
        try:
            while True:
                try:
                    await self._handle_or_set_aside(report, arrived)
                    return
                except StoreError as exc:
                    self.metrics.callback_errors.labels("store").inc()
                    log.error(
                        "cannot store a %s (%s); retrying in %.1fs — check the database",
                        type(report).__name__,
                        exc,
                        delay,
                    )
                    if time.monotonic() - started >= self.store_outage_alarm_seconds:
                        text = f"reports wait for the database ({exc}); check it is up and reachable"
                        self.metrics.alarms.raise_alarm("store_unavailable", "reports", text, blocking=True)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)
                except Exception:
                    self.metrics.callback_errors.labels("engine").inc()
                    log.exception("failed to handle %s (continuing)", type(report).__name__)
                    return
        finally:
            self.metrics.alarms.clear("store_unavailable", "reports")

    async def _handle_or_set_aside(self, report: VenueReport, arrived: int | None) -> None:
        try:
            await self._handlers[type(report)](report, arrived)
        except UnstorableData as exc:
            await self._set_aside(report, exc)

    async def _set_aside(self, report: VenueReport, error: UnstorableData) -> None:
        """Keep a report the store can never take (its raw message and why) and raise a visible alarm."""
        raw = getattr(report, "raw", None) or report.model_dump_json()
        key = getattr(report, "dedupe_key", None)
        name = type(report).__name__
        try:
            row: int | str = await self._db(self.store.set_aside, name, key, raw, str(error))
        except UnstorableData as again:  # not even escaped: the log keeps it
            log.error("%s set aside in the log only (%s): %r", name, again, raw)
            row = "log"
        self.metrics.reports_set_aside.inc()
        about = shown(getattr(report, "cl_ord_id", None))
        self.metrics.alarms.raise_alarm(
            "report_set_aside",
            f"{name}:{row}",
            f"a {name} (ClOrdID {about}) cannot be stored: {error}; it is kept in reports_set_aside "
            f"row {row}: compare it with the venue and correct the order by hand if it changed one",
        )

    async def _handle(self, report: VenueReport, arrived: int | None) -> None:
        try:
            await self._handle_or_set_aside(report, arrived)
        except Exception:
            self.metrics.callback_errors.labels("engine").inc()
            log.exception("failed to handle %s (continuing)", type(report).__name__)

    async def _on_execution(self, report: ExecutionReport, arrived: int | None) -> None:
        order = await self.find(report.cl_ord_id, report.order_id)
        if order is None:
            self.metrics.unmatched_reports.labels("execution_report").inc()
            log.warning(
                "execution report for no known order (ClOrdID %s, OrderID %s)",
                shown(report.cl_ord_id),
                shown(report.order_id),
            )
            return
        if self._foreign(order, report):
            return
        if arrived is not None:
            self._live_mark[order.cl_ord_id] = arrived
        await self.apply_report(order, report, arrived)

    def _foreign(self, order: Order, report: ExecutionReport) -> bool:
        """True (counted, alarmed) for a report that names `order` but cannot be about it."""
        owner = self._by_request.get(report.orig_cl_ord_id or "")
        foreign = foreign_report(order, report, owner.cl_ord_id if owner else None)
        if foreign is None:
            return False
        self.metrics.unmatched_reports.labels("mismatched_report").inc()
        key = shown(report.cl_ord_id or report.order_id)
        self.metrics.alarms.raise_alarm("mismatched_report", key, f"{foreign}: applied to no order")
        return True

    async def apply_report(self, order: Order, report: ExecutionReport, arrived: int | None = None) -> Order:
        """The one path by which a venue execution report changes an order (live and reconciliation)."""
        async with self._lock(order.cl_ord_id):
            return await self._apply_locked(self._latest(order), report, arrived)

    async def _apply_locked(self, order: Order, report: ExecutionReport, arrived: int | None) -> Order:
        unseen = self._unseen(report)
        if unseen is None:
            self.metrics.duplicate_reports.inc()
            return order
        report = unseen
        if self._refused_fill(order, report, self._most(order, report)):
            return order
        try:
            applied = apply_execution(order, report)
        except InvalidTransition as exc:
            self.metrics.invalid_transitions.inc()
            log.warning("ignored a report that contradicts the order's state: %s", exc)
            return order
        if applied is None:
            if report.kind is not ExecKind.STATUS:
                self.metrics.duplicate_reports.inc()
            return order
        recorded = await self._record(applied.order, applied.kind, report, report.dedupe_key, applied.fill)
        if recorded and applied.fill is not None:
            await self._fill_position(applied.order, applied.fill, arrived)
        return applied.order

    def _unseen(self, report: ExecutionReport) -> ExecutionReport | None:
        """The report to apply, or None for one seen before. A key seen with other content is no
        duplicate: the report goes on under a key of its own (see `_dedupe_conflict`)."""
        key = report.dedupe_key
        if report.kind is ExecKind.STATUS or key not in self._seen_keys:
            return report
        digest = content_digest(report)
        if self._seen_keys[key] in (digest, ""):
            return None
        distinct = self._dedupe_conflict(report, digest)
        return None if distinct in self._seen_keys else report.model_copy(update={"dedupe_key": distinct})

    def _dedupe_conflict(self, report: ExecutionReport, digest: str) -> str:
        """Count and alarm a dedupe key reused with other content (a venue whose ExecIDs restarted);
        the key to keep the report under instead."""
        distinct = f"{report.dedupe_key}#{digest[:16]}"
        if distinct not in self._seen_keys:
            self.metrics.dedupe_conflicts.inc()
            self.metrics.alarms.raise_alarm(
                "dedupe_conflict",
                shown(report.dedupe_key, 100),
                f"report key {shown(report.dedupe_key, 100)} came again with other content (ClOrdID "
                f"{shown(report.cl_ord_id)}, OrderID {shown(report.order_id)}, CumQty {report.cum_qty}); "
                f"applied under a key of its own (+#{digest[:16]}): check the venue did not restart its "
                "execution ids",
            )
        return distinct

    def _refused_fill(self, order: Order, report: ExecutionReport, most: Decimal) -> bool:
        """True (counted, alarmed, nothing stored) when `report` fills `order` in a way that cannot be."""
        refused = impossible_fill(order, report, most)
        if refused is None:
            return False
        reason, text = refused
        self.metrics.impossible_fills.labels(reason).inc()
        kind = "overfill" if reason == "overfill" else "impossible_fill"
        self.metrics.alarms.raise_alarm(kind, order.cl_ord_id, text)
        return True

    def _most(self, order: Order, report: ExecutionReport) -> Decimal:
        """The largest quantity the order has or was asked to have (a replace may have raised it)."""
        most = order.quantity
        if report.kind is ExecKind.REPLACED and report.quantity is not None:
            most = max(most, report.quantity)
        request = self._by_request.get(order.pending_request_id or "")
        if request is not None and request.quantity is not None:
            most = max(most, request.quantity)
        return most

    async def _record(
        self,
        order: Order,
        kind: OrderEventKind,
        report: ExecutionReport | None,
        key: str,
        fill: Any = None,
        reason: str | None = None,
    ) -> bool:
        """Persist first, then tell consumers: nobody hears of a change the store does not have.

        Shielded: a cancelled caller (a reconciliation cut short by a logout) must not leave the store
        ahead of memory.
        """
        return await asyncio.shield(self._persist(order, kind, report, key, fill, reason))

    async def _persist(
        self,
        order: Order,
        kind: OrderEventKind,
        report: ExecutionReport | None,
        key: str,
        fill: Any,
        reason: str | None,
    ) -> bool:
        seq = await self._db(self.store.record_execution, order, kind.value, report, fill, key, reason)
        if seq is None and report is not None and report.kind is not ExecKind.STATUS:
            stored = await self._db(self.store.execution, key)
            if stored is not None and stored_differs(stored, report):
                key = self._dedupe_conflict(report, content_digest(report))
                record = self.store.record_execution
                seq = await self._db(record, order, kind.value, report, fill, key, reason)
        if seq is None:
            self.metrics.duplicate_reports.inc()
            return False
        self._seen_keys[key] = content_digest(report) if report is not None else ""
        if len(self._seen_keys) > RECENT_KEYS:
            self._seen_keys.popitem(last=False)
        self._remember(order)
        if order.status is not OrderStatus.UNKNOWN:
            self.metrics.alarms.clear("unknown_order", order.cl_ord_id)  # an answer came: resolved
        self._observe_round_trip(order, report)
        if kind is OrderEventKind.REJECTED:
            self.metrics.order_rejects.labels("venue", reason_code(order.reason)).inc()
        reason = reason or event_reason(kind, order)
        self._publish(OrderEvent(kind=kind, order=order, fill=fill, reason=reason, seq=seq))
        return True

    def _observe_round_trip(self, order: Order, report: ExecutionReport | None) -> None:
        key = report.cl_ord_id if report and report.cl_ord_id else order.cl_ord_id
        started = self._sent_at.pop(key, None)
        if started is not None:
            self.metrics.round_trip.observe(time.perf_counter() - started)

    async def _on_cancel_rejected(self, reject: CancelRejected) -> None:
        order = await self.find(reject.request_id, reject.order_id)
        if order is None:
            self.metrics.unmatched_reports.labels("cancel_reject").inc()
            log.warning("cancel reject for no known order: %s", reject.text)
            return
        async with self._lock(order.cl_ord_id):
            await self._refuse_request(self._latest(order), reject.request_id, reject.status, reject.text)

    async def _refuse_request(
        self, order: Order, request_id: str, venue_status: OrderStatus | None, text: str | None
    ) -> None:
        request = self._by_request.get(request_id) or await self._db(self.store.get_request, request_id)
        replace = request is not None and request.kind is RequestKind.REPLACE
        if order.is_done:
            target = order.status
        elif venue_status is not None and venue_status not in IN_FLIGHT_STATUSES:
            target = venue_status
        elif order.status is OrderStatus.UNKNOWN:  # the state before is not known: refused means working
            target = OrderStatus.PARTIALLY_FILLED if order.cum_qty > 0 else OrderStatus.NEW
        else:
            target = order.previous_status or OrderStatus.NEW
        try:
            restored = order.moved_to(target, pending_request_id=None)
        except InvalidTransition as exc:
            self.metrics.invalid_transitions.inc()
            log.warning("cannot roll back after a refused request: %s", exc)
            return
        kind = OrderEventKind.REPLACE_REJECTED if replace else OrderEventKind.CANCEL_REJECTED
        self.metrics.order_rejects.labels("venue", reason_code(text)).inc()
        await self._record(
            restored, kind, None, f"refused:{request_id}", reason=text or "refused by the venue"
        )

    async def _on_business_reject(self, reject: BusinessReject) -> None:
        ref = reject.ref_id or ""
        order = await self.find(ref, None)
        if order is None:
            self.metrics.unmatched_reports.labels("business_reject").inc()
            log.warning("business reject for unknown reference %r: %s", ref, reject.text)
            return
        async with self._lock(order.cl_ord_id):
            order = self._latest(order)
            if ref != order.cl_ord_id:
                await self._refuse_request(order, ref, None, reject.text)
                return
            # (One answering our status query is kept by the connector: the venue has never seen it.)
            if _never_acknowledged(order):
                rejected = order.moved_to(OrderStatus.REJECTED, reason=reject.text or "rejected by the venue")
                await self._record(rejected, OrderEventKind.REJECTED, None, f"reject:{ref}")

    async def _on_request_refused(self, refused: RequestRefused) -> None:
        """A refusal tied by the connector to our request: the waiting query fails with the venue's reason,
        a new order ends REJECTED, a cancel/replace is refused and its order restored."""
        order = await self.find(refused.request_id, None)
        if order is None:
            self.metrics.unmatched_reports.labels("request_refused").inc()
            log.warning(
                "refusal of %s, an order this adapter does not know: %s", refused.request_id, refused.text
            )
            return
        async with self._lock(order.cl_ord_id):
            order = self._latest(order)
            if refused.request is not VenueRequest.NEW_ORDER:
                if order.pending_request_id == refused.request_id:
                    await self._refuse_request(order, refused.request_id, None, refused.text)
                return
            if order.status not in (OrderStatus.PENDING_NEW, OrderStatus.UNKNOWN):
                log.warning("%s is already %s; ignored: %s", order.cl_ord_id, order.status, refused.text)
                return
            rejected = order.moved_to(OrderStatus.REJECTED, reason=refused.text)
            await self._record(rejected, OrderEventKind.REJECTED, None, f"refused:{refused.request_id}")

    async def settle_lost_request(self, cl_ord_id: str, venue: ExecutionReport | None, why: str) -> None:
        """A cancel/replace that was never answered, decided from the venue's current view of the order."""
        async with self._lock(cl_ord_id):
            order = await self.get_order(cl_ord_id)
            if order is None or order.pending_request_id is None:
                return
            request_id = order.pending_request_id
            request = self._by_request.get(request_id) or await self._db(self.store.get_request, request_id)
            if venue is not None and request is not None and replace_took_effect(request, venue):
                terms = {
                    "quantity": venue.quantity,
                    "price": venue.price or order.price,
                    "stop_price": venue.stop_price or order.stop_price,
                }
                replaced = order.moved_to(venue.status, pending_request_id=None, **terms)
                await self._record(replaced, OrderEventKind.REPLACED, venue, f"replaced:{request_id}")
                return
            await self._refuse_request(order, request_id, venue.status if venue else None, why)

    async def send_unreceived(self, cl_ord_id: str, text: str | None) -> None:
        """A stored order the venue has never seen (we crashed between store and send): send it now, once,
        if it is still young enough to be wanted; otherwise reject it, saying so."""
        async with self._lock(cl_ord_id):
            order = await self.get_order(cl_ord_id)
            if order is None or not _never_acknowledged(order):
                return
            age = (datetime.now(UTC) - order.created_at).total_seconds()
            limit = self._config.resend_unreceived_within_seconds
            if age > limit:
                why = f"never reached the venue ({text or 'unknown to it'}); {age:.0f}s old, limit {limit:g}s"
                await self._reject_unsent_locked(order, why)
                return
            log.warning("%s was stored but never reached the venue (%s): sending it now", cl_ord_id, text)
            try:
                await self._send_when_ready(order)
            except SessionError as exc:
                await self._reject_unsent_locked(order, str(exc))

    async def close_unknown(self, cl_ord_id: str, text: str | None) -> None:
        """An acknowledged order the venue no longer knows cannot be working: close it, saying why."""
        unacknowledged = await self.get_order(cl_ord_id)
        if unacknowledged is not None and _never_acknowledged(unacknowledged):
            return await self.send_unreceived(cl_ord_id, text)
        async with self._lock(cl_ord_id):
            order = await self.get_order(cl_ord_id)
            if order is None or order.is_done or _never_acknowledged(order):
                return
            closed = order.moved_to(
                OrderStatus.CANCELLED,
                pending_request_id=None,
                reason=f"the venue no longer knows this order: {text or 'no reason given'}",
            )
            await self._record(closed, OrderEventKind.CANCELLED, None, f"unknown:{cl_ord_id}")

    async def flag_unknown(self, cl_ord_id: str, silent_for: float) -> None:
        """No answer from the venue for too long (no report, none to status queries): say so, visibly.
        The order stays open (the kill switch still cancels it) and any later answer resolves it."""
        async with self._lock(cl_ord_id):
            order = await self.get_order(cl_ord_id)
            if order is None or order.status not in IN_FLIGHT_STATUSES:
                return
            why = (
                f"no answer from the venue for {silent_for:.0f}s while {order.status} (no report, none to "
                "status queries): its state at the venue is unknown; it is still asked for, and the kill "
                "switch still cancels it; check it with the broker"
            )
            flagged = order.moved_to(OrderStatus.UNKNOWN, reason=why)
            key = f"flagged-unknown:{cl_ord_id}:{time.time_ns()}"[:255]
            self.metrics.alarms.raise_alarm("unknown_order", cl_ord_id, why)  # up when consumers hear of it
            await self._record(flagged, OrderEventKind.UNKNOWN, None, key, reason=why)

    async def _on_malformed(self, report: MalformedMessage) -> None:
        log.warning(
            "%s message %s could not be read and was skipped: %s",
            report.session.value,
            report.msg_type,
            report.error,
        )

    async def _on_session_status(self, status: SessionStatus) -> None:
        for callback in self._session_callbacks:
            try:
                callback(status)
            except Exception:
                self.metrics.callback_errors.labels("session_callback").inc()
                log.exception("an on_session callback raised (ignored)")
        if status.session is not SessionKind.TRADE:
            return
        if status.state is SessionState.LOGGED_ON:
            self._trade_up = True
            self.last_session_text = None
            self.reconcile_problem = None
            if self._reconcile_task is not None:
                self._reconcile_task.cancel()
            self._reconcile_task = self._tasks.spawn(reconcile(self), name="reconcile")
            return
        self._trade_up = False
        self._ready.clear()
        self.last_session_text = status.text or self.last_session_text
        if self._reconcile_task is not None:
            self._reconcile_task.cancel()
            self._reconcile_task = None

    # -- used by the reconciler ---------------------------------------------------------------

    @property
    def capabilities(self) -> Capabilities:
        """What the connector declares it can do."""
        return self._connector.capabilities

    @property
    def reconcile_timeout(self) -> float:
        return self._config.reconcile_timeout_seconds

    def spawn(self, coro: Coroutine[Any, Any, T], name: str) -> asyncio.Task[T]:
        return self._tasks.spawn(coro, name=name)

    def mark_ready(self) -> None:
        self._ready.set()

    async def caught_up(self, arrived: int) -> None:
        """Wait until every live event that arrived before an answer stamped `arrived` is handled."""
        await self._inbox.handled_through(arrived)

    async def apply_status_answer(self, order: Order, answer: OrderStatusReport) -> bool:
        """The venue's answer about one order, applied after every live event that arrived before it;
        False when it is about no order of ours (counted, alarmed). An answer older than a live report
        applied since is not applied: the live report is the newer word of the venue."""
        await self.caught_up(answer.arrived)
        current = self._latest(order)
        if self._foreign(current, answer.report):
            return False
        if self._live_mark.get(order.cl_ord_id, 0) > answer.arrived:
            log.debug("status answer for %s is older than a live report applied since", order.cl_ord_id)
            return True
        await self.apply_venue_view(current, answer.report, answer.arrived)
        return True

    async def apply_venue_view(
        self, order: Order, report: ExecutionReport, arrived: int | None = None
    ) -> Order:
        """A status answer (reconciliation, status query): the venue's current view is the authority, so a
        local state that contradicts it is corrected (counted, alarmed) instead of ignored."""
        async with self._lock(order.cl_ord_id):
            current = self._latest(order)
            why = contradiction(current, report)
            if why is None:
                return await self._apply_locked(current, report, arrived)
            # The venue's view is the authority, but not past its own quantity: that is no state to adopt.
            most = max(self._most(current, report), report.quantity or Decimal(0))
            if self._refused_fill(current, report, most):
                return current
            fixed, fill = corrected(current, report, why)
            self.metrics.reconcile_corrections.inc()
            self.metrics.alarms.raise_alarm("reconcile_corrected", current.cl_ord_id, why)
            key = f"corrected:{time.time_ns()}:{report.dedupe_key}"[:255]
            if await self._record(fixed, OrderEventKind.RECONCILED, report, key, fill, reason=why) and fill:
                await self._fill_position(fixed, fill, arrived)
            return fixed

    def open_orders(self) -> list[Order]:
        """Open orders the venue may know of (not those still waiting for their first send)."""
        return [o for o in self._orders.values() if o.is_open and o.cl_ord_id not in self._unsent]

    async def load_instruments(self, timeout: float) -> list[Instrument]:
        instruments = await self.queries.instruments(timeout)
        if instruments:
            self.catalog.replace(instruments)
            await self._db(self.store.replace_instruments, instruments)
        return instruments

    async def save_positions(self, answer: PositionsReport) -> list[Position]:
        """The venue's list (the authority), with any fill that arrived after its answer replayed on top."""
        await self.caught_up(answer.arrived)
        self._positions.venue_answered(answer.arrived)
        positions = list(answer.positions)
        current = self._positions.replace(positions)
        await self._db(self.store.replace_positions, current)
        self.fanout.publish_positions(current)
        return positions

    async def positions(self) -> list[Any]:
        return self._positions.all()

    async def _fill_position(self, order: Order, fill: Fill, arrived: int | None) -> None:
        """Keep the fill's position from the fill itself; only a fill naming no position asks the venue."""
        if not order.position_id:
            self._schedule_positions_refresh()
            return
        instrument = self.catalog.by_id(order.symbol_id)
        change = PositionFill(
            position_id=order.position_id,
            symbol_id=order.symbol_id,
            side=order.side,
            quantity=fill.quantity,
            price=fill.price,
            digits=instrument.digits if instrument else None,
        )
        updated = self._positions.apply(change, arrived)
        await self._db(self.store.put_position, change.position_id, updated)
        if self._positions_publish is None or self._positions_publish.done():
            self._positions_publish = self._tasks.spawn(self._publish_positions(), name="positions-publish")

    async def _publish_positions(self) -> None:
        await asyncio.sleep(0.05)  # a burst of fills makes one positions event
        self.fanout.publish_positions(self._positions.all())

    async def _check_positions_every(self, seconds: float) -> None:
        """Between logons, compare with the venue now and then: a fill missed or misread is corrected."""
        while True:
            await asyncio.sleep(seconds)
            if not self.ready:
                continue  # the next logon's reconciliation asks anyway
            try:
                await self.refresh_positions()
            except (TimeoutError, SessionNotReady, SessionError) as exc:
                log.warning("positions check with the venue failed (%s); retried in %gs", exc, seconds)

    async def adopt_external(self, report: ExecutionReport) -> Order:
        """An order the venue has and the store does not (placed elsewhere): keep it, visibly."""
        instrument = self.catalog.by_id(report.symbol_id or 0)
        order = Order(
            cl_ord_id=report.orig_cl_ord_id or report.cl_ord_id or f"venue-{report.order_id}",
            order_id=report.order_id,
            symbol_id=report.symbol_id or 0,
            symbol=instrument.name if instrument else str(report.symbol_id),
            side=report.side or Side.BUY,
            order_type=report.order_type or OrderType.LIMIT,
            quantity=report.quantity or report.leaves_qty or Decimal(0),
            price=report.price,
            stop_price=report.stop_price,
            position_id=report.position_id,
            label=report.label,
            status=report.status,
            cum_qty=report.cum_qty or Decimal(0),
            avg_px=report.avg_px,
            reason="not placed through this adapter; adopted from the venue",
        )
        try:
            inserted = await self._db(self.store.insert_order, order)
        except ClientIdInUse as exc:  # its id names one of ours: kept under the venue's id instead
            log.warning("venue order %s adopted as venue-%s: %s", report.order_id, report.order_id, exc)
            order = order.model_copy(update={"cl_ord_id": f"venue-{report.order_id}"})
            inserted = await self._db(self.store.insert_order, order)
        if inserted:
            await self._record(order, OrderEventKind.RECONCILED, report, report.dedupe_key)
        return order

    def _schedule_positions_refresh(self) -> None:
        if self._positions_refresh is None or self._positions_refresh.done():
            self._positions_refresh = self._tasks.spawn(self._refresh_positions(), name="positions-refresh")

    async def _refresh_positions(self) -> None:
        await asyncio.sleep(0.05)  # coalesce a burst of fills into one request
        if not self._trade_up:
            return
        try:
            await self.refresh_positions()
        except (TimeoutError, SessionNotReady, SessionError) as exc:
            log.warning("positions refresh failed (%s); the next check or logon retries", exc)

    async def refresh_positions(self) -> list[Position]:
        """Ask the venue for its open positions now and store them (the venue is the authority)."""
        answer = await self.queries.positions(self._config.reconcile_timeout_seconds)
        return await self.save_positions(answer)


def _never_acknowledged(order: Order) -> bool:
    """Sent but never acknowledged (also when flagged unknown while waiting for its acknowledgement)."""
    waiting = order.previous_status if order.status is OrderStatus.UNKNOWN else order.status
    return waiting is OrderStatus.PENDING_NEW
