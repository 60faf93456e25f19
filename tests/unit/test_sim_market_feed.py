"""Specification of the simulator's depth books and the W/X content it streams (cTrader's depth model)."""

from __future__ import annotations

import itertools
import random
from decimal import Decimal

import pytest

from fixadapter.connectors.fix import tags as t
from fixadapter.connectors.fix.wire import format_decimal
from fixadapter.sim.market_feed import (
    ASK,
    BID,
    DELETE,
    FIRST_ENTRY_ID,
    NEW,
    Book,
    Entry,
    Level,
    MarketFeed,
    group_text,
    incremental_entries,
    snapshot_entries,
    spot_entries,
)
from fixadapter.sim.prices import DEFAULT_SYMBOLS

D = Decimal
EURUSD = 1
USDJPY = 4
EURUSD_TOP = (D("1.08345"), D("1.08355"))


def _feed(levels: int = 5, seed: int = 3, **options: object) -> MarketFeed:
    quotes = [(EURUSD, *EURUSD_TOP)]
    return MarketFeed(DEFAULT_SYMBOLS, levels=levels, seed=seed, quotes=quotes, **options)  # type: ignore[arg-type]


def _entry(fields: dict[int, str]) -> tuple[str, str, str]:
    return fields[t.MD_ENTRY_TYPE], fields[t.MD_ENTRY_PX], fields[t.MD_ENTRY_SIZE]


def _client_book(snapshot: list[list[tuple[int, str]]]) -> dict[str, tuple[str, str, str]]:
    """What a client builds from a depth W: MDEntryID -> (side, price, size)."""
    return {dict(entry)[t.MD_ENTRY_ID]: _entry(dict(entry)) for entry in snapshot}


def _apply_x(book: dict[str, tuple[str, str, str]], entries: list[list[tuple[int, str]]]) -> None:
    for entry in entries:
        fields = dict(entry)
        if fields[t.MD_UPDATE_ACTION] == NEW:
            book[fields[t.MD_ENTRY_ID]] = _entry(fields)
        else:
            del book[fields[t.MD_ENTRY_ID]]


def _as_client(book: Book) -> dict[str, tuple[str, str, str]]:
    return _client_book(snapshot_entries(book))


def test_book_has_levels_per_side_with_the_venue_quote_on_top() -> None:
    book = _feed(levels=5).book(EURUSD)
    bids, asks = book.levels(BID), book.levels(ASK)
    assert [level.price for level in bids] == [D("1.08345") - D("0.00001") * i for i in range(5)]
    assert [level.price for level in asks] == [D("1.08355") + D("0.00001") * i for i in range(5)]
    assert book.top() == EURUSD_TOP
    assert len(book.entries) == 10


def test_sizes_are_positive_multiples_of_100000_units() -> None:
    feed = _feed()
    for symbol_id in feed.symbol_ids():
        for entry in feed.book(symbol_id).entries.values():
            assert entry.size > 0
            assert entry.size % 100000 == 0


def test_prices_keep_the_symbols_digits() -> None:
    book = _feed().book(USDJPY)
    for entry in book.entries.values():
        exponent = entry.price.as_tuple().exponent
        assert exponent == -3


def test_level_spacing_is_configurable_in_points() -> None:
    book = _feed(levels=3, level_points=4).book(EURUSD)
    assert [level.price for level in book.levels(BID)] == [D("1.08345"), D("1.08341"), D("1.08337")]
    assert [level.price for level in book.levels(ASK)] == [D("1.08355"), D("1.08359"), D("1.08363")]


def test_depth_snapshot_has_one_entry_per_book_entry_with_type_price_size_id() -> None:
    book = _feed().book(EURUSD)
    snapshot = snapshot_entries(book)
    assert len(snapshot) == len(book.entries)
    for entry in snapshot:
        assert [tag for tag, _ in entry] == [t.MD_ENTRY_TYPE, t.MD_ENTRY_PX, t.MD_ENTRY_SIZE, t.MD_ENTRY_ID]
    client = _client_book(snapshot)
    assert client == {
        str(i): (e.side, format_decimal(e.price), format_decimal(e.size)) for i, e in book.entries.items()
    }


def test_spot_entries_carry_prices_only() -> None:
    assert spot_entries(D("1.06625"), D("1.06630")) == [
        [(t.MD_ENTRY_TYPE, BID), (t.MD_ENTRY_PX, "1.06625")],
        [(t.MD_ENTRY_TYPE, ASK), (t.MD_ENTRY_PX, "1.0663")],  # trailing zero dropped, as cTrader sends it
    ]


def test_churn_is_a_delete_and_a_new_with_a_fresh_id_at_the_same_price() -> None:
    feed = _feed()
    before = dict(feed.book(EURUSD).entries)
    delete, new = feed.churn(EURUSD)
    assert delete.action == DELETE and new.action == NEW
    assert delete.entry_id in before and delete.entry == before[delete.entry_id]
    assert new.entry_id > max(before)
    assert (new.entry.side, new.entry.price) == (delete.entry.side, delete.entry.price)
    assert new.entry.size != delete.entry.size
    after = feed.book(EURUSD).entries
    assert delete.entry_id not in after and after[new.entry_id] == new.entry
    assert len(after) == len(before)
    assert feed.book(EURUSD).top() == EURUSD_TOP  # churn never moves the top of book


def test_incremental_entries_follow_ctraders_layout() -> None:
    feed = _feed()
    delete, new = feed.churn(EURUSD)
    entries = incremental_entries(EURUSD, [delete, new])
    assert entries[0] == [
        (t.MD_UPDATE_ACTION, DELETE),
        (t.MD_ENTRY_ID, str(delete.entry_id)),
        (t.SYMBOL, "1"),
    ]
    assert [tag for tag, _ in entries[1]] == [
        t.MD_UPDATE_ACTION,
        t.MD_ENTRY_TYPE,
        t.MD_ENTRY_ID,
        t.SYMBOL,
        t.MD_ENTRY_PX,
        t.MD_ENTRY_SIZE,
    ]
    assert dict(entries[1])[t.MD_UPDATE_ACTION] == NEW


def test_recentre_deletes_the_prices_that_leave_and_adds_the_new_ones() -> None:
    feed = _feed(levels=5)
    before = dict(feed.book(EURUSD).entries)
    changes = feed.set_quote(EURUSD, D("1.08347"), D("1.08357"))  # up 2 points
    news = [c for c in changes if c.action == NEW]
    deletes = [c for c in changes if c.action == DELETE]
    assert changes == news + deletes  # News first, as in captured cTrader X messages
    assert {(c.entry.side, c.entry.price) for c in news} == {
        (BID, D("1.08347")),
        (BID, D("1.08346")),
        (ASK, D("1.08360")),
        (ASK, D("1.08361")),
    }
    assert {(c.entry.side, c.entry.price) for c in deletes} == {
        (BID, D("1.08341")),
        (BID, D("1.08342")),
        (ASK, D("1.08355")),
        (ASK, D("1.08356")),
    }
    book = feed.book(EURUSD)
    assert book.top() == (D("1.08347"), D("1.08357"))
    assert len(book.levels(BID)) == len(book.levels(ASK)) == 5
    kept = {i: e for i, e in before.items() if i not in {c.entry_id for c in deletes}}
    assert all(book.entries[i] == e for i, e in kept.items())  # untouched entries keep id and size


def test_recentre_to_the_same_quote_changes_nothing() -> None:
    feed = _feed()
    assert feed.set_quote(EURUSD, *EURUSD_TOP) == []


def test_recentre_quantizes_and_refuses_a_crossed_quote() -> None:
    feed = _feed()
    feed.set_quote(EURUSD, D("1.083471"), D("1.083569"))
    assert feed.quote(EURUSD) == (D("1.08347"), D("1.08357"))
    with pytest.raises(ValueError, match="bid < ask"):
        feed.set_quote(EURUSD, D("1.2"), D("1.1"))


def test_a_large_move_replaces_the_whole_book() -> None:
    feed = _feed(levels=5)
    old_ids = set(feed.book(EURUSD).entries)
    changes = feed.set_quote(EURUSD, D("1.09000"), D("1.09010"))
    assert len(changes) == 20
    assert old_ids.isdisjoint(feed.book(EURUSD).entries)


def test_entry_ids_are_unique_and_increasing_across_books_and_feeds() -> None:
    first, second = _feed(), _feed()
    seen: list[int] = []
    for feed in (first, second):
        for symbol_id in feed.symbol_ids():
            seen += list(feed.book(symbol_id).entries)
    for _ in range(50):
        seen += [c.entry_id for c in first.churn(EURUSD) if c.action == NEW]
        seen += [c.entry_id for c in second.churn(USDJPY) if c.action == NEW]
    assert len(set(seen)) == len(seen)
    assert seen == sorted(seen)
    assert min(seen) >= FIRST_ENTRY_ID


def test_same_seed_same_sizes() -> None:
    def run() -> list[Decimal]:
        feed = _feed(seed=11, ids=itertools.count(FIRST_ENTRY_ID))
        feed.set_quote(EURUSD, D("1.08350"), D("1.08360"))
        return [c.entry.size for _ in range(20) for c in feed.churn(EURUSD)]

    assert run() == run()


def test_levels_aggregate_entries_at_one_price_best_first() -> None:
    book = Book(DEFAULT_SYMBOLS[0], *EURUSD_TOP)
    book.entries = {
        1: Entry(BID, D("1.08344"), D("100000")),
        2: Entry(BID, D("1.08345"), D("200000")),
        3: Entry(BID, D("1.08345"), D("300000")),
        4: Entry(ASK, D("1.08356"), D("400000")),
        5: Entry(ASK, D("1.08355"), D("500000")),
        6: Entry(ASK, D("1.08356"), D("600000")),
    }
    assert book.levels(BID) == [Level(D("1.08345"), D("500000")), Level(D("1.08344"), D("100000"))]
    assert book.levels(ASK) == [Level(D("1.08355"), D("500000")), Level(D("1.08356"), D("1000000"))]
    assert book.top() == (D("1.08345"), D("1.08355"))


def test_a_client_applying_w_then_x_ends_with_the_feeds_book() -> None:
    feed = _feed(levels=4)
    client = _as_client(feed.book(EURUSD))
    rng = random.Random(5)
    bid = EURUSD_TOP[0]
    for _ in range(500):
        if rng.random() < 0.2:
            bid += D("0.00001") * rng.randint(-6, 6)
            changes = feed.set_quote(EURUSD, bid, bid + D("0.00010"))
        else:
            changes = feed.churn(EURUSD)
        _apply_x(client, incremental_entries(EURUSD, changes))
    assert client == _as_client(feed.book(EURUSD))


def test_group_text_is_fix_text_with_the_count_first() -> None:
    text = group_text(
        t.NO_MD_ENTRIES, [[(279, "2"), (278, "7"), (55, "1")], [(279, "2"), (278, "8"), (55, "1")]]
    )
    assert text == "268=2\x01279=2\x01278=7\x0155=1\x01279=2\x01278=8\x0155=1\x01"


def test_invalid_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="levels"):
        MarketFeed(DEFAULT_SYMBOLS, levels=0)
    with pytest.raises(ValueError, match="level_points"):
        MarketFeed(DEFAULT_SYMBOLS, level_points=0)
