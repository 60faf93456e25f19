"""The connector conformance suite: one set of behaviour tests run over every connector.

A test gets a `Trading` (an Adapter started on one connector against the simulator, a journal of everything
it published, and the simulator's back office) and asserts only what the adapter's public surface shows:
`fixadapter.model` orders, order events and positions. Nothing here names a protocol; everything that does
(building the connector, its config, cutting its trading route, the faults of its venue front) lives in one
`ConnectorFactory` per connector. Adding a connector to the suite is adding one factory to `FACTORIES`.

Waiting is always on something the adapter or the venue says (an event, a positions snapshot, an order's
state at the venue), bounded by a generous timeout that fails naming what was awaited and what was seen.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pytest

from fixadapter.api import Adapter
from fixadapter.config import build_config
from fixadapter.model.enums import DONE_STATUSES, OrderEventKind, OrderStatus, SessionState
from fixadapter.model.orders import Order, OrderEvent, Position
from fixadapter.model.reports import ConnectionStatus
from fixadapter.sim.process import SimProcess

from ..openapi_accounts import grant, openapi_settings

WAIT_SECONDS = 30.0  # generous: a bound that only a broken adapter reaches, never a timing margin
ORDERS: dict[str, object] = {
    # The in-flight watch stays out of the way: a test that wants it sets its own timer.
    "inflight_timeout_seconds": 120.0,
    "ready_timeout_seconds": WAIT_SECONDS,
    "reconcile_timeout_seconds": 10.0,
    "positions_refresh_seconds": 0.0,
}


class ConnectorFactory(Protocol):
    """Everything the suite needs that depends on the connector under test."""

    @property
    def name(self) -> str:
        """The test id of this connector (`[fix]`)."""
        ...

    def simulator_options(self) -> dict[str, Any]:
        """SimProcess options this connector's venue front needs (ports, TLS)."""
        ...

    def adapter(self, sim: SimProcess, store_url: str, orders: Mapping[str, object]) -> Adapter:
        """An Adapter trading through this connector on the simulator's account (not started)."""
        ...

    async def cut_trading_route(self, adapter: Adapter, sim: SimProcess) -> None:
        """Make the venue cut the connector's trading route; return once the adapter has seen it go down
        (it reconnects and reconciles by itself)."""
        ...

    def drop_next_reports(self, sim: SimProcess, count: int) -> None:
        """The venue front sends none of its next `count` order reports: the venue acts, we never hear."""
        ...

    def swallow_next_requests(self, sim: SimProcess, count: int) -> None:
        """The next `count` requests never reach the venue, and status queries about them are answered."""
        ...

    @property
    def resends_swallowed_orders(self) -> bool:
        """Whether an order the venue never answered, and does not list, is sent again while young. Over
        FIX, one QuickFIX refused or lost is; over the Open API an order written to a live connection is
        never sent again (the venue may have it: a slow one executes it late), it is rejected as
        unanswered."""
        ...


@dataclass(frozen=True)
class FixFactory:
    """The FIX 4.4 connector (QuickFIX, TRADE and QUOTE sessions) against the simulator's CSERVER front."""

    name: str = "fix"
    tls: bool = field(default_factory=lambda: os.environ.get("FIXADAPTER_TEST_FIX_TLS") == "1")

    def simulator_options(self) -> dict[str, Any]:
        return {"tls": self.tls}

    def adapter(self, sim: SimProcess, store_url: str, orders: Mapping[str, object]) -> Adapter:
        config = build_config(
            {"account": sim.adapter_settings(), "store": {"url": store_url}, "orders": dict(orders)},
            environ={},
        )
        return Adapter(config)

    async def cut_trading_route(self, adapter: Adapter, sim: SimProcess) -> None:
        down = asyncio.Event()

        def seen(status: ConnectionStatus) -> None:
            if status.state is SessionState.LOGGED_OUT:  # only TRADE is cut: QUOTE stays up
                down.set()

        adapter.on_session(seen)
        await asyncio.to_thread(sim.control, "/logout", {"session": "TRADE", "reason": "conformance cut"})
        try:
            async with asyncio.timeout(WAIT_SECONDS):
                await down.wait()
        except TimeoutError:
            pytest.fail(f"the adapter never saw its TRADE session logged out within {WAIT_SECONDS:g}s")

    def drop_next_reports(self, sim: SimProcess, count: int) -> None:
        sim.control("/scenario", {"drop_reports": count})

    def swallow_next_requests(self, sim: SimProcess, count: int) -> None:
        sim.control("/scenario", {"ignore_requests": count})

    @property
    def resends_swallowed_orders(self) -> bool:
        return True


@dataclass(frozen=True)
class OpenApiFactory:
    """The cTrader Open API connector (protobuf over TLS) against the simulator's Open API front, on the
    same venue the FIX front serves."""

    name: str = "openapi"

    def simulator_options(self) -> dict[str, Any]:
        return {}

    def adapter(self, sim: SimProcess, store_url: str, orders: Mapping[str, object]) -> Adapter:
        token_file = Path(store_url.removeprefix("sqlite:///")).with_suffix(".tokens")
        grant(sim, token_file)
        # A request the venue swallows is awaited twice the request timeout before it is given up: 5 s here.
        account = {"name": "default", "openapi": openapi_settings(sim, token_file, request_timeout_seconds=5)}
        config = build_config(
            {"accounts": [account], "store": {"url": store_url}, "orders": dict(orders)}, environ={}
        )
        return Adapter(config)

    async def cut_trading_route(self, adapter: Adapter, sim: SimProcess) -> None:
        down = asyncio.Event()

        def seen(status: ConnectionStatus) -> None:
            if status.state is SessionState.LOGGED_OUT:
                down.set()

        adapter.on_session(seen)
        await asyncio.to_thread(sim.control, "/openapi/cut", {})
        try:
            async with asyncio.timeout(WAIT_SECONDS):
                await down.wait()
        except TimeoutError:
            pytest.fail(f"the adapter never saw its Open API connection cut within {WAIT_SECONDS:g}s")

    def drop_next_reports(self, sim: SimProcess, count: int) -> None:
        sim.control("/scenario", {"drop_reports": count})

    def swallow_next_requests(self, sim: SimProcess, count: int) -> None:
        sim.control("/scenario", {"ignore_requests": count})

    @property
    def resends_swallowed_orders(self) -> bool:
        return False


FACTORIES: list[ConnectorFactory] = [FixFactory(), OpenApiFactory()]


class Journal:
    """Every order event and positions snapshot an adapter published, in order, and waits on them."""

    def __init__(self) -> None:
        self.events: list[OrderEvent] = []
        self.snapshots: list[list[Position]] = []
        self._changed = asyncio.Event()

    def attach(self, adapter: Adapter) -> None:
        adapter.on_event(self._event)
        adapter.on_positions(self._positions)

    def _event(self, event: OrderEvent) -> None:
        self.events.append(event)
        self._changed.set()

    def _positions(self, positions: Sequence[Position]) -> None:
        self.snapshots.append(list(positions))
        self._changed.set()

    def of(self, cl_ord_id: str) -> list[OrderEvent]:
        return [e for e in self.events if e.order.cl_ord_id == cl_ord_id]

    async def _until(self, check: Callable[[], bool], what: Callable[[], str]) -> None:
        try:
            async with asyncio.timeout(WAIT_SECONDS):
                while not check():
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            pytest.fail(f"waited {WAIT_SECONDS:g}s for {what()}")

    async def reached(self, cl_ord_id: str, *statuses: OrderStatus) -> list[OrderEvent]:
        """The order's events up to the first that leaves it in one of `statuses` (default: any final)."""
        wanted = set(statuses) or set(DONE_STATUSES)

        def upto() -> list[OrderEvent] | None:
            seen = self.of(cl_ord_id)
            for index, event in enumerate(seen):
                if event.order.status in wanted:
                    return seen[: index + 1]
            return None

        def what() -> str:
            kinds = [(str(e.kind), str(e.order.status)) for e in self.of(cl_ord_id)]
            return f"order {cl_ord_id} to reach {sorted(map(str, wanted))}; its events: {kinds}"

        await self._until(lambda: upto() is not None, what)
        events = upto()
        assert events is not None
        return events

    async def event(
        self, cl_ord_id: str, match: Callable[[OrderEvent], bool], what: str, since: int = 0
    ) -> OrderEvent:
        """The order's first event from its `since`-th on that `match`es (one already published counts)."""

        def found() -> OrderEvent | None:
            return next((e for e in self.of(cl_ord_id)[since:] if match(e)), None)

        def described() -> str:
            kinds = [(str(e.kind), str(e.order.status)) for e in self.of(cl_ord_id)]
            return f"{what} of order {cl_ord_id}; its events: {kinds}"

        await self._until(lambda: found() is not None, described)
        event = found()
        assert event is not None
        return event

    async def position(self, position_id: str, match: Callable[[Position | None], bool], what: str) -> None:
        """Until the latest positions snapshot (published after fills and after each check with the venue)
        shows the position as `match` wants it (None: not open)."""

        def found() -> bool:
            return bool(self.snapshots) and match(_by_id(self.snapshots[-1]).get(position_id))

        def described() -> str:
            last = _by_id(self.snapshots[-1]).get(position_id) if self.snapshots else "no snapshot yet"
            return f"position {position_id} {what}; in the last snapshot: {last}"

        await self._until(found, described)


def _by_id(positions: Sequence[Position]) -> dict[str, Position]:
    return {p.position_id: p for p in positions}


class Venue:
    """The simulator's back office (its control port): state, prices and partial fills, for any connector."""

    def __init__(self, sim: SimProcess) -> None:
        self.sim = sim
        self._held: dict[int, dict[str, str]] = {}

    async def _control(self, path: str, body: dict[str, Any] | None = None) -> Any:
        return await asyncio.to_thread(self.sim.control, path, body)

    async def order(self, cl_ord_id: str) -> dict[str, Any] | None:
        state = await self._control("/state")
        return next((o for o in state["orders"] if o["cl_ord_id"] == cl_ord_id), None)

    async def position(self, position_id: str) -> dict[str, Any] | None:
        state = await self._control("/state")
        return next((p for p in state["positions"] if str(p["position_id"]) == position_id), None)

    async def until_order(self, cl_ord_id: str, status: str) -> dict[str, Any]:
        """The venue's own record of the order once it is in `status` (asked on the control port)."""
        last: dict[str, Any] | None = None
        try:
            async with asyncio.timeout(WAIT_SECONDS):
                while last is None or last["status"] != status:
                    last = await self.order(cl_ord_id)
                    if last is None or last["status"] != status:
                        await asyncio.sleep(0.02)  # polling the venue's state, not waiting for time
        except TimeoutError:
            pytest.fail(f"the venue's order {cl_ord_id} was not {status} within {WAIT_SECONDS:g}s: {last}")
        assert last is not None
        return last

    async def hold_prices(self, symbol_id: int, bid: str, ask: str) -> None:
        """Stop the random walk and quote `symbol_id` at exactly bid/ask (resting orders it crosses fill);
        `release_prices` puts back the quote it had."""
        await self._control("/scenario", {"freeze_prices": True})
        quotes = (await self._control("/state"))["quotes"]
        self._held.setdefault(symbol_id, quotes[str(symbol_id)])
        await self._control("/quote", {"symbol_id": symbol_id, "bid": bid, "ask": ask})

    async def release_prices(self) -> None:
        """Every held symbol back at the quote it had before, and prices walk again."""
        for symbol_id, quote in self._held.items():
            await self._control("/quote", {"symbol_id": symbol_id, "bid": quote["bid"], "ask": quote["ask"]})
        self._held.clear()
        await self._control("/scenario", {"freeze_prices": False})

    async def fill_market_orders_in(self, parts: int) -> None:
        await self._control("/scenario", {"partial_fill_parts": parts})


@dataclass
class Trading:
    """One started adapter on the connector under test, with what it published and the venue behind it."""

    adapter: Adapter
    journal: Journal
    venue: Venue
    factory: ConnectorFactory
    sim: SimProcess

    async def cut_trading_route(self) -> None:
        await self.factory.cut_trading_route(self.adapter, self.sim)

    async def ready(self) -> None:
        """The trading route is up and reconciled (after a cut: again)."""
        await self.adapter.wait_ready(WAIT_SECONDS)

    async def order(self, cl_ord_id: str) -> Order:
        """The order as the adapter holds it now (it must have it)."""
        order = await self.adapter.order(cl_ord_id)
        assert order is not None, f"the adapter has no order {cl_ord_id}"
        return order


Scenario = Callable[[Trading], Awaitable[None]]


@dataclass
class Harness:
    """Runs a scenario on a fresh adapter (own store) against the module's simulator, and leaves the
    venue as it found it: every order the scenario left working is cancelled, prices move again."""

    factory: ConnectorFactory
    sim: SimProcess
    directory: Path
    runs: int = 0

    def run(self, scenario: Scenario, **orders: object) -> None:
        asyncio.run(self._run(scenario, {**ORDERS, **orders}))

    async def _run(self, scenario: Scenario, orders: dict[str, object]) -> None:
        async with self.trading(orders) as trading:
            await scenario(trading)

    @asynccontextmanager
    async def trading(self, orders: Mapping[str, object]) -> AsyncIterator[Trading]:
        self.runs += 1
        store_url = f"sqlite:///{self.directory / f'adapter-{self.runs}.db'}"
        adapter = self.factory.adapter(self.sim, store_url, orders)
        journal = Journal()
        journal.attach(adapter)
        venue = Venue(self.sim)
        async with adapter:
            trading = Trading(adapter, journal, venue, self.factory, self.sim)
            await trading.ready()
            try:
                yield trading
            finally:
                await venue.release_prices()
                await venue.fill_market_orders_in(1)
                await _cancel_working(trading)


async def _cancel_working(trading: Trading) -> None:
    """What a scenario leaves working would be adopted by the next adapter's reconciliation."""
    adapter = trading.adapter
    await trading.ready()
    for order in await adapter.orders():
        current = await adapter.order(order.cl_ord_id)
        if current is None or current.is_done or current.pending_request_id is not None:
            continue
        if current.status in (OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED):
            seen = len(trading.journal.of(current.cl_ord_id))
            await adapter.cancel(current.cl_ord_id)
            await trading.journal.event(  # cancelled, or refused (a scenario that failed left it filled)
                current.cl_ord_id,
                lambda e: e.kind in (OrderEventKind.CANCELLED, OrderEventKind.CANCEL_REJECTED),
                "the answer to the cleanup's cancel",
                since=seen,
            )


@pytest.fixture(scope="module", params=FACTORIES, ids=lambda factory: factory.name)
def factory(request: pytest.FixtureRequest) -> ConnectorFactory:
    chosen: ConnectorFactory = request.param
    return chosen


@pytest.fixture(scope="module")
def sim(factory: ConnectorFactory, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimProcess]:
    """One simulator per module and connector: tests share its venue (each leaves nothing working)."""
    directory = tmp_path_factory.mktemp(f"sim-{factory.name}")
    options: dict[str, Any] = {
        "state_path": directory / "venue.sqlite",
        "log_path": directory / "sim.log",
        "extra_args": ("--tick-ms", "100"),
        **factory.simulator_options(),
    }
    process = SimProcess(**options).start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def harness(factory: ConnectorFactory, sim: SimProcess, tmp_path: Path) -> Harness:
    return Harness(factory, sim, tmp_path)
