"""The Python API: one Adapter per account, a Desk for every configured account (`open_desk`); the
objects behind them are built in wiring.py.

    async with Adapter(load_config(path)) as adapter:
        await adapter.wait_ready()
        events = adapter.events()  # subscribed when called: made before the submit, it misses nothing
        order = await adapter.submit(NewOrder(symbol="EURUSD", side="buy", order_type="market",
                                              quantity=10000))
        async for event in events:
            ...

Events also arrive by callback (`on_event`). Every method raises a FixAdapterError subclass whose
message says what went wrong and what to do.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from datetime import UTC, datetime
from functools import partial
from types import TracebackType

from fixadapter.compliance.capture import MessageRecorder
from fixadapter.config import AdapterConfig
from fixadapter.connectors.base import TradeConnector
from fixadapter.engine.fanout import EventCallback, PositionsCallback
from fixadapter.engine.market_data import MarketCallback, MarketData
from fixadapter.engine.orders import SessionCallback
from fixadapter.engine.subscriptions import Subscription
from fixadapter.engine.sweep import Sweep, cancel_working_orders
from fixadapter.errors import ConfigError, MarketDataError
from fixadapter.metrics import Metrics
from fixadapter.model.enums import DONE_STATUSES
from fixadapter.model.market import Book, MarketEvent, Quote
from fixadapter.model.orders import Order, OrderEvent, Position, PositionProtectionChange
from fixadapter.model.reports import Instrument, PositionProtection
from fixadapter.model.requests import (
    AmendPositionProtection,
    CancelOrder,
    ClosePosition,
    CommandUse,
    NewOrder,
    ReplaceOrder,
)
from fixadapter.risk.kill_switch import KillSwitchState
from fixadapter.wiring import AccountParts, build_account, build_desk

log = logging.getLogger("fixadapter")


class Adapter:
    """One account's trading: its engine, risk, market data and store rows."""

    def __init__(
        self,
        config: AdapterConfig,
        connector: TradeConnector | None = None,
        *,
        account: str | None = None,
        parts: AccountParts | None = None,
    ) -> None:
        """`account`: which configured account (None: the only one); `parts`: built by wiring.build_desk
        for a Desk (else built here for this account alone)."""
        if parts is None:
            parts = build_account(config, connector, account=account)
        self.config = config
        self.account = parts.account
        self.metrics = parts.metrics
        self.connector = parts.connector
        self.engine = parts.engine
        self.reads = parts.reads
        self.pre_trade = parts.pre_trade
        self.recorder = parts.recorder
        self._own_recorder = parts.owns_recorder
        self.market = parts.market
        self.depth_recorder = parts.depth_recorder
        self.crash_points = parts.crash_points

    async def start(self) -> None:
        try:
            if self.recorder is not None and self._own_recorder:
                self.recorder.start()  # before logon: the Logon is the first message recorded
            if self.market is not None:
                await self.market.start()
            await self.engine.start()  # creates the schema, so the recorder starts after it
            if self.depth_recorder is not None:
                self.depth_recorder.start()
        except BaseException:
            await self._abandon_start()
            raise

    async def _abandon_start(self) -> None:
        """A failed start still releases its threads and the compliance directory's lock."""
        steps: list[Callable[[], Awaitable[object]]] = [
            self.engine.stop,
            partial(asyncio.to_thread, self.reads.close),
        ]
        if self.recorder is not None and self._own_recorder:
            steps.append(partial(asyncio.to_thread, self.recorder.close, 5.0))
        if self.market is not None:
            steps.append(self.market.stop)
        if self.depth_recorder is not None:
            steps.append(partial(asyncio.to_thread, self.depth_recorder.close, 5.0))
        for step in steps:
            try:
                await step()
            except Exception:
                log.exception("cleaning up after a failed start (continuing)")

    async def stop(self) -> None:
        """Log out, apply what arrived, then flush the depth snapshots and FIX messages still buffered."""
        await self.engine.stop()
        await asyncio.to_thread(self.reads.close)
        if self.recorder is not None and self._own_recorder:  # after logout: the Logouts are recorded
            await asyncio.to_thread(self.recorder.close)
        if self.market is not None:
            await self.market.stop()
        if self.depth_recorder is not None:
            await asyncio.to_thread(self.depth_recorder.close)

    async def __aenter__(self) -> Adapter:
        await self.start()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self.stop()

    @property
    def ready(self) -> bool:
        """TRADE is logged on and reconciled and no blocking alarm is active: new orders are accepted."""
        return self.engine.ready and not self.metrics.alarms.blocking()

    def readiness(self) -> str:
        """Why the adapter is or is not ready, in words for /readyz and the blotter."""
        blocking = self.metrics.alarms.blocking()
        if blocking:
            first = blocking[0]
            more = f" (and {len(blocking) - 1} more)" if len(blocking) > 1 else ""
            return f"alarm {first.kind} {first.key}: {first.text}{more}"
        return self.engine.not_ready_reason()

    async def wait_ready(self, timeout: float | None = None) -> None:
        await self.engine.wait_ready(timeout)

    async def submit(self, request: NewOrder, command: CommandUse | None = None) -> Order:
        """`command`: for the daemon's dispatcher, the strategy command placing the order."""
        return await self.engine.submit(request, command)

    async def cancel(self, request: CancelOrder | str) -> Order:
        return await self.engine.cancel(
            CancelOrder(cl_ord_id=request) if isinstance(request, str) else request
        )

    async def replace(self, request: ReplaceOrder) -> Order:
        return await self.engine.replace(request)

    async def close_position(self, request: ClosePosition) -> Order:
        """Close a position, whole or in part (connectors with capabilities.close_position; refused with
        the reason otherwise). Returns the closing order, stored before it was sent; its events follow."""
        return await self.engine.close_position(request)

    async def amend_position_protection(self, request: AmendPositionProtection) -> PositionProtectionChange:
        """Set a position's stop loss and take profit, None removing one (connectors with
        capabilities.position_protection). The venue's answer: `position_protection(position_id)`."""
        return await self.engine.amend_position_protection(request)

    def position_protection(self, position_id: str) -> PositionProtection | None:
        """The venue's last word on a position's stop loss and take profit since start (None: none)."""
        return self.engine.position_protection(position_id)

    async def order(self, cl_ord_id: str) -> Order | None:
        return await self.engine.get_order(cl_ord_id)

    async def orders(self) -> list[Order]:
        """Every stored order, oldest first (for a page at a time: `reads.order_page`)."""
        return await self.reads.orders()

    async def positions(self, refresh: bool = False) -> list[Position]:
        """Open positions from the store; `refresh` asks the venue first (TRADE must be up)."""
        if refresh:
            return await self.engine.refresh_positions()
        return await self.reads.positions()

    def instruments(self) -> list[Instrument]:
        return self.engine.catalog.all()

    def events(self) -> AsyncIterator[OrderEvent]:
        return self.engine.events()

    def on_event(self, callback: EventCallback) -> None:
        self.engine.on_event(callback)

    def on_session(self, callback: SessionCallback) -> None:
        self.engine.on_session(callback)

    def on_positions(self, callback: PositionsCallback) -> None:
        """Open positions after fills (kept from each fill; a burst makes one call) and after each check
        with the venue (each logon, every `orders.positions_refresh_seconds`)."""
        self.engine.fanout.on_positions(callback)

    # -- risk -------------------------------------------------------------------------------------

    def kill_switch(self) -> KillSwitchState:
        return self.pre_trade.kill_switch.state()

    async def engage_kill_switch(self, by: str, reason: str) -> tuple[KillSwitchState, Sweep]:
        """Block new orders and replaces, then cancel every working order. While TRADE is down the
        cancels wait for the next reconciliation (the sweep reports them as failed, with that reason)."""
        state = self.pre_trade.kill_switch.engage(by=by, reason=reason, at=datetime.now(UTC))
        self.metrics.kill_switch_engaged.set(1)
        log.warning("kill switch engaged by %s: %s", state.engaged_by, state.reason)
        if not self.engine.ready:
            sweep = Sweep(
                failed={
                    o.cl_ord_id: "TRADE is down: cancelled after the next logon"
                    for o in self.engine.open_orders()
                }
            )
            self._sweep_when_ready()
            return state, sweep
        return state, await cancel_working_orders(self.engine, f"kill switch ({reason})")

    async def release_kill_switch(self, by: str, reason: str) -> KillSwitchState:
        state = self.pre_trade.kill_switch.release(by=by, reason=reason, at=datetime.now(UTC))
        self.metrics.kill_switch_engaged.set(0)
        log.warning("kill switch released by %s: %s", by, reason)
        return state

    def _sweep_when_ready(self) -> None:
        async def sweep() -> None:
            await self.engine.until_ready()
            if self.pre_trade.kill_switch.engaged:
                await cancel_working_orders(self.engine, "kill switch (after logon)")

        self.engine.spawn(sweep(), name="kill-switch-sweep")  # cancelled with the engine's tasks at stop

    # -- market data ------------------------------------------------------------------------------

    def _market(self) -> MarketData:
        if self.market is None:
            raise MarketDataError(
                f"account {self.account}'s {self.connector.capabilities.name} connector offers no market "
                "data yet (Open API spots and depth come with a later release): subscribe on a FIX "
                "account's adapter, whose QUOTE session serves them"
            )
        return self.market

    async def subscribe(self, symbol: str, depth: bool = False, wait: bool = True) -> Subscription:
        """Spot (top of book) or depth stream for a symbol name or id; renewed after every reconnect."""
        return await self._market().subscribe(symbol, depth, wait)

    async def unsubscribe(self, symbol: str, depth: bool = False) -> bool:
        return await self._market().unsubscribe(symbol, depth)

    def book(self, symbol: str) -> Book | None:
        """The latest depth book of a symbol with its DOM figures (None before the first snapshot)."""
        return self._market().book(symbol)

    def quote(self, symbol: str) -> Quote | None:
        return self._market().quote(symbol)

    def market_events(self) -> AsyncIterator[MarketEvent]:
        """Books and quotes (latest per symbol, conflated), rejects and staleness events."""
        return self._market().events()

    def on_market(self, callback: MarketCallback) -> None:
        self._market().on_event(callback)

    async def wait_for(self, cl_ord_id: str, *statuses: str, timeout: float = 10.0) -> Order:
        """Wait until the order reaches one of `statuses` (default: any final status)."""
        wanted = set(statuses) or {str(s) for s in DONE_STATUSES}
        queue = self.engine.subscribe()
        try:
            current = await self.order(cl_ord_id)
            async with asyncio.timeout(timeout):
                while current is None or str(current.status) not in wanted:
                    event = await queue.get()
                    if event.order.cl_ord_id == cl_ord_id:
                        current = event.order
            return current
        finally:
            self.engine.unsubscribe(queue)


class Desk:
    """Every account's Adapter, started and stopped together, and what they share."""

    def __init__(
        self, adapters: Mapping[str, Adapter], metrics: Metrics, recorder: MessageRecorder | None = None
    ) -> None:
        """`metrics`: process-wide series (queue, HTTP) go through it, on the registry the accounts share;
        `recorder`: the compliance record the Desk starts before the accounts and closes after them."""
        if not adapters:
            raise ConfigError("a desk needs at least one account")
        self.adapters = dict(adapters)
        self.metrics = metrics
        self.registry = metrics.registry
        self.recorder = recorder

    @classmethod
    def of(cls, adapter: Adapter) -> Desk:
        """One Adapter built and run elsewhere (its owner starts and stops it)."""
        return cls({adapter.account: adapter}, adapter.metrics)

    def __getitem__(self, name: str) -> Adapter:
        adapter = self.adapters.get(name)
        if adapter is None:
            raise ConfigError(f"no account named {name!r}; configured: {', '.join(self.adapters)}")
        return adapter

    def only(self) -> Adapter | None:
        """The Adapter when one account is configured, else None."""
        return next(iter(self.adapters.values())) if len(self.adapters) == 1 else None

    def __iter__(self) -> Iterator[Adapter]:
        return iter(self.adapters.values())

    async def start(self) -> None:
        """The record first (the Logons are its first messages), then each account; a failed start stops
        what had started."""
        started: list[Adapter] = []
        try:
            if self.recorder is not None:
                await asyncio.to_thread(self.recorder.start)
            for adapter in self.adapters.values():
                await adapter.start()
                started.append(adapter)
        except BaseException:
            for adapter in reversed(started):
                try:
                    await adapter.stop()
                except Exception:
                    log.exception("stopping account %s after a failed start (continuing)", adapter.account)
            if self.recorder is not None:
                await asyncio.to_thread(self.recorder.close, 5.0)
            raise

    async def stop(self) -> None:
        """Each account logs out and applies what arrived; then the record is flushed and closed."""
        for adapter in self.adapters.values():
            try:
                await adapter.stop()
            except Exception:
                log.exception("stopping account %s failed (continuing with the others)", adapter.account)
        if self.recorder is not None:  # after every logout: the Logouts are in the record
            await asyncio.to_thread(self.recorder.close)


def open_desk(config: AdapterConfig, connectors: Mapping[str, TradeConnector] | None = None) -> Desk:
    """Every configured account (wiring.build_desk), not yet started."""
    parts = build_desk(config, connectors)
    adapters = {name: Adapter(config, parts=own) for name, own in parts.accounts.items()}
    return Desk(adapters, parts.metrics, parts.recorder)
