"""Specification of `fixadapter log search|show|order|export|import` against a SQLite fix_messages table
(filled through ComplianceWriter.append_many) and against QuickFIX log files read directly."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import quickfix as fix

from fixadapter.cli import main
from fixadapter.compliance.export import EXPORT_COLUMNS
from fixadapter.compliance.records import Direction, FixRecord
from fixadapter.compliance.table import iter_records
from fixadapter.compliance.writer import ComplianceWriter
from fixadapter.connectors.fix.wire import Fields, frame
from fixadapter.store.repository import make_engine

US = "demo.icmarkets.1234567"
T0 = datetime(2025, 3, 14, 9, 30, tzinfo=UTC)
OTHER_ENGINE = (
    Path(__file__).resolve().parents[1] / "data" / "compliance" / "FIX.4.4-DESK1-BROKERX.messages.log"
)
CHAIN = ["ord-1", "ord-2", "ord-3", "cxl-4"]
LIFE_TYPES = ["D", "8", "G", "8", "G", "8", "F", "8"]


class Flow:
    """Messages as they would flow on cTrader's TRADE and QUOTE sessions, one second apart."""

    def __init__(self) -> None:
        self.seq = {("TRADE", "out"): 0, ("TRADE", "in"): 0, ("QUOTE", "in"): 0, ("QUOTE", "out"): 0}
        self.messages: list[tuple[Direction, str, str]] = []

    def add(
        self, direction: Direction, msg_type: str, body: list[tuple[int, str]], session: str = "TRADE"
    ) -> None:
        key = (session, str(direction))
        self.seq[key] += 1
        at = T0 + timedelta(seconds=len(self.messages))
        sender, target = (US, "CSERVER") if direction is Direction.OUTBOUND else ("CSERVER", US)
        header = [
            (49, sender),
            (56, target),
            (34, str(self.seq[key])),
            (50, session),
            (57, session),
            (52, at.strftime("%Y%m%d-%H:%M:%S.000")),
        ]
        self.messages.append((direction, session, frame(msg_type, header, body)))

    def out(self, msg_type: str, *body: tuple[int, str]) -> None:
        self.add(Direction.OUTBOUND, msg_type, list(body))

    def inn(self, msg_type: str, *body: tuple[int, str]) -> None:
        self.add(Direction.INBOUND, msg_type, list(body))

    def records(self) -> list[FixRecord]:
        found = []
        for index, (direction, session, raw) in enumerate(self.messages):
            fields = Fields.parse(raw)
            found.append(
                FixRecord(
                    time=T0 + timedelta(seconds=index),
                    session=session,
                    direction=direction,
                    msg_type=fields.require(35),
                    seq_num=int(fields.require(34)),
                    cl_ord_id=fields.get(11),
                    orig_cl_ord_id=fields.get(41),
                    order_id=fields.get(37),
                    raw=raw,
                )
            )
        return found


def report(
    order_id: str, cl_ord_id: str, exec_type: str, status: str, *extra: tuple[int, str]
) -> list[tuple[int, str]]:
    return [(37, order_id), (11, cl_ord_id), *extra, (150, exec_type), (39, status), (55, "1"), (54, "1")]


def order_flow() -> Flow:
    """ord-1 placed, replaced twice (ord-2, ord-3), cancelled (cxl-4) as cTrader order 101, with another
    order, a refused cancel of an unknown order (OrderID NONE), heartbeats and market data in between."""
    flow = Flow()
    flow.out(
        "D",
        (11, "ord-1"),
        (55, "1"),
        (54, "1"),
        (60, "20250314-09:30:00"),
        (38, "10000"),
        (40, "2"),
        (44, "1.08"),
    )
    flow.inn("8", *report("101", "ord-1", "0", "0", (38, "10000"), (44, "1.08")))
    flow.out("D", (11, "ord-9"), (55, "1"), (54, "2"), (60, "20250314-09:30:02"), (38, "5000"), (40, "1"))
    flow.add(
        Direction.INBOUND,
        "W",
        [(55, "1"), (268, "1"), (269, "0"), (270, "1.08355"), (271, "100000")],
        "QUOTE",
    )
    flow.out("G", (41, "ord-1"), (37, "101"), (11, "ord-2"), (38, "20000"), (44, "1.07"))
    flow.inn("8", *report("102", "ord-9", "F", "2", (14, "5000"), (6, "1.08353")))
    flow.inn("8", *report("101", "ord-2", "5", "0", (38, "20000"), (44, "1.07")))  # 41 not echoed, as cTrader
    flow.out("0")
    flow.out("G", (41, "ord-2"), (11, "ord-3"), (38, "30000"), (44, "1.06"))  # no OrderID: linked by 41 only
    flow.out("F", (41, "nope-1"), (11, "cxl-9"))
    flow.inn("9", (37, "NONE"), (11, "cxl-9"), (41, "nope-1"), (39, "8"), (434, "1"), (58, "ORDER_NOT_FOUND"))
    flow.inn("8", *report("101", "ord-3", "5", "0", (41, "ord-2"), (38, "30000"), (44, "1.06")))
    flow.out("F", (41, "ord-3"), (37, "101"), (11, "cxl-4"))
    flow.inn("8", *report("101", "cxl-4", "4", "4", (41, "ord-3")))
    flow.inn("0")
    return flow


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def blank_url(request: pytest.FixtureRequest) -> str:
    """An empty database: SQLite (the default store) or PostgreSQL (production)."""
    return str(request.getfixturevalue(f"{request.param}_url"))


@pytest.fixture
def url(blank_url: str) -> str:
    """The order flow stored through ComplianceWriter.append_many."""
    engine = make_engine(blank_url)
    assert ComplianceWriter(engine).append_many(order_flow().records()) == 15
    engine.dispose()
    return blank_url


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["log", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def titles(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith("#")]


def title_types(out: str) -> list[str]:
    return [line.split()[4] for line in titles(out)]


def jsonl(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines()]


# -- the life of one order ------------------------------------------------------------------------------


@pytest.mark.parametrize("asked", CHAIN)
def test_the_life_of_an_order_replaced_twice_then_cancelled_is_shown_in_order_decoded(
    url: str, capsys: pytest.CaptureFixture[str], asked: str
) -> None:
    code, out, err = run(capsys, "order", asked, "--store-url", url)

    assert (code, err) == (0, "")
    assert (
        out.splitlines()[0]
        == f"order {asked}: ClOrdIDs ord-1 -> ord-2 -> ord-3 -> cxl-4; OrderID 101; 8 messages"
    )
    assert title_types(out) == LIFE_TYPES
    assert [line.split()[3] for line in titles(out)] == ["out", "in", "out", "in", "out", "in", "out", "in"]
    times = [datetime.fromisoformat(line.split()[1]) for line in titles(out)]
    assert times == sorted(times)
    assert "  35 MsgType = D (NewOrderSingle)" in out
    assert out.count("  35 MsgType = G (OrderCancelReplaceRequest)") == 2
    assert out.count("  150 ExecType = 5 (REPLACE)") == 2
    assert "  35 MsgType = F (OrderCancelRequest)" in out
    assert "  150 ExecType = 4 (CANCELED)" in out
    assert "  39 OrdStatus = 4 (CANCELED)" in out
    assert "ord-9" not in out
    assert "cxl-9" not in out
    assert "MarketDataSnapshotFullRefresh" not in out


def test_the_life_of_an_order_from_a_quickfix_log_file_needs_no_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    factory = fix.FileLogFactory(str(tmp_path))
    engine_log = factory.create(fix.SessionID("FIX.4.4", US, "CSERVER", "TRADE"))
    for direction, _session, raw in order_flow().messages:
        (engine_log.onOutgoing if direction is Direction.OUTBOUND else engine_log.onIncoming)(raw)
    factory.destroy(engine_log)
    path = tmp_path / f"FIX.4.4-{US}-CSERVER-TRADE.messages.current.log"

    code, out, err = run(capsys, "order", "ord-3", "--file", str(path))

    assert (code, err) == (0, "")
    assert (
        out.splitlines()[0]
        == "order ord-3: ClOrdIDs ord-1 -> ord-2 -> ord-3 -> cxl-4; OrderID 101; 8 messages"
    )
    assert title_types(out) == LIFE_TYPES
    assert titles(out)[0].startswith(f"#{path}:1 ")
    assert "  39 OrdStatus = 4 (CANCELED)" in out


def test_the_life_of_an_order_as_a_table_and_as_json_lines(
    url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    table = run(capsys, "order", "ord-1", "--store-url", url, "--format", "table")[1].splitlines()
    lines = jsonl(run(capsys, "order", "ord-1", "--store-url", url, "--format", "jsonl", "--decoded")[1])

    assert table[2].split()[:3] == ["time", "session", "dir"]
    assert [row.split()[3] for row in table[3:]] == LIFE_TYPES
    assert [line["msg_type"] for line in lines] == LIFE_TYPES
    assert {"tag": 39, "name": "OrdStatus", "value": "4", "meaning": "CANCELED"} in lines[-1]["decoded"]


def test_an_unknown_order_exits_1(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "order", "missing", "--store-url", url)

    assert (code, out) == (1, "")
    assert "no message with ClOrdID missing" in err


# -- import ---------------------------------------------------------------------------------------------


def test_importing_another_engines_log_reports_bad_lines_by_number_and_stores_the_rest(
    blank_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    address = blank_url

    code, out, err = run(capsys, "import", str(OTHER_ENGINE), "--store-url", address)

    assert code == 0
    assert out.strip() == (
        f"{OTHER_ENGINE}: 10 imported, 0 already stored, 2 skipped (lines 6, 9), 1 warnings; 12 lines read"
    )
    assert f"{OTHER_ENGINE}:6: skipped: truncated" in err
    assert f"{OTHER_ENGINE}:8: warning: CheckSum (10) does not match" in err
    assert f"{OTHER_ENGINE}:9: skipped: no FIX message" in err
    engine = make_engine(address)
    stored = list(iter_records(engine))
    engine.dispose()
    assert [(r.direction, r.msg_type, r.seq_num) for r in stored][:4] == [
        (Direction.OUTBOUND, "A", 1),
        (Direction.INBOUND, "A", 1),
        (Direction.OUTBOUND, "D", 2),
        (Direction.INBOUND, "8", 2),
    ]
    assert len(stored) == 10
    assert all("S3cret" not in r.raw and "pw!" not in r.raw for r in stored)
    life = run(capsys, "order", "ORD-3", "--store-url", address, "--format", "table")[1]
    assert [row.split()[3] for row in life.splitlines()[3:]] == ["D", "8", "G", "8", "F", "8"]


def test_importing_the_same_file_again_adds_nothing(
    blank_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    address = blank_url
    run(capsys, "import", str(OTHER_ENGINE), "--store-url", address)

    code, out, _ = run(capsys, "import", str(OTHER_ENGINE), str(OTHER_ENGINE), "--store-url", address)

    assert code == 0
    assert out.splitlines()[-1] == "total: 0 imported, 20 already stored, 4 skipped"


def test_import_reports_progress_on_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    address = f"sqlite:///{tmp_path / 'imported.db'}"

    _, _, err = run(
        capsys,
        "import",
        str(OTHER_ENGINE),
        "--store-url",
        address,
        "--progress-every",
        "5",
        "--batch-size",
        "3",
    )

    progress = [line for line in err.splitlines() if ": line " in line]
    assert [re.sub(r"\(\d+%\)", "(n%)", line) for line in progress] == [
        f"fixadapter log import: {OTHER_ENGINE}: line 5 (n%), 5 read",
        f"fixadapter log import: {OTHER_ENGINE}: line 10 (n%), 8 read",
    ]


def test_import_without_a_way_to_tell_our_side_names_the_option_and_stores_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    unnamed = tmp_path / "broker.log"
    unnamed.write_bytes(OTHER_ENGINE.read_bytes())
    address = f"sqlite:///{tmp_path / 'imported.db'}"

    code, out, err = run(capsys, "import", str(OTHER_ENGINE), str(unnamed), "--store-url", address)
    named = run(capsys, "import", str(unnamed), "--store-url", address, "--our-comp-id", "DESK1")

    assert (code, out) == (1, "")
    assert "broker.log: cannot tell which side is ours" in err
    assert "pass --our-comp-id" in err
    assert named[0] == 0
    assert named[1].startswith(f"{unnamed}: 10 imported")


# -- search, show, export ---------------------------------------------------------------------------------


def test_search_by_message_type_name_returns_json_lines_with_the_export_columns(
    url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(
        capsys, "search", "--store-url", url, "--msg-type", "OrderCancelReplaceRequest", "--format", "jsonl"
    )

    lines = jsonl(out)
    assert code == 0
    assert [(line["cl_ord_id"], line["orig_cl_ord_id"]) for line in lines] == [
        ("ord-2", "ord-1"),
        ("ord-3", "ord-2"),
    ]
    assert list(lines[0]) == list(EXPORT_COLUMNS)
    assert lines[0]["raw"].startswith("8=FIX.4.4|9=")
    assert lines[0]["raw"].endswith("|")
    assert (lines[0]["session"], lines[0]["direction"], lines[0]["time"]) == (
        "TRADE",
        "out",
        (T0 + timedelta(seconds=4)).isoformat(timespec="microseconds"),
    )


def test_search_filters_combine(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    def ids(*argv: str) -> list[int]:
        return [
            line["id"]
            for line in jsonl(run(capsys, "search", "--store-url", url, "--format", "jsonl", *argv)[1])
        ]

    assert ids("--session", "quote") == [4]
    assert ids("--order-id", "101", "--msg-type", "8") == [2, 7, 12, 14]
    assert ids("--cl-ord-id", "ord-2") == [5, 7, 9, 12]  # as ClOrdID or OrigClOrdID
    start, end = (T0 + timedelta(seconds=2)).isoformat(), (T0 + timedelta(seconds=4)).isoformat()
    assert ids("--from", start, "--to", end) == [3, 4]
    assert ids("--from", "20250314-09:30:13") == [14, 15]


def test_search_as_a_table_and_as_csv_with_the_decoded_message(
    url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    table = run(capsys, "search", "--store-url", url, "--cl-ord-id", "cxl-4")[1].splitlines()
    rows = list(
        csv.DictReader(
            io.StringIO(
                run(
                    capsys,
                    "search",
                    "--store-url",
                    url,
                    "--cl-ord-id",
                    "cxl-4",
                    "--format",
                    "csv",
                    "--decoded",
                )[1]
            )
        )
    )

    assert " ".join(table[0].split()) == "time session dir type seq ClOrdID OrigClOrdID OrderID id"
    assert [row.split()[3:5] for row in table[1:]] == [["F", "OrderCancelRequest"], ["8", "ExecutionReport"]]
    assert [row["msg_type"] for row in rows] == ["F", "8"]
    assert list(rows[0]) == [*EXPORT_COLUMNS, "decoded"]
    assert "39 OrdStatus = 4 (CANCELED)" in rows[1]["decoded"].splitlines()


def test_search_with_no_match_exits_1(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "search", "--store-url", url, "--cl-ord-id", "nothing", "--format", "jsonl")

    assert code == 1
    assert "no message matches" in err


def test_search_straight_from_log_files_reports_skipped_lines(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        capsys, "search", "--file", str(OTHER_ENGINE), "--msg-type", "8", "--format", "jsonl"
    )

    assert code == 0
    assert [line["id"] for line in jsonl(out)] == [f"{OTHER_ENGINE}:{n}" for n in (4, 7, 11)]
    assert f"{OTHER_ENGINE}:6: skipped" in err


def test_show_decodes_one_stored_message_or_one_file_line(
    url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "show", "14", "--store-url", url)
    from_file = run(capsys, "show", f"{OTHER_ENGINE}:1")[1]

    assert code == 0
    at = (T0 + timedelta(seconds=13)).isoformat(timespec="microseconds")
    assert out.splitlines()[0] == f"#14 {at} TRADE in 8 ExecutionReport seq 6"
    assert "  150 ExecType = 4 (CANCELED)" in out.splitlines()
    assert "  554 Password = ******" in from_file.splitlines()
    assert run(capsys, "show", "99", "--store-url", url)[0] == 1
    assert run(capsys, "show", "14")[0] == 1


def test_export_writes_a_csv_file(url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "trade.csv"

    code, out, _ = run(
        capsys, "export", "--store-url", url, "--format", "csv", "--out", str(target), "--session", "TRADE"
    )

    with target.open(encoding="utf-8", newline="") as exported:
        rows = list(csv.DictReader(exported))
    assert code == 0
    assert out.strip() == f"exported 14 messages to {target}"
    assert list(rows[0]) == list(EXPORT_COLUMNS)
    assert [row["id"] for row in rows] == [str(n) for n in range(1, 16) if n != 4]
    assert not list(tmp_path.glob(".*partial"))


def test_reading_a_database_that_does_not_exist_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "search", "--store-url", f"sqlite:///{tmp_path / 'typo.db'}")

    assert code == 1
    assert "no database at" in err
    assert not (tmp_path / "typo.db").exists()


def test_the_config_names_the_database_and_our_comp_id(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    address = f"sqlite:///{tmp_path / 'configured.db'}"
    config = tmp_path / "config.yaml"
    config.write_text(
        "account:\n  host: demo.ctraderapi.com\n  sender_comp_id: DESK1\n"
        f"  username: '1234567'\nstore:\n  url: {address}\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("FIXADAPTER_ACCOUNT__PASSWORD", "secret")
    unnamed = tmp_path / "desk.log"
    unnamed.write_bytes(OTHER_ENGINE.read_bytes())

    imported = run(capsys, "import", str(unnamed), "--config", str(config))
    found = run(capsys, "search", "--config", str(config), "--msg-type", "D", "--format", "jsonl")

    assert imported[0] == 0
    assert imported[1].startswith(f"{unnamed}: 10 imported")
    assert [(line["direction"], line["cl_ord_id"]) for line in jsonl(found[1])] == [("out", "ORD-1")]


def test_compliance_store_url_in_the_config_wins_over_store_url(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        "account:\n  host: demo.ctraderapi.com\n  sender_comp_id: DESK1\n  username: '1234567'\n"
        f"store:\n  url: sqlite:///{tmp_path / 'orders.db'}\ncompliance:\n  store_url: {url}\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("FIXADAPTER_ACCOUNT__PASSWORD", "secret")

    code, out, _ = run(capsys, "order", "ord-1", "--config", str(config), "--format", "jsonl")

    assert code == 0
    assert [line["msg_type"] for line in jsonl(out)] == LIFE_TYPES
