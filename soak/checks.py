"""The invariants after the run has settled: each is a list of violations, each naming the ClOrdID (or
what else) and what differs."""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from fixadapter.model.enums import DONE_STATUSES
from soak.desk import Trader

FINAL = frozenset(status.value for status in DONE_STATUSES)


@dataclass(frozen=True)
class StoredOrder:
    cl_ord_id: str
    strategy: str | None
    status: str
    order_id: str | None
    reason: str | None


def stored_orders(url: str) -> dict[str, StoredOrder]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text("SELECT cl_ord_id, strategy, status, order_id, reason FROM orders")
            ).all()
    finally:
        engine.dispose()
    return {row[0]: StoredOrder(*row) for row in rows}


@dataclass
class Verdict:
    orders: int = 0
    lost: list[str] = field(default_factory=list)
    doubled: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)

    def add(self, text: str) -> None:
        self.violations.append(text)


def check_orders(
    traders: list[Trader], store: dict[str, StoredOrder], venue_orders: list[dict[str, Any]]
) -> Verdict:
    """Store against venue against what each strategy was told."""
    verdict = Verdict(orders=len(store))
    at_venue = Counter(str(order["cl_ord_id"]) for order in venue_orders)
    venue = {str(order["cl_ord_id"]): order for order in venue_orders}
    for cl_ord_id, count in at_venue.items():
        if count > 1:
            verdict.doubled.append(cl_ord_id)
            verdict.add(f"{cl_ord_id}: {count} orders at the venue (doubled)")
        if cl_ord_id not in store:
            verdict.add(f"{cl_ord_id}: at the venue ({venue[cl_ord_id]['status']}) but not in the store")
    by_venue_id = {str(order["order_id"]): order for order in venue_orders}
    seen: dict[str, str] = {}  # venue order id -> the store's ClOrdID for it
    for order in store.values():
        # An order the adapter adopted from the venue has a ClOrdID of its own making: matched by venue id.
        at = venue.get(order.cl_ord_id) or by_venue_id.get(str(order.order_id))
        if at is not None:
            venue_id = str(at["order_id"])
            if venue_id in seen:
                verdict.doubled.append(order.cl_ord_id)
                verdict.add(
                    f"{order.cl_ord_id}: venue order {venue_id} is in the store twice (also as "
                    f"{seen[venue_id]})"
                )
            seen[venue_id] = order.cl_ord_id
        _check_against_venue(order, at, verdict)
    for trader in traders:
        _check_strategy(trader, store, verdict)
    return verdict


def _check_against_venue(order: StoredOrder, venue: dict[str, Any] | None, verdict: Verdict) -> None:
    if order.status not in FINAL:
        verdict.add(f"{order.cl_ord_id}: still {order.status} in the store after settling")
    if venue is None:
        if order.status != "rejected":
            verdict.lost.append(order.cl_ord_id)
            verdict.add(
                f"{order.cl_ord_id}: {order.status} in the store (venue id {order.order_id}) but "
                "not at the venue"
            )
        return
    if str(venue["status"]) != order.status:
        verdict.add(f"{order.cl_ord_id}: store says {order.status}, venue says {venue['status']}")


def _check_strategy(trader: Trader, store: dict[str, StoredOrder], verdict: Verdict) -> None:
    twice = sorted(seq for seq, count in Counter(trader.seqs).items() if count > 1)
    if twice:
        verdict.add(f"{trader.name} received {len(twice)} events twice (seq {twice[:10]})")
    backwards = [(a, b) for a, b in zip(trader.seqs, trader.seqs[1:], strict=False) if b < a]
    if backwards:
        verdict.add(f"{trader.name} received events out of order {len(backwards)} times ({backwards[:5]})")
    for cl_ord_id in trader.submitted:
        stored = store.get(cl_ord_id)
        if stored is None and cl_ord_id not in trader.client.refused:
            verdict.lost.append(cl_ord_id)
            verdict.add(
                f"{cl_ord_id}: submitted by {trader.name} (acknowledged by Redis), neither stored nor refused"
            )
    for order in store.values():
        if order.strategy != trader.name:
            continue
        update = trader.client.orders.get(order.cl_ord_id)
        told = None if update is None else update.order.status.value
        if told != order.status:
            verdict.add(
                f"{order.cl_ord_id}: {trader.name} was last told {told}, the store says {order.status}"
            )


def violation_kinds(violations: list[str]) -> Counter[str]:
    """Violations grouped by what differs (ids and numbers taken out): the shape of a failing run."""
    kinds = Counter[str]()
    for violation in violations:
        subject, colon, rest = violation.partition(": ")
        kind = rest if colon and re.fullmatch(r"[\w.:-]+", subject) else violation
        kinds[re.sub(r"\b[0-9a-f]{12,}\b|\d+", "N", kind)[:100]] += 1
    return kinds


def alarms(readyz: bytes) -> list[dict[str, Any]]:
    try:
        body = json.loads(readyz)
    except ValueError:
        return []
    found = body.get("alarms") if isinstance(body, dict) else None
    if isinstance(found, dict):  # {"count": n, "shown": [...]}
        found = found.get("shown") or []
    return [a for a in found or [] if isinstance(a, dict)]


def metric_series(metrics: bytes) -> list[str]:
    return [
        line for line in metrics.decode(errors="replace").splitlines() if line and not line.startswith("#")
    ]


def task_lines(series: list[str]) -> list[str]:
    """Metric series about daemon tasks (failures, restarts) with a non-zero value."""
    return [
        line
        for line in series
        if "task" in line and "_created" not in line and not line.rstrip().endswith((" 0", " 0.0"))
    ]


def task_failures(log: str) -> Counter[str]:
    """Daemon tasks that failed, by name, over every run of the daemon (its counters restart with it)."""
    return Counter(re.findall(r" ERROR\s+fixadapter\.tasks: task ([\w.-]+?)(?:-\d+)? failed", log))


def log_errors(log: str) -> Counter[str]:
    """ERROR (and CRITICAL) lines of the daemon's log by logger: where to look first."""
    return Counter(re.findall(r" (?:ERROR|CRITICAL)\s+([\w.]+):", log))


def secrets_in_files(directory: Path, secrets: dict[str, str]) -> list[str]:
    """Every file under `directory` (logs, FIX logs, configs) holding a secret in clear."""
    found = []
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        if path.suffix in (".conf", ".aof", ".rdb", ".manifest") or path.name.startswith("appendonly"):
            continue  # Redis's own config and data: where its password must be
        try:
            data = path.read_bytes()
        except OSError:
            continue
        for what, secret in secrets.items():
            if secret and secret.encode() in data:
                found.append(f"{what} in clear in {path.relative_to(directory)}")
    return found
