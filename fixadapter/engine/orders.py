"""OrderEngine: validate -> persist -> send; venue reports -> state machine -> store -> consumers.

Everything here runs on one asyncio loop. Reports arrive from connector threads through
`deliver` (call_soon_threadsafe) and are handled strictly in arrival order by one task; the
store runs on one worker thread so writes keep that order and the loop never blocks on I/O.

The engine is the facade and the wiring: orders in (order_entry.py), execution reports applied
(executions.py), refusals (refusals.py), orders only the venue can settle (recovery.py), readiness
(readiness.py), positions (position_keeper.py), all recording through one Recorder (recorder.py) and
sharing one memory of orders (known_orders.py). It keeps the report loop, the session's logon ->
reconcile -> ready, and what the reconciler, the in-flight watch and the sweep ask of it (ports.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from concurrent.futures import Executor
from typing import Any, TypeVar

from fixadapter.config import OrdersConfig
from fixadapter.connectors.base import Capabilities, TradeConnector
from fixadapter.crash_points import NO_CRASH, CrashPoint, CrashPoints
from fixadapter.engine.claims import CommandIds
from fixadapter.engine.executions import Executions
from fixadapter.engine.fanout import EventCallback, EventFanout
from fixadapter.engine.identity import shown
from fixadapter.engine.inbox import Arrival, Inbox
from fixadapter.engine.inflight import watch_in_flight
from fixadapter.engine.instruments import Catalog
from fixadapter.engine.journaling import Journaling
from fixadapter.engine.keyed_lanes import KeyedLanes
from fixadapter.engine.known_orders import KnownOrders
from fixadapter.engine.order_entry import OrderEntry
from fixadapter.engine.position_entry import PositionEntry
from fixadapter.engine.position_keeper import PositionKeeper
from fixadapter.engine.pre_trade import PreTrade
from fixadapter.engine.readiness import Readiness, SessionCallback
from fixadapter.engine.reconciler import reconcile
from fixadapter.engine.recorder import Recorder
from fixadapter.engine.recovery import Recovery
from fixadapter.engine.refusals import Refusals
from fixadapter.engine.store_thread import StoreThread
from fixadapter.engine.tasks import TaskGroup
from fixadapter.engine.venue_queries import VenueQueries
from fixadapter.errors import StoreError, UnstorableData
from fixadapter.metrics import Metrics
from fixadapter.model.enums import Channel, ExecKind, OrderStatus
from fixadapter.model.ids import IdAllocator
from fixadapter.model.orders import Order, OrderEvent, Position, PositionProtectionChange
from fixadapter.model.reconciliation import OrderStatusReport, PositionsReport
from fixadapter.model.reports import (
    BusinessReject,
    CancelRejected,
    ConnectionStatus,
    ExecutionReport,
    Instrument,
    MalformedMessage,
    PositionProtection,
    RequestRefused,
    VenueReport,
)
from fixadapter.model.requests import (
    AmendPositionProtection,
    CancelOrder,
    ClosePosition,
    CommandUse,
    NewOrder,
    ReplaceOrder,
)
from fixadapter.store.journal import Journal
from fixadapter.store.repository import OrderStore

__all__ = ["OrderEngine", "SessionCallback"]

log = logging.getLogger("fixadapter.engine")
T = TypeVar("T")
STORE_OUTAGE_ALARM_SECONDS = 3.0  # a head report waiting this long for the database: not ready

Handler = Callable[[Any, int | None], Awaitable[None]]


LOAD_PROGRESS_EVERY = 1_000_000  # ids read into the filters at start between two progress lines


def _with_progress(sink: Callable[[str], None]) -> Callable[[str], None]:
    """`sink`, logging how many ids it took every LOAD_PROGRESS_EVERY (a store of millions takes seconds)."""
    taken = 0

    def counted(client_id: str) -> None:
        nonlocal taken
        sink(client_id)
        taken += 1
        if taken % LOAD_PROGRESS_EVERY == 0:
            log.warning("reading the ids the store holds: %d so far", taken)

    return counted


class OrderEngine:
    def __init__(
        self,
        store: OrderStore,
        connector: TradeConnector,
        metrics: Metrics,
        config: OrdersConfig,
        ids: IdAllocator | None = None,
        pre_trade: PreTrade | None = None,
        catalog: Catalog | None = None,
        crash_points: CrashPoints = NO_CRASH,
        journal: Journal | None = None,
        command_ids: CommandIds | None = None,
    ) -> None:
        """`catalog`: the instruments, shared with pre-trade risk and market data (wiring.py);
        `crash_points`: where a crash test kills the process (crash_points.py); `journal`: the account's
        order journal (None: every write waits for the store); `command_ids`: the daemon's strategies' command
        ids, shared by its engines (claims.py)."""
        self.store = store
        self.catalog = catalog if catalog is not None else Catalog()
        self.metrics = metrics
        self.fanout = EventFanout(metrics)
        self.queries = VenueQueries(connector, metrics, config.max_status_queries)
        self.store_outage_alarm_seconds = STORE_OUTAGE_ALARM_SECONDS
        self._reports_overdue = 0  # reports waiting for the store past store_outage_alarm_seconds
        self._connector = connector
        self._config = config
        self._crash_points = crash_points
        self._store_thread = StoreThread(metrics, crash_points=crash_points)
        self._db_thread = self._store_thread.executor
        self._inbox = Inbox()
        self._tasks = TaskGroup(metrics)
        self._reconcile_task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._readiness = Readiness(
            metrics, config.ready_timeout_seconds, connector.capabilities.trading_route
        )
        self._known = KnownOrders(store, self._store_thread, pre_trade)
        self._recorder = Recorder(store, self._store_thread, self._known, self.fanout, metrics)
        self._positions = PositionKeeper(
            store=store,
            db=self._store_thread,
            catalog=self.catalog,
            fanout=self.fanout,
            queries=self.queries,
            readiness=self._readiness,
            inbox=self._inbox,
            tasks=self._tasks,
            timeout=config.reconcile_timeout_seconds,
        )
        self._executions = Executions(
            store=store,
            db=self._store_thread,
            known=self._known,
            recorder=self._recorder,
            positions=self._positions,
            catalog=self.catalog,
            inbox=self._inbox,
            metrics=metrics,
        )
        self._refusals = Refusals(self._known, self._recorder, metrics)
        self._entry_ids = ids or IdAllocator()
        self._journaling = None if journal is None else Journaling(journal, store, self._store_thread)
        self._command_ids = command_ids or CommandIds()
        self._entry = OrderEntry(
            store=store,
            db=self._store_thread,
            connector=connector,
            config=config,
            ids=self._entry_ids,
            catalog=self.catalog,
            known=self._known,
            readiness=self._readiness,
            recorder=self._recorder,
            refusals=self._refusals,
            executions=self._executions,
            fanout=self.fanout,
            metrics=metrics,
            pre_trade=pre_trade,
            crash_points=crash_points,
            journaling=self._journaling,
            command_ids=self._command_ids,
        )
        self._position_entry = PositionEntry(
            store=store,
            db=self._store_thread,
            connector=connector,
            ids=self._entry_ids,
            catalog=self.catalog,
            known=self._known,
            readiness=self._readiness,
            recorder=self._recorder,
            positions=self._positions,
            entry=self._entry,
            fanout=self.fanout,
            metrics=metrics,
        )
        self._recovery = Recovery(
            config=config,
            known=self._known,
            recorder=self._recorder,
            refusals=self._refusals,
            entry=self._entry,
            metrics=metrics,
        )
        self._handlers: dict[type[Any], Handler] = {
            ExecutionReport: self._executions.on_execution,
            CancelRejected: lambda report, _arrived: self._refusals.on_cancel_rejected(report),
            BusinessReject: lambda report, _arrived: self._refusals.on_business_reject(report),
            RequestRefused: lambda report, _arrived: self._refusals.on_request_refused(report),
            PositionProtection: lambda report, _arrived: self._position_entry.on_protection(report),
            ConnectionStatus: lambda report, _arrived: self._on_session_status(report),
            MalformedMessage: lambda report, _arrived: self._on_malformed(report),
        }

    @property
    def pre_trade(self) -> PreTrade | None:
        return self._known.pre_trade

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Recover open orders from the store, then start the connector; orders wait for reconciliation."""
        self._loop = asyncio.get_running_loop()
        self._inbox.bind(self._loop)
        db = self._store_thread.run
        await db(self.store.create_schema)
        if self._journaling is not None:
            await self._journaling.start()  # what the store lacks, before anything reads it
            if self._journaling.active:
                await self._load_claims()
        recovered = await db(self.store.open_orders)
        for order in recovered:
            self._known.remember(order)
            if order.status is OrderStatus.UNKNOWN:  # alarms live in memory: raised again for a person
                self.metrics.alarms.raise_alarm("unknown_order", order.cl_ord_id, order.reason or "unknown")
        for request in await db(self.store.requests):
            self._known.add_request(request)
        self.catalog.replace(await db(self.store.instruments))
        self._positions.book.replace(await db(self.store.positions))
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
                self._positions.check_every(self._config.positions_refresh_seconds), name="positions"
            )
        await self._connector.start(self.deliver)

    async def _load_claims(self) -> None:
        """Every id the store holds into the filters that let new ids skip the store (claims.py)."""
        started = time.monotonic()
        sink = _with_progress(self._known.keep_seen_ids().add)
        ids = await self._store_thread.run(self.store.each_client_id, sink)
        await self._command_ids.load_once(self.store.each_command_id, self._store_thread.run)
        elapsed = time.monotonic() - started
        if elapsed > 1.0:
            log.warning("the ids the store holds (%d) loaded in %.1fs", ids, elapsed)

    async def stop(self) -> None:
        """Log out, then handle every report that arrived, then close the store."""
        self._readiness.clear()
        await self._connector.stop()
        await self._tasks.cancel_all()
        await self._recorder.settle()  # what reports cut short by the stop stored, before those put back
        while not self._inbox.empty():
            arrived, report = self._inbox.take_nowait()
            await self._handle(report, arrived)
            self._inbox.done(arrived)
        await self._store_thread.stop()
        if self._journaling is not None:
            self._journaling.close()
        self.store.close()

    def deliver(self, report: VenueReport) -> None:
        """Thread-safe entry for live events from the connector: O(1), hands the report to the loop."""
        self._inbox.deliver(report)

    async def first_use_of_command(self, strategy: str, command_id: str, digest: str) -> bool:
        """Whether a strategy's command id is new or a redelivery of the same command (OrderStore); on the
        store thread's asyncio path, so the ids of a burst share its commits and its wake-ups."""
        return await self._entry.first_use_of_command(CommandUse(strategy, command_id, digest))

    @property
    def store_thread(self) -> Executor:
        """The one thread that writes the store (an in-memory SQLite database exists only on it)."""
        return self._db_thread

    # -- readiness ----------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        return self._readiness.ready

    @property
    def last_session_text(self) -> str | None:
        return self._readiness.last_session_text

    @last_session_text.setter
    def last_session_text(self, text: str | None) -> None:
        self._readiness.last_session_text = text

    @property
    def reconcile_problem(self) -> str | None:
        """Why the last reconciliation failed, while it retries (set by the reconciler)."""
        return self._readiness.reconcile_problem

    @reconcile_problem.setter
    def reconcile_problem(self, problem: str | None) -> None:
        self._readiness.reconcile_problem = problem

    async def until_ready(self) -> None:
        await self._readiness.until_ready()

    async def wait_ready(self, timeout: float | None = None) -> None:
        await self._readiness.wait(timeout)

    def not_ready_reason(self) -> str:
        """Why new orders wait, in words (for /readyz and the blotter)."""
        return self._readiness.not_ready_reason()

    # -- consumers ----------------------------------------------------------------------------

    def on_event(self, callback: EventCallback) -> None:
        self.fanout.on_event(callback)

    def on_session(self, callback: SessionCallback) -> None:
        self._readiness.on_session(callback)

    def subscribe(self) -> asyncio.Queue[OrderEvent]:
        return self.fanout.subscribe()

    def unsubscribe(self, queue: asyncio.Queue[OrderEvent]) -> None:
        self.fanout.unsubscribe(queue)

    def events(self) -> AsyncIterator[OrderEvent]:
        return self.fanout.events()

    # -- orders in ----------------------------------------------------------------------------

    async def submit(self, request: NewOrder, command: CommandUse | None = None) -> Order:
        """Persist, then send. A ClOrdID seen before returns that order instead of sending again (when
        asked with the same terms; other terms are refused). `command`: the strategy command placing it
        (its id is recorded with the order: OrderEntry.submit)."""
        return await self._entry.submit(request, command)

    async def cancel(self, request: CancelOrder) -> Order:
        """Ask the venue to cancel. An order we never stored is still asked for: the venue decides."""
        return await self._entry.cancel(request)

    async def replace(self, request: ReplaceOrder) -> Order:
        return await self._entry.replace(request)

    async def close_position(self, request: ClosePosition) -> Order:
        """Close a position (whole or in part) with a closing order stored first; its events follow."""
        return await self._position_entry.close(request)

    async def amend_position_protection(self, request: AmendPositionProtection) -> PositionProtectionChange:
        """Ask the venue to set a position's stop loss and take profit (None removes one)."""
        return await self._position_entry.amend_protection(request)

    def position_protection(self, position_id: str) -> PositionProtection | None:
        """The venue's last word on a position's stop loss and take profit (None: none heard)."""
        return self._position_entry.protection.get(position_id)

    async def get_order(self, cl_ord_id: str) -> Order | None:
        return await self._known.get(cl_ord_id)

    async def find(self, cl_ord_id: str | None, order_id: str | None) -> Order | None:
        """The order a report is about: by its ClOrdID, a cancel/replace id, or the venue's OrderID."""
        return await self._known.find(cl_ord_id, order_id)

    # -- reports in ---------------------------------------------------------------------------

    async def _process_reports(self) -> None:
        """Execution reports about different orders side by side (keyed_lanes.py), in arrival order for
        each order and a fill's position; any other report alone, after everything before it. A report
        waits for the store before the next one of its order may start; a report not known to be about one
        order in memory (another kind of report, or an order only the store knows) is a barrier."""
        lanes = KeyedLanes[Arrival](self._handle_arrival, self._inbox.put_back)
        try:
            while True:
                arrival = await self._inbox.take()
                await lanes.add(self._lanes_of(arrival[1]), arrival)
        finally:
            await lanes.close()

    def _lanes_of(self, report: VenueReport) -> tuple[str, ...] | None:
        """The order's lane (and a fill's position's) for an execution report about an order in memory;
        None (handled alone) for anything else, and for a fill that names no position."""
        if not isinstance(report, ExecutionReport):
            return None
        order = self._known.in_memory(report.cl_ord_id, report.order_id)
        if order is None:
            return None
        if report.kind is not ExecKind.TRADE:
            return (order,)
        return (order, f"position {report.position_id}") if report.position_id else None

    async def _handle_arrival(self, arrival: Arrival) -> None:
        arrived, report = arrival
        if isinstance(report, ExecutionReport):
            self._crash_points.hit(CrashPoint.REPORT_RECEIVED_BEFORE_STORE)
        try:
            await self._handle_until_stored(report, arrived)
        finally:
            self._inbox.done(arrived)

    async def _handle_until_stored(self, report: VenueReport, arrived: int | None) -> None:
        """A report is never dropped because the database failed: it is retried, in order, until stored.

        One the store can never take (a value too long or invalid) is set aside instead, so the reports
        behind it go on. While the head report waits longer than `store_outage_alarm_seconds`, a blocking
        alarm makes the adapter not ready.
        """
        delay = 0.2
        started = time.monotonic()
        overdue = False  # counted in _reports_overdue: the alarm stays while any report of any lane waits
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
                    if not overdue and time.monotonic() - started >= self.store_outage_alarm_seconds:
                        overdue = True
                        self._reports_overdue += 1
                    if overdue:
                        text = f"reports wait for the database ({exc}); check it is up and reachable"
                        self.metrics.alarms.raise_alarm("store_unavailable", "reports", text, blocking=True)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)
                except Exception:
                    self.metrics.callback_errors.labels("engine").inc()
                    log.exception("failed to handle %s (continuing)", type(report).__name__)
                    return
        finally:
            if overdue:
                self._reports_overdue -= 1
                if not self._reports_overdue:
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
            row: int | str = await self._store_thread.run(self.store.set_aside, name, key, raw, str(error))
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

    async def apply_report(self, order: Order, report: ExecutionReport, arrived: int | None = None) -> Order:
        """The one path by which a venue execution report changes an order (live and reconciliation)."""
        return await self._executions.apply_report(order, report, arrived)

    async def _on_malformed(self, report: MalformedMessage) -> None:
        log.warning(
            "%s message %s could not be read and was skipped: %s",
            self._connector.capabilities.trading_route
            if report.channel is Channel.TRADING
            else self._connector.capabilities.market_data_route,
            report.msg_type,
            report.error,
        )

    async def _on_session_status(self, status: ConnectionStatus) -> None:
        """The trading connection logging on starts a reconciliation (one at a time); logging off stops it."""
        logged_on = self._readiness.session_changed(status)
        if logged_on is None:
            return
        if self._reconcile_task is not None:
            self._reconcile_task.cancel()
            self._reconcile_task = None
        if logged_on:
            self._reconcile_task = self._tasks.spawn(reconcile(self), name="reconcile")

    # -- used by the reconciler, the in-flight watch and the sweep (ports.py) -------------------

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
        self._readiness.mark_ready()

    async def caught_up(self, arrived: int) -> None:
        """Wait until every live event that arrived before an answer stamped `arrived` is handled."""
        await self._inbox.handled_through(arrived)

    def open_orders(self) -> list[Order]:
        """Open orders the venue may know of (not those still waiting for their first send)."""
        return self._known.open_orders()

    async def apply_status_answer(self, order: Order, answer: OrderStatusReport) -> bool:
        """The venue's answer about one order, applied after every live event that arrived before it;
        False when it is about no order of ours (counted, alarmed)."""
        return await self._executions.apply_status_answer(order, answer)

    async def apply_venue_view(
        self, order: Order, report: ExecutionReport, arrived: int | None = None
    ) -> Order:
        """A status answer (reconciliation, status query): the venue's current view is the authority."""
        return await self._executions.apply_venue_view(order, report, arrived)

    async def adopt_external(self, report: ExecutionReport) -> Order:
        """An order the venue has and the store does not (placed elsewhere): keep it, visibly."""
        return await self._executions.adopt_external(report)

    async def settle_lost_request(self, cl_ord_id: str, venue: ExecutionReport | None, why: str) -> None:
        """A cancel/replace that was never answered, decided from the venue's current view of the order."""
        await self._recovery.settle_lost_request(cl_ord_id, venue, why)

    async def send_unreceived(self, cl_ord_id: str, text: str | None, sent: bool = False) -> None:
        """A stored order the venue has never seen: sent now if still young enough, else rejected."""
        await self._recovery.send_unreceived(cl_ord_id, text, sent)

    async def close_unknown(self, cl_ord_id: str, text: str | None, sent: bool = False) -> None:
        """An acknowledged order the venue no longer knows cannot be working: close it, saying why."""
        await self._recovery.close_unknown(cl_ord_id, text, sent)

    async def flag_unknown(self, cl_ord_id: str, silent_for: float) -> None:
        """No answer from the venue for too long: flagged unknown, visibly; any later answer resolves it."""
        await self._recovery.flag_unknown(cl_ord_id, silent_for)

    async def load_instruments(self, timeout: float) -> list[Instrument]:
        instruments = await self.queries.instruments(timeout)
        if instruments:
            self.catalog.replace(instruments)
            await self._store_thread.run(self.store.replace_instruments, instruments)
        return instruments

    # -- positions ----------------------------------------------------------------------------

    async def save_positions(self, answer: PositionsReport) -> list[Position]:
        """The venue's list (the authority), with any fill that arrived after its answer replayed on top."""
        return await self._positions.save(answer)

    async def positions(self) -> list[Any]:
        return self._positions.all()

    async def refresh_positions(self) -> list[Position]:
        """Ask the venue for its open positions now and store them (the venue is the authority)."""
        return await self._positions.refresh()
