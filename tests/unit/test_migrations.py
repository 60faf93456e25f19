"""Specification of the schema versions (fixadapter.store.migrations) and of one store shared by accounts,
on SQLite and, when FIXADAPTER_TEST_POSTGRES_URL is set, PostgreSQL (a schema of its own per test)."""

from __future__ import annotations

import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, text

from fixadapter.compliance.chain import verify
from fixadapter.compliance.writer import ComplianceWriter
from fixadapter.errors import ClientIdInUse, SchemaBehind
from fixadapter.model.enums import OrderStatus, OrderType, PositionSide, RequestKind, TimeInForce
from fixadapter.model.orders import OrderRequest, Position
from fixadapter.model.reports import Instrument
from fixadapter.protocols.openapi.messages import PAYLOAD_TYPES
from fixadapter.store import migrations, schema
from fixadapter.store.migrations import COMPLIANCE, STORE
from fixadapter.store.repository import OrderStore, make_engine
from tests.data.migrations.legacy import (
    fix_records,
    legacy_contents,
    read_contents,
    stored_records,
    write_legacy_compliance,
    write_legacy_store,
)
from tests.unit.conftest import T0, make_order, make_report

D = Decimal
S = OrderStatus
STORE_TABLE_NAMES = {table.name for table in schema.STORE_TABLES}


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return str(request.getfixturevalue("pg_schema_url"))


@pytest.fixture
def engine(url: str) -> Any:
    engine = make_engine(url)
    yield engine
    engine.dispose()


def differences(engine: Engine) -> list[Any]:
    """What the database's store tables lack or have beyond schema.py (Alembic's autogenerate compare)."""

    def store_table(obj: Any, name: str | None, type_: str, _reflected: bool, _other: Any) -> bool:
        table = name if type_ == "table" else obj.table.name
        return table in STORE_TABLE_NAMES

    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_object": store_table, "compare_type": True})
        return list(compare_metadata(context, schema.metadata))


def version_rows(engine: Engine, table: str) -> list[str]:
    with engine.connect() as conn:
        return [row[0] for row in conn.execute(text(f"SELECT version_num FROM {table}"))]  # noqa: S608


def test_a_new_empty_store_is_created_at_head_by_the_first_store_that_uses_it(
    url: str, engine: Engine
) -> None:
    store = OrderStore(url)
    store.create_schema()
    store.close()

    assert migrations.state(engine, STORE).at_head
    assert version_rows(engine, "alembic_version") == [STORE.head()]
    assert differences(engine) == []


def test_a_store_of_before_versions_is_refused_naming_the_upgrade_command_and_left_as_it_was(
    url: str, engine: Engine
) -> None:
    write_legacy_store(url)
    before = legacy_contents(url)

    store = OrderStore(url)
    with pytest.raises(SchemaBehind) as refused:
        store.create_schema()
    store.close()

    assert "made before schema versions" in str(refused.value)
    assert "fixadapter db upgrade --config FILE" in str(refused.value)
    assert "alembic_version" not in inspect(engine).get_table_names()
    assert legacy_contents(url) == before


def test_upgrading_a_store_of_before_versions_ends_at_exactly_the_tables_of_schema_py(
    url: str, engine: Engine
) -> None:
    write_legacy_store(url)
    lines: list[str] = []

    found = migrations.upgrade(engine, STORE, progress=lines.append)

    assert found.revision is None and found.tables
    assert differences(engine) == []
    assert version_rows(engine, "alembic_version") == [STORE.head()]
    assert any("applied 0001_baseline" in line for line in lines)
    assert any("applied 0002_account" in line for line in lines)
    assert lines[-1] == f"store schema upgraded to {STORE.head()}"


def test_upgrading_keeps_every_row_for_the_account_given_and_a_second_upgrade_changes_nothing(
    url: str, engine: Engine
) -> None:
    write_legacy_store(url)
    before = legacy_contents(url)

    migrations.upgrade(engine, STORE, account="desk_1")
    lines: list[str] = []
    again = migrations.upgrade(engine, STORE, account="desk-2", progress=lines.append)

    assert again.at_head
    assert lines[-1] == "store schema is up to date"
    desk1, default = OrderStore(url, account="desk_1"), OrderStore(url)
    assert read_contents(desk1) == before
    assert default.orders() == [] and default.positions() == [] and default.last_event_seq() == 0
    desk1.close()
    default.close()


def test_a_store_missing_a_table_of_the_baseline_gets_it_on_upgrade(url: str, engine: Engine) -> None:
    write_legacy_store(url)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE queue_command_ids"))
        conn.execute(text("DROP INDEX ix_orders_status"))
    lines: list[str] = []

    migrations.upgrade(engine, STORE, progress=lines.append)

    assert differences(engine) == []
    assert "store: created table queue_command_ids" in lines
    assert "store: created index ix_orders_status" in lines


def test_stores_started_at_once_on_an_empty_database_create_it_once(url: str, engine: Engine) -> None:
    errors: list[BaseException] = []

    def start() -> None:
        store = OrderStore(url)
        try:
            store.create_schema()
        except BaseException as exc:  # collected: the assertion below names it
            errors.append(exc)
        finally:
            store.close()

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert version_rows(engine, "alembic_version") == [STORE.head()]


# -- one store, several accounts -------------------------------------------------------------------------


@pytest.fixture
def desks(url: str) -> Any:
    a, b = OrderStore(url, account="desk-a"), OrderStore(url, account="desk-b")
    a.create_schema()
    b.create_schema()
    yield a, b
    a.close()
    b.close()


def test_two_accounts_on_one_store_may_use_the_same_cl_ord_id_and_each_sees_only_its_own_order(
    desks: tuple[OrderStore, OrderStore],
) -> None:
    a, b = desks
    mine, theirs = make_order(cl_ord_id="ord-1"), make_order(cl_ord_id="ord-1", quantity=D(20000))

    assert a.insert_order(mine) and b.insert_order(theirs)

    assert a.get_order("ord-1") == mine and b.get_order("ord-1") == theirs
    assert a.orders() == [mine] and b.orders() == [theirs]
    assert a.open_orders() == [mine] and b.open_orders() == [theirs]
    assert not a.insert_order(mine)  # a retry within the account is still the same order


def test_two_accounts_keep_their_executions_and_events_apart_even_with_the_same_dedupe_key(
    desks: tuple[OrderStore, OrderStore],
) -> None:
    a, b = desks
    order = make_order(cl_ord_id="ord-1")
    a.insert_order(order)
    b.insert_order(order)
    accepted = order.moved_to(S.NEW, order_id="101")

    first = a.record_execution(accepted, "accepted", make_report(), None, "fix:101|0|0")
    second = b.record_execution(accepted, "accepted", make_report(), None, "fix:101|0|0")

    assert first is not None and second is not None and first != second
    assert [row["id"] for row in a.executions()] == [first]
    assert [row["id"] for row in b.executions()] == [second]
    assert [event.seq for event in a.events_since(0)] == [first]
    assert [event.seq for event in b.events_since(0)] == [second]
    assert (a.last_event_seq(), b.last_event_seq()) == (first, second)
    assert a.has_execution("fix:101|0|0") and b.execution("fix:101|0|0") is not None
    other = OrderStore(a.url, account="desk-c")
    assert not other.has_execution("fix:101|0|0") and other.events_since(0) == []
    other.close()


def test_two_accounts_keep_their_positions_instruments_and_reports_set_aside_apart(
    desks: tuple[OrderStore, OrderStore],
) -> None:
    a, b = desks
    long = Position(position_id="721", symbol_id=1, side=PositionSide.LONG, quantity=D(1), updated_at=T0)
    short = Position(position_id="721", symbol_id=1, side=PositionSide.SHORT, quantity=D(2), updated_at=T0)
    a.replace_positions([long])
    b.replace_positions([short])
    a.replace_instruments([Instrument(symbol_id=1, name="EURUSD", digits=5)])
    b.replace_instruments([Instrument(symbol_id=1, name="EURUSD.b", digits=4)])
    a.set_aside("execution_report", "k", "raw", "bad")

    a.put_position("721", None)  # closed on account a only

    assert a.positions() == [] and b.positions() == [short]
    assert [i.name for i in a.instruments()] == ["EURUSD"] and [i.name for i in b.instruments()] == [
        "EURUSD.b"
    ]
    assert len(a.reports_set_aside()) == 1 and b.reports_set_aside() == []
    b.replace_positions([])
    assert b.positions() == []


def test_ids_are_claimed_per_account(desks: tuple[OrderStore, OrderStore]) -> None:
    a, b = desks
    order = make_order(cl_ord_id="ord-1", status=S.NEW, order_id="101")
    a.insert_order(order)
    b.insert_order(make_order(cl_ord_id="cxl-1"))
    request = OrderRequest(request_id="cxl-1", cl_ord_id="ord-1", kind=RequestKind.CANCEL, created_at=T0)

    a.insert_request(request, order.moved_to(S.PENDING_CANCEL, pending_request_id="cxl-1"))

    assert a.client_id_usage("cxl-1") == ("cancel", "ord-1")
    assert b.client_id_usage("cxl-1") == ("order", "cxl-1")
    assert a.order_for_request("cxl-1") is not None and b.order_for_request("cxl-1") is None
    assert a.get_request("cxl-1") == request and b.get_request("cxl-1") is None
    assert b.requests() == [] and a.requests() == [request]
    with pytest.raises(ClientIdInUse):
        a.insert_order(make_order(cl_ord_id="cxl-1"))
    assert a.order_by_venue_id("101") is not None and b.order_by_venue_id("101") is None


def test_a_store_refuses_an_account_name_its_column_cannot_hold(url: str) -> None:
    with pytest.raises(Exception, match="1 to 64 characters"):
        OrderStore(url, account="x" * 65)


# -- the compliance record's history ---------------------------------------------------------------------


def test_a_new_compliance_database_is_created_at_head_by_its_writer(url: str, engine: Engine) -> None:
    ComplianceWriter(engine).append_many(fix_records(3))

    assert migrations.state(engine, COMPLIANCE).at_head
    assert version_rows(engine, "fix_messages_version") == [COMPLIANCE.head()]


def test_a_compliance_database_of_before_versions_is_refused_naming_the_upgrade_command(
    url: str, engine: Engine
) -> None:
    write_legacy_compliance(url, 10)
    before = stored_records(url)

    with pytest.raises(SchemaBehind, match="fixadapter db upgrade"):
        ComplianceWriter(engine)

    assert stored_records(url) == before


def test_a_compliance_database_of_before_versions_keeps_its_chains_through_the_upgrade(
    url: str, engine: Engine
) -> None:
    write_legacy_compliance(url, 10)
    before = stored_records(url)
    lines: list[str] = []

    migrations.upgrade(engine, COMPLIANCE, progress=lines.append)
    ComplianceWriter(engine).append_many(fix_records(12)[10:])

    assert any("applied 0002_msg_type_64" in line for line in lines)

    assert version_rows(engine, "fix_messages_version") == [COMPLIANCE.head()]
    after = stored_records(url)
    assert [r for r in after if r.id in {b.id for b in before}] == before
    report = verify(engine)
    assert report.first_problem is None
    assert sum(chain.records for chain in report.chains) == 12


def test_an_upgraded_compliance_database_holds_the_longest_open_api_payload_type_name(
    url: str, engine: Engine
) -> None:
    write_legacy_compliance(url, 2)
    migrations.upgrade(engine, COMPLIANCE)
    longest = max((cls.__name__ for cls in PAYLOAD_TYPES.values()), key=len)
    record = fix_records(3)[2].model_copy(update={"msg_type": longest, "session": "OPENAPI"})

    ComplianceWriter(engine).append_many([record])

    assert [r.msg_type for r in stored_records(url) if r.session == "OPENAPI"] == [longest]
    assert verify(engine).intact


# -- 0003_order_fields -----------------------------------------------------------------------------------


def test_a_store_at_0002_upgrades_keeping_its_orders_which_ask_none_of_the_new_fields(
    url: str, engine: Engine
) -> None:
    from alembic import command

    write_legacy_store(url)
    with migrations._locked(engine) as conn:
        command.upgrade(STORE.config(conn, "default", lambda _line: None), "0002_account")
    assert migrations.state(engine, STORE).revision == "0002_account"
    lines: list[str] = []

    migrations.upgrade(engine, STORE, progress=lines.append)

    assert differences(engine) == []
    assert any("applied 0003_order_fields" in line for line in lines)
    store = OrderStore(url)
    before = read_contents(store)
    assert before.orders and all(
        (o.time_in_force, o.stop_loss, o.stop_loss_distance, o.trailing_stop_loss, o.comment)
        == (None, None, None, False, None)
        for o in before.orders
    )
    store.close()


def test_an_order_with_every_new_field_round_trips_through_the_store(url: str) -> None:
    store = OrderStore(url)
    store.create_schema()
    order = make_order(
        cl_ord_id="sl-1",
        order_type=OrderType.STOP_LIMIT,
        price=D("1.0950"),
        stop_price=D("1.09"),
        expire_time=T0,
        time_in_force=TimeInForce.GOOD_TILL_DATE,
        stop_loss=D("1.07"),
        take_profit_distance=D("0.0040"),
        trailing_stop_loss=True,
        comment="x" * 512,
    )
    assert store.insert_order(order)
    assert store.get_order("sl-1") == order
    assert store.orders() == [order]
    moved = order.moved_to(S.NEW, order_id="101")
    store.record_execution(moved, "accepted", make_report(cl_ord_id="sl-1"), None, "k-1")
    assert [event.order.comment for event in store.events_since(0)] == ["x" * 512]
    assert store.events_since(0)[0].order.take_profit_distance == D("0.0040")
    store.close()
