"""Specification of the QuickFIX log file reader: the line variants it accepts, what it reports, direction,
session and masking."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime
from pathlib import Path

import pytest
import quickfix as fix

from fixadapter.compliance.files import EVENT, MESSAGES, LogFiles
from fixadapter.compliance.logfile import LogFileError, LogFileReader, LoggedMessage
from fixadapter.compliance.records import Direction
from fixadapter.connectors.fix.wire import SOH, frame

DATA = Path(__file__).resolve().parents[1] / "data" / "compliance"
OTHER_ENGINE = DATA / "FIX.4.4-DESK1-BROKERX.messages.log"
US = "demo.icmarkets.1234567"
QF_NAME = f"FIX.4.4-{US}-CSERVER-TRADE.messages.current.log"


def logon(password: str = "s3cret") -> str:  # noqa: S107 - a test password
    header = [
        (49, US),
        (56, "CSERVER"),
        (34, "1"),
        (50, "TRADE"),
        (57, "TRADE"),
        (52, "20250101-10:00:00.000"),
    ]
    return frame("A", header, [(98, "0"), (108, "30"), (141, "Y"), (553, "1234567"), (554, password)])


def report(seq: int = 2, sending: str = "20250101-10:00:01.250") -> str:
    header = [(49, "CSERVER"), (56, US), (34, str(seq)), (50, "TRADE"), (57, "TRADE"), (52, sending)]
    return frame("8", header, [(37, "101"), (11, "ord-2"), (41, "ord-1"), (150, "5"), (39, "0")])


def write(path: Path, *lines: str) -> Path:
    path.write_bytes("".join(f"{line}\n" for line in lines).encode("latin-1"))
    return path


def read(path: Path, **options: str) -> tuple[list[LoggedMessage], LogFileReader]:
    reader = LogFileReader(path, **options)  # type: ignore[arg-type]
    return list(reader), reader


def test_a_file_written_by_quickfix_cpp_filelog_is_read_with_direction_session_and_time(
    tmp_path: Path,
) -> None:
    factory = fix.FileLogFactory(str(tmp_path))
    session_id = fix.SessionID("FIX.4.4", US, "CSERVER", "TRADE")
    engine_log = factory.create(session_id)
    engine_log.onOutgoing(logon())
    engine_log.onIncoming(report())
    factory.destroy(engine_log)
    path = tmp_path / QF_NAME

    messages, reader = read(path)

    assert reader.problems == []
    assert [(m.line, m.record.direction, m.record.msg_type, m.record.session) for m in messages] == [
        (1, Direction.OUTBOUND, "A", "TRADE"),
        (2, Direction.INBOUND, "8", "TRADE"),
    ]
    second = messages[1].record
    assert (second.seq_num, second.cl_ord_id, second.orig_cl_ord_id, second.order_id) == (
        2,
        "ord-2",
        "ord-1",
        "101",
    )
    assert abs((second.time - datetime.now(UTC)).total_seconds()) < 60  # the engine's own timestamp
    assert "s3cret" not in messages[0].record.raw
    assert f"{SOH}554=******{SOH}" in messages[0].record.raw


def test_the_adapters_own_capture_files_read_back_as_the_records_written(tmp_path: Path) -> None:
    files = LogFiles(tmp_path)
    files.register("TRADE", f"FIX.4.4-{US}-CSERVER-TRADE")
    at = datetime(2025, 1, 1, 10, 0, 1, 250001, tzinfo=UTC)
    files.write("TRADE", MESSAGES, at, logon().replace("s3cret", "******"))
    files.write("TRADE", MESSAGES, at, report())
    files.write("TRADE", EVENT, at, "Logon contents valid")
    files.close()

    messages, reader = read(tmp_path / f"FIX.4.4-{US}-CSERVER-TRADE.messages.20250101.log")

    assert reader.problems == []
    assert [(m.record.time, m.record.session, m.record.direction) for m in messages] == [
        (at, "TRADE", Direction.OUTBOUND),
        (at, "TRADE", Direction.INBOUND),
    ]
    assert messages[1].record.raw == report()


def test_another_engines_file_reports_bad_lines_by_number_and_reads_the_rest() -> None:
    messages, reader = read(OTHER_ENGINE)

    assert [m.line for m in messages] == [1, 2, 3, 4, 5, 7, 8, 10, 11, 12]
    assert [(str(p.path), p.line, p.warning) for p in reader.problems] == [
        (str(OTHER_ENGINE), 6, False),
        (str(OTHER_ENGINE), 8, True),
        (str(OTHER_ENGINE), 9, False),
    ]
    assert "truncated" in reader.problems[0].reason
    assert "CheckSum" in reader.problems[1].reason
    assert "no FIX message" in reader.problems[2].reason
    assert str(reader.problems[0]).startswith(f"{OTHER_ENGINE}:6: skipped: ")
    assert (reader.lines, reader.messages) == (12, 10)
    first = messages[0].record
    assert first.time == datetime(2025, 3, 14, 9, 30, 0, 101000, tzinfo=UTC)  # the logger's time, not 52
    assert (first.direction, first.session) == (Direction.OUTBOUND, "FIX.4.4:DESK1->BROKERX")
    assert messages[1].record.direction is Direction.INBOUND
    assert all("S3cret" not in m.record.raw and "pw!" not in m.record.raw for m in messages)


@pytest.mark.parametrize(
    ("line", "time"),
    [
        (f"20250101-10:00:02.123456789 : {report()}", datetime(2025, 1, 1, 10, 0, 2, 123456, tzinfo=UTC)),
        (f"20250101-10:00:02.123: {report()}", datetime(2025, 1, 1, 10, 0, 2, 123000, tzinfo=UTC)),
        (f"20250101-10:00:02 : {report()}", datetime(2025, 1, 1, 10, 0, 2, tzinfo=UTC)),
        (f"2025-01-01 10:00:02,500 {report()}", datetime(2025, 1, 1, 10, 0, 2, 500000, tzinfo=UTC)),
        (f"2025-01-01T12:00:02+02:00 : {report()}", datetime(2025, 1, 1, 10, 0, 2, tzinfo=UTC)),
        (report(), datetime(2025, 1, 1, 10, 0, 1, 250000, tzinfo=UTC)),
        (f"<incoming> {report()}", datetime(2025, 1, 1, 10, 0, 1, 250000, tzinfo=UTC)),
        (report().replace(SOH, "|"), datetime(2025, 1, 1, 10, 0, 1, 250000, tzinfo=UTC)),
        (report().replace(SOH, "^A"), datetime(2025, 1, 1, 10, 0, 1, 250000, tzinfo=UTC)),
        (report().replace(SOH, "<SOH>"), datetime(2025, 1, 1, 10, 0, 1, 250000, tzinfo=UTC)),
        (report().replace(SOH, "|").rstrip("|") + "  \r", datetime(2025, 1, 1, 10, 0, 1, 250000, tzinfo=UTC)),
    ],
    ids=[
        "cpp-nanos",
        "quickfixj",
        "no-fraction",
        "iso-comma",
        "iso-offset",
        "bare",
        "other-prefix",
        "pipes",
        "caret-a",
        "soh-text",
        "crlf-no-trailing-separator",
    ],
)
def test_line_variants_give_the_same_message(tmp_path: Path, line: str, time: datetime) -> None:
    messages, reader = read(write(tmp_path / QF_NAME, line))

    assert reader.problems == []
    (message,) = messages
    assert message.record.time == time
    assert message.record.raw == report()
    assert (message.record.direction, message.record.session, message.record.seq_num) == (
        Direction.INBOUND,
        "TRADE",
        2,
    )


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("20250101-10:00:00.000 : Created session", "no FIX message"),
        (report()[:40], "truncated"),
        (report().replace(f"{SOH}150=", f"{SOH}150"), "not a tag=value field"),
        ("8=FIX.4.4|9=5|49=CSERVER|56=x|10=000|", "no MsgType (35)"),
        (report().replace("52=20250101-10:00:01.250", "52=yesterday"), "not a UTC timestamp"),
        (report().replace(f"52=20250101-10:00:01.250{SOH}", ""), "no time"),
        (report().replace(f"34=2{SOH}", f"34=two{SOH}"), "MsgSeqNum (34) is not a number"),
        (report().replace(f"56={US}", "56=someone.else"), "neither is ours"),
    ],
    ids=["event-text", "truncated", "no-equals", "no-msgtype", "bad-time", "no-time", "bad-seq", "not-ours"],
)
def test_a_malformed_line_is_reported_and_skipped_not_fatal(tmp_path: Path, line: str, reason: str) -> None:
    path = write(tmp_path / QF_NAME, logon(), line, report(3))

    messages, reader = read(path)

    assert [m.line for m in messages] == [1, 3]
    (problem,) = reader.problems
    assert (problem.line, problem.warning) == (2, False)
    assert reason in problem.reason


def test_a_reported_line_never_shows_the_password(tmp_path: Path) -> None:
    broken = logon("hunter2").replace(f"{SOH}553=", f"{SOH}553").replace(SOH, "|")

    _, reader = read(write(tmp_path / QF_NAME, broken))

    (problem,) = reader.problems
    assert "hunter2" not in str(problem)


def test_a_password_with_a_separator_inside_is_masked_whole(tmp_path: Path) -> None:
    (message,), _ = read(write(tmp_path / QF_NAME, logon("pa|ss^Aword")))

    assert "pa|ss" not in message.record.raw
    assert "word" not in message.record.raw
    assert f"554=******{SOH}10=" in message.record.raw


def test_a_secret_in_free_text_is_masked_without_losing_the_fields_after_it(tmp_path: Path) -> None:
    header = [(49, "CSERVER"), (56, US), (34, "2"), (50, "TRADE"), (52, "20250101-10:00:01.250")]
    text = frame("j", header, [(58, "invalid token: abc123"), (380, "0"), (379, "ord-1")])

    (message,), _ = read(write(tmp_path / QF_NAME, text))

    assert "abc123" not in message.record.raw
    assert f"{SOH}58=invalid token: ******{SOH}380=0{SOH}379=ord-1{SOH}10=" in message.record.raw


def test_our_side_from_the_option_the_config_or_cservers_compid(tmp_path: Path) -> None:
    plain = write(tmp_path / "session.log", logon(), report())
    other = write(
        tmp_path / "other.log", logon().replace("CSERVER", "BROKER"), report().replace("CSERVER", "BROKER")
    )

    by_cserver, _ = read(plain)
    by_option, _ = read(other, our_comp_id="BROKER")
    by_config, _ = read(other, config_comp_id=US)

    assert [m.record.direction for m in by_cserver] == [Direction.OUTBOUND, Direction.INBOUND]
    assert [m.record.direction for m in by_option] == [Direction.INBOUND, Direction.OUTBOUND]
    assert [m.record.direction for m in by_config] == [Direction.OUTBOUND, Direction.INBOUND]
    with pytest.raises(
        LogFileError, match=r"other\.log: cannot tell which side is ours .* pass --our-comp-id"
    ):
        LogFileReader(other).check()
    with pytest.raises(LogFileError, match="--our-comp-id"):
        list(LogFileReader(other))


def test_the_session_comes_from_the_file_name_qualifier_without_sub_ids(tmp_path: Path) -> None:
    bare = report().replace(f"50=TRADE{SOH}", "").replace(f"57=TRADE{SOH}", "")
    named = write(tmp_path / f"FIX.4.4-{US}-CSERVER-QUOTE.messages.20250101.log", bare)

    (message,), _ = read(named)
    (forced,), _ = read(named, session="archive")

    assert (message.record.session, message.record.direction) == ("QUOTE", Direction.INBOUND)
    assert forced.record.session == "archive"


def test_gzip_compressed_rotated_files_are_read(tmp_path: Path) -> None:
    path = tmp_path / f"FIX.4.4-{US}-CSERVER-TRADE.messages.20250101.log.gz"
    with gzip.open(path, "wb") as out:
        out.write(f"20250101-10:00:00.000000000 : {logon()}\n\n".encode())

    messages, reader = read(path)

    assert [(m.line, m.record.msg_type) for m in messages] == [(1, "A")]
    assert (reader.lines, reader.problems) == (2, [])


def test_an_event_log_is_skipped_as_a_whole_with_one_remark(tmp_path: Path) -> None:
    events = write(
        tmp_path / f"FIX.4.4-{US}-CSERVER-TRADE.event.current.log", "20250101-10:00:00.000 : Connecting"
    )

    messages, reader = read(events)
    reader.check()

    assert messages == []
    assert [str(p) for p in reader.problems] == [
        f"{events}:0: skipped: a QuickFIX event log, not messages: whole file"
    ]


def test_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(LogFileError, match=r"cannot read .*nothing\.log"):
        LogFileReader(tmp_path / "nothing.log").check()
