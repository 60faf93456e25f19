"""Requests that expect answers (mass status, positions, instruments, order status), keyed by id.

The venue answers a request with several messages (one ER per working order, one AP per position)
announcing the total in each; a collection completes when that many have arrived.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Collection:
    future: asyncio.Future[list[Any]]
    items: list[Any] = field(default_factory=list)

    def add(self, item: Any, total: int | None) -> None:
        self.items.append(item)
        if total is not None and len(self.items) >= total and not self.future.done():
            self.future.set_result(self.items)

    def finish(self) -> None:
        if not self.future.done():
            self.future.set_result(self.items)

    def fail(self, error: BaseException) -> None:
        if not self.future.done():
            self.future.set_exception(error)


class PendingRequests:
    def __init__(self) -> None:
        self._open: dict[str, Collection] = {}

    def open(self, key: str) -> asyncio.Future[list[Any]]:
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._open[key] = Collection(future)
        future.add_done_callback(lambda _f: self._open.pop(key, None))
        return future

    def get(self, key: str) -> Collection | None:
        return self._open.get(key)

    def __contains__(self, key: str) -> bool:
        return key in self._open

    def fail_all(self, error: BaseException) -> None:
        for collection in list(self._open.values()):
            collection.fail(error)
