"""The order and position ids one simulated venue hands out, and the counters its state file keeps.

Ids are never reused, even for rejected orders, and survive a restart through the state file. When a
server runs several accounts, the server's `IdCounters` keep their ids apart, as cTrader's are server-wide.
"""

from __future__ import annotations

from collections.abc import Iterable

from fixadapter.sim.records import IdCounters

FIRST_ORDER_ID = 5123456
FIRST_POSITION_ID = 47888800
FIRST_DEAL_ID = 81234500


def _first_ids() -> dict[str, int]:
    return {"order_id": FIRST_ORDER_ID, "position_id": FIRST_POSITION_ID, "deal_id": FIRST_DEAL_ID}


class IdAllocator:
    """The next "order_id" and "position_id" of one venue, drawn through the server's counters if shared."""

    def __init__(self, shared: IdCounters | None = None) -> None:
        self._shared = shared
        self._next = _first_ids()

    def allocate(self, name: str) -> int:
        allocated = self._next[name]
        if self._shared is not None:
            allocated = self._shared.allocate(name, allocated)
        self._next[name] = allocated + 1
        return allocated

    def counters(self) -> list[tuple[str, int]]:
        """(name, next id) pairs, as the state file stores them."""
        return list(self._next.items())

    def restore(self, counters: Iterable[tuple[str, int]]) -> None:
        """Resume from the state file's counters; a name it lacks starts at its first id."""
        self._next = _first_ids()
        self._next.update(counters)

    def reserve_shared(self) -> None:
        """Tell the server's counters where this venue resumed, so no other account reuses its ids."""
        if self._shared is not None:
            for name, next_id in self._next.items():
                self._shared.reserve(name, next_id)
