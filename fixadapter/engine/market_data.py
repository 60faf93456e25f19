"""MarketData: the market data connection's streams (FIX: QUOTE) -> books and quotes -> consumers, recorder
and metrics.

QuickFIX's QUOTE thread only hands the raw message to `deliver` (a queue put). One market-data thread
decodes, applies whole messages to the books, computes DOM figures and offers each book to the recorder;
consumers on the event loop receive the latest book or quote per symbol (conflated: a slow consumer sees
fewer, never older, books), plus every reject and staleness event. Orders never wait behind this: the
TRADE path shares only the GIL with it, and the thread blocks on its queue when the stream is idle.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from fixadapter.config import MarketDataConfig
from fixadapter.connectors.base import MarketDataConnector
from fixadapter.engine.instruments import Catalog
from fixadapter.engine.subscriptions import Subscription, Subscriptions
from fixadapter.errors import SessionError, SubscriptionRejected, SubscriptionTimeout, UnknownSymbol
from fixadapter.market.book import OrderBook
from fixadapter.market.dom import imbalance, microprice, mid_and_spread
from fixadapter.metrics import Metrics
from fixadapter.model.enums import Channel, SessionState
from fixadapter.model.market import (
    Book,
    BookSide,
    FullRefresh,
    IncrementalRefresh,
    MarketDataRejected,
    MarketDataStale,
    MarketEvent,
    Quote,
    RequestRejected,
    StreamGap,
)
from fixadapter.model.reports import ConnectionStatus, Instrument

log = logging.getLogger("fixadapter.market")
CONSUMER_QUEUE = 10_000
CATALOG_POLL_SECONDS = 0.1
DEFAULT_DIGITS = 5

MarketCallback = Callable[[MarketEvent], None]


class BookRecorder(Protocol):
    def offer(self, book: Book) -> None: ...


class _Forget:
    """An inbox marker: drop the book or quote of an ended subscription, in stream order."""

    __slots__ = ("depth", "symbol_id")

    def __init__(self, symbol_id: int, depth: bool) -> None:
        self.symbol_id = symbol_id
        self.depth = depth


_STOP = object()


class MarketData:
    def __init__(
        self,
        connector: MarketDataConnector,
        catalog: Catalog,
        config: MarketDataConfig,
        metrics: Metrics,
        recorder: BookRecorder | None = None,
        route: str = "market data",
    ) -> None:
        """`route`: the market data connection as its connector names it (FIX: QUOTE), in words."""
        self._route = route
        self._connector = connector
        self._catalog = catalog
        self._config = config
        self._metrics = metrics
        self._recorder = recorder
        self.subscriptions = Subscriptions()
        self._inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._quote_up = False
        # Owned by the market-data thread; read (atomic dict gets) from the loop.
        self._books: dict[int, OrderBook] = {}
        self._latest_books: dict[int, Book] = {}
        self._latest_quotes: dict[int, Quote] = {}
        self._updates: dict[int, int] = {}
        # Thread -> loop hand-off, conflated per (kind, symbol).
        self._pending_lock = threading.Lock()
        self._pending: dict[tuple[str, int], MarketEvent] = {}
        self._pending_events: list[MarketEvent] = []
        self._scheduled = False
        self._consumers: list[asyncio.Queue[MarketEvent]] = []
        self._callbacks: list[MarketCallback] = []
        self._waiters: dict[str, asyncio.Future[None]] = {}
        self._stale: set[tuple[int, bool]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._book_counters: dict[int, Any] = {}
        self._applied_incremental = metrics.md_updates.labels("incremental")
        connector.set_market_sink(self.deliver)

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._run, name="fixadapter-market-data", daemon=True)
        self._thread.start()
        self._tasks.append(asyncio.create_task(self._watch_staleness(), name="market-staleness"))
        if self._config.subscriptions:
            self._tasks.append(asyncio.create_task(self._subscribe_configured(), name="market-configured"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._inbox.put(_STOP)
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 5)
        for waiter in self._waiters.values():
            if not waiter.done():
                waiter.set_exception(SubscriptionTimeout("the adapter is stopping"))
                # Read here: a subscription made with wait=False (the configured ones) has nobody awaiting
                # its first snapshot, and asyncio would log "Future exception was never retrieved" at exit.
                waiter.exception()

    def deliver(self, item: Any) -> None:
        """Thread-safe, O(1): a raw QUOTE message or a QUOTE ConnectionStatus, in arrival order."""
        self._inbox.put(item)

    @property
    def queue_depth(self) -> int:
        """Messages received and not yet applied: grows only when the stream outruns the adapter."""
        return self._inbox.qsize()

    # -- subscriptions (event loop) -----------------------------------------------------------

    async def subscribe(self, symbol: str, depth: bool = False, wait: bool = True) -> Subscription:
        """Open a spot (top of book) or depth stream; with `wait`, return after the first snapshot.

        Raises UnknownSymbol (with close matches), SubscriptionRejected (cTrader's reason) or
        SubscriptionTimeout. The subscription is renewed after every QUOTE logon until unsubscribed.
        """
        instrument = await self._resolve(symbol)
        with self.subscriptions.lock:
            subscription, created = self.subscriptions.add(instrument.symbol_id, instrument.name, depth)
            waiter = self._waiters.get(subscription.md_req_id)
            sent = False
            if created:
                waiter = asyncio.get_running_loop().create_future()
                self._waiters[subscription.md_req_id] = waiter
                if self._quote_up:
                    self._send(subscription, subscribe=True)
                    sent = True
        what = f"{subscription.kind} {subscription.symbol} ({subscription.md_req_id})"
        if sent or not created:
            log.info("subscribed %s", what)
        else:  # never "subscribed" while nothing was sent: the stream waits for the route
            log.info("%s is not logged on: %s will be requested when it logs on", self._route, what)
        if wait and waiter is not None and not waiter.done():
            await self._wait_first(subscription, waiter)
        return subscription

    async def _wait_first(self, subscription: Subscription, waiter: asyncio.Future[None]) -> None:
        timeout = self._config.subscribe_timeout_seconds
        try:
            await asyncio.wait_for(asyncio.shield(waiter), timeout)
        except TimeoutError:
            await self.unsubscribe(subscription.symbol, subscription.depth)
            state = "logged on" if self._quote_up else "not logged on"
            raise SubscriptionTimeout(
                f"no {subscription.kind} snapshot for {subscription.symbol} within {timeout:g}s "
                f"({self._route} is {state}); the subscription was withdrawn: check the {self._route} "
                "connection and subscribe again"
            ) from None

    async def unsubscribe(self, symbol: str, depth: bool = False) -> bool:
        """Stop a stream (the V repeats its MDReqID); False when there was no such subscription."""
        instrument = self._catalog.resolve(symbol)
        with self.subscriptions.lock:
            subscription = self.subscriptions.get(instrument.symbol_id, depth)
            if subscription is None:
                return False
            self.subscriptions.remove(subscription)
            if self._quote_up:
                self._send(subscription, subscribe=False)
        self._inbox.put(_Forget(subscription.symbol_id, depth))
        self._stale.discard((subscription.symbol_id, depth))
        waiter = self._waiters.pop(subscription.md_req_id, None)
        if waiter is not None and not waiter.done():
            waiter.cancel()
        log.info("unsubscribed %s %s", subscription.kind, subscription.symbol)
        return True

    async def _resolve(self, symbol: str) -> Instrument:
        """Resolve after the instrument list is known (it arrives with the first TRADE logon)."""
        deadline = time.monotonic() + self._config.subscribe_timeout_seconds
        while not len(self._catalog) and time.monotonic() < deadline:
            await asyncio.sleep(CATALOG_POLL_SECONDS)
        return self._catalog.resolve(symbol)

    async def _subscribe_configured(self) -> None:
        for wanted in self._config.subscriptions:
            while not len(self._catalog):
                await asyncio.sleep(CATALOG_POLL_SECONDS)
            try:
                await self.subscribe(wanted.symbol, wanted.depth, wait=False)
            except UnknownSymbol as exc:
                log.error("market_data.subscriptions: %s; fix the config and restart", exc)

    def _send(self, subscription: Subscription, subscribe: bool) -> None:
        """Call with the registry lock held; a refused send is retried at the next logon."""
        try:
            self._connector.send_market_data_request(
                subscription.md_req_id, subscription.symbol_id, subscription.depth, subscribe
            )
        except SessionError as exc:
            log.warning(
                "%s %s not sent now (%s); it is sent at the next %s logon",
                subscription.kind,
                subscription.symbol,
                exc,
                self._route,
            )

    # -- reading state (event loop) -----------------------------------------------------------

    def book(self, symbol: str) -> Book | None:
        return self._latest_books.get(self._catalog.resolve(symbol).symbol_id)

    def quote(self, symbol: str) -> Quote | None:
        return self._latest_quotes.get(self._catalog.resolve(symbol).symbol_id)

    def on_event(self, callback: MarketCallback) -> None:
        self._callbacks.append(callback)

    async def events(self) -> AsyncIterator[MarketEvent]:
        """Books and quotes (latest per symbol), rejects and staleness, until the caller stops."""
        consumer: asyncio.Queue[MarketEvent] = asyncio.Queue(CONSUMER_QUEUE)
        self._consumers.append(consumer)
        try:
            while True:
                yield await consumer.get()
        finally:
            self._consumers.remove(consumer)

    # -- the market-data thread ---------------------------------------------------------------

    def _run(self) -> None:
        handled = 0
        while True:
            item = self._inbox.get()
            if item is _STOP:
                return
            try:
                self._handle(item)
            except Exception:
                self._metrics.callback_errors.labels("market_data").inc()
                log.exception("market data: failed to apply a message (the stream continues)")
            handled += 1
            if not handled % 256:
                self._metrics.md_queue_depth.set(self._inbox.qsize())

    def _handle(self, item: Any) -> None:
        if isinstance(item, ConnectionStatus):
            self._on_session(item)
            return
        if isinstance(item, StreamGap):
            self._resync_depth(item.reason)
            return
        if isinstance(item, _Forget):
            (self._books if item.depth else self._latest_quotes).pop(item.symbol_id, None)
            if item.depth:
                self._latest_books.pop(item.symbol_id, None)
            return
        try:
            message = self._connector.decode_market_data(item)
        except ValueError as exc:
            self._metrics.malformed_messages.labels(self._route, "unreadable").inc()
            log.error("%s: cannot read market data (%s): %.300s", self._route, exc, item)
            self._resync_depth("an unreadable market data message")
            return
        if isinstance(message, IncrementalRefresh):
            self._apply_incremental(message)
        elif isinstance(message, FullRefresh):
            self._apply_full(message)
        else:
            self._on_reject(message)

    def _on_session(self, status: ConnectionStatus) -> None:
        if status.channel is not Channel.MARKET_DATA:
            return
        if status.state is SessionState.LOGGED_ON:
            with self.subscriptions.lock:
                self._quote_up = True
                self.subscriptions.restart_clocks()
                renewed = self.subscriptions.all()
                for subscription in renewed:
                    self._send(subscription, subscribe=True)
            if renewed:
                log.info("%s logged on: %d market data subscriptions sent", self._route, len(renewed))
            return
        with self.subscriptions.lock:
            self._quote_up = False
        # The server dropped every stream: what we hold is the market as it was, flag it.
        for symbol_id, book in list(self._latest_books.items()):
            self._post(("book", symbol_id), book.model_copy(update={"stale": True}))
        for symbol_id, quote in list(self._latest_quotes.items()):
            self._post(("quote", symbol_id), quote.model_copy(update={"stale": True}))

    def _resync_depth(self, reason: str) -> None:
        """A lost or unreadable message may have been an X: ask for fresh snapshots of every depth book."""
        with self.subscriptions.lock:
            renewed = []
            for subscription in self.subscriptions.all():
                if not subscription.depth:
                    continue
                fresh = self.subscriptions.renew(subscription)
                if self._quote_up:
                    self._send(subscription, subscribe=False)
                    self._send(fresh, subscribe=True)
                renewed.append(fresh.symbol)
        if renewed:
            self._metrics.md_resyncs.inc()
            log.warning("%s: %s; depth books re-requested: %s", self._route, reason, ", ".join(renewed))

    def _apply_full(self, message: FullRefresh) -> None:
        symbol_id = message.symbol_id
        depth = self.subscriptions.get(symbol_id, True)
        spot = self.subscriptions.get(symbol_id, False)
        if message.is_depth or (not message.entries and depth is not None and spot is None):
            if depth is None:
                self._metrics.md_unsolicited.labels("W").inc()
                return
            book = self._books.get(symbol_id)
            if book is None:
                book = self._books[symbol_id] = OrderBook()
            book.replace(message.entries)
            self._metrics.md_updates.labels("snapshot").inc()
            self._publish_book(symbol_id, message.time, depth)
            self._first_data(depth)
            return
        if spot is None:
            self._metrics.md_unsolicited.labels("W").inc()
            return
        bid = ask = None
        for entry in message.entries:
            if entry.side is BookSide.BID:
                bid = entry.price
            else:
                ask = entry.price
        self._metrics.md_updates.labels("spot").inc()
        self._publish_quote(symbol_id, message.time, bid, ask, spot)
        self._first_data(spot)

    def _apply_incremental(self, message: IncrementalRefresh) -> None:
        touched: dict[int, Subscription] = {}
        books = self._books
        unknown = unsolicited = 0
        for change in message.changes:
            book = books.get(change.symbol_id)
            if book is None:
                unsolicited += 1
                continue
            if change.delete:
                if not book.remove(change.entry_id):
                    unknown += 1
            else:
                book.add(change.entry_id, change.side, change.price, change.size)  # type: ignore[arg-type]
            if change.symbol_id not in touched:
                subscription = self.subscriptions.get(change.symbol_id, True)
                if subscription is not None:
                    touched[change.symbol_id] = subscription
        if unknown:
            self._metrics.md_unknown_entries.inc(unknown)
        if unsolicited:
            self._metrics.md_unsolicited.labels("X").inc(unsolicited)
        self._applied_incremental.inc()
        for symbol_id, subscription in touched.items():
            self._publish_book(symbol_id, message.time, subscription)

    def _on_reject(self, message: RequestRejected) -> None:
        self._metrics.md_rejects.labels(str(message.reason) if message.reason is not None else "none").inc()
        with self.subscriptions.lock:
            subscription = self.subscriptions.by_req_id(message.md_req_id)
            if subscription is not None:
                self.subscriptions.remove(subscription)
        name = subscription.symbol if subscription else None
        log.error(
            "%s: subscription %s (%s) refused: %s",
            self._route,
            message.md_req_id,
            name or "unknown",
            message.text,
        )
        event = MarketDataRejected(
            md_req_id=message.md_req_id,
            symbol_id=subscription.symbol_id if subscription else None,
            symbol=name,
            reason=message.reason,
            text=message.text,
        )
        self._post_event(event)
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._fail_waiter, event)

    # -- building and publishing --------------------------------------------------------------

    def _digits(self, symbol_id: int) -> tuple[str, int]:
        instrument = self._catalog.by_id(symbol_id)
        return (instrument.name, instrument.digits) if instrument else (str(symbol_id), DEFAULT_DIGITS)

    def _publish_book(self, symbol_id: int, at: datetime, subscription: Subscription) -> None:
        book = self._books[symbol_id]
        name, digits = self._digits(symbol_id)
        bids, asks = book.levels(BookSide.BID), book.levels(BookSide.ASK)
        mid, spread = mid_and_spread(bids[0].price if bids else None, asks[0].price if asks else None, digits)
        count = self._updates.get(symbol_id, 0) + 1
        self._updates[symbol_id] = count
        event = Book.model_construct(
            symbol_id=symbol_id,
            symbol=name,
            time=at,
            bids=bids,
            asks=asks,
            mid=mid,
            spread_pips=spread,
            imbalance=imbalance(bids, asks, self._config.imbalance_levels),
            microprice=microprice(bids, asks, digits),
            updates=count,
            stale=False,
        )
        self._latest_books[symbol_id] = event
        self._touch(subscription)
        counter = self._book_counters.get(symbol_id)
        if counter is None:
            counter = self._book_counters[symbol_id] = self._metrics.md_book_updates.labels(name)
        counter.inc()
        if self._recorder is not None:
            self._recorder.offer(event)
        self._post(("book", symbol_id), event)

    def _publish_quote(
        self,
        symbol_id: int,
        at: datetime,
        bid: Decimal | None,
        ask: Decimal | None,
        subscription: Subscription,
    ) -> None:
        name, digits = self._digits(symbol_id)
        mid, spread = mid_and_spread(bid, ask, digits)
        event = Quote.model_construct(
            symbol_id=symbol_id,
            symbol=name,
            time=at,
            bid=bid,
            ask=ask,
            mid=mid,
            spread_pips=spread,
            stale=False,
        )
        self._latest_quotes[symbol_id] = event
        self._touch(subscription)
        self._post(("quote", symbol_id), event)

    def _touch(self, subscription: Subscription) -> None:
        subscription.last_update = time.monotonic()
        subscription.received += 1
        self._stale.discard((subscription.symbol_id, subscription.depth))

    def _first_data(self, subscription: Subscription) -> None:
        loop = self._loop
        if subscription.received == 1 and loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._resolve_waiter, subscription.md_req_id)

    def _post(self, key: tuple[str, int], event: MarketEvent) -> None:
        if not self._consumers and not self._callbacks:
            return  # nobody listens: do not wake the event loop (orders run there) for nothing
        with self._pending_lock:
            self._pending[key] = event
            if self._scheduled:
                return
            self._scheduled = True
        self._schedule_drain()

    def _post_event(self, event: MarketEvent) -> None:
        with self._pending_lock:
            self._pending_events.append(event)
            if self._scheduled:
                return
            self._scheduled = True
        self._schedule_drain()

    def _schedule_drain(self) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._drain)

    # -- event loop side ----------------------------------------------------------------------

    def _drain(self) -> None:
        with self._pending_lock:
            latest, events = self._pending, self._pending_events
            self._pending, self._pending_events = {}, []
            self._scheduled = False
        for event in (*events, *latest.values()):
            self._dispatch(event)

    def _dispatch(self, event: MarketEvent) -> None:
        for consumer in self._consumers:
            if consumer.full():
                consumer.get_nowait()
                self._metrics.md_consumer_dropped.inc()
            consumer.put_nowait(event)
        for callback in self._callbacks:
            try:
                callback(event)
            except Exception:
                self._metrics.callback_errors.labels("market_callback").inc()
                log.exception("market data callback failed (it keeps receiving events)")

    def _resolve_waiter(self, md_req_id: str) -> None:
        waiter = self._waiters.pop(md_req_id, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail_waiter(self, event: MarketDataRejected) -> None:
        waiter = self._waiters.pop(event.md_req_id, None)
        if waiter is not None and not waiter.done():
            waiter.set_exception(
                SubscriptionRejected(
                    f"the server refused the {event.symbol or event.md_req_id} subscription: {event.text}",
                    reason=event.reason,
                    text=event.text,
                )
            )

    async def _watch_staleness(self) -> None:
        limit = self._config.stale_after_seconds
        period = min(1.0, limit / 2)
        while True:
            await asyncio.sleep(period)
            now = time.monotonic()
            for subscription in self.subscriptions.all():
                key = (subscription.symbol_id, subscription.depth)
                silent = now - (subscription.last_update or subscription.since)
                if silent <= limit or key in self._stale:
                    continue
                self._stale.add(key)
                log.warning(
                    "%s %s silent for %.1fs: marked stale", subscription.kind, subscription.symbol, silent
                )
                self._dispatch(
                    MarketDataStale(
                        symbol_id=subscription.symbol_id, symbol=subscription.symbol, silent_seconds=silent
                    )
                )
                latest: Book | Quote | None = (
                    self._latest_books.get(subscription.symbol_id)
                    if subscription.depth
                    else self._latest_quotes.get(subscription.symbol_id)
                )
                if latest is not None:
                    self._dispatch(latest.model_copy(update={"stale": True}))
            self._metrics.md_stale_symbols.set(len(self._stale))
