"""Reads for people and tools (the HTTP API): paged in the database, on a thread and connection of their own.

A big or slow read must never stall trading: it never runs on the event loop that trades nor on the engine's
single store thread, and it never loads more rows than one page. SQLite in WAL mode lets this connection
read while the engine writes; PostgreSQL serves both anyway.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, TypeVar

from sqlalchemy import Select, and_, or_, select

from fixadapter.model.enums import DONE_STATUSES, OPEN_STATUSES
from fixadapter.model.orders import Order, Position
from fixadapter.model.requests import DEFAULT_ACCOUNT
from fixadapter.store import schema
from fixadapter.store.repository import OrderStore, order_from

T = TypeVar("T")
StatusFilter = Literal["open", "done", "all"]


class BadCursor(ValueError):
    """A `before` value that no page ever handed out."""


@dataclass(frozen=True)
class Cursor:
    """Where a page ended: the last order's creation time and ClOrdID (the order's unique tie-break)."""

    created_at: datetime
    cl_ord_id: str

    def encode(self) -> str:
        text = f"{self.created_at.isoformat()}|{self.cl_ord_id}"
        return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> Cursor:
        try:
            text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
            stamp, separator, cl_ord_id = text.partition("|")
            created_at = datetime.fromisoformat(stamp)
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise BadCursor(f"not a page cursor: {token[:40]!r}") from None
        if not separator or not cl_ord_id or created_at.tzinfo is None:
            raise BadCursor(f"not a page cursor: {token[:40]!r}")
        return cls(created_at, cl_ord_id)


@dataclass(frozen=True)
class OrderPage:
    orders: list[Order]
    next: Cursor | None  # None: this was the last page


def order_page_query(
    status: StatusFilter,
    strategy: str | None,
    limit: int,
    before: Cursor | None,
    account: str = DEFAULT_ACCOUNT,
) -> Select[tuple[object, ...]]:
    """One account's orders, newest first by (created_at, cl_ord_id) (the orders' created_at index), filters
    and the page bound all in SQL; one row more than the page tells whether another page follows."""
    o = schema.orders.c
    query = select(schema.orders).where(o.account == account)
    if status != "all":
        wanted = OPEN_STATUSES if status == "open" else DONE_STATUSES
        query = query.where(o.status.in_(sorted(str(s) for s in wanted)))
    if strategy is not None:
        query = query.where(o.strategy == strategy)
    if before is not None:
        query = query.where(
            or_(
                o.created_at < before.created_at,
                and_(o.created_at == before.created_at, o.cl_ord_id < before.cl_ord_id),
            )
        )
    return query.order_by(o.created_at.desc(), o.cl_ord_id.desc()).limit(limit + 1)


def read_order_page(
    store: OrderStore, status: StatusFilter, strategy: str | None, limit: int, before: Cursor | None
) -> OrderPage:
    query = order_page_query(status, strategy, limit, before, store.account)
    with store.engine.connect() as conn:
        rows = conn.execute(query).all()
    orders = [order_from(row) for row in rows[:limit]]
    last = orders[-1] if len(rows) > limit else None
    return OrderPage(orders, None if last is None else Cursor(last.created_at, last.cl_ord_id))


class StoreReader:
    """The read path of its own: one thread, its own connection pool on the same database.

    An in-memory SQLite database exists only on the connection (and thread) that made it, so there the
    reads go to the engine's store and its thread (`shared`): nothing else could see the data."""

    def __init__(
        self,
        url: str,
        shared: tuple[OrderStore, Executor] | None = None,
        account: str = DEFAULT_ACCOUNT,
    ) -> None:
        in_memory = url.startswith("sqlite://") and (url in ("sqlite://", "sqlite:///") or ":memory:" in url)
        self._own = shared is None or not in_memory
        if shared is not None and not self._own:
            self._store, self._thread = shared
        else:
            self._store = OrderStore(url, account=shared[0].account if shared else account)
            self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fixadapter-reads")

    @property
    def store(self) -> OrderStore:
        return self._store

    async def _run(self, fn: Callable[..., T], *args: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn, *args)

    async def order_page(
        self, status: StatusFilter, strategy: str | None, limit: int, before: Cursor | None = None
    ) -> OrderPage:
        return await self._run(read_order_page, self._store, status, strategy, limit, before)

    async def orders(self) -> list[Order]:
        return await self._run(self._store.orders)

    async def positions(self) -> list[Position]:
        return await self._run(self._store.positions)

    def close(self) -> None:
        if self._own:  # the shared store and thread are the engine's to close
            self._thread.shutdown(wait=True)
            self._store.close()
