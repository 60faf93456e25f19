"""The demo's terminal blotter: orders, fills, positions, top of book, session state and event counts.

`BlotterState` is fed the strategy's queue events (the very ones the strategy reads) and holds what the
tables show; it needs neither a terminal nor an adapter. `Blotter` reads those events from a
StrategyClient of its own and, on a terminal, redraws with rich's Live a few times a second; anywhere
else (a pipe, CI) it prints one line per event instead, and the tables once at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from fixadapter.errors import FixAdapterError
from fixadapter.model.enums import OrderType, PositionSide
from fixadapter.model.orders import Position
from fixadapter.queue.schema import CommandRejected, OrderUpdate, PositionsUpdate

if TYPE_CHECKING:
    from fixadapter.api import Adapter
    from fixadapter.client import StrategyClient

Event = OrderUpdate | CommandRejected | PositionsUpdate
SHORT_ID = 8
REFRESH_SECONDS = 0.25
REFUSED = "refused"  # the status shown for a submit the daemon refused before it reached the venue


def short(cl_ord_id: str | None) -> str:
    return (cl_ord_id or "-")[:SHORT_ID]


def amount(value: Decimal | None) -> str:
    """10000 -> '10,000'; 0.5 stays 0.5."""
    if value is None:
        return "-"
    if value == value.to_integral_value():
        return f"{value:,.0f}"
    return f"{value.normalize():,f}"


def price(value: Decimal | None) -> str:
    return "-" if value is None else format(value, "f")


@dataclass
class OrderRow:
    """One line of the orders table: the order's latest state, or a refused submit."""

    cl_ord_id: str
    strategy: str
    symbol: str = "-"
    side: str = "-"
    order_type: str = "-"
    quantity: Decimal | None = None
    price: Decimal | None = None
    status: str = "-"
    filled: Decimal = Decimal(0)
    avg_px: Decimal | None = None
    reason: str = ""
    rule: str | None = None


@dataclass(frozen=True)
class FillRow:
    time: datetime
    cl_ord_id: str
    symbol: str
    side: str
    quantity: Decimal
    price: Decimal


@dataclass(frozen=True)
class TopOfBook:
    """One symbol's best prices as the adapter has them now (`source`: depth, spot or waiting)."""

    symbol: str
    source: str = "waiting"
    bid: Decimal | None = None
    ask: Decimal | None = None
    bid_size: Decimal | None = None
    ask_size: Decimal | None = None
    spread_pips: Decimal | None = None
    stale: bool = False


@dataclass(frozen=True)
class Session:
    """What the header shows: readiness in words, the clock, and where the HTTP API listens."""

    ready: bool
    reason: str
    elapsed: float = 0.0
    duration: float | None = None
    http: str | None = None


class BlotterState:
    """What the blotter knows, built from queue events only (no terminal, no adapter needed)."""

    def __init__(
        self,
        strategy: str | None = None,
        symbols: dict[int, str] | None = None,
        fills_kept: int = 200,
        recent_kept: int = 8,
    ) -> None:
        self.strategy = strategy  # whose stream is read: a refused submit is theirs
        self.orders: dict[str, OrderRow] = {}  # by ClOrdID, in the order first seen
        self.fills: deque[FillRow] = deque(maxlen=fills_kept)
        self.fill_count = 0
        self.positions: list[Position] = []
        self.positions_seen = False
        self.refusals: list[CommandRejected] = []
        self.symbols: dict[int, str] = dict(symbols or {})  # symbol id -> name (positions carry only ids)
        self.events = 0
        self.order_events = 0
        self.recent: deque[str] = deque(maxlen=recent_kept)  # event lines and strategy notes, newest last

    # -- feeding ------------------------------------------------------------------------------------

    def apply(self, event: Event) -> str:
        """Take one event; returns its one-line description."""
        self.events += 1
        if isinstance(event, OrderUpdate):
            self._order(event)
        elif isinstance(event, CommandRejected):
            self._refused(event)
        else:
            self.positions = list(event.positions)
            self.positions_seen = True
        line = self.describe(event)
        self.recent.append(line)
        return line

    def note(self, text: str) -> None:
        self.recent.append(f"== {text}")

    def _order(self, update: OrderUpdate) -> None:
        self.order_events += 1
        order = update.order
        self.symbols[order.symbol_id] = order.symbol
        row = self.orders.get(order.cl_ord_id) or OrderRow(order.cl_ord_id, order.strategy or "-")
        row.strategy = order.strategy or row.strategy
        row.symbol = order.symbol
        row.side = order.side.value
        row.order_type = order.order_type.value
        row.quantity = order.quantity
        row.price = order.stop_price if order.order_type is OrderType.STOP else order.price
        row.status = order.status.value
        row.filled = order.cum_qty
        row.avg_px = order.avg_px
        reason = update.reason or order.reason
        if reason:
            row.reason = reason
        self.orders[order.cl_ord_id] = row
        if update.fill is not None:
            self.fill_count += 1
            fill = update.fill
            self.fills.append(
                FillRow(fill.time, order.cl_ord_id, order.symbol, fill.side.value, fill.quantity, fill.price)
            )

    def _refused(self, event: CommandRejected) -> None:
        self.refusals.append(event)
        why = f"{event.rule}: {event.reason}" if event.rule else event.reason
        if not event.cl_ord_id:
            return
        row = self.orders.get(event.cl_ord_id)
        if event.command_type == "submit" and row is None:
            quantity = event.values.get("quantity")
            self.orders[event.cl_ord_id] = OrderRow(
                event.cl_ord_id,
                self.strategy or "-",
                symbol=event.values.get("symbol", "-"),
                quantity=Decimal(quantity) if quantity else None,
                status=REFUSED,
                reason=why,
                rule=event.rule,
            )
        elif row is not None:
            row.reason = f"{event.command_type or 'command'} refused: {why}"
            row.rule = event.rule or row.rule

    # -- reading ------------------------------------------------------------------------------------

    @property
    def rejects(self) -> int:
        """Commands refused by the daemon (risk limits, unknown orders) and orders the venue rejected."""
        return len(self.refusals) + self.statuses().get("rejected", 0)

    def statuses(self) -> Counter[str]:
        return Counter(row.status for row in self.orders.values())

    def rules(self) -> list[str]:
        """The risk rules that refused something, first seen first."""
        return list(dict.fromkeys(r.rule for r in self.refusals if r.rule))

    def symbol(self, symbol_id: int) -> str:
        return self.symbols.get(symbol_id, str(symbol_id))

    def describe(self, event: Event) -> str:
        if isinstance(event, OrderUpdate):
            order = event.order
            parts = [
                f"order {event.event.value:<17}",
                short(order.cl_ord_id),
                order.strategy or "-",
                f"{order.side.value} {amount(order.quantity)} {order.symbol} {order.order_type.value}",
            ]
            if order.price is not None:
                parts.append(f"@ {price(order.price)}")
            parts.append(f"status={order.status.value} filled={amount(order.cum_qty)}")
            if event.fill is not None:
                parts.append(f"fill {amount(event.fill.quantity)} @ {price(event.fill.price)}")
            if order.position_id:
                parts.append(f"position={order.position_id}")
            if event.reason:
                parts.append(f"reason: {event.reason}")
            return "  ".join(parts)
        if isinstance(event, CommandRejected):
            rule = f"rule={event.rule}  " if event.rule else ""
            return (
                f"command_rejected {event.command_type or '?'} {short(event.cl_ord_id)}  {rule}{event.reason}"
            )
        held = ", ".join(self._position_text(p) for p in event.positions) or "none"
        return f"positions  {len(event.positions)} open: {held}"

    def _position_text(self, position: Position) -> str:
        return (
            f"{self.symbol(position.symbol_id)} {position.side.value} {amount(position.quantity)}"
            f" @ {price(position.entry_price)}"
        )

    def summary(self) -> str:
        counts = self.statuses()
        shown = ", ".join(f"{n} {status}" for status, n in sorted(counts.items(), key=lambda kv: -kv[1]))
        rules = self.rules()
        risk = f"; risk refused: {', '.join(rules)}" if rules else ""
        unknown = counts.get("unknown", 0)
        ask = f"; {unknown} unknown at the venue: check with the broker" if unknown else ""
        return (
            f"{len(self.orders)} orders ({shown or 'none'}), {self.fill_count} fills, "
            f"{len(self.positions)} positions open, {self.events} events, {self.rejects} rejects{risk}{ask}"
        )


# -- rendering (pure: state and snapshots in, rich renderables out) ---------------------------------


def _table(title: str) -> Table:
    return Table(title=title, title_justify="left", title_style="bold", header_style="bold", expand=False)


_STATUS_STYLE = {
    "filled": "green",
    "partially_filled": "green",
    "new": "cyan",
    "cancelled": "dim",
    "expired": "dim",
    "rejected": "red",
    "unknown": "bold yellow",  # the venue has not answered for too long: a person must look
    REFUSED: "red",
}


def orders_table(state: BlotterState, limit: int | None = None) -> Table:
    rows = list(state.orders.values())
    hidden = 0
    if limit is not None and len(rows) > limit:
        hidden = len(rows) - limit
        rows = rows[-limit:]
    title = f"orders ({len(state.orders)}" + (f", oldest {hidden} not shown)" if hidden else ")")
    table = _table(title)
    for name in ("ClOrdID", "strategy", "symbol", "side", "type"):
        table.add_column(name, no_wrap=True)
    for name in ("qty", "price"):
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("status", no_wrap=True)
    for name in ("filled", "avg px"):
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("reason", overflow="fold")
    for row in rows:
        table.add_row(
            short(row.cl_ord_id),
            row.strategy,
            row.symbol,
            row.side,
            row.order_type,
            amount(row.quantity),
            price(row.price),
            Text(row.status, style=_STATUS_STYLE.get(row.status, "")),
            amount(row.filled),
            price(row.avg_px),
            row.reason,
        )
    return table


def fills_table(state: BlotterState, limit: int | None = None) -> Table:
    fills = list(state.fills)[-limit:] if limit else list(state.fills)
    table = _table(f"recent fills ({state.fill_count})")
    table.add_column("time", no_wrap=True)
    table.add_column("ClOrdID", no_wrap=True)
    table.add_column("symbol")
    table.add_column("side")
    table.add_column("qty", justify="right")
    table.add_column("price", justify="right")
    for fill in reversed(fills):  # newest first
        table.add_row(
            fill.time.strftime("%H:%M:%S.%f")[:-3],
            short(fill.cl_ord_id),
            fill.symbol,
            fill.side,
            amount(fill.quantity),
            price(fill.price),
        )
    return table


def positions_table(state: BlotterState) -> Table:
    title = "positions" if state.positions_seen else "positions (none reported yet)"
    table = _table(title)
    table.add_column("position", no_wrap=True)
    table.add_column("symbol")
    table.add_column("side")
    table.add_column("qty", justify="right")
    table.add_column("entry", justify="right")
    for position in state.positions:
        table.add_row(
            position.position_id,
            state.symbol(position.symbol_id),
            Text(position.side.value, style="green" if position.side is PositionSide.LONG else "red"),
            amount(position.quantity),
            price(position.entry_price),
        )
    return table


def book_table(tops: Sequence[TopOfBook]) -> Table:
    table = _table("top of book")
    table.add_column("symbol")
    table.add_column("feed")
    table.add_column("bid size", justify="right")
    table.add_column("bid", justify="right")
    table.add_column("ask", justify="right")
    table.add_column("ask size", justify="right")
    table.add_column("spread (pips)", justify="right")
    for top in tops:
        feed = top.source + (" (stale)" if top.stale else "")
        table.add_row(
            top.symbol,
            feed,
            amount(top.bid_size) if top.bid_size is not None else "",
            price(top.bid),
            price(top.ask),
            amount(top.ask_size) if top.ask_size is not None else "",
            price(top.spread_pips),
        )
    return table


def header(state: BlotterState, session: Session) -> Text:
    text = Text()
    text.append("fixadapter demo  ", style="bold")
    text.append(
        "READY" if session.ready else "NOT READY", style="bold green" if session.ready else "bold red"
    )
    text.append(f" ({session.reason})  ")
    clock = f"{session.elapsed:.1f}s" + (f" of ~{session.duration:g}s" if session.duration else "")
    text.append(clock)
    text.append(
        f"\nevents {state.events}  order updates {state.order_events}  fills {state.fill_count}  "
        f"rejects {state.rejects}"
    )
    if session.http:
        text.append(f"  HTTP {session.http} (/metrics /orders /readyz)")
    text.append("  Ctrl-C stops", style="dim")
    return text


def _side_by_side(*parts: RenderableType) -> Table:
    grid = Table.grid(padding=(0, 3))
    for _ in parts:
        grid.add_column()
    grid.add_row(*parts)
    return grid


def live_view(state: BlotterState, tops: Sequence[TopOfBook], session: Session) -> Group:
    """The redrawn screen: header, market and positions, the latest orders, fills and activity."""
    recent = Text("\n".join(state.recent) or "(nothing yet)", overflow="ellipsis", no_wrap=True)
    return Group(
        header(state, session),
        _side_by_side(book_table(tops), positions_table(state)),
        orders_table(state, limit=12),
        _side_by_side(fills_table(state, limit=6), Group(Text("activity", style="bold"), recent)),
    )


def final_view(state: BlotterState, tops: Sequence[TopOfBook]) -> Group:
    """What is printed once at the end: every order, the latest fills, positions and the book."""
    return Group(
        orders_table(state),
        fills_table(state, limit=20),
        _side_by_side(positions_table(state), book_table(tops)),
    )


def read_top(adapter: Adapter, symbol: str) -> TopOfBook:
    """The symbol's depth book top if subscribed, else its spot quote (waiting until either arrives)."""
    try:
        book = adapter.book(symbol)
        quote = None if book is not None else adapter.quote(symbol)
    except FixAdapterError:  # no instrument list yet, or no market data at all
        return TopOfBook(symbol)
    if book is not None:
        bid, ask = book.best_bid, book.best_ask
        return TopOfBook(
            symbol,
            "depth",
            bid.price if bid else None,
            ask.price if ask else None,
            bid.size if bid else None,
            ask.size if ask else None,
            book.spread_pips,
            book.stale,
        )
    if quote is not None:
        return TopOfBook(
            symbol, "spot", quote.bid, quote.ask, spread_pips=quote.spread_pips, stale=quote.stale
        )
    return TopOfBook(symbol)


class Blotter:
    """Feeds a BlotterState from a StrategyClient and shows it: live on a terminal, line by line elsewhere."""

    def __init__(
        self,
        adapter: Adapter,
        symbols: Iterable[str],
        console: Console,
        duration: float | None = None,
        http: str | None = None,
    ) -> None:
        self.adapter = adapter
        self.symbols = list(symbols)
        self.console = console
        self.live = console.is_terminal
        self.duration = duration
        self.http = http
        self.state = BlotterState()
        self._started = time.monotonic()

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self._started

    def say(self, text: str) -> None:
        """A line from the demo or the strategy: in the activity pane, or printed when not live."""
        self.state.note(text)
        if not self.live:
            self._line(f"== {text}")

    def _line(self, text: str) -> None:
        self.console.out(f"{self.elapsed:6.1f}s  {text}", highlight=False)

    async def feed(self, client: StrategyClient) -> None:
        """Apply every event of the client's strategy (from the start of the stream) until cancelled."""
        self.state.strategy = client.strategy
        async for event in client.events(from_start=True):
            line = self.state.apply(event)
            if not self.live:
                self._line(line)

    def tops(self) -> list[TopOfBook]:
        return [read_top(self.adapter, symbol) for symbol in self.symbols]

    def session(self) -> Session:
        return Session(
            ready=self.adapter.ready,
            reason=self.adapter.readiness(),
            elapsed=self.elapsed,
            duration=self.duration,
            http=self.http,
        )

    def view(self) -> Group:
        return live_view(self.state, self.tops(), self.session())

    async def show(self, done: asyncio.Event) -> None:
        """Redraw a few times a second until `done` (on a terminal; elsewhere just wait)."""
        if not self.live:
            await done.wait()
            return
        with Live(self.view(), console=self.console, auto_refresh=False, transient=True) as live:
            while not done.is_set():
                live.update(self.view(), refresh=True)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(done.wait(), REFRESH_SECONDS)

    def print_final(self) -> None:
        self.console.print(final_view(self.state, self.tops()))
        self.console.print(self.state.summary(), highlight=False, soft_wrap=True)
