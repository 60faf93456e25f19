"""Market-data subscriptions: which streams the adapter wants, by symbol and kind, and their MDReqIDs.

Shared by the event loop (subscribe/unsubscribe) and the market-data thread (routing, resubscribe at
logon), so every access takes one lock. The venue forgets every stream at logout; this registry is what
survives and is sent again after each QUOTE logon.
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field


@dataclass
class Subscription:
    symbol_id: int
    symbol: str
    depth: bool
    md_req_id: str
    since: float = field(default_factory=time.monotonic)
    last_update: float | None = None
    received: int = 0

    @property
    def kind(self) -> str:
        return "depth" if self.depth else "spot"


class Subscriptions:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._by_key: dict[tuple[int, bool], Subscription] = {}
        self._by_req_id: dict[str, Subscription] = {}
        self._counter = itertools.count(1)

    def add(self, symbol_id: int, symbol: str, depth: bool) -> tuple[Subscription, bool]:
        """The subscription for (symbol, kind), created when new; call with `lock` held."""
        key = (symbol_id, depth)
        existing = self._by_key.get(key)
        if existing is not None:
            return existing, False
        made = Subscription(
            symbol_id, symbol, depth, f"{'depth' if depth else 'spot'}-{symbol_id}-{next(self._counter)}"
        )
        self._by_key[key] = made
        self._by_req_id[made.md_req_id] = made
        return made, True

    def renew(self, subscription: Subscription) -> Subscription:
        """The same stream under a fresh MDReqID (a resync asks for a new snapshot); call with `lock` held."""
        self.remove(subscription)
        renewed, _ = self.add(subscription.symbol_id, subscription.symbol, subscription.depth)
        renewed.since = subscription.since
        return renewed

    def remove(self, subscription: Subscription) -> None:
        """Call with `lock` held."""
        self._by_key.pop((subscription.symbol_id, subscription.depth), None)
        self._by_req_id.pop(subscription.md_req_id, None)

    def get(self, symbol_id: int, depth: bool) -> Subscription | None:
        return self._by_key.get((symbol_id, depth))

    def by_req_id(self, md_req_id: str) -> Subscription | None:
        return self._by_req_id.get(md_req_id)

    def all(self) -> list[Subscription]:
        return list(self._by_key.values())

    def restart_clocks(self) -> None:
        """After a logon: staleness counts from now, not from before the outage."""
        now = time.monotonic()
        for subscription in self._by_key.values():
            subscription.since = now
            subscription.last_update = None
