"""Specification of order-life search (links through OrigClOrdID and OrderID) and of reading several files."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fixadapter.compliance.logfile import Problem
from fixadapter.compliance.query import Entry, FileSource, LogFilter, order_life
from fixadapter.compliance.records import Direction, FixRecord
from fixadapter.connectors.fix.wire import frame

T0 = datetime(2025, 1, 1, 10, tzinfo=UTC)
US = "demo.icmarkets.1234567"


def record(
    second: int, msg_type: str, cl: str | None, orig: str | None = None, order: str | None = None
) -> FixRecord:
    return FixRecord(
        time=T0 + timedelta(seconds=second),
        session="TRADE",
        direction=Direction.OUTBOUND if msg_type in "DFG" else Direction.INBOUND,
        msg_type=msg_type,
        cl_ord_id=cl,
        orig_cl_ord_id=orig,
        order_id=order,
        raw=f"8=FIX.4.4\x0135={msg_type}\x01",
    )


class Listed:
    """A source over a list, answering LogFilter as the table does; counts the questions asked."""

    def __init__(self, records: list[FixRecord]) -> None:
        self.entries = [Entry(n, r, (r.time, n)) for n, r in enumerate(records, 1)]
        self.asked = 0

    def search(self, where: LogFilter) -> Iterator[Entry]:
        self.asked += 1
        return iter([e for e in self.entries if where.matches(e.record)])


def test_order_life_follows_links_both_ways_and_stops_at_unrelated_orders() -> None:
    source = Listed(
        [
            record(0, "D", "a"),
            record(1, "8", "a", order="101"),
            record(2, "D", "other"),
            record(3, "G", "b", "a"),
            record(4, "8", "b", order="101"),  # the replace report names only the new ClOrdID
            record(5, "G", "c", "b"),
            record(6, "9", "x", "unknown", order="NONE"),  # a refused cancel of another order
            record(7, "8", "other", order="102"),
            record(8, "F", "d", "c"),
            record(9, "9", "d", "c", order="NONE"),
            record(10, "8", "c", "b", order="101"),
        ]
    )

    for asked in ("a", "b", "c", "d"):
        life = order_life(source, asked)
        assert [e.id for e in life.entries] == [1, 2, 4, 5, 6, 9, 10, 11]
        assert life.cl_ord_ids == ["a", "b", "c", "d"]
        assert life.order_ids == ["101"]


def test_order_life_of_an_unknown_id_is_empty() -> None:
    life = order_life(Listed([record(0, "D", "a")]), "zzz")

    assert (life.entries, life.cl_ord_ids, life.order_ids) == ([], [], [])


def _line(second: int, seq: int, body: str) -> str:
    at = T0 + timedelta(seconds=second)
    header = [(49, US), (56, "CSERVER"), (34, str(seq)), (57, "TRADE"), (52, at.strftime("%Y%m%d-%H:%M:%S"))]
    msg_type, *fields = body.split(",")
    pairs = [(int(f.split("=")[0]), f.split("=")[1]) for f in fields]
    return f"{at.strftime('%Y%m%d-%H:%M:%S.%f')}000 : {frame(msg_type, header, pairs)}\n"


def test_several_files_are_merged_by_time_and_an_order_is_followed_across_them(tmp_path: Path) -> None:
    prefix = f"FIX.4.4-{US}-CSERVER-TRADE.messages.20250101"
    first = tmp_path / f"{prefix}.log"
    second = tmp_path / f"{prefix}.1.log"
    first.write_text(_line(0, 1, "D,11=a") + _line(2, 2, "G,41=a,11=b") + "garbage\n", encoding="latin-1")
    second.write_text(_line(1, 3, "0") + _line(3, 4, "F,41=b,11=c"), encoding="latin-1")
    problems: list[Problem] = []
    files = FileSource([second, first], on_problem=problems.append)

    everything = [e.id for e in files.search(LogFilter())]
    life = order_life(files, "c")

    assert everything == [f"{first}:1", f"{second}:1", f"{first}:2", f"{second}:2"]
    assert [e.id for e in life.entries] == [f"{first}:1", f"{first}:2", f"{second}:2"]
    assert [(p.path, p.line) for p in problems] == [(first, 3), (first, 3)]
