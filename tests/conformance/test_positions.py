"""Conformance: fills move positions (hedged account: each fill names its position), and the positions the
adapter keeps agree with the venue's, whatever the connector."""

from __future__ import annotations

from decimal import Decimal

from fixadapter.model.enums import OrderEventKind, OrderStatus, PositionSide
from fixadapter.model.orders import Position

from .conftest import Harness, Trading
from .orders import market

K = OrderEventKind


def _terms(positions: list[Position]) -> dict[str, tuple[int, PositionSide, Decimal, Decimal | None]]:
    return {p.position_id: (p.symbol_id, p.side, p.quantity, p.entry_price) for p in positions}


def test_a_fill_opens_a_position_on_its_side_at_its_price_and_the_venue_agrees(harness: Harness) -> None:
    """A filled buy opens a long position of its quantity at its fill price: published after the fill, kept
    by the adapter, and the same as the venue reports it."""

    async def scenario(t: Trading) -> None:
        order = await t.adapter.submit(market(quantity=10000))
        filled = (await t.journal.reached(order.cl_ord_id))[-1]
        assert filled.fill is not None and filled.order.position_id is not None
        position_id = filled.order.position_id
        await t.journal.position(position_id, lambda p: p is not None and p.quantity == 10000, "opened")
        kept = {p.position_id: p for p in await t.adapter.positions()}[position_id]
        assert (kept.symbol_id, kept.side, kept.quantity) == (
            filled.order.symbol_id,
            PositionSide.LONG,
            Decimal(10000),
        )
        assert kept.entry_price == filled.fill.price
        venue = await t.adapter.positions(refresh=True)
        assert _terms(venue)[position_id] == _terms([kept])[position_id]
        assert _terms(await t.adapter.positions()) == _terms(venue)

    harness.run(scenario)


def test_an_opposite_fill_naming_the_position_reduces_it_then_closes_it(harness: Harness) -> None:
    """Sells naming a long position reduce it by their quantity (same entry price), and the one that takes
    the rest closes it: it is no longer among the positions, at the adapter or at the venue."""

    async def scenario(t: Trading) -> None:
        opened = (await t.journal.reached((await t.adapter.submit(market(quantity=10000))).cl_ord_id))[-1]
        position_id = opened.order.position_id
        assert position_id is not None
        await t.journal.position(position_id, lambda p: p is not None and p.quantity == 10000, "opened")

        reduce = await t.adapter.submit(market(side="sell", quantity=4000, position_id=position_id))
        reducing = (await t.journal.reached(reduce.cl_ord_id))[-1].order
        assert reducing.status is OrderStatus.FILLED and reducing.position_id == position_id
        await t.journal.position(
            position_id, lambda p: p is not None and p.quantity == 6000, "reduced to 6000"
        )
        reduced = {p.position_id: p for p in await t.adapter.positions()}[position_id]
        assert reduced.side is PositionSide.LONG and reduced.entry_price == opened.order.avg_px

        close = await t.adapter.submit(market(side="sell", quantity=6000, position_id=position_id))
        assert (await t.journal.reached(close.cl_ord_id))[-1].order.status is OrderStatus.FILLED
        await t.journal.position(position_id, lambda p: p is None, "closed")
        assert position_id not in {p.position_id for p in await t.adapter.positions()}
        assert position_id not in {p.position_id for p in await t.adapter.positions(refresh=True)}

    harness.run(scenario)


def test_an_opposite_fill_naming_no_position_opens_a_hedge_beside_the_first(harness: Harness) -> None:
    """On a hedged account a sell that names no position does not reduce the long one: it opens a short
    position of its own, and both are open."""

    async def scenario(t: Trading) -> None:
        long = (await t.journal.reached((await t.adapter.submit(market(quantity=10000))).cl_ord_id))[-1].order
        short = (
            await t.journal.reached((await t.adapter.submit(market(side="sell", quantity=3000))).cl_ord_id)
        )[-1].order
        assert long.position_id is not None and short.position_id is not None
        assert short.position_id != long.position_id
        await t.journal.position(short.position_id, lambda p: p is not None and p.quantity == 3000, "opened")
        positions = {p.position_id: p for p in await t.adapter.positions(refresh=True)}
        assert (positions[long.position_id].side, positions[long.position_id].quantity) == (
            PositionSide.LONG,
            Decimal(10000),
        )
        assert (positions[short.position_id].side, positions[short.position_id].quantity) == (
            PositionSide.SHORT,
            Decimal(3000),
        )

    harness.run(scenario)


def test_closing_more_than_a_position_holds_is_rejected_with_the_venues_reason_and_it_stays_open(
    harness: Harness,
) -> None:
    """A sell naming a long position of 5000 for 8000 is rejected by the venue with its reason
    (TRADING_BAD_VOLUME); the position stays as it was."""

    async def scenario(t: Trading) -> None:
        opened = (await t.journal.reached((await t.adapter.submit(market(quantity=5000))).cl_ord_id))[
            -1
        ].order
        position_id = opened.position_id
        assert position_id is not None
        too_much = await t.adapter.submit(market(side="sell", quantity=8000, position_id=position_id))
        events = await t.journal.reached(too_much.cl_ord_id)
        assert [e.kind for e in events] == [K.SUBMITTED, K.REJECTED]
        assert events[-1].reason is not None and events[-1].reason.startswith("TRADING_BAD_VOLUME")
        positions = {p.position_id: p for p in await t.adapter.positions(refresh=True)}
        assert (positions[position_id].side, positions[position_id].quantity) == (
            PositionSide.LONG,
            Decimal(5000),
        )

    harness.run(scenario)
