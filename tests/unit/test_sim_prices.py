"""Specification of the simulator's price source: symbol catalogue and seeded random walk."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest

from fixadapter.sim.prices import DEFAULT_SYMBOLS, Quote, RandomWalk, SymbolSpec

EURUSD = 1
USDJPY = 4
XAUUSD = 10026


def _places(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)
    return -exponent


def _walk(seed: int | None = 7, step_points: int = 3) -> RandomWalk:
    return RandomWalk(DEFAULT_SYMBOLS, seed=seed, step_points=step_points)


def test_default_symbols_ids_unique_and_not_contiguous() -> None:
    ids = [spec.symbol_id for spec in DEFAULT_SYMBOLS]
    assert len(set(ids)) == len(ids)
    assert {1, 2, 3, 4, 5, 10026, 10001} <= set(ids)
    assert max(ids) - min(ids) + 1 > len(ids)


def test_default_symbols_digits_match_instrument_conventions() -> None:
    digits = {spec.name: spec.digits for spec in DEFAULT_SYMBOLS}
    assert digits["EURUSD"] == 5
    assert digits["USDJPY"] == 3
    assert digits["XAUUSD"] == 2


def test_symbol_spec_mid_inside_spread_raises() -> None:
    with pytest.raises(ValueError, match="above the spread"):
        SymbolSpec(99, "TINY", 5, Decimal("0.00004"), spread_points=10)


def test_walk_initial_quote_centred_on_mid_with_spread() -> None:
    quote = _walk().quote(EURUSD)
    assert quote == Quote(EURUSD, Decimal("1.08345"), Decimal("1.08355"))


def test_walk_quotes_quantized_to_symbol_digits() -> None:
    walk = _walk()
    for spec in DEFAULT_SYMBOLS:
        quote = walk.step(spec.symbol_id)
        assert _places(quote.bid) == spec.digits
        assert _places(quote.ask) == spec.digits


def test_walk_same_seed_same_path() -> None:
    first, second = _walk(seed=42), _walk(seed=42)
    assert [first.step(EURUSD) for _ in range(50)] == [second.step(EURUSD) for _ in range(50)]


def test_walk_step_moves_within_step_points_and_keeps_spread() -> None:
    walk = _walk(step_points=3)
    point = Decimal("0.00001")
    previous = walk.quote(EURUSD)
    moves = set()
    for _ in range(300):
        quote = walk.step(EURUSD)
        move = (quote.bid - previous.bid) / point
        assert -3 <= move <= 3
        assert quote.ask - quote.bid == Decimal("0.00010")
        moves.add(move)
        previous = quote
    assert len(moves) > 1


def test_walk_step_near_zero_never_reaches_zero() -> None:
    walk = _walk(step_points=50)
    walk.set_quote(EURUSD, Decimal("0.00002"), Decimal("0.00012"))
    for _ in range(200):
        quote = walk.step(EURUSD)
        assert quote.bid > 0
        assert quote.ask > quote.bid


def test_walk_step_only_moves_the_given_symbol() -> None:
    walk = _walk()
    before = walk.quote(USDJPY)
    for _ in range(20):
        walk.step(EURUSD)
    assert walk.quote(USDJPY) == before


def test_set_quote_quantizes_to_digits() -> None:
    quote = _walk().set_quote(XAUUSD, Decimal("2300.004"), Decimal("2300.456"))
    assert quote == Quote(XAUUSD, Decimal("2300.00"), Decimal("2300.46"))


def test_set_quote_bid_not_below_ask_raises() -> None:
    walk = _walk()
    with pytest.raises(ValueError, match="bid < ask"):
        walk.set_quote(EURUSD, Decimal("1.10000"), Decimal("1.10000"))
    with pytest.raises(ValueError, match="bid < ask"):
        walk.set_quote(EURUSD, Decimal("1.100004"), Decimal("1.100001"))


def test_set_quote_non_positive_bid_raises() -> None:
    with pytest.raises(ValueError, match="0 < bid"):
        _walk().set_quote(EURUSD, Decimal("0"), Decimal("0.00010"))


def test_walk_unknown_symbol_raises_key_error() -> None:
    walk = _walk()
    with pytest.raises(KeyError):
        walk.quote(777)
    with pytest.raises(KeyError):
        walk.step(777)
    with pytest.raises(KeyError):
        walk.set_quote(777, Decimal(1), Decimal(2))
    assert walk.spec(777) is None


def test_walk_duplicate_symbol_ids_raise() -> None:
    with pytest.raises(ValueError, match="unique"):
        RandomWalk([DEFAULT_SYMBOLS[0], DEFAULT_SYMBOLS[0]])


def test_walk_concurrent_steps_keep_quotes_consistent() -> None:
    walk = _walk(seed=None)
    spread = walk.quote(EURUSD).ask - walk.quote(EURUSD).bid
    seen: list[Quote] = []
    lock = threading.Lock()

    def stepper() -> None:
        for _ in range(500):
            quote = walk.step(EURUSD)
            with lock:
                seen.append(quote)

    threads = [threading.Thread(target=stepper) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(seen) == 2000
    assert all(quote.ask - quote.bid == spread for quote in seen)
