"""The depth book as cTrader drives it: W replaces, X New inserts and Delete removes by MDEntryID."""

from __future__ import annotations

from decimal import Decimal

from fixadapter.market.book import OrderBook
from fixadapter.market.dom import imbalance, microprice, mid_and_spread, pip_size
from fixadapter.model.market import BookEntry, BookSide, PriceLevel

D = Decimal
BID, ASK = BookSide.BID, BookSide.ASK


def snapshot() -> list[BookEntry]:
    """The RoE's depth W: six entries, unsorted."""
    return [
        BookEntry("16", ASK, D("1.11132"), D(3000000)),
        BookEntry("17", ASK, D("1.11134"), D(5000000)),
        BookEntry("15", ASK, D("1.11133"), D(3000000)),
        BookEntry("12", BID, D("1.1112"), D(2000000)),
        BookEntry("13", BID, D("1.11121"), D(1000000)),
        BookEntry("14", BID, D("1.11122"), D(3000000)),
    ]


def test_a_snapshot_becomes_levels_best_first() -> None:
    book = OrderBook()
    book.replace(snapshot())
    assert book.levels(BID) == (
        PriceLevel(D("1.11122"), D(3000000)),
        PriceLevel(D("1.11121"), D(1000000)),
        PriceLevel(D("1.1112"), D(2000000)),
    )
    assert [level.price for level in book.levels(ASK)] == [D("1.11132"), D("1.11133"), D("1.11134")]
    assert book.levels(ASK, limit=1) == (PriceLevel(D("1.11132"), D(3000000)),)


def test_a_later_snapshot_replaces_the_book() -> None:
    book = OrderBook()
    book.replace(snapshot())
    book.replace([BookEntry("99", BID, D("1.2"), D(100000))])
    assert len(book) == 1
    assert book.levels(ASK) == ()


def test_entries_at_one_price_aggregate_and_a_level_goes_when_its_last_entry_goes() -> None:
    book = OrderBook()
    book.add("1", BID, D("1.1"), D(100000))
    book.add("2", BID, D("1.1"), D(200000))
    assert book.levels(BID) == (PriceLevel(D("1.1"), D(300000)),)
    assert book.remove("1")
    assert book.levels(BID) == (PriceLevel(D("1.1"), D(200000)),)
    assert book.remove("2")
    assert book.levels(BID) == ()


def test_a_size_change_is_delete_plus_new_with_a_fresh_id() -> None:
    book = OrderBook()
    book.replace(snapshot())
    book.remove("14")
    book.add("7491", BID, D("1.11122"), D(1000000))
    assert book.levels(BID)[0] == PriceLevel(D("1.11122"), D(1000000))


def test_deleting_an_unknown_id_changes_nothing_and_says_so() -> None:
    book = OrderBook()
    book.replace(snapshot())
    assert book.remove("nope") is False
    assert len(book) == 6


def test_a_new_with_an_id_already_held_replaces_it_instead_of_doubling() -> None:
    book = OrderBook()
    book.add("1", BID, D("1.1"), D(100000))
    assert book.add("1", BID, D("1.2"), D(100000)) is False
    assert book.levels(BID) == (PriceLevel(D("1.2"), D(100000)),)


def test_spot_entries_without_ids_do_not_enter_a_depth_book() -> None:
    book = OrderBook()
    book.replace([BookEntry(None, BID, D("1.1"), None)])
    assert len(book) == 0


def test_pips_follow_the_digits() -> None:
    assert pip_size(5) == D("0.0001")
    assert pip_size(3) == D("0.01")
    assert pip_size(2) == D("0.01")


def test_mid_and_spread_in_pips() -> None:
    assert mid_and_spread(D("1.08345"), D("1.08355"), 5) == (D("1.08350"), D("1.0"))
    assert mid_and_spread(None, D("1.1"), 5) == (None, None)


def test_imbalance_over_n_levels() -> None:
    bids = (PriceLevel(D("1.1"), D(300)), PriceLevel(D("1.0"), D(100)))
    asks = (PriceLevel(D("1.2"), D(100)),)
    assert imbalance(bids, asks, 1) == 0.5
    assert imbalance(bids, asks, 2) == 0.6
    assert imbalance((), (), 5) is None


def test_microprice_leans_toward_the_thin_side() -> None:
    bids = (PriceLevel(D("1.0"), D(300)),)
    asks = (PriceLevel(D("2.0"), D(100)),)
    # Heavy bids, thin asks: the next trade is likely up, so the microprice sits nearer the ask.
    assert microprice(bids, asks) == D("1.75")
    assert microprice(bids, ()) is None
