"""Specification of OrderStore on SQLite and, when FIXADAPTER_TEST_POSTGRES_URL is set, PostgreSQL.

Each PostgreSQL test gets its own schema (dropped afterwards), so runs never see each other's rows.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import create_engine, event, text
from sqlalchemy.exc import OperationalError

from fixadapter.errors import ClientIdInUse, CommandIdReused, StoreError, UnstorableData
from fixadapter.model.enums import OrderStatus, OrderType, PositionSide, RequestKind, Side
from fixadapter.model.orders import Fill, Order, OrderRequest, Position
from fixadapter.model.reports import Instrument
from fixadapter.model.requests import CommandUse
from fixadapter.store import schema
from fixadapter.store.repository import BatchAborted, OrderStore
from tests.unit.conftest import T0, make_order, make_report

D = Decimal
S = OrderStatus


def limit_order(cl_ord_id: str = "ord-1", **changes: object) -> Order:
    values: dict[str, object] = {"order_type": OrderType.LIMIT, "price": D("1.08355"), "status": S.NEW}
    return make_order(cl_ord_id=cl_ord_id, **{**values, **changes})


def test_store_get_order_round_trips_every_field_exactly(store: OrderStore) -> None:
    order = make_order(
        cl_ord_id="ord-0003",
        order_id="5123456",
        symbol_id=10026,
        symbol="XAUUSD",
        side=Side.SELL,
        order_type=OrderType.STOP,
        quantity=D("0.01"),
        stop_price=D("1.08355"),
        expire_time=datetime(2025, 1, 2, 10, 0, 0, 123456, tzinfo=UTC),
        position_id="47888826",
        label="my-label",
        strategy="mean.rev:1",
        status=S.PARTIALLY_FILLED,
        previous_status=S.NEW,
        cum_qty=D("0.005"),
        avg_px=D("2345.678901"),
        pending_request_id="cxl-1",
        reason="why not",
        created_at=T0,
        updated_at=T0 + timedelta(microseconds=1),
    )
    assert store.insert_order(order)

    assert store.get_order("ord-0003") == order


def test_store_get_order_returns_aware_utc_times_for_times_given_in_another_zone(store: OrderStore) -> None:
    paris = timezone(timedelta(hours=1))
    store.insert_order(make_order(created_at=datetime(2024, 5, 6, 10, 30, tzinfo=paris)))

    stored = store.get_order("ord-1")

    assert stored is not None
    assert stored.created_at == T0
    assert stored.created_at.utcoffset() == timedelta(0)


def test_store_get_order_of_unknown_id_is_none(store: OrderStore) -> None:
    assert store.get_order("nope") is None


def test_store_insert_order_with_the_same_cl_ord_id_twice_returns_false(store: OrderStore) -> None:
    assert store.insert_order(make_order()) is True

    assert store.insert_order(make_order(quantity=D("5000"))) is False
    assert store.get_order("ord-1").quantity == D("10000")  # type: ignore[union-attr]


def test_store_save_order_updates_the_row(store: OrderStore) -> None:
    store.insert_order(make_order())
    moved = make_order().moved_to(S.NEW, order_id="101")

    store.save_order(moved)

    assert store.get_order("ord-1") == moved


def test_store_record_execution_with_the_same_key_twice_stores_one_row(store: OrderStore) -> None:
    order = make_order()
    store.insert_order(order)
    filled = order.moved_to(S.FILLED, order_id="101", cum_qty=D("10000"), avg_px=D("1.0674"))
    report = make_report(status=S.FILLED, cum_qty=D("10000"), avg_px=D("1.0674"), raw="35=8|...")
    fill = Fill(
        fill_id="k",
        cl_ord_id="ord-1",
        order_id="101",
        symbol_id=1,
        side=Side.BUY,
        quantity=D("10000"),
        price=D("1.0674"),
        time=T0,
    )

    first = store.record_execution(filled, "filled", report, fill, "fix:101|F|2")
    second = store.record_execution(filled, "filled", report, fill, "fix:101|F|2")

    assert isinstance(first, int)
    assert second is None
    (row,) = store.executions("ord-1")
    assert (row["fill_qty"], row["fill_price"], row["status"]) == (D("10000"), D("1.0674"), "filled")
    assert row["transact_time"] == T0
    assert store.has_execution("fix:101|F|2")
    assert store.get_order("ord-1") == filled


def test_store_record_execution_refused_as_duplicate_leaves_the_order_unchanged(store: OrderStore) -> None:
    order = make_order()
    store.insert_order(order)
    accepted = order.moved_to(S.NEW, order_id="101")
    store.record_execution(accepted, "accepted", make_report(), None, "fix:101|0|0")

    duplicate = accepted.moved_to(S.CANCELLED)
    assert store.record_execution(duplicate, "cancelled", None, None, "fix:101|0|0") is None

    assert store.get_order("ord-1").status is S.NEW  # type: ignore[union-attr]


def test_store_open_orders_returns_only_open_statuses(store: OrderStore) -> None:
    for number, status in enumerate(S):
        store.insert_order(make_order(cl_ord_id=f"ord-{number}", status=status))

    open_statuses = {order.status for order in store.open_orders()}

    assert open_statuses == {
        S.PENDING_NEW,
        S.NEW,
        S.PARTIALLY_FILLED,
        S.PENDING_CANCEL,
        S.PENDING_REPLACE,
        S.UNKNOWN,
    }


def test_store_insert_request_finds_the_order_by_request_id_in_its_pending_state(store: OrderStore) -> None:
    store.insert_order(limit_order())
    request = OrderRequest(
        request_id="rpl-1",
        cl_ord_id="ord-1",
        kind=RequestKind.REPLACE,
        quantity=D("20000"),
        price=D("1.1"),
        created_at=T0,
    )
    pending = limit_order().moved_to(S.PENDING_REPLACE, pending_request_id="rpl-1")

    store.insert_request(request, pending)

    assert store.order_for_request("rpl-1") == pending
    assert store.get_request("rpl-1") == request
    assert store.requests() == [request]
    assert store.order_for_request("rpl-2") is None


def test_store_order_by_venue_id_finds_the_order(store: OrderStore) -> None:
    store.insert_order(limit_order("ord-1", order_id="641"))
    store.insert_order(limit_order("ord-2", order_id="642"))

    found = store.order_by_venue_id("642")

    assert found is not None
    assert found.cl_ord_id == "ord-2"
    assert store.order_by_venue_id("999") is None


def test_store_replace_positions_replaces_the_whole_set(store: OrderStore) -> None:
    old = Position(position_id="101", symbol_id=1, side=PositionSide.LONG, quantity=D("1000"), updated_at=T0)
    kept = Position(position_id="102", symbol_id=1, side=PositionSide.LONG, quantity=D("1000"), updated_at=T0)
    store.replace_positions([old, kept])
    new = Position(
        position_id="721",
        symbol_id=1,
        side=PositionSide.SHORT,
        quantity=D("30000"),
        entry_price=D("1.06671"),
        updated_at=T0,
    )

    store.replace_positions([kept, new])

    assert store.positions() == [kept, new]


def test_store_replace_positions_with_nothing_empties_the_set(store: OrderStore) -> None:
    store.replace_positions([Position(position_id="1", symbol_id=1, side=PositionSide.LONG, quantity=D(1))])

    store.replace_positions([])

    assert store.positions() == []


def test_store_replace_instruments_replaces_the_list(store: OrderStore) -> None:
    store.replace_instruments([Instrument(symbol_id=1, name="EURUSD", digits=5)])
    current = [
        Instrument(symbol_id=39, name="NZDCHF", digits=4),
        Instrument(symbol_id=10026, name="XAUUSD", digits=2),
    ]

    store.replace_instruments(current)

    assert sorted(store.instruments(), key=lambda i: i.symbol_id) == current


def test_recording_an_execution_for_an_unknown_order_is_an_error_not_a_duplicate(store: OrderStore) -> None:
    with pytest.raises(StoreError):
        store.record_execution(make_order(cl_ord_id="ghost"), "accepted", None, None, "k-ghost")
    assert not store.has_execution("k-ghost")


def test_store_refuses_a_value_longer_than_its_column_on_every_backend(
    store: OrderStore,
) -> None:
    order = make_order()
    store.insert_order(order)
    absurd = order.moved_to(S.NEW, order_id="9" * 10_000)

    with pytest.raises(UnstorableData, match=r"executions\.order_id would be 10000 characters"):
        store.record_execution(absurd, "accepted", make_report(order_id=absurd.order_id), None, "k1")

    assert store.get_order(order.cl_ord_id) == order
    assert store.executions() == []


@pytest.mark.postgres
def test_store_maps_a_value_postgresql_refuses_to_unstorable_not_to_an_outage(
    postgresql_store: OrderStore,
) -> None:
    order = make_order()
    postgresql_store.insert_order(order)
    accepted = order.moved_to(S.NEW, order_id="101")

    with pytest.raises(UnstorableData, match="the database refused a value"):
        postgresql_store.record_execution(accepted, "accepted", make_report(text="a\x00b"), None, "k1")

    assert postgresql_store.executions() == []


def test_store_keeps_a_report_set_aside_whole_with_its_error(store: OrderStore) -> None:
    raw = "8=FIX.4.4\x0135=8\x0137=" + "9" * 10_000

    row = store.set_aside("ExecutionReport", "fix:1", raw, "orders.order_id would be 10000 characters")

    (kept,) = store.reports_set_aside()
    assert kept["id"] == row and kept["raw"] == raw and kept["dedupe_key"] == "fix:1"
    assert kept["report_type"] == "ExecutionReport" and "order_id" in kept["error"]


def test_an_id_a_request_used_before_client_ids_existed_is_refused_for_a_new_order(store: OrderStore) -> None:
    """A store from before client_ids holds requests with no claim: their ids stay taken."""
    store.insert_order(limit_order("ord-1"))
    with store.engine.begin() as conn:
        conn.execute(
            schema.order_requests.insert(),
            {
                "account": store.account,
                "request_id": "old-cancel",
                "cl_ord_id": "ord-1",
                "kind": "cancel",
                "created_at": T0,
            },
        )
    opened = OrderStore(store.url, account=store.account)  # the old store, opened by this version
    try:
        with pytest.raises(ClientIdInUse, match="old-cancel"):
            opened.insert_order(limit_order("old-cancel"))
        assert opened.client_id_usage("old-cancel") == ("cancel", "ord-1")  # no claim was left behind
        assert opened.get_order("old-cancel") is None
    finally:
        opened.close()


def test_an_order_stored_before_client_ids_existed_is_found_again_as_the_callers_retry(
    store: OrderStore,
) -> None:
    old = limit_order("old-order")
    store.insert_order(old)
    with store.engine.begin() as conn:
        ids = schema.client_ids.c
        conn.execute(schema.client_ids.delete().where(ids.client_id == "old-order"))
    assert store.insert_order(old) is False


def test_a_command_id_is_new_once_then_a_redelivery_for_the_same_command_and_refused_for_another(
    store: OrderStore,
) -> None:
    assert store.first_use_of_command("momo", "cmd-1", "digest-a")
    assert store.first_use_of_command("momo", "cmd-1", "digest-a")  # the same command, delivered again
    assert not store.first_use_of_command("momo", "cmd-1", "digest-b")  # another command, same id
    assert store.first_use_of_command("other", "cmd-1", "digest-b")  # ids are each strategy's own


def test_a_command_id_recorded_with_its_order_is_one_write_and_a_reuse_for_another_order_stores_nothing(
    store: OrderStore,
) -> None:
    placing = CommandUse("momo", "cmd-1", "digest-a")
    assert store.insert_order(limit_order("A-1"), None, placing) is True
    assert not store.first_use_of_command("momo", "cmd-1", "digest-b")  # recorded with the order
    assert store.first_use_of_command("momo", "cmd-1", "digest-a")

    with pytest.raises(CommandIdReused, match="command id cmd-1 was used before"):
        store.insert_order(limit_order("B-1"), None, CommandUse("momo", "cmd-1", "digest-b"))
    assert store.get_order("B-1") is None and store.client_id_usage("B-1") is None

    assert store.insert_order(limit_order("A-1"), None, placing) is False  # a redelivery: its order
    # Recorded by a refusal before (no order then), the same command places its order now.
    store.first_use_of_command("momo", "cmd-2", "digest-c")
    assert store.insert_order(limit_order("C-1"), None, CommandUse("momo", "cmd-2", "digest-c")) is True


def test_a_reused_command_id_inside_a_batch_aborts_it_and_is_refused_alone(store: OrderStore) -> None:
    store.first_use_of_command("momo", "cmd-1", "digest-a")
    with pytest.raises(BatchAborted), store.batch():
        store.first_use_of_command("momo", "cmd-2", "digest-c")
        store.first_use_of_command("momo", "cmd-1", "digest-b")
    assert not store.first_use_of_command("momo", "cmd-1", "digest-b")
    assert store.first_use_of_command("momo", "cmd-2", "digest-d")  # the aborted batch kept nothing


@pytest.mark.postgres
def test_a_write_on_a_connection_postgresql_dropped_fails_the_batch_and_the_next_write_reconnects(
    postgresql_store: OrderStore, postgres_url: str
) -> None:
    """The order path's writes run on the driver's cursor (driver_statements.py): a connection the server
    ended is reported as Core reports it (invalidated, so the pool never hands it out again)."""
    backends: list[int] = []

    def checked_out(dbapi: Any, _record: object, _proxy: object) -> None:
        backends.append(dbapi.info.backend_pid)

    event.listen(postgresql_store.engine, "checkout", checked_out)
    admin = create_engine(postgres_url)
    order = make_order(cl_ord_id="ord-1")
    try:
        with pytest.raises(BatchAborted) as aborted, postgresql_store.batch():
            postgresql_store.insert_order(order)
            with admin.begin() as conn:
                conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": backends[-1]})
            accepted = order.moved_to(S.NEW, order_id="101")
            postgresql_store.record_execution(accepted, "accepted", None, None, "k1")
    finally:
        admin.dispose()

    cause = aborted.value.__cause__
    assert isinstance(cause, OperationalError) and cause.connection_invalidated
    postgresql_store.insert_order(make_order(cl_ord_id="ord-2"))
    assert postgresql_store.get_order("ord-1") is None  # the batch never committed
    assert postgresql_store.get_order("ord-2") is not None


def test_a_duplicate_claim_on_the_driver_path_is_the_integrity_error_core_raises(store: OrderStore) -> None:
    store.insert_order(make_order(cl_ord_id="ord-1"))

    assert store.insert_order(make_order(cl_ord_id="ord-1")) is False  # the retry, found by the claim's key
    with pytest.raises(ClientIdInUse):
        store.insert_request(
            OrderRequest(request_id="ord-1", cl_ord_id="ord-1", kind=RequestKind.CANCEL),
            make_order(cl_ord_id="ord-1").moved_to(S.PENDING_CANCEL, pending_request_id="ord-1"),
        )
