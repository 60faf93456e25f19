"""Open API records shown to people: one field per line, nested messages indented, beside FIX messages in
`fixadapter log show|search|order|export` (export.py calls here for a record openapi_frames.py wrote).

Everything shown comes from the stored text, already masked: nothing is decoded from bytes again here, and
protobuf is not even imported unless a payload type name is looked up (every `fixadapter` command imports
export.py, which imports this).
"""

from __future__ import annotations

import json
from typing import Any

_PREFIXES = ("ProtoOA", "Proto")


def parsed(raw: str) -> dict[str, Any] | str:
    """The stored record as data, or why it is not readable (a row edited by hand, say)."""
    try:
        data = json.loads(raw)
    except ValueError as exc:
        return f"not an Open API record: {exc}"
    return data if isinstance(data, dict) else "not an Open API record: not a JSON object"


def decoded_lines(raw: str) -> list[str]:
    """`payloadType = 2106 (ProtoOANewOrderReq)`, `clientMsgId = m-1`, then the message's fields."""
    data = parsed(raw)
    if isinstance(data, str):
        return [data]
    name = data.get("name")
    lines = [f"payloadType = {data.get('payloadType')}" + (f" ({name})" if name else "")]
    if "clientMsgId" in data:
        lines.append(f"clientMsgId = {data['clientMsgId']}")
    message = data.get("message")
    if isinstance(message, dict):
        lines.extend(_fields(message, 0))
    lines.extend(f"[{unknown}]" for unknown in data.get("unknowns", ()))
    lines.extend(f"[required field missing: {path}]" for path in data.get("missingRequired", ()))
    if "note" in data:
        lines.append(f"[{data['note']}]")
    if "hex" in data:
        lines.append(f"hex = {data['hex']}")
    return lines


def _fields(message: dict[str, Any], depth: int) -> list[str]:
    indent = "  " * depth
    lines: list[str] = []
    for name, value in message.items():
        if isinstance(value, dict):
            lines.append(f"{indent}{name}:")
            lines.extend(_fields(value, depth + 1))
        elif isinstance(value, list) and any(isinstance(item, dict) for item in value):
            lines.append(f"{indent}{name}: {len(value)} entries")
            for item in value:
                entry = _fields(item, depth + 2) if isinstance(item, dict) else [f"{indent}    {item}"]
                if entry:
                    entry[0] = f"{indent}  - {entry[0].lstrip()}"
                lines.extend(entry)
        elif isinstance(value, list):
            lines.append(f"{indent}{name} = [{', '.join(str(item) for item in value)}]")
        else:
            lines.append(f"{indent}{name} = {value}")
    return lines


def payload_type_name(text: str) -> str | None:
    """A payload type as a person may type it: `ProtoOANewOrderReq`, `NewOrderReq` (any case) or `2106`;
    None when no message of ours has it."""
    from fixadapter.protocols.openapi.messages import PAYLOAD_TYPES  # protobuf: only for a --msg-type

    if text.isdigit():
        cls = PAYLOAD_TYPES.get(int(text))
        return None if cls is None else cls.__name__
    wanted = text.casefold()
    for cls in PAYLOAD_TYPES.values():
        name = cls.__name__
        if wanted == name.casefold() or any(wanted == name.removeprefix(p).casefold() for p in _PREFIXES):
            return name
    return None
