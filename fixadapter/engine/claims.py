"""Which ids are certainly unused, answered in memory, so a new order need not ask the store first.

An id (a ClOrdID, a request id, a strategy's command id) may be used once. The store's keys say so
atomically, at the price of a store round trip before the send. A Bloom filter of every id the store holds
(loaded at start) and every id claimed since answers "certainly new" for almost every new id: those go to
the journal and out at once. "Perhaps used" (a real reuse, a retry, or one false positive in a thousand)
takes the store's path, which finds the truth.

Command ids are a strategy's own whatever account a command names, so one `CommandIds` serves every
engine of a daemon, and it remembers the command ids journaled but not yet in the store (each engine's
store thread writes its own journal behind): another engine asking the store about one of those could not
see it yet.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from rbloom import Bloom

from fixadapter.model.requests import CommandUse

CAPACITY = 1_000_000  # ids per filter; a full filter gets a successor twice its size
FALSE_POSITIVE_RATE = 0.001  # per filter: 1.8 MB for the first million ids
EVICT_CHECK_EVERY = 1024  # claims between two looks for pending ids the store has now


class SeenIds:
    """A Bloom filter that grows: "not seen" is certain, "seen" is probable."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self._capacity = capacity
        self._filters = [Bloom(capacity, FALSE_POSITIVE_RATE)]
        self._in_last = 0

    def add(self, key: str) -> None:
        if self._in_last >= self._capacity:
            self._capacity *= 2
            self._filters.append(Bloom(self._capacity, FALSE_POSITIVE_RATE))
            self._in_last = 0
        self._filters[-1].add(key)
        self._in_last += 1

    def __contains__(self, key: str) -> bool:
        return any(key in bloom for bloom in self._filters)


def command_key(strategy: str, command_id: str) -> str:
    return f"{strategy}\x00{command_id}"


@dataclass(frozen=True)
class _Pending:
    digest: str
    written: Callable[[], bool]  # True once the store has it


class CommandIds:
    """The daemon's strategies' command ids: certainly new, or pending with the digest it was used for."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self._seen = SeenIds(capacity)
        self._pending: dict[str, _Pending] = {}
        self._claims = 0
        self._loaded: asyncio.Future[None] | None = None

    async def load_once(self, each: Callable[[Callable[[str, str], object]], int], run: Runner) -> None:
        """Fill the filter from the store once (`each(sink)` hands every (strategy, command id) to `sink`,
        run by `run` on the store thread); every engine's start waits for it, the first one does it."""
        if self._loaded is None:
            self._loaded = asyncio.get_running_loop().create_future()
            try:
                await run(lambda: each(self.seen_key))
            except BaseException as exc:
                self._loaded.set_exception(exc)
                self._loaded.exception()  # retrieved here; the next start loads again
                self._loaded = None
                raise
            self._loaded.set_result(None)
        await asyncio.shield(self._loaded)

    def certainly_new(self, use: CommandUse) -> bool:
        return command_key(use.strategy, use.command_id) not in self._seen

    def pending_digest(self, use: CommandUse) -> str | None:
        """The digest of a command id journaled and not yet in the store; None when not pending."""
        pending = self._pending.get(command_key(use.strategy, use.command_id))
        return None if pending is None else pending.digest

    def claim(self, use: CommandUse, written: Callable[[], bool]) -> None:
        """`use` is journaled: seen from now on, and pending until `written()` says the store has it."""
        key = command_key(use.strategy, use.command_id)
        self._seen.add(key)
        self._pending[key] = _Pending(use.digest, written)
        self._claims += 1
        if self._claims % EVICT_CHECK_EVERY == 0:
            self._evict()

    def seen_key(self, strategy: str, command_id: str) -> None:
        self._seen.add(command_key(strategy, command_id))

    def seen(self, use: CommandUse) -> None:
        """`use` was recorded by the store itself: seen from now on."""
        self.seen_key(use.strategy, use.command_id)

    def _evict(self) -> None:
        """Forget the pending ids the store has now (a store that is behind keeps its own pending)."""
        for key in [key for key, entry in self._pending.items() if entry.written()]:
            del self._pending[key]


class Runner(Protocol):
    """How `load_once` runs a call on the store thread (`StoreThread.run`)."""

    async def __call__(self, fn: Callable[[], int], /) -> int: ...
