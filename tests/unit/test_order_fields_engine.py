"""Specification of the engine with the Open API's order fields and position operations: an account whose
connector cannot do one is refused locally, naming the field and the connector, with nothing stored; a
connector declaring the capabilities receives the fields, and the store and the events keep them."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from fixadapter.config import OrdersConfig
from fixadapter.connectors.base import Capabilities
from fixadapter.connectors.fix.connector import CAPABILITIES as FIX
from fixadapter.daemon.dispatcher import CommandDispatcher
from fixadapter.engine.orders import OrderEngine
from fixadapter.errors import OrderNotFound, OrderRejected
from fixadapter.metrics import Metrics
from fixadapter.model.enums import (
    OrderEventKind,
    OrderStatus,
    OrderType,
    PositionSide,
    Side,
    TimeInForce,
    VenueRequest,
)
from fixadapter.model.orders import Order, Position, PositionClose, PositionProtectionChange
from fixadapter.model.reports import Instrument, PositionProtection, RequestRefused
from fixadapter.model.requests import AmendPositionProtection, ClosePosition, NewOrder, ReplaceOrder
from fixadapter.queue.schema import (
    AmendPositionProtectionCommand,
    ClosePositionCommand,
    CommandRejected,
    OrderUpdate,
    decode_event,
    encode,
)
from fixadapter.store.repository import OrderStore
from tests.unit.conftest import T0, make_order
from tests.unit.queue_fakes import Commands, Published
from tests.unit.quiet_connector import QuietConnector

D = Decimal
EURUSD = Instrument(symbol_id=1, name="EURUSD", digits=5)
LONG_721 = Position(
    position_id="721",
    symbol_id=1,
    side=PositionSide.LONG,
    quantity=D(30000),
    entry_price=D("1.08"),
    updated_at=T0,
)
EVERYTHING = Capabilities(
    stop_limit=True,
    order_protection=True,
    order_comment=True,
    time_in_force=frozenset(TimeInForce),
    close_position=True,
    position_protection=True,
    name="Open API",
)


class FixLike(QuietConnector):
    """Declares what the FIX connector declares."""

    capabilities = FIX


class OpenApiLike(QuietConnector):
    """Declares every new capability and keeps what it is handed."""

    capabilities = EVERYTHING

    def __init__(self) -> None:
        super().__init__()
        self.orders: list[Order] = []
        self.closes: list[PositionClose] = []
        self.changes: list[PositionProtectionChange] = []

    async def submit(self, order: Order) -> None:
        self.orders.append(order)
        await super().submit(order)

    async def close_position(self, close: PositionClose) -> None:
        self.closes.append(close)

    async def amend_position_protection(self, change: PositionProtectionChange) -> None:
        self.changes.append(change)


Scenario = Callable[[OrderEngine, OrderStore], Awaitable[None]]


def run(tmp_path: Path, connector: QuietConnector, scenario: Scenario, *orders: Order) -> None:
    """An engine over a SQLite store holding position 721 and `orders`, ready as after a logon, running
    `scenario`."""
    store = OrderStore(f"sqlite:///{tmp_path / 'orders.db'}")

    async def main() -> None:
        store.create_schema()
        store.replace_positions([LONG_721])
        for order in orders:
            assert store.insert_order(order)
        engine = OrderEngine(store, connector, Metrics(), OrdersConfig(inflight_timeout_seconds=600))
        await engine.start()
        engine.catalog.replace([EURUSD])
        engine.mark_ready()
        try:
            await scenario(engine, store)
        finally:
            await engine.stop()

    asyncio.run(main())


def full_order(**changes: Any) -> NewOrder:
    values: dict[str, Any] = {
        "symbol": "EURUSD",
        "side": "buy",
        "order_type": "stop_limit",
        "quantity": 10000,
        "stop_price": D("1.09"),
        "price": D("1.0950"),
        "expire_time": datetime(2030, 1, 1, tzinfo=UTC),
        "time_in_force": "good_till_date",
        "stop_loss_distance": D("0.0020"),
        "take_profit": D("1.12"),
        "trailing_stop_loss": True,
        "comment": "breakout leg",
        "cl_ord_id": "ord-1",
        "strategy": "momo",
    }
    return NewOrder(**{**values, **changes})


NEW_FIELDS = (
    "order_type",
    "price",
    "stop_price",
    "expire_time",
    "time_in_force",
    "stop_loss",
    "take_profit",
    "stop_loss_distance",
    "take_profit_distance",
    "trailing_stop_loss",
    "comment",
)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({}, "order_type stop_limit: the FIX connector cannot send a stop-limit order"),
        (
            {"order_type": "limit", "stop_price": None},
            "take_profit: the FIX connector cannot set SL/TP on an order; use an account with the Open API",
        ),
        (
            {
                "order_type": "limit",
                "stop_price": None,
                "stop_loss_distance": None,
                "take_profit": None,
                "trailing_stop_loss": False,
            },
            "comment: the FIX connector cannot send a comment with an order",
        ),
    ],
)
def test_an_order_the_fix_connector_cannot_send_is_refused_naming_the_field_and_nothing_is_stored(
    tmp_path: Path, changes: dict[str, Any], reason: str
) -> None:
    connector = FixLike()

    async def scenario(engine: OrderEngine, store: OrderStore) -> None:
        with pytest.raises(OrderRejected) as refused:
            await engine.submit(full_order(**changes))
        assert str(refused.value).startswith(reason)
        assert store.orders() == [] and store.client_id_usage("ord-1") is None
        assert connector.sent == []
        unsupported = {"source": "adapter", "reason": "UNSUPPORTED"}
        assert engine.metrics.value("fixadapter_order_rejects_total", unsupported) == 1

    run(tmp_path, connector, scenario)


def test_an_order_fix_can_send_with_its_default_time_in_force_named_is_sent(tmp_path: Path) -> None:
    connector = FixLike()

    async def scenario(engine: OrderEngine, store: OrderStore) -> None:
        limit = NewOrder(
            symbol="EURUSD",
            side="buy",
            order_type="limit",
            quantity=10000,
            price=D("1.08"),
            time_in_force="good_till_cancel",
            cl_ord_id="ord-1",
        )
        order = await engine.submit(limit)
        assert order.time_in_force is TimeInForce.GOOD_TILL_CANCEL
        assert connector.sent == [("new", "ord-1")]

    run(tmp_path, connector, scenario)


def test_a_connector_declaring_the_capabilities_receives_the_fields_and_the_store_and_events_keep_them(
    tmp_path: Path,
) -> None:
    connector = OpenApiLike()
    request = full_order()

    async def scenario(engine: OrderEngine, store: OrderStore) -> None:
        events = engine.subscribe()
        order = await engine.submit(request)
        submitted = await asyncio.wait_for(events.get(), 5)

        assert [o.cl_ord_id for o in connector.orders] == ["ord-1"]
        sent = connector.orders[0]
        for field in NEW_FIELDS:
            assert getattr(sent, field) == getattr(request, field), field
        assert store.get_order("ord-1") == order == sent
        assert submitted.order == order
        published = decode_event(encode(OrderUpdate.of(submitted, "main")))
        assert isinstance(published, OrderUpdate) and published.order == order
        assert await engine.submit(request) == order  # a retry with the same terms gets the order back
        with pytest.raises(OrderRejected, match=r"stop_loss_distance 0\.002 vs 0\.003"):
            await engine.submit(full_order(stop_loss_distance=D("0.003")))

    run(tmp_path, connector, scenario)


def test_both_prices_of_a_replace_are_taken_for_a_stop_limit_order_only(tmp_path: Path) -> None:
    connector = OpenApiLike()
    working = {"status": OrderStatus.NEW, "previous_status": OrderStatus.PENDING_NEW, "price": D("1.095")}
    limit = make_order(cl_ord_id="lim-1", order_id="101", order_type=OrderType.LIMIT, **working)
    stop_limit = make_order(
        cl_ord_id="sl-1", order_id="102", order_type=OrderType.STOP_LIMIT, stop_price=D("1.09"), **working
    )

    async def scenario(engine: OrderEngine, store: OrderStore) -> None:
        both = {"quantity": 10000, "price": D("1.096"), "stop_price": D("1.091")}
        with pytest.raises(OrderRejected, match="not both: order lim-1 is a limit order"):
            await engine.replace(ReplaceOrder(cl_ord_id="lim-1", request_id="r-1", **both))
        pending = await engine.replace(ReplaceOrder(cl_ord_id="sl-1", request_id="r-2", **both))
        assert pending.status is OrderStatus.PENDING_REPLACE
        assert connector.sent == [("replace", "r-2")]
        request = store.get_request("r-2")
        assert request is not None and (request.price, request.stop_price) == (D("1.096"), D("1.091"))

    run(tmp_path, connector, scenario, limit, stop_limit)


# -- closing a position -----------------------------------------------------------------------------


def test_closing_a_position_on_fix_is_refused_naming_the_connector_and_nothing_is_stored(
    tmp_path: Path,
) -> None:
    async def scenario(engine: OrderEngine, store: OrderStore) -> None:
        with pytest.raises(OrderRejected, match="close_position: the FIX connector cannot close a position"):
            await engine.close_position(ClosePosition(position_id="721", request_id="close-1"))
        with pytest.raises(OrderRejected, match="the FIX connector cannot set SL/TP on a position"):
            await engine.amend_position_protection(AmendPositionProtection(position_id="721"))
        assert store.orders() == [] and store.client_id_usage("close-1") is None

    run(tmp_path, FixLike(), scenario)


def test_a_close_stores_the_closing_order_first_and_hands_the_connector_the_whole_quantity(
    tmp_path: Path,
) -> None:
    connector = OpenApiLike()

    async def scenario(engine: OrderEngine, store: OrderStore) -> None:
        order = await engine.close_position(
            ClosePosition(position_id="721", request_id="close-1", strategy="momo")
        )

        assert (order.side, order.order_type, order.quantity) == (Side.SELL, OrderType.MARKET, D(30000))
        assert (order.position_id, order.strategy, order.status) == ("721", "momo", OrderStatus.PENDING_NEW)
        assert store.get_order("close-1") == order
        assert connector.closes == [
            PositionClose(
                cl_ord_id="close-1",
                position_id="721",
                symbol_id=1,
                side=Side.SELL,
                quantity=D(30000),
                whole=True,
            )
        ]
        again = await engine.close_position(ClosePosition(position_id="721", request_id="close-1"))
        assert again == order and len(connector.closes) == 1  # a retry closes nothing twice

    run(tmp_path, connector, scenario)


def test_a_partial_close_sends_its_quantity_and_more_than_the_position_is_refused(tmp_path: Path) -> None:
    connector = OpenApiLike()

    async def scenario(engine: OrderEngine, store: OrderStore) -> None:
        with pytest.raises(OrderRejected, match="more than position 721 holds"):
            await engine.close_position(ClosePosition(position_id="721", quantity=40000, request_id="c-1"))
        with pytest.raises(OrderNotFound, match="no open position 999"):
            await engine.close_position(ClosePosition(position_id="999", request_id="c-2"))
        assert store.orders() == []
        part = await engine.close_position(ClosePosition(position_id="721", quantity=10000, request_id="c-3"))
        assert part.quantity == D(10000)
        assert [(c.quantity, c.whole) for c in connector.closes] == [(D(10000), False)]

    run(tmp_path, connector, scenario)


def test_a_refused_close_rejects_its_closing_order(tmp_path: Path) -> None:
    connector = OpenApiLike()

    async def scenario(engine: OrderEngine, store: OrderStore) -> None:
        events = engine.subscribe()
        await engine.close_position(ClosePosition(position_id="721", request_id="close-1"))
        engine.deliver(
            RequestRefused(request=VenueRequest.CLOSE_POSITION, request_id="close-1", text="MARKET_CLOSED")
        )
        while (event := await asyncio.wait_for(events.get(), 5)).kind is not OrderEventKind.REJECTED:
            pass
        assert event.order.status is OrderStatus.REJECTED and event.order.reason == "MARKET_CLOSED"

    run(tmp_path, connector, scenario)


# -- a position's protection --------------------------------------------------------------------------


def test_a_protection_amendment_reaches_the_connector_and_the_venues_answer_is_kept(tmp_path: Path) -> None:
    connector = OpenApiLike()

    async def scenario(engine: OrderEngine, store: OrderStore) -> None:
        change = await engine.amend_position_protection(
            AmendPositionProtection(
                position_id="721", stop_loss=D("1.07"), trailing_stop_loss=True, request_id="p-1"
            )
        )
        assert connector.changes == [change]
        assert (change.stop_loss, change.take_profit, change.trailing_stop_loss) == (D("1.07"), None, True)
        answer = PositionProtection(
            position_id="721", request_id="p-1", stop_loss=D("1.07"), trailing_stop_loss=True
        )
        engine.deliver(answer)
        async with asyncio.timeout(5):
            while engine.position_protection("721") is None:
                await asyncio.sleep(0.01)
        assert engine.position_protection("721") == answer
        [kept] = await engine.positions()
        assert (kept.stop_loss, kept.take_profit, kept.trailing_stop_loss) == (D("1.07"), None, True)
        [stored] = store.positions()
        assert stored == kept and stored.quantity == D(30000)
        with pytest.raises(OrderNotFound, match="no open position 5"):
            await engine.amend_position_protection(AmendPositionProtection(position_id="5"))
        assert store.orders() == []

    run(tmp_path, connector, scenario)


# -- through the queue's dispatcher -------------------------------------------------------------------


async def dispatch(engine: OrderEngine, *commands: bytes) -> list[Any]:
    """Run the dispatcher over `commands` for one account served by `engine`; the events it published."""
    adapter = SimpleNamespace(
        account="default",
        engine=engine,
        order=engine.get_order,
        close_position=engine.close_position,
        amend_position_protection=engine.amend_position_protection,
    )
    source, sink = Commands(*commands), Published()
    dispatcher = CommandDispatcher({"default": adapter}, source, sink, Metrics())  # type: ignore[dict-item]
    running = asyncio.ensure_future(dispatcher.run())
    await asyncio.wait_for(source.all_acked.wait(), 10)
    dispatcher.stop_taking()
    await asyncio.wait_for(running, 10)
    return sink.events


CLOSE = encode(ClosePositionCommand(id="c-1", strategy="momo", position_id="721"))
AMEND = encode(
    AmendPositionProtectionCommand(id="c-2", strategy="momo", position_id="721", stop_loss=D("1.07"))
)


def test_position_commands_for_an_account_on_fix_are_refused_with_the_reason(tmp_path: Path) -> None:
    async def scenario(engine: OrderEngine, store: OrderStore) -> None:
        events = await dispatch(engine, CLOSE, AMEND)
        reasons = {event.command_type: event.reason for event in events if isinstance(event, CommandRejected)}
        assert reasons["close_position"].startswith(
            "close_position: the FIX connector cannot close a position"
        )
        assert reasons["amend_position_protection"].startswith(
            "amend_position_protection: the FIX connector cannot set SL/TP on a position"
        )
        assert store.orders() == []

    run(tmp_path, FixLike(), scenario)


def test_position_commands_reach_a_connector_that_has_them_and_a_redelivered_close_closes_once(
    tmp_path: Path,
) -> None:
    connector = OpenApiLike()

    async def scenario(engine: OrderEngine, store: OrderStore) -> None:
        events = await dispatch(engine, CLOSE, AMEND, CLOSE)
        assert not [event for event in events if isinstance(event, CommandRejected)]
        assert [(c.cl_ord_id, c.quantity) for c in connector.closes] == [("c-1", D(30000))]
        assert [(c.position_id, c.stop_loss, c.take_profit) for c in connector.changes] == [
            ("721", D("1.07"), None)
        ]
        closing = store.get_order("c-1")
        assert closing is not None and closing.strategy == "momo"

    run(tmp_path, connector, scenario)
