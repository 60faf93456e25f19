"""The blotter's state is built from queue events alone and renders without a terminal."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from rich.console import Console

from fixadapter.blotter import (
    REFUSED,
    Blotter,
    BlotterState,
    Session,
    TopOfBook,
    final_view,
    live_view,
    orders_table,
    read_top,
)
from fixadapter.errors import UnknownSymbol
from fixadapter.model.enums import OrderEventKind, OrderStatus, PositionSide
from fixadapter.model.market import Book, PriceLevel, Quote
from fixadapter.model.orders import Fill, Order, Position
from fixadapter.queue.schema import CommandRejected, OrderUpdate, PositionsUpdate

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def order(cl_ord_id: str = "a1b2c3d4e5f6", **changes: Any) -> Order:
    fields: dict[str, Any] = {
        "cl_ord_id": cl_ord_id,
        "symbol_id": 1,
        "symbol": "EURUSD",
        "side": "buy",
        "order_type": "market",
        "quantity": Decimal(10000),
        "strategy": "sample",
    }
    return Order(**{**fields, **changes})


def update(kind: OrderEventKind, current: Order, fill: Fill | None = None, **extra: Any) -> OrderUpdate:
    return OrderUpdate(event=kind, order=current, fill=fill, time=NOW, **extra)


def filled(cl_ord_id: str = "a1b2c3d4e5f6", quantity: int = 10000, px: str = "1.08350") -> list[OrderUpdate]:
    new = order(cl_ord_id, quantity=Decimal(quantity))
    accepted = new.moved_to(OrderStatus.NEW, order_id="9001", position_id="47888800")
    done = accepted.moved_to(OrderStatus.FILLED, cum_qty=Decimal(quantity), avg_px=Decimal(px))
    fill = Fill(
        fill_id="f1",
        cl_ord_id=cl_ord_id,
        order_id="9001",
        symbol_id=1,
        side="buy",
        quantity=Decimal(quantity),
        price=Decimal(px),
        time=NOW,
    )
    return [
        update(OrderEventKind.SUBMITTED, new),
        update(OrderEventKind.ACCEPTED, accepted, seq=1),
        update(OrderEventKind.FILLED, done, fill, seq=2),
    ]


def refused(cl_ord_id: str = "ffff0000aaaa", command_type: str = "submit") -> CommandRejected:
    return CommandRejected(
        command_id=cl_ord_id,
        command_type=command_type,
        cl_ord_id=cl_ord_id,
        reason="2000000 > 1000000 for EURUSD",
        rule="max_quantity",
        values={"quantity": "2000000", "limit": "1000000", "symbol": "EURUSD"},
    )


def positions() -> PositionsUpdate:
    return PositionsUpdate(
        positions=[
            Position(
                position_id="47888800",
                symbol_id=1,
                side=PositionSide.LONG,
                quantity=Decimal(6000),
                entry_price=Decimal("1.0835"),
            ),
            Position(position_id="47888803", symbol_id=2, side=PositionSide.SHORT, quantity=Decimal(15000)),
        ]
    )


def text_of(renderable: Any, width: int = 200) -> str:
    console = Console(file=io.StringIO(), width=width, color_system=None)
    console.print(renderable)
    return console.file.getvalue()  # type: ignore[attr-defined]


def test_an_order_update_sets_the_row_to_the_latest_state_and_a_fill_is_kept():
    state = BlotterState()
    lines = [state.apply(event) for event in filled()]
    row = state.orders["a1b2c3d4e5f6"]
    assert (row.status, row.filled, row.avg_px, row.strategy) == (
        "filled",
        Decimal(10000),
        Decimal("1.0835"),
        "sample",
    )
    assert (row.symbol, row.side, row.order_type, row.quantity) == ("EURUSD", "buy", "market", Decimal(10000))
    assert state.fill_count == 1 and state.fills[0].price == Decimal("1.08350")
    assert (state.events, state.order_events, state.rejects) == (3, 3, 0)
    assert lines[-1].startswith("order filled") and "fill 10,000 @ 1.08350" in lines[-1]
    assert "a1b2c3d4" in lines[-1] and "a1b2c3d4e5f6" not in lines[-1]  # ClOrdID shortened


def test_a_refused_submit_is_a_row_with_its_rule_and_counts_as_a_reject():
    state = BlotterState(strategy="sample")
    line = state.apply(refused())
    row = state.orders["ffff0000aaaa"]
    assert row.status == REFUSED and row.rule == "max_quantity"
    assert row.reason == "max_quantity: 2000000 > 1000000 for EURUSD"
    assert (row.strategy, row.symbol, row.quantity) == ("sample", "EURUSD", Decimal(2000000))
    assert state.rejects == 1 and state.rules() == ["max_quantity"]
    assert line == "command_rejected submit ffff0000  rule=max_quantity  2000000 > 1000000 for EURUSD"


def test_a_refused_cancel_annotates_the_order_it_named():
    state = BlotterState()
    for event in filled():
        state.apply(event)
    state.apply(
        CommandRejected(
            command_id="c1",
            command_type="cancel",
            cl_ord_id="a1b2c3d4e5f6",
            reason="strategy sample has no order x",
        )
    )
    row = state.orders["a1b2c3d4e5f6"]
    assert row.status == "filled" and row.reason == "cancel refused: strategy sample has no order x"
    assert state.rejects == 1 and state.rules() == []


def test_a_venue_reject_counts_and_shows_its_reason():
    state = BlotterState()
    new = order("r1")
    state.apply(update(OrderEventKind.SUBMITTED, new))
    state.apply(
        update(
            OrderEventKind.REJECTED,
            new.moved_to(OrderStatus.REJECTED, reason="NOT_ENOUGH_MONEY"),
            reason="NOT_ENOUGH_MONEY",
        )
    )
    assert state.orders["r1"].reason == "NOT_ENOUGH_MONEY" and state.rejects == 1


def test_an_order_flagged_unknown_is_shown_as_unknown_and_the_summary_asks_for_the_broker():
    state = BlotterState()
    new = order("u1")
    state.apply(update(OrderEventKind.SUBMITTED, new))
    why = "no answer from the venue for 180s while pending_new"
    line = state.apply(
        update(OrderEventKind.UNKNOWN, new.moved_to(OrderStatus.UNKNOWN, reason=why), reason=why)
    )
    assert state.orders["u1"].status == "unknown" and state.orders["u1"].reason == why
    assert "status=unknown" in line
    assert state.summary().endswith("; 1 unknown at the venue: check with the broker")
    assert "unknown" in text_of(orders_table(state))


def test_positions_replace_the_last_ones_and_take_symbol_names_from_orders():
    state = BlotterState(symbols={2: "GBPUSD"})
    assert not state.positions_seen
    for event in filled():
        state.apply(event)  # teaches symbol id 1 = EURUSD
    line = state.apply(positions())
    assert state.positions_seen and len(state.positions) == 2
    assert line == "positions  2 open: EURUSD long 6,000 @ 1.0835, GBPUSD short 15,000 @ -"
    state.apply(PositionsUpdate(positions=[]))
    assert state.positions == [] and state.symbol(99) == "99"


def test_the_summary_counts_statuses_fills_positions_and_names_the_risk_rules():
    state = BlotterState()
    for event in [*filled("o1"), *filled("o2"), refused("x1"), positions()]:
        state.apply(event)
    assert state.summary() == (
        "3 orders (2 filled, 1 refused), 2 fills, 2 positions open, 8 events, 1 rejects; "
        "risk refused: max_quantity"
    )


def test_the_tables_render_without_a_terminal():
    state = BlotterState(strategy="sample")
    for event in [*filled("o1"), refused("x1"), positions()]:
        state.apply(event)
    state.note("step 1/10: market buy 10,000 EURUSD")
    tops = [
        TopOfBook(
            "EURUSD",
            "depth",
            Decimal("1.0834"),
            Decimal("1.0835"),
            Decimal(1000000),
            Decimal(2000000),
            Decimal(1),
        ),
        TopOfBook("GBPUSD"),
    ]
    live = text_of(
        live_view(state, tops, Session(ready=True, reason="TRADE logged on", elapsed=3.2, duration=20))
    )
    assert "READY" in live and "3.2s of ~20s" in live and "rejects 1" in live
    assert "2,000,000" in live and "max_quantity: 2000000 > 1000000" in live
    assert "1,000,000" in live and "waiting" in live
    assert "== step 1/10: market buy 10,000 EURUSD" in live
    final = text_of(final_view(state, tops))
    assert "47888800" in final and "short" in final and "1.0835" in final


def test_the_live_orders_table_keeps_the_newest_rows():
    state = BlotterState()
    for number in range(15):
        state.apply(update(OrderEventKind.SUBMITTED, order(f"order{number:02d}")))
    shown = text_of(orders_table(state, limit=12))
    assert "orders (15, oldest 3 not shown)" in shown
    assert "order14" in shown and "order03" in shown and "order02" not in shown


class FakeAdapter:
    ready = False

    def __init__(self, book: Book | None = None, quote: Quote | None = None, known: bool = True) -> None:
        self._book, self._quote, self._known = book, quote, known

    def readiness(self) -> str:
        return "TRADE not logged on and reconciled"

    def book(self, symbol: str) -> Book | None:
        if not self._known:
            raise UnknownSymbol(f"unknown symbol {symbol}")
        return self._book

    def quote(self, symbol: str) -> Quote | None:
        return self._quote


def test_top_of_book_comes_from_the_depth_book_else_the_spot_quote():
    book = Book(
        symbol_id=1,
        symbol="EURUSD",
        time=NOW,
        bids=(PriceLevel(Decimal("1.0834"), Decimal(100000)),),
        asks=(PriceLevel(Decimal("1.0835"), Decimal(200000)),),
        spread_pips=Decimal(1),
    )
    quote = Quote(symbol_id=2, symbol="GBPUSD", time=NOW, bid=Decimal("1.271"), ask=Decimal("1.2712"))
    depth = read_top(FakeAdapter(book=book), "EURUSD")  # type: ignore[arg-type]
    assert (depth.source, depth.bid, depth.ask_size) == ("depth", Decimal("1.0834"), Decimal(200000))
    spot = read_top(FakeAdapter(quote=quote), "GBPUSD")  # type: ignore[arg-type]
    assert (spot.source, spot.ask, spot.bid_size) == ("spot", Decimal("1.2712"), None)
    assert read_top(FakeAdapter(known=False), "EURUSD").source == "waiting"  # type: ignore[arg-type]
    assert read_top(FakeAdapter(), "EURUSD").source == "waiting"  # type: ignore[arg-type]


def test_off_a_terminal_the_blotter_prints_one_line_per_event():
    out = io.StringIO()
    blotter = Blotter(FakeAdapter(), ["EURUSD"], Console(file=out, width=200), duration=6)  # type: ignore[arg-type]
    assert not blotter.live
    blotter.say("logging on")
    for event in filled():
        blotter.state.apply(event)
    blotter.print_final()
    text = out.getvalue()
    assert "== logging on" in text
    assert "1 orders (1 filled), 1 fills, 0 positions open, 3 events, 0 rejects" in text
    assert "NOT READY" not in text  # the header is only drawn live
