"""The one way a change to an order is kept: persisted first, then remembered and published.

Nobody hears of a change the store does not have. The recorder also remembers which report keys were
applied (a key seen again with the same content is a duplicate; with other content it is not, and goes
on under a key of its own, counted and alarmed) and when each order or request went out, for the
round-trip time of its first answer.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from typing import Any

from fixadapter.engine.fanout import EventFanout
from fixadapter.engine.identity import content_digest, shown, stored_differs
from fixadapter.engine.known_orders import KnownOrders
from fixadapter.engine.store_thread import StoreThread
from fixadapter.metrics import Metrics
from fixadapter.model.enums import ExecKind, OrderEventKind, OrderStatus
from fixadapter.model.orders import Order, OrderEvent
from fixadapter.model.reports import ExecutionReport
from fixadapter.model.transitions import event_reason, reason_code
from fixadapter.store.repository import OrderStore

RECENT_KEYS = 50_000


class Recorder:
    def __init__(
        self, store: OrderStore, db: StoreThread, known: KnownOrders, fanout: EventFanout, metrics: Metrics
    ) -> None:
        self._store = store
        self._db = db
        self._known = known
        self._fanout = fanout
        self._metrics = metrics
        self._seen_keys: OrderedDict[str, str] = OrderedDict()  # dedupe key -> what the report said
        self._sent_at: dict[str, float] = {}
        self._persisting: set[asyncio.Task[bool]] = set()

    def sent(self, client_id: str) -> None:
        """An order or request goes out now: its first answer observes the round trip."""
        self._sent_at[client_id] = time.perf_counter()

    def unseen(self, report: ExecutionReport) -> ExecutionReport | None:
        """The report to apply, or None for one seen before. A key seen with other content is no
        duplicate: the report goes on under a key of its own (see `dedupe_conflict`)."""
        key = report.dedupe_key
        if report.kind is ExecKind.STATUS or key not in self._seen_keys:
            return report
        digest = content_digest(report)
        if self._seen_keys[key] in (digest, ""):
            return None
        distinct = self.dedupe_conflict(report, digest)
        return None if distinct in self._seen_keys else report.model_copy(update={"dedupe_key": distinct})

    def dedupe_conflict(self, report: ExecutionReport, digest: str) -> str:
        """Count and alarm a dedupe key reused with other content (a venue whose ExecIDs restarted);
        the key to keep the report under instead."""
        distinct = f"{report.dedupe_key}#{digest[:16]}"
        if distinct not in self._seen_keys:
            self._metrics.dedupe_conflicts.inc()
            self._metrics.alarms.raise_alarm(
                "dedupe_conflict",
                shown(report.dedupe_key, 100),
                f"report key {shown(report.dedupe_key, 100)} came again with other content (ClOrdID "
                f"{shown(report.cl_ord_id)}, OrderID {shown(report.order_id)}, CumQty {report.cum_qty}); "
                f"applied under a key of its own (+#{digest[:16]}): check the venue did not restart its "
                "execution ids",
            )
        return distinct

    async def record(
        self,
        order: Order,
        kind: OrderEventKind,
        report: ExecutionReport | None,
        key: str,
        fill: Any = None,
        reason: str | None = None,
    ) -> bool:
        """Persist first, then tell consumers: nobody hears of a change the store does not have.

        Shielded: a cancelled caller (a reconciliation cut short by a logout) must not leave the store
        ahead of memory.
        """
        task = asyncio.ensure_future(self._persist(order, kind, report, key, fill, reason))
        self._persisting.add(task)
        task.add_done_callback(self._persisted)
        return await asyncio.shield(task)

    def _persisted(self, task: asyncio.Task[bool]) -> None:
        self._persisting.discard(task)
        if not task.cancelled():
            task.exception()  # its caller (if still there) has it; never "exception never retrieved"

    async def settle(self) -> None:
        """Wait for every write asked for, those whose caller was cancelled too (the engine stopping): a
        report handled after must start from what they stored."""
        while self._persisting:
            await asyncio.wait(set(self._persisting))

    async def _persist(
        self,
        order: Order,
        kind: OrderEventKind,
        report: ExecutionReport | None,
        key: str,
        fill: Any,
        reason: str | None,
    ) -> bool:
        record = self._store.record_execution
        seq = await self._db.run(record, order, kind.value, report, fill, key, reason)
        if seq is None and report is not None and report.kind is not ExecKind.STATUS:
            stored = await self._db.run(self._store.execution, key)
            if stored is not None and stored_differs(stored, report):
                key = self.dedupe_conflict(report, content_digest(report))
                seq = await self._db.run(record, order, kind.value, report, fill, key, reason)
        if seq is None:
            self._metrics.duplicate_reports.inc()
            return False
        self._seen_keys[key] = content_digest(report) if report is not None else ""
        if len(self._seen_keys) > RECENT_KEYS:
            self._seen_keys.popitem(last=False)
        self._known.remember(order)
        if order.status is not OrderStatus.UNKNOWN:
            self._metrics.alarms.clear("unknown_order", order.cl_ord_id)  # an answer came: resolved
        self._observe_round_trip(order, report)
        if kind is OrderEventKind.REJECTED:
            self._metrics.order_rejects.labels("venue", reason_code(order.reason)).inc()
        reason = reason or event_reason(kind, order)
        self._fanout.publish(OrderEvent(kind=kind, order=order, fill=fill, reason=reason, seq=seq))
        return True

    def _observe_round_trip(self, order: Order, report: ExecutionReport | None) -> None:
        key = report.cl_ord_id if report and report.cl_ord_id else order.cl_ord_id
        started = self._sent_at.pop(key, None)
        if started is not None:
            self._metrics.round_trip.observe(time.perf_counter() - started)
