"""Builders shared by the unit tests: valid defaults that each test overrides with what it is about; and
the order store on SQLite and, when FIXADAPTER_TEST_POSTGRES_URL is set, PostgreSQL (`store`)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from fixadapter.model.enums import ExecKind, OrderStatus, OrderType, Side
from fixadapter.model.orders import Order
from fixadapter.model.reports import ExecutionReport
from fixadapter.store.repository import OrderStore

T0 = datetime(2024, 5, 6, 9, 30, tzinfo=UTC)
D = Decimal


def make_order(**changes: Any) -> Order:
    """A 10000-unit EURUSD market buy, not yet acknowledged (PENDING_NEW)."""
    values: dict[str, Any] = {
        "cl_ord_id": "ord-1",
        "symbol_id": 1,
        "symbol": "EURUSD",
        "side": Side.BUY,
        "order_type": OrderType.MARKET,
        "quantity": D("10000"),
        "created_at": T0,
        "updated_at": T0,
    }
    return Order(**{**values, **changes})


def make_report(**changes: Any) -> ExecutionReport:
    """The venue's acknowledgement (150=0/39=0) of `ord-1` as cTrader order 101."""
    values: dict[str, Any] = {
        "kind": ExecKind.ACCEPTED,
        "status": OrderStatus.NEW,
        "order_id": "101",
        "cl_ord_id": "ord-1",
        "quantity": D("10000"),
        "cum_qty": D(0),
        "transact_time": T0,
        "position_id": "721",
    }
    values.update(changes)
    values.setdefault("dedupe_key", f"{values['kind']}|{values['status']}|{values['cum_qty']}")
    return ExecutionReport(**values)


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[OrderStore]:
    store = OrderStore(f"sqlite:///{tmp_path / 'orders.db'}")
    store.create_schema()
    yield store
    store.close()


@pytest.fixture
def postgresql_store(pg_schema_url: str) -> Iterator[OrderStore]:
    store = OrderStore(pg_schema_url)
    store.create_schema()
    yield store
    store.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest) -> OrderStore:
    return request.getfixturevalue(f"{request.param}_store")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'orders.db'}"


@pytest.fixture
def postgresql_url(pg_schema_url: str) -> str:
    return pg_schema_url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest) -> str:
    """Where an engine's store is: a new SQLite file, or a PostgreSQL schema of the test's own."""
    return str(request.getfixturevalue(f"{request.param}_url"))
