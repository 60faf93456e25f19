"""The daemon: every configured account (api.Desk), the strategy queue (commands in, events out),
strategies loaded in-process, and the HTTP server, started and stopped in the order that loses nothing.

Start: each account's event relay attaches and replays what a previous run stored but never published,
then the accounts log on; an account's commands are taken only once its TRADE is logged on and reconciled.
The relays and the command dispatcher are supervised: one that fails is restarted, with a blocking alarm
until it runs healthily again (engine.tasks). Stop: take no more commands, optionally cancel working
orders, log out, publish every event still waiting, flush.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from fixadapter.api import Adapter, Desk, open_desk
from fixadapter.client import StrategyClient
from fixadapter.config import AdapterConfig, QueueConfig, StrategyEntry
from fixadapter.connectors.base import TradeConnector
from fixadapter.daemon.dispatcher import CommandDispatcher
from fixadapter.daemon.relay import EventRelay
from fixadapter.engine.sweep import cancel_working_orders
from fixadapter.engine.tasks import TaskGroup, cancelling, raise_if_cancelled
from fixadapter.errors import ConfigError
from fixadapter.metrics import Metrics
from fixadapter.model.enums import OrderStatus
from fixadapter.queue.memory import MemoryQueue
from fixadapter.queue.transport import CommandSource, EventSink

if TYPE_CHECKING:
    from fixadapter.daemon.http import HttpApi

log = logging.getLogger("fixadapter.daemon")
BACKLOG_POLL_SECONDS = 1.0

StrategyMain = Callable[[StrategyClient], Awaitable[Any]]


def _transport(
    config: QueueConfig, desk: Desk, memory: MemoryQueue | None
) -> tuple[CommandSource, dict[str, EventSink], MemoryQueue | None]:
    """The command source and a sink per account (each keeps its own published-seq marker)."""
    metrics = desk.metrics
    if config.kind == "redis":
        from fixadapter.queue.redis_streams import RedisCommandSource, RedisEventSink

        source = RedisCommandSource(config, metrics)
        # Each order-event transaction takes the command acknowledgements waiting along: a command's
        # acknowledgement and the event it caused cost one round trip.
        sinks: dict[str, EventSink] = {
            name: RedisEventSink(config, metrics, account=name, acks=source) for name in desk.adapters
        }
        return source, sinks, None
    queue = memory or MemoryQueue()
    return queue.source, dict.fromkeys(desk.adapters, queue.sink), queue


def load_strategy(entry: str) -> StrategyMain:
    """'package.module:function' -> the async function a strategy runs as (it gets a StrategyClient)."""
    module_name, _, name = entry.partition(":")
    try:
        main: StrategyMain = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ConfigError(f"daemon.strategies: cannot load {entry!r}: {exc}") from None
    if not callable(main):
        raise ConfigError(f"daemon.strategies: {entry!r} is not a function")
    return main


async def watch_backlog(source: CommandSource, metrics: Metrics) -> None:
    """Keep the queue depth gauge current until cancelled. A cancellation that arrives during the call
    to Redis may come back as redis-py's own error, or not at all: on Python 3.11 redis-py's send
    (asyncio.wait_for) returns normally when the cancellation meets a send that has just finished (CPython
    gh-86296), and the call answers. Either way the watch ends there: polling on, nothing would stop it
    (a daemon stop waited 10 s for it, then left it behind)."""
    while True:
        try:
            depth = await source.backlog()
        except Exception as error:  # a transport outage is counted by the transport
            if cancelling():  # stopping: the cancellation came back as the library's error
                raise asyncio.CancelledError from error
        else:
            raise_if_cancelled()  # stopping: the call answered as if the cancellation had not come
            metrics.queue_depth.set(depth)
        await asyncio.sleep(BACKLOG_POLL_SECONDS)


class Daemon:
    def __init__(
        self,
        config: AdapterConfig,
        connector: TradeConnector | None = None,
        memory: MemoryQueue | None = None,
        *,
        connectors: Mapping[str, TradeConnector] | None = None,
    ) -> None:
        """`connector`: for the only configured account; `connectors`: by account name (accounts left
        out are traded over FIX)."""
        self.config = config
        given = dict(connectors or {})
        if connector is not None:
            given[config.account().name] = connector
        self.desk = open_desk(config, given)
        settings = config.daemon
        self.source, self.sinks, self.memory = _transport(settings.queue, self.desk, memory)
        self.sink = next(iter(self.sinks.values()))  # refusals: no marker involved
        self.relays = {
            name: EventRelay(adapter, self.sinks[name], adapter.crash_points)
            for name, adapter in self.desk.adapters.items()
        }
        self.dispatcher = CommandDispatcher(self.desk.adapters, self.source, self.sink, self.desk.metrics)
        self.http: HttpApi | None = None
        if settings.http.enabled:
            from fixadapter.daemon.http import HttpApi  # aiohttp loads only when the HTTP API is on

            self.http = HttpApi(self.desk, settings.http)
        self.http_port: int | None = None
        self._strategies = [(entry, load_strategy(entry.entry)) for entry in settings.strategies]
        self._tasks = TaskGroup(self.desk.metrics)
        self._strategy_tasks: list[asyncio.Task[Any]] = []
        self._dispatching: asyncio.Task[None] | None = None

    @property
    def adapter(self) -> Adapter:
        """The only account's Adapter (ConfigError when several are configured: use `desk[name]`)."""
        only = self.desk.only()
        if only is None:
            raise ConfigError(f"this daemon trades {len(self.desk.adapters)} accounts: use daemon.desk[name]")
        return only

    def client(self, strategy: str) -> StrategyClient:
        """A client on the in-process queue (strategies in this process, tests, the demo)."""
        if self.memory is None:
            raise ConfigError("daemon.queue.kind is redis: connect with StrategyClient.redis(...)")
        return StrategyClient.in_process(self.memory, strategy)

    async def start(self) -> None:
        if self.http is not None:  # first: a port in use stops the daemon before it logs on to the broker
            self.http_port = await self.http.start()
        try:
            await self._start_trading()
        except BaseException:
            if self.http is not None:
                await self.http.stop()
            raise

    async def _start_trading(self) -> None:
        for sink in set(self.sinks.values()):
            await sink.start()
        await self.source.start()
        for relay in self.relays.values():
            await relay.prepare()
        await self.desk.start()
        several = len(self.relays) > 1
        for name, relay in self.relays.items():
            self._tasks.supervise(relay.run, name=f"event-relay:{name}" if several else "event-relay")
        self._dispatching = self._tasks.supervise(self.dispatcher.run, name="command-dispatcher")
        self._tasks.spawn(watch_backlog(self.source, self.desk.metrics), name="queue-backlog")
        for entry, main in self._strategies:
            self._strategy_tasks.append(
                self._tasks.spawn(self._run_strategy(entry, main), name=f"strategy-{entry.name}")
            )

    async def _run_strategy(self, entry: StrategyEntry, main: StrategyMain) -> None:
        for adapter in self.desk:
            await adapter.engine.until_ready()
        async with self.client(entry.name) as client:
            log.info("strategy %s (%s) started", entry.name, entry.entry)
            await main(client)
            log.info("strategy %s finished", entry.name)

    async def stop(self) -> None:
        """Stop taking commands, optionally cancel working orders, log out, publish and flush the rest."""
        settings = self.config.daemon
        self.dispatcher.stop_taking()
        for task in self._strategy_tasks:
            task.cancel()
        await self._dispatcher_stopped(settings.stop_timeout_seconds)
        if settings.cancel_on_stop:
            for adapter in self.desk:
                if adapter.ready:
                    await cancel_working_orders(
                        adapter.engine, "daemon stopping", settings.stop_timeout_seconds
                    )
            await self._wait_cancelled(settings.stop_timeout_seconds)
        await self.desk.stop()
        for name, relay in self.relays.items():
            try:
                await relay.drain(settings.stop_timeout_seconds)
            except TimeoutError:
                log.error(
                    "events of account %s still unpublished after %gs; the next start publishes them",
                    name,
                    settings.stop_timeout_seconds,
                )
        await self._tasks.cancel_all()
        if self.http is not None:
            await self.http.stop()
        await self.source.close()
        for sink in set(self.sinks.values()):
            await sink.close()

    async def _dispatcher_stopped(self, timeout: float) -> None:
        """The commands in hand finish (against engines still trading) before the accounts log out; one
        still running after `timeout` is cancelled with the other tasks, unacknowledged."""
        if self._dispatching is None or self._dispatching.done():
            return
        _, running = await asyncio.wait({self._dispatching}, timeout=timeout)
        if running:
            log.warning(
                "commands in hand %gs after the stop are cut; they come back on the next start", timeout
            )

    async def _wait_cancelled(self, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while any(
                    o.status is OrderStatus.PENDING_CANCEL for a in self.desk for o in a.engine.open_orders()
                ):
                    await asyncio.sleep(0.05)
