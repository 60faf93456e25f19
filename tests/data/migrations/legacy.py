"""A store as fixadapter wrote it before schema versions, filled through that code's own API, and what it
holds, read back through today's API, for the migration tests to compare before and after an upgrade."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from fixadapter.compliance.records import Direction, FixRecord
from fixadapter.compliance.table import StoredRecord, iter_records
from fixadapter.compliance.writer import ComplianceWriter
from fixadapter.model.enums import OrderStatus, OrderType, PositionSide, RequestKind, Side
from fixadapter.model.orders import Fill, Order, OrderEvent, OrderRequest, Position
from fixadapter.model.reports import ExecutionReport, Instrument
from fixadapter.store.repository import OrderStore, make_engine
from tests.data.migrations.store_v0 import compliance_table
from tests.data.migrations.store_v0.command_ids import CommandIds as CommandIdsV0
from tests.data.migrations.store_v0.repository import OrderStore as OrderStoreV0
from tests.unit.conftest import T0, make_order, make_report

D = Decimal
S = OrderStatus


@dataclass
class Contents:
    """Everything a store holds for one account, read through today's OrderStore."""

    orders: list[Order]
    open_orders: list[Order]
    requests: list[OrderRequest]
    executions: list[dict[str, Any]]
    events: list[OrderEvent]
    positions: list[Position]
    instruments: list[Instrument]
    set_aside: list[dict[str, Any]]
    usages: dict[str, tuple[str, str] | None]
    terms: dict[str, dict[str, Any] | None]


def _filled(order: Order, key: str, quantity: str, price: str) -> tuple[Order, ExecutionReport, Fill]:
    cum = order.cum_qty + D(quantity)
    status = S.FILLED if cum == order.quantity else S.PARTIALLY_FILLED
    moved = order.moved_to(status, cum_qty=cum, avg_px=D(price), order_id="101" + order.cl_ord_id[-1])
    report = make_report(
        cl_ord_id=order.cl_ord_id,
        status=status,
        cum_qty=cum,
        avg_px=D(price),
        dedupe_key=key,
        raw=f"8=FIX.4.4|35=8|11={order.cl_ord_id}|",
    )
    fill = Fill(
        fill_id=key,
        cl_ord_id=order.cl_ord_id,
        order_id=moved.order_id,
        symbol_id=order.symbol_id,
        side=order.side,
        quantity=D(quantity),
        price=D(price),
        time=T0 + timedelta(seconds=1),
    )
    return moved, report, fill


def write_legacy_store(url: str) -> None:
    """Orders in several states, a cancel request, executions with fills, positions, instruments, a report
    set aside and used command ids, written by the pre-version store code (its own create_all)."""
    store = OrderStoreV0(url)
    store.create_schema()
    CommandIdsV0(store.engine).create()
    CommandIdsV0(store.engine).same_or_new("momo", "cmd-1", "digest-1")
    limit = make_order(
        cl_ord_id="ord-3", order_type=OrderType.LIMIT, price=D("1.08355"), strategy="momo", label="x"
    )
    orders = [
        make_order(cl_ord_id="ord-1", strategy="momo"),
        make_order(cl_ord_id="ord-2", side=Side.SELL, quantity=D("20000"), created_at=T0 + timedelta(1)),
        limit.model_copy(update={"created_at": T0 + timedelta(2)}),
    ]
    for order in orders:
        assert store.insert_order(order, {"symbol": order.symbol, "quantity": str(order.quantity)})
    accepted = orders[0].moved_to(S.NEW, order_id="1011")
    store.record_execution(accepted, "accepted", make_report(), None, "fix:1011|0|0")
    half, report, fill = _filled(accepted, "fix:1011|1|5000", "5000", "1.08")
    store.record_execution(half, "partially_filled", report, fill, "fix:1011|1|5000")
    full, report, fill = _filled(half, "fix:1011|2|10000", "5000", "1.09")
    store.record_execution(full, "filled", report, fill, "fix:1011|2|10000")
    working = orders[2].moved_to(S.NEW, order_id="1013")
    store.record_execution(working, "accepted", make_report(cl_ord_id="ord-3"), None, "fix:1013|0|0")
    cancel = OrderRequest(request_id="cxl-3", cl_ord_id="ord-3", kind=RequestKind.CANCEL, created_at=T0)
    store.insert_request(cancel, working.moved_to(S.PENDING_CANCEL, pending_request_id="cxl-3"))
    store.set_aside("execution_report", "fix:bad", "8=FIX.4.4|35=8|\x00", "too long")
    store.replace_positions(
        [
            Position(
                position_id="721", symbol_id=1, side=PositionSide.LONG, quantity=D(10000), updated_at=T0
            ),
            Position(position_id="722", symbol_id=2, side=PositionSide.SHORT, quantity=D(1), updated_at=T0),
        ]
    )
    store.replace_instruments(
        [Instrument(symbol_id=1, name="EURUSD", digits=5), Instrument(symbol_id=2, name="XAUUSD", digits=2)]
    )
    store.close()


# Execution columns of later revisions: a row written before them has none (checked, then left out).
LATER_EXECUTION_COLUMNS = ("fill_commission", "fill_swap")


def _as_before(row: dict[str, object]) -> dict[str, object]:
    assert all(row.get(name) is None for name in LATER_EXECUTION_COLUMNS), row
    return {k: v for k, v in row.items() if k != "account" and k not in LATER_EXECUTION_COLUMNS}


def read_contents(store: OrderStore) -> Contents:
    ids = ["ord-1", "ord-2", "ord-3", "cxl-3", "nobody"]
    return Contents(
        orders=store.orders(),
        open_orders=store.open_orders(),
        requests=store.requests(),
        executions=[_as_before(row) for row in store.executions()],
        events=store.events_since(0),
        positions=store.positions(),
        instruments=store.instruments(),
        set_aside=[{k: v for k, v in row.items() if k != "account"} for row in store.reports_set_aside()],
        usages={client_id: store.client_id_usage(client_id) for client_id in ids},
        terms={cl_ord_id: store.order_terms(cl_ord_id) for cl_ord_id in ids[:3]},
    )


def legacy_contents(url: str) -> Contents:
    """What the pre-version store holds, read through its own code (the same questions as read_contents)."""
    store = OrderStoreV0(url)
    try:
        ids = ["ord-1", "ord-2", "ord-3", "cxl-3", "nobody"]
        return Contents(
            orders=store.orders(),
            open_orders=store.open_orders(),
            requests=store.requests(),
            executions=store.executions(),
            events=store.events_since(0),
            positions=store.positions(),
            instruments=store.instruments(),
            set_aside=store.reports_set_aside(),
            usages={client_id: store.client_id_usage(client_id) for client_id in ids},
            terms={cl_ord_id: store.order_terms(cl_ord_id) for cl_ord_id in ids[:3]},
        )
    finally:
        store.close()


def fix_records(count: int) -> list[FixRecord]:
    """`count` messages on two sessions over two days: four chains."""
    return [
        FixRecord(
            time=T0 + timedelta(days=i % 2, seconds=i),
            session="TRADE" if i % 3 else "QUOTE",
            direction=Direction.OUTBOUND if i % 2 else Direction.INBOUND,
            msg_type="D" if i % 3 else "W",
            seq_num=i + 1,
            cl_ord_id=f"ord-{i}" if i % 3 else None,
            raw=f"8=FIX.4.4|35=D|34={i + 1}|11=ord-{i}|",
        )
        for i in range(count)
    ]


def write_legacy_compliance(url: str, count: int = 40) -> None:
    """Chained rows in a compliance database made by the pre-version code (its create_all), appended by
    today's ComplianceWriter (the chain rule has not changed)."""
    engine = make_engine(url)
    try:
        compliance_table.create_tables(engine)
        assert ComplianceWriter(engine, create=False).append_many(fix_records(count)) == count
    finally:
        engine.dispose()


def stored_records(url: str) -> list[StoredRecord]:
    engine = make_engine(url)
    try:
        return list(iter_records(engine))
    finally:
        engine.dispose()
