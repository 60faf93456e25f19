"""The orders and requests the engine keeps in memory, in front of the store, and one lock per order.

Open orders and the most recent others answer without a database call; a cancel/replace id and the
venue's OrderID each lead back to their order. Each read-change-write of an order holds its lock, so no
change overwrites another. Every order kept is also counted by the pre-trade checks, when there are any.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict

from fixadapter.engine.claims import SeenIds
from fixadapter.engine.pre_trade import PreTrade
from fixadapter.engine.store_thread import StoreThread
from fixadapter.errors import ClientIdInUse
from fixadapter.model.enums import OrderStatus
from fixadapter.model.orders import Order, OrderRequest
from fixadapter.store.repository import OrderStore

RECENT_ORDERS = 10_000


def never_acknowledged(order: Order) -> bool:
    """Sent but never acknowledged (also when flagged unknown while waiting for its acknowledgement)."""
    waiting = order.previous_status if order.status is OrderStatus.UNKNOWN else order.status
    return waiting is OrderStatus.PENDING_NEW


class KnownOrders:
    def __init__(self, store: OrderStore, db: StoreThread, pre_trade: PreTrade | None = None) -> None:
        self.pre_trade = pre_trade
        self.unsent: set[str] = set()  # stored, not sent: the venue is known not to have them
        self._store = store
        self._db = db
        self._orders: OrderedDict[str, Order] = OrderedDict()
        self._by_request: dict[str, OrderRequest] = {}
        self._by_venue_id: dict[str, str] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._live_mark: dict[str, int] = {}  # ClOrdID -> arrival of the last live report applied to it
        # With a journal: every client id the store held at start and every one seen since, so what is
        # not in it is certainly unused (claims.py). None without one (nothing asks).
        self.seen_ids: SeenIds | None = None

    def lock(self, cl_ord_id: str) -> asyncio.Lock:
        """One lock per order, held by each read-change-write of it: no change overwrites another."""
        lock = self._locks.get(cl_ord_id)
        if lock is None:
            lock = self._locks[cl_ord_id] = asyncio.Lock()
        return lock

    def latest(self, order: Order) -> Order:
        return self._orders.get(order.cl_ord_id, order)

    def cached(self, cl_ord_id: str) -> Order | None:
        """The order if memory has it (every open order and the most recent others), without the store."""
        return self._orders.get(cl_ord_id)

    async def get(self, cl_ord_id: str) -> Order | None:
        cached = self.cached(cl_ord_id)
        if cached is not None:
            return cached
        return await self._db.run(self._store.get_order, cl_ord_id)

    def track(self, order: Order) -> None:
        if self.pre_trade is not None:
            self.pre_trade.track(order)

    def remember(self, order: Order) -> None:
        self.track(order)
        if self.seen_ids is not None and order.cl_ord_id not in self._orders:
            self.seen_ids.add(order.cl_ord_id)
        self._orders[order.cl_ord_id] = order
        self._orders.move_to_end(order.cl_ord_id)
        if order.order_id:
            self._by_venue_id[order.order_id] = order.cl_ord_id
        while len(self._orders) > RECENT_ORDERS:
            _, oldest = next(iter(self._orders.items()))
            if oldest.is_open:
                break
            self._orders.popitem(last=False)
            self._locks.pop(oldest.cl_ord_id, None)
            self._live_mark.pop(oldest.cl_ord_id, None)
            if oldest.order_id:
                self._by_venue_id.pop(oldest.order_id, None)

    async def find(self, cl_ord_id: str | None, order_id: str | None) -> Order | None:
        """The order a report is about: by its ClOrdID, a cancel/replace id, or the venue's OrderID."""
        if cl_ord_id:
            if cl_ord_id in self._orders:
                return self._orders[cl_ord_id]
            request = self._by_request.get(cl_ord_id)
            if request is not None:
                return await self.get(request.cl_ord_id)
        if order_id and order_id in self._by_venue_id:
            return await self.get(self._by_venue_id[order_id])
        found = None
        if cl_ord_id:
            found = await self._db.run(self._store.get_order, cl_ord_id)
            found = found or await self._db.run(self._store.order_for_request, cl_ord_id)
        if found is None and order_id:
            found = await self._db.run(self._store.order_by_venue_id, order_id)
        return found

    def in_memory(self, cl_ord_id: str | None, order_id: str | None) -> str | None:
        """The ClOrdID of the order `find` returns without the store, or None (it may ask the store)."""
        if cl_ord_id:
            if cl_ord_id in self._orders:
                return cl_ord_id
            request = self._by_request.get(cl_ord_id)
            if request is not None:
                return request.cl_ord_id if request.cl_ord_id in self._orders else None
        if order_id:
            found = self._by_venue_id.get(order_id)
            if found is not None and found in self._orders:
                return found
        return None

    def check_unused(self, role: str, client_id: str) -> None:
        """Refuse an id used for an order or a request before (the store checks again, atomically)."""
        request = self._by_request.get(client_id)
        if request is not None:
            raise ClientIdInUse.of(role, client_id, str(request.kind), request.cl_ord_id)
        if client_id in self._orders:
            raise ClientIdInUse.of(role, client_id, "order", client_id)

    def add_request(self, request: OrderRequest) -> None:
        self._by_request[request.request_id] = request
        if self.seen_ids is not None:
            self.seen_ids.add(request.request_id)

    def certainly_unused(self, client_id: str) -> bool:
        """True when no order or request has used `client_id`, known without the store (almost always
        for a new id); False when it may have been (the store knows)."""
        seen = self.seen_ids
        return seen is not None and client_id not in seen and client_id not in self._orders

    def keep_seen_ids(self) -> SeenIds:
        """Start keeping the ids seen (an engine with a journal, before it loads those the store holds)."""
        if self.seen_ids is None:
            self.seen_ids = SeenIds()
        return self.seen_ids

    def request(self, request_id: str) -> OrderRequest | None:
        """A cancel/replace request from memory (every one recovered at start or made since)."""
        return self._by_request.get(request_id)

    async def load_request(self, request_id: str) -> OrderRequest | None:
        return self._by_request.get(request_id) or await self._db.run(self._store.get_request, request_id)

    def mark_live(self, cl_ord_id: str, arrived: int) -> None:
        """A live report that arrived at `arrived` was applied to the order."""
        self._live_mark[cl_ord_id] = arrived

    def live_mark(self, cl_ord_id: str) -> int:
        return self._live_mark.get(cl_ord_id, 0)

    def open_orders(self) -> list[Order]:
        """Open orders the venue may know of (not those still waiting for their first send)."""
        return [o for o in self._orders.values() if o.is_open and o.cl_ord_id not in self.unsent]
