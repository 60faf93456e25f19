"""A hedged position kept from its fills; the venue's list is the authority, later fills go on top."""

from __future__ import annotations

from decimal import Decimal

from fixadapter.engine.positions import PositionBook, PositionFill, apply_fill
from fixadapter.model.enums import PositionSide, Side
from fixadapter.model.orders import Position

D = Decimal


def fill(side: Side, quantity: str, price: str, position_id: str = "721") -> PositionFill:
    return PositionFill(position_id, 1, side, D(quantity), D(price), digits=5)


def test_a_first_fill_opens_the_position_on_its_side_at_its_price():
    opened = apply_fill(None, fill(Side.SELL, "10000", "1.08500"))
    assert opened is not None
    assert (opened.position_id, opened.side, opened.quantity, opened.entry_price) == (
        "721",
        PositionSide.SHORT,
        D("10000"),
        D("1.08500"),
    )


def test_a_fill_on_the_same_side_adds_at_the_quantity_weighted_entry_rounded_half_even_past_the_digits():
    opened = apply_fill(None, fill(Side.BUY, "10000", "1.08500"))
    added = apply_fill(opened, fill(Side.BUY, "20000", "1.08601"))
    assert added is not None and added.quantity == D("30000")
    # (1.085 * 10000 + 1.08601 * 20000) / 30000 = 1.0856733.. -> six decimals for a five-digit symbol
    assert added.entry_price == D("1.085673")


def test_an_opposite_fill_reduces_keeping_the_entry_closes_at_zero_and_turns_round_past_it():
    opened = apply_fill(None, fill(Side.BUY, "10000", "1.08500"))
    reduced = apply_fill(opened, fill(Side.SELL, "4000", "1.09000"))
    assert reduced is not None and (reduced.side, reduced.quantity, reduced.entry_price) == (
        PositionSide.LONG,
        D("6000"),
        D("1.08500"),
    )
    assert apply_fill(reduced, fill(Side.SELL, "6000", "1.09000")) is None
    turned = apply_fill(reduced, fill(Side.SELL, "9000", "1.09100"))
    assert turned is not None and (turned.side, turned.quantity, turned.entry_price) == (
        PositionSide.SHORT,
        D("3000"),
        D("1.09100"),
    )


def test_the_venues_answer_replaces_the_book_and_fills_after_the_answer_are_applied_again_on_top():
    book = PositionBook()
    book.apply(fill(Side.BUY, "10000", "1.08500", "1"))
    book.venue_answered()  # the venue's list counts the fill above ...
    book.apply(fill(Side.BUY, "5000", "1.08500", "2"))  # ... and not this one, which came after it
    venue = [Position(position_id="1", symbol_id=1, side=PositionSide.LONG, quantity=D("10000"))]
    current = book.replace(venue)
    assert [(p.position_id, p.quantity) for p in current] == [("1", D("10000")), ("2", D("5000"))]
    # Replayed once: the next answer from the venue stands as it is.
    assert [p.position_id for p in book.replace(venue)] == ["1"]


def test_a_position_the_venue_no_longer_lists_is_dropped_from_the_book():
    book = PositionBook()
    book.apply(fill(Side.SELL, "10000", "1.08500", "9"))
    book.venue_answered()
    assert book.replace([]) == [] and book.all() == []
