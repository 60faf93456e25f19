"""Specification of capture: the QuickFIX Log hand-off, masking, the masked log files, the spill and the
recorder that ties them to `fix_messages` (SQLite here; PostgreSQL in tests/integration)."""

from __future__ import annotations

import gzip
import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import quickfix as fix
from sqlalchemy import Engine, event, func, select

from fixadapter.compliance.capture import (
    MessageRecorder,
    log_directory,
    maybe_secret,
    to_record,
    with_timeouts,
)
from fixadapter.compliance.chain import verify
from fixadapter.compliance.files import LogFiles
from fixadapter.compliance.records import Direction, FixRecord
from fixadapter.compliance.spill import Spill, record_progress, spill_name
from fixadapter.compliance.table import fix_messages, fix_messages_spill, iter_records
from fixadapter.compliance.writer import ComplianceWriter
from fixadapter.config import ComplianceConfig, build_config, load_config
from fixadapter.connectors.fix.application import EngineLogFactory
from fixadapter.connectors.fix.kinds import SessionKind
from fixadapter.errors import StoreError
from fixadapter.logs import mask_secrets
from fixadapter.metrics import Metrics
from fixadapter.store.repository import make_engine

SOH = "\x01"
PASSWORD = "s3cret-pass"  # noqa: S105 - a test value
LOGON = SOH.join(
    ["8=FIX.4.4", "9=90", "35=A", "34=1", "49=me", "56=CSERVER", "553=1", f"554={PASSWORD}", "10=1", ""]
)
QUOTE_ID = fix.SessionID("FIX.4.4", "demo.sim.1234567", "CSERVER", "QUOTE")


def message(msg_type: str, seq: int, *body: str) -> str:
    fields = ["8=FIX.4.4", "9=50", f"35={msg_type}", f"34={seq}", "49=me", "56=CSERVER", *body, "10=000"]
    return SOH.join(fields) + SOH


def sample(seq: int) -> FixRecord:
    return to_record(time.time(), "TRADE", "out", message("D", seq, f"11=c{seq}"))


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    # timeout=0.2: a locked database fails fast instead of waiting pysqlite's 5 s
    made = make_engine(f"sqlite:///{tmp_path / 'log.db'}?timeout=0.2")
    yield made
    made.dispose()


def recorder_for(
    engine: Engine | None, directory: Path, metrics: Metrics | None = None, **settings: object
) -> MessageRecorder:
    config = ComplianceConfig(**{"flush_interval_ms": 10, **settings})  # type: ignore[arg-type]
    return MessageRecorder(
        config, directory, engine, metrics, retry_initial_seconds=0.01, retry_max_seconds=0.05
    )


def table_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(fix_messages)).scalar_one())


def sample_value(metrics: Metrics, name: str, labels: dict[str, str] | None = None) -> float:
    return metrics.value(name, labels or {}) or 0.0


# -- masking and reading tags -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        LOGON,
        "554=x",
        "password: hunter2",
        "PASSWD=1",
        "access_token=a",
        '{"refresh_token": "r"}',
        "clientSecret: abc",
        "Token=abc",
        repr("553=1\x01554=x\x01"),
    ],
)
def test_secret_pre_check_matches_everything_mask_secrets_would_change(text: str) -> None:
    assert mask_secrets(text) != text
    assert maybe_secret(text)


def test_to_record_masks_the_password_and_reads_the_indexed_tags() -> None:
    logon = to_record(0.0, "TRADE", "out", LOGON)
    cancel = to_record(0.5, "TRADE", "out", message("F", 7, "11=c2", "41=c1", "37=900"))

    assert PASSWORD not in logon.raw and f"{SOH}554=******{SOH}" in logon.raw
    assert (logon.msg_type, logon.seq_num, logon.direction) == ("A", 1, Direction.OUTBOUND)
    assert (cancel.cl_ord_id, cancel.orig_cl_ord_id, cancel.order_id) == ("c2", "c1", "900")
    assert cancel.time == datetime(1970, 1, 1, 0, 0, 0, 500000, tzinfo=UTC)


def test_to_record_masks_a_token_in_free_text_without_swallowing_the_next_fields() -> None:
    record = to_record(0.0, "TRADE", "in", message("3", 2, "58=invalid token: abc", "45=1"))

    assert "abc" not in record.raw and f"{SOH}45=1{SOH}10=000{SOH}" in record.raw


def test_to_record_keeps_a_garbled_message_whole() -> None:
    record = to_record(0.0, "QUOTE", "in", "8=FIX.4.4\x019=5\x0134=x\x00y")

    assert (record.msg_type, record.seq_num) == ("", None)
    assert record.raw == "8=FIX.4.4\x019=5\x0134=x\\x00y"


def test_with_timeouts_bounds_postgresql_and_leaves_sqlite_alone() -> None:
    url = with_timeouts("postgresql+psycopg://u@h/db?options=-csearch_path%3Ds", 2.5)

    assert "connect_timeout=2" in url and "tcp_user_timeout=2500" in url
    assert "statement_timeout%3D2500" in url and "search_path" in url
    assert with_timeouts("sqlite:///x.db", 2.5) == "sqlite:///x.db"


def test_log_directory_sits_next_to_a_sqlite_store_unless_configured(tmp_path: Path) -> None:
    account = {"host": "h", "sender_comp_id": "s", "username": "1", "password": "p"}
    near = build_config({"account": account, "store": {"url": f"sqlite:///{tmp_path}/a.db"}}, environ={})
    chosen = build_config({"account": account, "compliance": {"directory": "/srv/fix"}}, environ={})

    assert log_directory(near) == tmp_path / "fixlog"
    assert log_directory(chosen) == Path("/srv/fix")


# -- the QuickFIX Log ---------------------------------------------------------------------------------


class Offers:
    def __init__(self, fail: bool = False) -> None:
        self.messages: list[tuple[str, str, str]] = []
        self.events: list[tuple[str, str]] = []
        self.prefixes: dict[str, str] = {}
        self.fail = fail

    def offer(self, session: str, direction: str, text: str) -> None:
        if self.fail:
            raise RuntimeError("recorder exploded")
        self.messages.append((session, direction, text))

    def offer_event(self, session: str, text: str) -> None:
        self.events.append((session, text))

    def register_session(self, session: str, prefix: str) -> None:
        self.prefixes[session] = prefix


def test_engine_log_hands_every_message_and_event_to_the_recorder() -> None:
    offers, lost = Offers(), []
    factory = EngineLogFactory(Metrics(), on_lost=lost.append, recorder=offers)
    engine_log = factory.create(QUOTE_ID)

    engine_log.onOutgoing(LOGON)
    engine_log.onIncoming("8=FIX.4.4\x0135=0\x01")
    engine_log.onEvent("Invalid message: garbled")

    assert offers.prefixes == {"QUOTE": "FIX.4.4-demo.sim.1234567-CSERVER-QUOTE"}
    assert offers.messages == [("QUOTE", "out", LOGON), ("QUOTE", "in", "8=FIX.4.4\x0135=0\x01")]
    assert offers.events == [("QUOTE", "Invalid message: garbled")]
    assert lost == [SessionKind.QUOTE]  # the garbled-message path still works


def test_engine_log_with_a_failing_recorder_counts_the_error_and_returns() -> None:
    metrics = Metrics()
    engine_log = EngineLogFactory(metrics, recorder=Offers(fail=True)).create(QUOTE_ID)

    engine_log.onIncoming(LOGON)

    assert sample_value(metrics, "fixadapter_callback_errors_total", {"where": "log"}) == 1


# -- log files --------------------------------------------------------------------------------------------


def test_log_files_write_quickfix_lines_per_session_and_day_then_roll_by_size(tmp_path: Path) -> None:
    files = LogFiles(tmp_path, max_bytes=1024)
    files.register("TRADE", "FIX.4.4-me-CSERVER-TRADE")
    day_one = datetime(2025, 3, 4, 23, 59, 59, 999999, tzinfo=UTC)

    files.write("TRADE", "messages", day_one, "8=FIX.4.4\x0135=0\x01")
    files.write("TRADE", "messages", day_one + timedelta(seconds=1), "x" * 2000)
    files.write("TRADE", "messages", day_one + timedelta(seconds=2), "after the roll")
    files.close()

    first = (tmp_path / "FIX.4.4-me-CSERVER-TRADE.messages.20250304.log").read_text()
    assert first == "20250304-23:59:59.999999000 : 8=FIX.4.4\x0135=0\x01\n"
    assert (tmp_path / "FIX.4.4-me-CSERVER-TRADE.messages.20250305.log").stat().st_size > 2000
    assert "after the roll" in (tmp_path / "FIX.4.4-me-CSERVER-TRADE.messages.20250305.1.log").read_text()


def test_log_files_compress_old_days_and_delete_nothing(tmp_path: Path) -> None:
    files = LogFiles(tmp_path)
    for day in (1, 3, 4):
        files.write("TRADE", "messages", datetime(2025, 3, day, tzinfo=UTC), f"day {day}")
    files.close()

    assert files.compress_older_than(2, today=date(2025, 3, 4)) == 1

    names = sorted(path.name for path in tmp_path.iterdir())
    assert names == [
        "TRADE.messages.20250301.log.gz",
        "TRADE.messages.20250303.log",
        "TRADE.messages.20250304.log",
    ]
    assert b"day 1" in gzip.decompress((tmp_path / names[0]).read_bytes())


# -- spill ---------------------------------------------------------------------------------------------------


def test_spill_loads_in_order_and_exactly_once_across_a_crash_mid_load(
    engine: Engine, tmp_path: Path
) -> None:
    spill, writer, rejected = Spill(tmp_path / "spill"), ComplianceWriter(engine), []
    spill.append([sample(seq) for seq in range(1, 6)])
    spill.append([sample(seq) for seq in range(6, 11)])

    assert spill.load_chunk(writer, 4, lambda *r: rejected.append(r)) == 4
    spill.close()  # the process dies: 4 rows and the ledger committed, the file still there

    again = Spill(tmp_path / "spill")
    while again.pending:
        again.load_chunk(writer, 4, lambda *r: rejected.append(r))

    assert [r.seq_num for r in iter_records(engine)] == list(range(1, 11))
    assert verify(engine).intact and rejected == []
    assert list((tmp_path / "spill").glob("spill-*")) == []


def test_spill_fully_loaded_before_a_crash_is_not_loaded_again(engine: Engine, tmp_path: Path) -> None:
    spill, writer = Spill(tmp_path / "spill"), ComplianceWriter(engine)
    spill.append([sample(seq) for seq in range(1, 4)])
    assert spill.load_chunk(writer, 10, print) == 3
    spill.close()  # dies before it saw the end of the file and deleted it

    again = Spill(tmp_path / "spill")
    assert again.load_chunk(writer, 10, print) == 0

    assert table_count(engine) == 3 and not again.pending


def test_spill_of_records_whose_commit_succeeded_unseen_skips_them(engine: Engine, tmp_path: Path) -> None:
    """The connection died after COMMIT: the insert looked failed, so its records also went to the spill."""
    spill, writer = Spill(tmp_path / "spill"), ComplianceWriter(engine)
    name, committed = spill_name(), [sample(1), sample(2)]
    with engine.begin() as conn:
        writer.insert_chained(conn, committed, then=lambda c: record_progress(c, name, len(committed)))
    spill.append(committed, name)
    spill.append([sample(3)])

    while spill.pending:
        spill.load_chunk(writer, 10, print)

    assert [r.seq_num for r in iter_records(engine)] == [1, 2, 3]
    assert verify(engine).intact


def test_spill_sets_a_torn_line_aside_and_loads_the_rest(engine: Engine, tmp_path: Path) -> None:
    spill, rejected = Spill(tmp_path / "spill"), []
    spill.append([sample(1), sample(2)])
    spill.close()
    path = next((tmp_path / "spill").glob("spill-*"))
    with path.open("ab") as handle:
        handle.write(b'{"time": "2025-')  # the crash came mid-write

    again = Spill(tmp_path / "spill")
    while again.pending:
        again.load_chunk(ComplianceWriter(engine), 10, lambda *r: rejected.append(r))

    assert table_count(engine) == 2
    assert len(rejected) == 1 and "line 3" in rejected[0][1]


def test_spill_load_during_a_database_failure_consumes_nothing(engine: Engine, tmp_path: Path) -> None:
    spill, writer = Spill(tmp_path / "spill"), ComplianceWriter(engine)
    spill.append([sample(1), sample(2)])
    locker = sqlite3.connect(tmp_path / "log.db")
    locker.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(Exception, match="locked"):
            spill.load_chunk(writer, 10, print)
    finally:
        locker.rollback()
        locker.close()

    while spill.pending:
        spill.load_chunk(writer, 10, print)
    assert [r.seq_num for r in iter_records(engine)] == [1, 2]


# -- the recorder ------------------------------------------------------------------------------------


def test_recorder_writes_masked_files_and_chained_rows(engine: Engine, tmp_path: Path) -> None:
    metrics = Metrics()
    recorder = recorder_for(engine, tmp_path / "fixlog", metrics)
    recorder.register_session("TRADE", "FIX.4.4-me-CSERVER-TRADE")
    recorder.start()

    recorder.offer("TRADE", "out", LOGON)
    recorder.offer("TRADE", "in", message("A", 1))
    recorder.offer_event("TRADE", "Received logon response")
    assert recorder.flush()
    recorder.close()

    rows = list(iter_records(engine))
    assert [(r.msg_type, r.direction) for r in rows] == [("A", Direction.OUTBOUND), ("A", Direction.INBOUND)]
    assert verify(engine).intact
    texts = "".join(path.read_text() for path in (tmp_path / "fixlog").glob("*.log"))
    assert "554=******" in texts and "Received logon response" in texts
    assert PASSWORD not in texts and all(PASSWORD not in r.raw for r in rows)
    with engine.connect() as conn:  # one batch's exactly-once mark at most, removed by the next batch
        assert conn.execute(select(func.count()).select_from(fix_messages_spill)).scalar_one() <= 1
    recorded = "fixadapter_compliance_messages_recorded_total"
    assert sample_value(metrics, recorded, {"store": "database"}) == 2
    assert sample_value(metrics, recorded, {"store": "file"}) == 2


def test_recorder_spills_while_the_database_is_locked_and_loads_everything_once(
    engine: Engine, tmp_path: Path
) -> None:
    metrics = Metrics()
    recorder = recorder_for(engine, tmp_path / "fixlog", metrics)
    ComplianceWriter(engine)  # the table exists before the database goes away
    recorder.start()
    recorder.offer("TRADE", "out", message("D", 1, "11=c1"))
    assert recorder.flush()
    locker = sqlite3.connect(tmp_path / "log.db")
    locker.execute("BEGIN EXCLUSIVE")  # a real failure: every write now fails with "database is locked"
    try:
        for seq in range(2, 52):
            recorder.offer("TRADE", "out", message("D", seq, f"11=c{seq}"))
        assert recorder.flush()
        assert sample_value(metrics, "fixadapter_compliance_messages_spilled_total") == 50
    finally:
        locker.rollback()
        locker.close()
    for seq in range(52, 62):
        recorder.offer("TRADE", "out", message("D", seq, f"11=c{seq}"))
    deadline = time.monotonic() + 10
    while recorder.spill is not None and recorder.spill.pending and time.monotonic() < deadline:
        recorder.flush()
    recorder.close()

    assert [r.seq_num for r in iter_records(engine)] == list(range(1, 62))
    assert verify(engine).intact
    assert sample_value(metrics, "fixadapter_compliance_messages_spill_loaded_total") >= 50
    assert not list((tmp_path / "fixlog" / "spill").glob("spill-*"))


def test_recorder_counts_a_full_buffer_and_skipped_market_data(tmp_path: Path) -> None:
    metrics = Metrics()
    recorder = recorder_for(
        None, tmp_path, metrics, buffer_size=1000, record_market_data=False, database=False
    )

    for seq in range(1001):
        recorder.offer("TRADE", "in", message("0", seq))
    recorder.offer("QUOTE", "in", message("X", 1, "262=r"))
    recorder.offer("QUOTE", "in", message("0", 1))
    recorder.close()

    dropped = "fixadapter_compliance_messages_dropped_total"
    assert (
        sample_value(metrics, dropped, {"reason": "buffer_full"}) == 2
    )  # the 1001st and the QUOTE heartbeat
    assert sample_value(metrics, "fixadapter_compliance_market_data_skipped_total") == 1


def test_recorder_offer_costs_about_a_microsecond(tmp_path: Path) -> None:
    """The QuickFIX thread's share of capture (indicative: the bound is loose for noisy machines)."""
    recorder = recorder_for(None, tmp_path, buffer_size=200_000, database=False, files=False)
    raw = message("X", 1, "262=r", "268=2", "279=0", "269=0", "278=1", "270=1.1", "271=100000")
    count = 100_000

    started = time.perf_counter()
    for _ in range(count):
        recorder.offer("QUOTE", "in", raw)
    per_message = (time.perf_counter() - started) / count

    assert recorder.buffered == count
    assert per_message < 20e-6


def test_the_example_config_lists_the_compliance_section() -> None:
    example = Path(__file__).resolve().parents[2] / "config.example.yaml"

    config = load_config(example, {"FIXADAPTER_ACCOUNTS__MAIN__FIX__PASSWORD": "x"})

    assert config.compliance.directory == Path("var/fixlog") and config.compliance.record_market_data
    assert log_directory(config) == Path("var/fixlog")


def test_recorder_refuses_a_directory_another_recorder_holds(engine: Engine, tmp_path: Path) -> None:
    first = recorder_for(engine, tmp_path / "fixlog")
    first.start()
    second = recorder_for(engine, tmp_path / "fixlog")

    with pytest.raises(StoreError, match=r"give each its own compliance\.directory"):
        second.start()
    second.close()  # the refused one closes quietly: nothing to write, no lock to take (a failed start)

    first.close()
    second.start()  # free again once the first has closed
    second.close()


def refuse_cl_ord_id_bad(engine: Engine) -> None:
    """A record the database refuses whatever the retry (as PostgreSQL refuses a value it cannot store)."""
    ComplianceWriter(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TRIGGER refuse_bad BEFORE INSERT ON fix_messages WHEN NEW.cl_ord_id = 'bad' "
            "BEGIN SELECT RAISE(ABORT, 'refused'); END"
        )


def test_recorder_sets_a_refused_record_aside_and_stores_the_others(engine: Engine, tmp_path: Path) -> None:
    refuse_cl_ord_id_bad(engine)
    metrics = Metrics()
    recorder = recorder_for(engine, tmp_path / "fixlog", metrics)
    recorder.start()

    for seq, cl_ord_id in enumerate(("c1", "bad", "c3"), 1):
        recorder.offer("TRADE", "out", message("D", seq, f"11={cl_ord_id}"))
    recorder.flush()
    recorder.close()

    assert [r.cl_ord_id for r in iter_records(engine)] == ["c1", "c3"]
    assert verify(engine).intact
    dropped = "fixadapter_compliance_messages_dropped_total"
    assert sample_value(metrics, dropped, {"reason": "rejected"}) == 1
    assert "11=bad" in (tmp_path / "fixlog" / "spill" / "rejected.jsonl").read_text()


def test_spill_load_sets_a_refused_record_aside_and_loads_the_others(engine: Engine, tmp_path: Path) -> None:
    refuse_cl_ord_id_bad(engine)
    spill, rejected = Spill(tmp_path / "spill"), []
    spill.append(
        [to_record(time.time(), "TRADE", "out", message("D", n, f"11={c}")) for n, c in enumerate("abc")]
    )
    spill.append([to_record(time.time(), "TRADE", "out", message("D", 9, "11=bad"))])
    spill.append([sample(10)])

    while spill.pending:
        spill.load_chunk(ComplianceWriter(engine), 10, lambda *r: rejected.append(r))

    assert [r.cl_ord_id for r in iter_records(engine)] == ["a", "b", "c", "c10"]
    assert len(rejected) == 1 and "line 4" in rejected[0][1]
    assert verify(engine).intact


def test_spill_load_interrupted_after_setting_a_record_aside_resumes_from_the_ledger_and_loads_each_once(
    engine: Engine, tmp_path: Path
) -> None:
    """A refused record splits the chunk (rows commit with the ledger as they go); the database then fails:
    the next load starts where the ledger says, so nothing already in the table loads twice."""
    refuse_cl_ord_id_bad(engine)
    failing = {"once": True}  # the database fails once, after the refused record was set aside

    def fail_once_at_d(
        _conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool
    ) -> None:
        seen = repr(parameters)  # the first insert holding d without the refused record: the split's
        if statement.startswith("INSERT INTO fix_messages ") and "11=d" in seen and "11=bad" not in seen:
            if not failing["once"]:
                return
            failing["once"] = False
            raise sqlite3.OperationalError("disk I/O error")

    spill, writer, rejected = Spill(tmp_path / "spill"), ComplianceWriter(engine), []
    spill.append(
        [
            to_record(time.time(), "TRADE", "out", message("D", n, f"11={c}"))
            for n, c in enumerate(["a", "bad", "c", "d"])
        ]
    )
    event.listen(engine, "before_cursor_execute", fail_once_at_d)
    try:
        with pytest.raises(Exception, match="disk I/O error"):
            spill.load_chunk(writer, 10, lambda *r: rejected.append(r))
        while spill.pending:
            spill.load_chunk(writer, 10, lambda *r: rejected.append(r))
    finally:
        event.remove(engine, "before_cursor_execute", fail_once_at_d)

    assert [r.cl_ord_id for r in iter_records(engine)] == ["a", "c", "d"]
    assert len(rejected) == 1 and "line 2" in rejected[0][1]
    assert verify(engine).intact


def test_a_message_with_bytes_that_are_not_utf8_is_recorded_with_them_visible_and_spills_and_loads(
    engine: Engine, tmp_path: Path
) -> None:
    garbled = b"8=FIX.4.4\x0135=8\x0134=7\x0158=caf\xb3\xc3\xa9\x01".decode("utf-8", "surrogateescape")
    record = to_record(time.time(), "TRADE", "in", garbled)
    assert record.raw == "8=FIX.4.4\x0135=8\x0134=7\x0158=caf\\xb3\u00e9\x01"
    spill, writer = Spill(tmp_path / "spill"), ComplianceWriter(engine)
    spill.append([record])
    assert spill.load_chunk(writer, 10, print) == 1
    spill.close()
    assert [r.raw for r in iter_records(engine)] == [record.raw]
