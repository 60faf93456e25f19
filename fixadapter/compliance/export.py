"""Messages written out for people and their tools: a table, decoded text, CSV and JSON Lines.

CSV and JSON Lines share one column set (EXPORT_COLUMNS), raw messages with `|` for SOH so a spreadsheet or
a text editor shows them on one line; `decoded` adds the dictionary's reading of each message.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, TextIO

from fixadapter.compliance import openapi_display
from fixadapter.compliance.decode import DecodeError, Dictionary, format_decoded
from fixadapter.compliance.records import is_openapi_record
from fixadapter.connectors.fix.wire import SOH

if TYPE_CHECKING:
    from fixadapter.compliance.query import Entry

EXPORT_COLUMNS = (
    "id",
    "time",
    "session",
    "direction",
    "msg_type",
    "seq_num",
    "cl_ord_id",
    "orig_cl_ord_id",
    "order_id",
    "raw",
)
FORMATS = ("table", "decoded", "csv", "jsonl")


def piped(raw: str) -> str:
    return raw.replace(SOH, "|")


def row(entry: Entry) -> dict[str, Any]:
    """The export columns of one message; time as ISO 8601 UTC with microseconds."""
    record = entry.record
    return {
        "id": entry.id,
        "time": record.time.isoformat(timespec="microseconds"),
        "session": record.session,
        "direction": str(record.direction),
        "msg_type": record.msg_type,
        "seq_num": record.seq_num,
        "cl_ord_id": record.cl_ord_id,
        "orig_cl_ord_id": record.orig_cl_ord_id,
        "order_id": record.order_id,
        "raw": piped(record.raw),
    }


def _decoded_fields(entry: Entry, dictionary: Dictionary) -> list[dict[str, object]] | dict[str, Any] | str:
    """FIX: the fields as the dictionary reads them; Open API: the stored record as data."""
    if is_openapi_record(entry.record.raw):
        return openapi_display.parsed(entry.record.raw)
    try:
        return [field.as_dict() for field in dictionary.decode(entry.record.raw)]
    except DecodeError as exc:
        return str(exc)


def _decoded_text(entry: Entry, dictionary: Dictionary) -> str:
    if is_openapi_record(entry.record.raw):
        return "\n".join(openapi_display.decoded_lines(entry.record.raw))
    try:
        return "\n".join(format_decoded(dictionary.decode(entry.record.raw)))
    except DecodeError as exc:
        return str(exc)


def write_jsonl(entries: Iterable[Entry], out: TextIO, dictionary: Dictionary | None = None) -> int:
    """One JSON object per message; with a dictionary, `decoded` lists {tag, name, value, meaning, ...}."""
    count = 0
    for entry in entries:
        data = row(entry)
        if dictionary is not None:
            data["decoded"] = _decoded_fields(entry, dictionary)
        out.write(json.dumps(data, ensure_ascii=False, separators=(",", ":")) + "\n")
        count += 1
    return count


def write_csv(entries: Iterable[Entry], out: TextIO, dictionary: Dictionary | None = None) -> int:
    """A header row then one row per message; with a dictionary, `decoded` holds one field per text line."""
    columns = [*EXPORT_COLUMNS, "decoded"] if dictionary is not None else list(EXPORT_COLUMNS)
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    count = 0
    for entry in entries:
        data = row(entry)
        if dictionary is not None:
            data["decoded"] = _decoded_text(entry, dictionary)
        writer.writerow(data)
        count += 1
    return count


def message_title(entry: Entry, dictionary: Dictionary) -> str:
    """`#42 2025-01-01T10:00:01.123000+00:00 TRADE out 8 ExecutionReport seq 7`: one message's heading."""
    record = entry.record
    seq = "" if record.seq_num is None else f" seq {record.seq_num}"
    return (
        f"#{entry.id} {record.time.isoformat(timespec='microseconds')} {record.session} "
        f"{record.direction} {type_title(record.msg_type, record.raw, dictionary)}{seq}"
    )


def type_title(msg_type: str, raw: str, dictionary: Dictionary) -> str:
    """`D NewOrderSingle` for FIX; an Open API record's type is its payload type name already."""
    if is_openapi_record(raw):
        return msg_type
    return f"{msg_type} {dictionary.message_name(msg_type) or 'unknown message type'}"


def write_decoded(entries: Iterable[Entry], out: TextIO, dictionary: Dictionary) -> int:
    """Each message as its title and its fields one per line (groups indented), a blank line between."""
    count = 0
    for entry in entries:
        if count:
            out.write("\n")
        out.write(message_title(entry, dictionary) + "\n")
        out.write("".join(f"  {line}\n" for line in _decoded_text(entry, dictionary).splitlines()))
        count += 1
    return count


TABLE_HEADER = (
    f"{'time':<32} {'session':<8} {'dir':<3} {'type':<30} {'seq':>6} "
    f"{'ClOrdID':<20} {'OrigClOrdID':<20} {'OrderID':<12} id"
)


def write_table(entries: Iterable[Entry], out: TextIO, dictionary: Dictionary) -> int:
    """A header and one line per message: where to look before asking for one decoded (`log show <id>`);
    the id comes last because a file's ids (`path:line`) have no fixed width."""
    out.write(TABLE_HEADER + "\n")
    count = 0
    for entry in entries:
        r = entry.record
        kind = (
            r.msg_type
            if is_openapi_record(r.raw)
            else f"{r.msg_type} {dictionary.message_name(r.msg_type) or '?'}"
        )
        seq = "-" if r.seq_num is None else str(r.seq_num)
        out.write(
            f"{r.time.isoformat(timespec='microseconds'):<32} {r.session:<8} {r.direction!s:<3} {kind:<30} "
            f"{seq:>6} {r.cl_ord_id or '-':<20} {r.orig_cl_ord_id or '-':<20} {r.order_id or '-':<12} "
            f"{entry.id}\n"
        )
        count += 1
    return count


def write(
    entries: Iterable[Entry], out: TextIO, output: str, dictionary: Dictionary, *, decoded: bool = False
) -> int:
    """Entries in one of FORMATS; `decoded` adds the decoded message to csv and jsonl."""
    if output == "table":
        return write_table(entries, out, dictionary)
    if output == "decoded":
        return write_decoded(entries, out, dictionary)
    extra = dictionary if decoded else None
    if output == "csv":
        return write_csv(entries, out, extra)
    if output == "jsonl":
        return write_jsonl(entries, out, extra)
    raise ValueError(f"unknown format {output!r}: one of {', '.join(FORMATS)}")
