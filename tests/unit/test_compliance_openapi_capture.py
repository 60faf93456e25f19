"""Specification of Open API capture (MessageRecorder.offer_frame) into the compliance log FIX uses: one
table, one hash chain per session and day, the same log files and `fixadapter log` commands, and never a
secret on disk, in a row or on screen."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, update

from fixadapter.cli import main
from fixadapter.compliance.capture import MessageRecorder
from fixadapter.compliance.chain import verify
from fixadapter.compliance.records import Direction
from fixadapter.compliance.table import fix_messages, iter_records
from fixadapter.config import ComplianceConfig
from fixadapter.connectors.fix.wire import SOH
from fixadapter.metrics import Metrics
from fixadapter.protocols.openapi.generated import OpenApiMessages_pb2 as oa
from fixadapter.protocols.openapi.generated.OpenApiCommonMessages_pb2 import ProtoHeartbeatEvent
from fixadapter.protocols.openapi.messages import encode
from fixadapter.store.repository import make_engine
from tests.unit.test_compliance_openapi_frames import SECRET, execution, new_order, secret_messages

FIX_PASSWORD = "fix-pa55word"  # noqa: S105 - a test value
LOGON = SOH.join(
    ["8=FIX.4.4", "9=90", "35=A", "34=1", "49=me", "56=CSERVER", f"554={FIX_PASSWORD}", "10=1", ""]
)
GARBAGE = b"\xff\xfe not a frame"


def fix_order(seq: int, cl_ord_id: str) -> str:
    return SOH.join(
        ["8=FIX.4.4", "9=50", "35=D", f"34={seq}", "49=me", "56=CSERVER", f"11={cl_ord_id}", "10=0"]
    )


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'log.db'}"


@pytest.fixture
def engine(url: str) -> Iterator[Engine]:
    made = make_engine(url)
    yield made
    made.dispose()


def recorder_for(engine: Engine | None, directory: Path, **settings: object) -> MessageRecorder:
    config = ComplianceConfig(**{"flush_interval_ms": 10, **settings})  # type: ignore[arg-type]
    return MessageRecorder(config, directory, engine, Metrics(), retry_initial_seconds=0.01)


def record_mixed_log(engine: Engine, directory: Path) -> None:
    """FIX and Open API both ways, the Open API credentials among them, and a frame that is not one."""
    recorder = recorder_for(engine, directory)
    recorder.register_session("TRADE", "FIX.4.4-me-CSERVER-TRADE")
    recorder.start()
    recorder.offer("TRADE", "out", LOGON)
    for index, message in enumerate(secret_messages()):
        recorder.offer_frame(
            "OPENAPI", "out" if type(message).__name__.endswith("Req") else "in", encode(message)
        )
        recorder.offer("TRADE", "out", fix_order(index + 2, f"fix-{index}"))
    recorder.offer_frame("OPENAPI", "out", encode(new_order("ord-1"), "m-1"))
    recorder.offer_frame("OPENAPI", "in", encode(execution("ord-1", 777), "m-1"))
    recorder.offer_frame(
        "OPENAPI", "out", encode(oa.ProtoOACancelOrderReq(ctidTraderAccountId=5, orderId=777))
    )
    recorder.offer_frame("OPENAPI", "in", GARBAGE)
    assert recorder.flush()
    recorder.close()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["log", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_recorded_frames_are_stored_decoded_and_indexed_beside_fix_messages(
    engine: Engine, tmp_path: Path
) -> None:
    record_mixed_log(engine, tmp_path / "fixlog")

    frames = [r for r in iter_records(engine) if r.session == "OPENAPI"]
    assert [(r.msg_type, r.direction, r.cl_ord_id, r.order_id) for r in frames[-4:]] == [
        ("ProtoOANewOrderReq", Direction.OUTBOUND, "ord-1", None),
        ("ProtoOAExecutionEvent", Direction.INBOUND, "ord-1", "777"),
        ("ProtoOACancelOrderReq", Direction.OUTBOUND, None, "777"),
        ("unreadable", Direction.INBOUND, None, None),
    ]
    assert json.loads(frames[-4].raw)["message"]["clientOrderId"] == "ord-1"
    assert json.loads(frames[-1].raw)["hex"] == GARBAGE.hex()
    assert all(r.seq_num is None for r in frames)
    assert len([r for r in iter_records(engine) if r.session == "TRADE"]) == 1 + len(secret_messages())


def test_no_credential_is_on_disk_in_a_row_or_in_any_command_output(
    engine: Engine, url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record_mixed_log(engine, tmp_path / "fixlog")

    on_disk = b"".join(path.read_bytes() for path in (tmp_path / "fixlog").rglob("*") if path.is_file())
    assert SECRET.encode() not in on_disk and FIX_PASSWORD.encode() not in on_disk
    assert SECRET.encode().hex().encode() not in on_disk
    assert (tmp_path / "fixlog" / f"OPENAPI.messages.{time.strftime('%Y%m%d', time.gmtime())}.log").exists()
    with engine.connect() as conn:
        rows = json.dumps([list(row) for row in conn.execute(select(fix_messages)).all()], default=str)
    assert SECRET not in rows and FIX_PASSWORD not in rows
    shown = ""
    for output in ("table", "decoded", "csv", "jsonl"):
        code, out, err = run(capsys, "search", "--store-url", url, "--format", output, "--decoded")
        assert code == 0, err
        shown += out + err
    for record_id in range(1, 30):
        shown += "".join(run(capsys, "show", str(record_id), "--store-url", url)[1:])
    assert "ProtoOARefreshTokenRes" in shown and "accessToken = ******" in shown
    assert SECRET not in shown and FIX_PASSWORD not in shown


def test_verify_passes_on_a_log_mixing_fix_and_open_api(
    engine: Engine, url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record_mixed_log(engine, tmp_path / "fixlog")

    assert verify(engine).intact
    code, out, _ = main(["log", "verify", "--store-url", url]), *capsys.readouterr()
    assert code == 0 and "all 2 chain(s) intact" in out


@pytest.mark.parametrize(
    "change",
    [{"raw": '{"payloadType":2106,"name":"ProtoOANewOrderReq"}'}, {"cl_ord_id": "forged"}, {"msg_type": "X"}],
)
def test_verify_names_an_altered_open_api_record(
    engine: Engine, url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], change: dict[str, str]
) -> None:
    record_mixed_log(engine, tmp_path / "fixlog")
    target = next(r.id for r in iter_records(engine, msg_type="ProtoOANewOrderReq"))
    with engine.begin() as conn:
        conn.execute(update(fix_messages).where(fix_messages.c.id == target).values(**change))

    problem = verify(engine).first_problem
    code, out, err = main(["log", "verify", "--store-url", url]), *capsys.readouterr()

    assert problem is not None and (problem.kind, problem.id, problem.session) == (
        "edited",
        target,
        "OPENAPI",
    )
    assert code == 1 and f"record id {target} (OPENAPI" in err
    assert "TRADE" in out and "intact" in out  # the FIX chain is untouched


def test_search_finds_frames_by_client_order_id_order_id_payload_type_and_session(
    engine: Engine, url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record_mixed_log(engine, tmp_path / "fixlog")

    def types(*filters: str) -> list[str]:
        code, out, err = run(capsys, "search", "--store-url", url, "--format", "jsonl", *filters)
        assert code in (0, 1), err
        return [line["msg_type"] for line in map(json.loads, out.splitlines())]

    assert types("--cl-ord-id", "ord-1") == ["ProtoOANewOrderReq", "ProtoOAExecutionEvent"]
    assert types("--order-id", "777") == ["ProtoOAExecutionEvent", "ProtoOACancelOrderReq"]
    assert types("--msg-type", "NewOrderReq") == types("--msg-type", "2106") == ["ProtoOANewOrderReq"]
    assert types("--msg-type", "D", "--session", "trade") == ["D"] * len(secret_messages())
    assert set(types("--session", "openapi")) >= {"ProtoOAAccountAuthReq", "unreadable"}


def test_the_life_of_an_open_api_order_follows_client_order_id_then_order_id(
    engine: Engine, url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record_mixed_log(engine, tmp_path / "fixlog")

    code, out, _ = run(capsys, "order", "ord-1", "--store-url", url)

    assert code == 0
    assert out.splitlines()[0] == "order ord-1: ClOrdIDs ord-1; OrderID 777; 3 messages"
    titles = [line.split()[3:5] for line in out.splitlines() if line.startswith("#")]
    assert titles == [
        ["out", "ProtoOANewOrderReq"],
        ["in", "ProtoOAExecutionEvent"],
        ["out", "ProtoOACancelOrderReq"],
    ]


def test_show_prints_an_open_api_record_one_field_a_line_nested_indented(
    engine: Engine, url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record_mixed_log(engine, tmp_path / "fixlog")
    target = next(r for r in iter_records(engine, msg_type="ProtoOAExecutionEvent"))

    code, out, _ = run(capsys, "show", str(target.id), "--store-url", url)

    lines = out.splitlines()
    assert code == 0
    assert lines[0].endswith(" OPENAPI in ProtoOAExecutionEvent")
    assert lines[1:4] == [
        "  payloadType = 2126 (ProtoOAExecutionEvent)",
        "  clientMsgId = m-1",
        "  ctidTraderAccountId = 5",
    ]
    assert "  order:" in lines and "    orderId = 777" in lines and "      tradeSide = BUY" in lines


def test_a_garbage_frame_is_shown_as_hex_with_its_note(
    engine: Engine, url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record_mixed_log(engine, tmp_path / "fixlog")
    target = next(r for r in iter_records(engine, msg_type="unreadable"))

    out = run(capsys, "show", str(target.id), "--store-url", url)[1]

    assert f"  hex = {GARBAGE.hex()}" in out.splitlines()
    assert "not a ProtoMessage" in out


def test_search_and_show_read_the_open_api_log_file_as_they_read_the_table(
    engine: Engine, url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record_mixed_log(engine, tmp_path / "fixlog")
    log_file = next((tmp_path / "fixlog").glob("OPENAPI.messages.*.log"))

    code, from_file, err = run(
        capsys, "search", "--file", str(log_file), "--order-id", "777", "--format", "jsonl"
    )
    from_table = run(capsys, "search", "--store-url", url, "--order-id", "777", "--format", "jsonl")[1]

    assert (code, err) == (0, "")
    without_id = [
        {k: v for k, v in row.items() if k != "id"} for row in map(json.loads, from_file.splitlines())
    ]
    assert without_id == [
        {k: v for k, v in row.items() if k != "id"} for row in map(json.loads, from_table.splitlines())
    ]
    line = json.loads(from_file.splitlines()[0])["id"]
    shown = run(capsys, "show", line)[1].splitlines()
    assert "  clientMsgId = m-1" in shown and "    clientOrderId = ord-1" in shown


def test_importing_the_open_api_log_file_stores_every_frame_once_even_two_alike(
    engine: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recorder = recorder_for(engine, tmp_path / "fixlog")
    recorder.start()
    for message in (ProtoHeartbeatEvent(), ProtoHeartbeatEvent(), new_order("ord-5")):
        recorder.offer_frame("OPENAPI", "in", encode(message))
    assert recorder.flush()
    recorder.close()
    log_file = next((tmp_path / "fixlog").glob("OPENAPI.messages.*.log"))
    other = f"sqlite:///{tmp_path / 'other.db'}"

    first = run(capsys, "import", str(log_file), "--store-url", other)
    again = run(capsys, "import", str(log_file), "--store-url", other)

    assert first[0] == 0 and "3 imported, 0 already stored, 0 skipped" in first[1]
    assert again[0] == 0 and "0 imported, 3 already stored" in again[1]
    imported = make_engine(other)
    try:
        assert [r.record() for r in iter_records(imported)] == [r.record() for r in iter_records(engine)]
        assert verify(imported).intact
    finally:
        imported.dispose()


def test_spot_and_depth_events_are_skipped_and_counted_when_market_data_is_not_recorded(
    engine: Engine, tmp_path: Path
) -> None:
    metrics = Metrics()
    config = ComplianceConfig(flush_interval_ms=10, record_market_data=False)
    recorder = MessageRecorder(config, tmp_path / "fixlog", engine, metrics)
    recorder.start()
    spot = oa.ProtoOASpotEvent(ctidTraderAccountId=5, symbolId=1, bid=110000)
    depth = oa.ProtoOADepthEvent(ctidTraderAccountId=5, symbolId=1)

    for message in (spot, depth, new_order()):
        recorder.offer_frame("OPENAPI", "in", encode(message))
    assert recorder.flush()
    recorder.close()

    assert [r.msg_type for r in iter_records(engine)] == ["ProtoOANewOrderReq"]
    assert metrics.value("fixadapter_compliance_market_data_skipped_total", {}) == 2


def test_offer_frame_only_queues_and_costs_microseconds(tmp_path: Path) -> None:
    """The asyncio loop's share of capture (indicative: the bound is loose for noisy machines)."""
    recorder = recorder_for(None, tmp_path, buffer_size=200_000, database=False, files=False)
    frame = encode(execution(), "m-1")
    count = 50_000

    started = time.perf_counter()
    for _ in range(count):
        recorder.offer_frame("OPENAPI", "in", frame)
    per_frame = (time.perf_counter() - started) / count

    assert recorder.buffered == count
    assert per_frame < 20e-6


def test_a_frame_offered_with_a_bad_direction_is_counted_as_not_recorded(
    engine: Engine, tmp_path: Path
) -> None:
    metrics = Metrics()
    config = ComplianceConfig(flush_interval_ms=10)
    recorder = MessageRecorder(config, tmp_path / "fixlog", engine, metrics)
    recorder.start()

    recorder.offer_frame("OPENAPI", "sideways", encode(new_order()))
    recorder.offer_frame("OPENAPI", "out", encode(new_order()))
    assert recorder.flush()
    recorder.close()

    assert len(list(iter_records(engine))) == 1
    dropped = metrics.value("fixadapter_compliance_messages_dropped_total", {"reason": "unconverted"})
    assert dropped == 1


def secret_message_names() -> list[str]:
    return [type(message).__name__ for message in secret_messages()]


def test_the_mixed_log_holds_every_credential_message(engine: Engine, tmp_path: Path) -> None:
    record_mixed_log(engine, tmp_path / "fixlog")

    assert {r.msg_type for r in iter_records(engine, session="OPENAPI")} >= set(secret_message_names())
