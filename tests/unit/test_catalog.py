"""Specification of the instrument catalog: names users type resolve to cTrader's numeric symbol ids."""

from __future__ import annotations

from pathlib import Path

import pytest

from fixadapter.config import OrdersConfig
from fixadapter.engine.instruments import Catalog
from fixadapter.engine.orders import OrderEngine
from fixadapter.errors import OrderRejected, UnknownSymbol
from fixadapter.metrics import Metrics
from fixadapter.model.reports import Instrument
from fixadapter.store.repository import OrderStore
from tests.unit.quiet_connector import QuietConnector

EURUSD = Instrument(symbol_id=1, name="EURUSD", digits=5)
GBPUSD = Instrument(symbol_id=2, name="GBPUSD", digits=5)
NZDCHF = Instrument(symbol_id=39, name="NZDCHF", digits=4)
XAUUSD = Instrument(symbol_id=10026, name="XAUUSD", digits=2)


@pytest.fixture
def catalog() -> Catalog:
    return Catalog([EURUSD, GBPUSD, NZDCHF, XAUUSD])


@pytest.mark.parametrize("name", ["EURUSD", "eurusd", "EurUsd", "  EURUSD "])
def test_catalog_resolve_name_in_any_case_gives_the_instrument(catalog: Catalog, name: str) -> None:
    assert catalog.resolve(name) == EURUSD


@pytest.mark.parametrize(("symbol", "instrument"), [("39", NZDCHF), ("10026", XAUUSD)])
def test_catalog_resolve_numeric_id_gives_the_instrument(
    catalog: Catalog, symbol: str, instrument: Instrument
) -> None:
    assert catalog.resolve(symbol) == instrument


def test_catalog_resolve_unknown_name_lists_close_matches(catalog: Catalog) -> None:
    with pytest.raises(UnknownSymbol, match=r"unknown symbol 'EURUSX' at this broker; did you mean EURUSD"):
        catalog.resolve("EURUSX")


def test_catalog_resolve_name_like_nothing_says_there_is_no_similar_name(catalog: Catalog) -> None:
    with pytest.raises(UnknownSymbol, match="no similar names"):
        catalog.resolve("BTC-PERP-Q9")


def test_catalog_resolve_unknown_id_raises_unknown_symbol(catalog: Catalog) -> None:
    with pytest.raises(UnknownSymbol, match="unknown symbol '999'"):
        catalog.resolve("999")


def test_catalog_resolve_on_empty_catalog_says_the_list_has_not_been_received_yet() -> None:
    with pytest.raises(UnknownSymbol, match="the instrument list has not been received yet"):
        Catalog().resolve("EURUSD")


def test_catalog_unknown_symbol_is_an_order_rejection(catalog: Catalog) -> None:
    with pytest.raises(OrderRejected):
        catalog.resolve("EURUSX")


def test_catalog_replace_swaps_the_whole_list(catalog: Catalog) -> None:
    catalog.replace([NZDCHF])

    assert len(catalog) == 1
    assert catalog.resolve("nzdchf") == NZDCHF
    with pytest.raises(UnknownSymbol):
        catalog.resolve("EURUSD")


def test_catalog_all_is_sorted_by_name_and_by_id_finds_one(catalog: Catalog) -> None:
    assert [i.name for i in catalog.all()] == ["EURUSD", "GBPUSD", "NZDCHF", "XAUUSD"]
    assert catalog.by_id(39) == NZDCHF
    assert catalog.by_id(40) is None


def test_the_engine_works_on_the_catalog_it_is_given_even_while_it_is_empty(tmp_path: Path):
    """Risk and market data resolve symbols on the same catalog the engine fills after each logon."""
    shared = Catalog()
    store = OrderStore(f"sqlite:///{tmp_path / 'orders.db'}")
    engine = OrderEngine(store, QuietConnector(), Metrics(), OrdersConfig(), catalog=shared)
    assert engine.catalog is shared
    store.close()
