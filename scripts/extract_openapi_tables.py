"""Extract the cTrader Open API message and enum tables from the protocol reference into JSON.

    python scripts/extract_openapi_tables.py [REFERENCE] [--out FILE] [--check]

REFERENCE is the project's protocol reference, `shared/reference/ctrader-openapi.md` of the project's shared
folder (default: `../shared/reference/ctrader-openapi.md` beside the repository, then
`/work/shared/reference/ctrader-openapi.md`). It is not part of the repository, so CI cannot read it: the
extracted tables are committed as `tests/unit/data/openapi_tables.json`, and
`tests/unit/test_openapi_messages.py` compares our compiled `.proto` files with them. Run this again when the
reference changes; `--check` only compares and exits 1 if the committed tables are out of date (a change of
the reference's prose alone, which only changes `source_sha256`, is not).

What is read (markdown, as the reference lays it out):

* every `#### ProtoXxx` heading followed by a `| # | field | type | label | notes |` table is a message; a
  heading `#### ProtoXxx — payloadType N (`NAME`)` gives its payloadType. The notes column gives a field's
  default (`default X`, the last such phrase naming a valid value), `packed` and `deprecated`;
* a heading marked "removed from ProtoOAPayloadType" (the 2189-2193 PnL messages) is recorded as removed: we
  must not define it;
* enums: the `| enum | values (name = number) |` table (section 3.5), the `| name | value | ... |` tables
  under `#### ProtoErrorCode`, `#### ProtoOAErrorCode` and `#### enum ProtoXxx`, the sentence giving
  `ProtoPayloadType`, and `ProtoOAPayloadType` from the `| value | enum name | message |` table (section 3.1),
  which also names the message of every payloadType (checked against the headings).

The .proto file of each message is the one its heading names (`· OpenApiMessages.proto`) or else follows the
official split: ProtoMessage, ProtoErrorRes and ProtoHeartbeatEvent in OpenApiCommonMessages.proto, other
messages with a payloadType in OpenApiMessages.proto, the rest (model messages) in OpenApiModelMessages.proto;
the enums ProtoPayloadType and ProtoErrorCode in OpenApiCommonModelMessages.proto, every other enum in
OpenApiModelMessages.proto.
"""

# ruff: noqa: T201 - a console tool
from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "tests" / "unit" / "data" / "openapi_tables.json"
REFERENCE_CANDIDATES = (
    ROOT.parent / "shared" / "reference" / "ctrader-openapi.md",
    Path("/work/shared/reference/ctrader-openapi.md"),
)

SCALARS = {"double", "float", "int32", "int64", "uint32", "uint64", "sint32", "sint64", "fixed32", "fixed64"}
SCALARS |= {"sfixed32", "sfixed64", "bool", "string", "bytes"}
LABELS = {"required", "optional", "repeated"}
COMMON_MESSAGES = {"ProtoMessage", "ProtoErrorRes", "ProtoHeartbeatEvent"}
COMMON_ENUMS = {"ProtoPayloadType", "ProtoErrorCode"}

HEADING = re.compile(r"^#{2,4}\s+(?:enum\s+)?(Proto\w+)(.*)$")
PAYLOAD_IN_HEADING = re.compile(r"payloadType\s+(\d+)\s+\(`(\w+)`\)")
FILE_IN_HEADING = re.compile(r"(OpenApi\w+\.proto)")
COMMON_PAYLOAD_SENTENCE = re.compile(r"`ProtoPayloadType`\s*\(common\):(.*)$")
BACKTICKED_VALUE = re.compile(r"`(\w+)`\s*=\s*(\d+)")
DEFAULT_PHRASE = re.compile(r"\bdefault\s+(\"[^\"]*\"|[A-Za-z_][A-Za-z0-9_]*)")


class ReferenceError_(Exception):  # noqa: N801 - the builtin name is ReferenceError
    """The reference contradicts itself or is laid out in a way this script does not know."""


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]


@dataclass
class Extracted:
    messages: dict[str, dict[str, Any]] = field(default_factory=dict)
    enums: dict[str, list[list[Any]]] = field(default_factory=dict)
    payload_table: list[tuple[int, str, str]] = field(default_factory=list)


def cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def read_table(lines: list[str], start: int) -> tuple[Table, int]:
    """The table whose header line is lines[start]; returns it and the index after it."""
    header = [cell.lower() for cell in cells(lines[start])]
    index = start + 2  # header, then the |---| line
    rows = []
    while index < len(lines) and lines[index].lstrip().startswith("|"):
        rows.append(cells(lines[index]))
        index += 1
    return Table(header, rows), index


def next_table(lines: list[str], start: int) -> int | None:
    """Index of the first table line after `start` and before the next heading, if any."""
    for index in range(start, len(lines)):
        stripped = lines[index].lstrip()
        if stripped.startswith("#"):
            return None
        if stripped.startswith("|"):
            return index
    return None


def add_enum(extracted: Extracted, name: str, values: list[tuple[str, int]]) -> None:
    pairs = [[value_name, number] for value_name, number in values]
    if name in extracted.enums and extracted.enums[name] != pairs:
        raise ReferenceError_(f"enum {name} is given twice with different values")
    names = [value_name for value_name, _ in values]
    if len(set(names)) != len(names):
        raise ReferenceError_(f"enum {name} names a value twice")
    extracted.enums[name] = pairs


def message_fields(name: str, table: Table) -> list[dict[str, Any]]:
    found = []
    for row in table.rows:
        number, field_name, type_name, label, notes = (row + [""] * 5)[:5]
        if not number.isdigit() or label not in LABELS:
            raise ReferenceError_(f"{name}: cannot read the row {row}")
        entry: dict[str, Any] = {"number": int(number), "name": field_name, "type": type_name, "label": label}
        if re.search(r"\bpacked\b", notes):
            entry["packed"] = True
        if re.search(r"\bdeprecated\b", notes, re.IGNORECASE):
            entry["deprecated"] = True
        entry["_notes"] = notes
        found.append(entry)
    numbers = [entry["number"] for entry in found]
    if len(set(numbers)) != len(numbers):
        raise ReferenceError_(f"{name} uses a field number twice")
    return found


def read_heading(extracted: Extracted, lines: list[str], index: int, name: str, rest: str) -> None:
    table_at = next_table(lines, index + 1)
    if table_at is None:
        return
    table, _ = read_table(lines, table_at)
    if table.header[:4] == ["#", "field", "type", "label"]:
        if name in extracted.messages:
            raise ReferenceError_(f"message {name} has two tables")
        payload = PAYLOAD_IN_HEADING.search(rest)
        file_named = FILE_IN_HEADING.search(rest)
        extracted.messages[name] = {
            "payload_type": int(payload.group(1)) if payload else None,
            "payload_type_name": payload.group(2) if payload else None,
            "file": file_named.group(1) if file_named else None,
            "removed": "removed from ProtoOAPayloadType" in rest,
            "fields": message_fields(name, table),
        }
    elif table.header[:2] == ["name", "value"]:
        add_enum(extracted, name, [(row[0], int(row[1])) for row in table.rows])


def extract_markdown(text: str) -> Extracted:
    lines = text.splitlines()
    extracted = Extracted()
    for index, line in enumerate(lines):
        heading = HEADING.match(line)
        if heading:
            read_heading(extracted, lines, index, heading.group(1), heading.group(2))
            continue
        common = COMMON_PAYLOAD_SENTENCE.search(line)
        if common:
            values = [
                (value_name, int(number)) for value_name, number in BACKTICKED_VALUE.findall(common.group(1))
            ]
            add_enum(extracted, "ProtoPayloadType", values)
            continue
        if not line.lstrip().startswith("|") or (index > 0 and lines[index - 1].lstrip().startswith("|")):
            continue
        header = [cell.lower() for cell in cells(line)]
        if header[:2] == ["enum", "values (name = number)"]:
            table, _ = read_table(lines, index)
            for enum_name, listed in table.rows:
                pairs = [part.strip().split("=") for part in listed.split(",")]
                add_enum(
                    extracted, enum_name, [(value_name.strip(), int(number)) for value_name, number in pairs]
                )
        elif header[:3] == ["value", "enum name", "message"]:
            table, _ = read_table(lines, index)
            extracted.payload_table = [
                (int(value), enum_name, message) for value, enum_name, message in table.rows
            ]
    return extracted


def field_default(entry: dict[str, Any], enums: dict[str, list[list[Any]]]) -> Any:
    """The declared default the notes give for this field, if any: the last `default X` whose X is a value of
    the field's type (a phrase like "model default differs from ..." is not one)."""
    found: Any = None
    for raw in DEFAULT_PHRASE.findall(entry["_notes"]):
        if entry["type"] in enums and raw in {value_name for value_name, _ in enums[entry["type"]]}:
            found = raw
        elif entry["type"] == "string" and raw.startswith('"'):
            found = raw[1:-1]
        elif entry["type"] == "bool" and raw in {"true", "false"}:
            found = raw == "true"
    return found


def file_of_message(name: str, message: dict[str, Any]) -> str:
    if message["file"]:
        return str(message["file"])
    if name in COMMON_MESSAGES:
        return "OpenApiCommonMessages.proto"
    return "OpenApiMessages.proto" if message["payload_type"] is not None else "OpenApiModelMessages.proto"


def check_payload_types(extracted: Extracted) -> None:
    """Each heading's payloadType agrees with the section 3.1 table, and each table entry has a message."""
    by_value = {value: (enum_name, message) for value, enum_name, message in extracted.payload_table}
    for name, message in extracted.messages.items():
        value = message["payload_type"]
        if value is None:
            continue
        if message["removed"]:
            if value in by_value:
                raise ReferenceError_(f"{name} is marked removed but {value} is in the payload type table")
        elif by_value.get(value) != (message["payload_type_name"], name):
            heading = f"{value} {message['payload_type_name']}"
            raise ReferenceError_(f"{name}: the heading says {heading}, the table {by_value.get(value)}")
    for value, (enum_name, message_name) in by_value.items():
        if message_name.startswith("Proto") and message_name not in extracted.messages:
            raise ReferenceError_(
                f"payload type {value} {enum_name} names {message_name}, which has no table"
            )


def settle_fields(extracted: Extracted) -> None:
    """Each message's file; each field's default (a message's own payloadType for `payloadType`); every type
    named has a table."""
    messages, enums = extracted.messages, extracted.enums
    for name, message in messages.items():
        message["file"] = file_of_message(name, message)
        for entry in message["fields"]:
            default = field_default(entry, enums)
            entry.pop("_notes")
            if entry["name"] == "payloadType" and message["payload_type"] is not None:
                default = message["payload_type_name"]
            if default is not None:
                entry["default"] = default
            type_name = entry["type"]
            if type_name not in SCALARS and type_name not in enums and type_name not in messages:
                raise ReferenceError_(f"{name}.{entry['name']}: the type {type_name} has no table")


def finish(extracted: Extracted) -> dict[str, Any]:
    """Settle payload types, defaults and files; check the reference against itself."""
    common = {value_name for value_name, _ in extracted.enums["ProtoPayloadType"]}
    oa_values = [
        (enum_name, value) for value, enum_name, _ in extracted.payload_table if enum_name not in common
    ]
    add_enum(extracted, "ProtoOAPayloadType", oa_values)
    check_payload_types(extracted)
    settle_fields(extracted)
    return {
        "messages": dict(sorted(extracted.messages.items())),
        "enums": {
            name: {
                "file": "OpenApiCommonModelMessages.proto"
                if name in COMMON_ENUMS
                else "OpenApiModelMessages.proto",
                "values": values,
            }
            for name, values in sorted(extracted.enums.items())
        },
    }


def extract(reference: Path) -> dict[str, Any]:
    text = reference.read_text(encoding="utf-8")
    tables = finish(extract_markdown(text))
    return {
        "source": "shared/reference/ctrader-openapi.md",
        "source_sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
        "generated_by": "scripts/extract_openapi_tables.py",
        **tables,
    }


def render(tables: dict[str, Any]) -> str:
    """Indented JSON with one field, and one enum value, per line."""
    text = json.dumps(tables, indent=1, ensure_ascii=False)
    text = re.sub(
        r'\{\n\s+("number"[^{}]*?)\n\s+\}', lambda m: "{" + re.sub(r"\n\s+", " ", m.group(1)) + "}", text
    )
    text = re.sub(r'\[\n\s+("\w+"),\n\s+(\d+)\n\s+\]', r"[\1, \2]", text)
    return text + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reference", nargs="?", type=Path, help="the protocol reference (markdown)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if --out differs from a fresh extraction"
    )
    args = parser.parse_args(argv)
    reference = args.reference or next((path for path in REFERENCE_CANDIDATES if path.exists()), None)
    if reference is None or not reference.exists():
        print("the reference was not found; give its path", file=sys.stderr)
        return 2
    try:
        rendered = render(extract(reference))
    except ReferenceError_ as error:
        print(f"{reference}: {error}", file=sys.stderr)
        return 1
    if args.check:
        current = json.loads(args.out.read_text(encoding="utf-8")) if args.out.exists() else {}
        fresh = json.loads(rendered)
        current.pop("source_sha256", None)
        fresh.pop("source_sha256", None)
        if current != fresh:
            print(f"{args.out} is out of date with {reference}: run {Path(__file__).name}", file=sys.stderr)
            return 1
        print(f"{args.out} is up to date")
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(rendered, encoding="utf-8")
    tables = json.loads(rendered)
    print(f"{args.out}: {len(tables['messages'])} messages, {len(tables['enums'])} enums from {reference}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
