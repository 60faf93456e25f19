"""The simulated venue's state file: its orders, open positions and id counters in sqlite (WAL).

The venue commits every mutating call here before the acceptor answers, so a SIGKILL never loses anything
a client was told; a new venue on the same file resumes from `load`. Rows hold the records' JSON
(`records.to_json`), one row per order, per open position and per counter.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from fixadapter.sim.records import (
    VenueDeal,
    VenueOrder,
    VenuePosition,
    from_json,
    open_database,
    to_json,
)


@dataclass(frozen=True)
class SavedState:
    """What the file holds, orders and positions by id."""

    orders: list[VenueOrder]
    positions: list[VenuePosition]
    counters: list[tuple[str, int]]
    deals: list[VenueDeal]


class VenueStateFile:
    """One open state file; used by one live venue at a time, whose lock serialises every call."""

    def __init__(self, path: Path) -> None:
        self._db = open_database(path)

    def commit(
        self,
        orders: Iterable[VenueOrder],
        positions: Iterable[tuple[int, VenuePosition | None]],
        counters: Iterable[tuple[str, int]],
        deals: Iterable[VenueDeal] = (),
    ) -> None:
        """Write changed orders, upsert open positions, delete closed ones (None) and the counters, in one
        transaction: the file never holds half of a call."""
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO orders (order_id, data) VALUES (?, ?)",
                [(order.order_id, to_json(order)) for order in orders],
            )
            for position_id, position in positions:
                if position is None:
                    self._db.execute("DELETE FROM positions WHERE position_id = ?", (position_id,))
                else:
                    self._db.execute(
                        "INSERT OR REPLACE INTO positions (position_id, data) VALUES (?, ?)",
                        (position_id, to_json(position)),
                    )
            self._db.executemany("INSERT OR REPLACE INTO counters (name, value) VALUES (?, ?)", counters)
            self._db.executemany(
                "INSERT OR REPLACE INTO deals (deal_id, data) VALUES (?, ?)",
                [(deal.deal_id, to_json(deal)) for deal in deals],
            )

    def load(self) -> SavedState:
        orders = [
            from_json(VenueOrder, data)
            for (data,) in self._db.execute("SELECT data FROM orders ORDER BY order_id")
        ]
        positions = [
            from_json(VenuePosition, data)
            for (data,) in self._db.execute("SELECT data FROM positions ORDER BY position_id")
        ]
        counters = [(name, value) for name, value in self._db.execute("SELECT name, value FROM counters")]
        deals = [
            from_json(VenueDeal, data)
            for (data,) in self._db.execute("SELECT data FROM deals ORDER BY deal_id")
        ]
        return SavedState(orders, positions, counters, deals)

    def close(self) -> None:
        self._db.close()
