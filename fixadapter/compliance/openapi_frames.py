"""cTrader Open API frames as compliance records: the same `fix_messages` rows, hash chain and log files as
FIX, so one log (and one `fixadapter log verify`) covers every message the adapter exchanged with the venue.

A frame (one serialized ProtoMessage, without the TCP length prefix) becomes one line of JSON, keys in a fixed
order and the inner message's fields in field-number order, so the same frame always gives the same text (the
hash covers it):

    {"payloadType":2106,"name":"ProtoOANewOrderReq","direction":"out","clientMsgId":"m-1","message":{...}}

Secrets are masked by field, walking the message's descriptors (nested and repeated messages included), never
by searching the text: every field whose name ends in token, secret or password (clientSecret, accessToken,
refreshToken; a test lists them from the .proto files) reads `******`, the mask FIX uses for its Password 554.
Fields our .proto files do not describe are named by number, never printed, so a secret the server adds in a
later version cannot leak through them either.

A frame that does not decode is kept as hex with a note saying why, never dropped, except a frame of a
message type that carries secrets (known from the wrapper, or from the first bytes of a frame cut short):
that could not be masked, so it is withheld (its length is kept). A payload type of no message of ours is
kept as hex too: nothing tells which of its fields would be a secret.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError, Message

from fixadapter.compliance.records import Direction, FixRecord
from fixadapter.compliance.table import MSG_TYPE_LENGTH
from fixadapter.protocols.openapi.generated.OpenApiCommonMessages_pb2 import ProtoMessage
from fixadapter.protocols.openapi.messages import FrameError, decode, message_class

MASK = "******"
SECRET_SUFFIXES = ("token", "secret", "password", "passwd")
UNKNOWN_TYPE = "unknown"  # msg_type of a payloadType no message of ours has (as the frame metrics label it)
UNREADABLE = "unreadable"  # msg_type of bytes that are not a ProtoMessage at all
# What a ProtoMessage starts with: field 1 (payloadType) as a varint.
_PAYLOAD_TYPE_KEY = 0x08


def is_secret(field: _Field) -> bool:
    """A field whose value is a credential: masked wherever it appears (`tokenType` is not one)."""
    return field.name.lower().endswith(SECRET_SUFFIXES)


class _Field(Protocol):
    """What is_secret and carries_secrets read of a field descriptor (pure-Python and upb ones have it)."""

    @property
    def name(self) -> str: ...
    @property
    def message_type(self) -> _MessageType | None: ...


class _MessageType(Protocol):
    """What carries_secrets reads of a message descriptor."""

    @property
    def full_name(self) -> str: ...
    @property
    def fields(self) -> Sequence[_Field]: ...


def carries_secrets(descriptor: _MessageType, seen: frozenset[str] = frozenset()) -> bool:
    """Whether a message of this type can hold a secret field, itself or in a message inside it."""
    if descriptor.full_name in seen:
        return False
    inside = seen | {descriptor.full_name}
    return any(
        is_secret(field) or (field.message_type is not None and carries_secrets(field.message_type, inside))
        for field in descriptor.fields
    )


def readable(message: Message) -> dict[str, Any]:
    """The fields set in `message`, in field-number order, secrets masked: nested messages as objects,
    enums by name (the number when our enum lacks it), bytes as hex."""
    fields = sorted(message.ListFields(), key=lambda item: item[0].number)
    return {field.name: MASK if is_secret(field) else _value(field, value) for field, value in fields}


def _value(field: FieldDescriptor, value: Any) -> Any:
    if field.is_repeated:
        return [_scalar(field, item) for item in value]
    return _scalar(field, value)


def _scalar(field: FieldDescriptor, value: Any) -> Any:
    if field.message_type is not None:
        return readable(value)
    if field.enum_type is not None:
        known = field.enum_type.values_by_number.get(value)
        return known.name if known is not None else value
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no NaN or infinity
    return value


@dataclass(frozen=True, slots=True)
class FrameText:
    """A frame as recorded: the text and the columns people search by."""

    raw: str
    msg_type: str
    cl_ord_id: str | None = None
    order_id: str | None = None


def frame_text(direction: str, frame: bytes) -> FrameText:
    """The record of one frame sent ("out") or received ("in"), whatever its bytes: decoded and masked, or
    hex with a note. The direction is in the text too, so a log file line is whole on its own."""
    direction = Direction(direction).value
    try:
        decoded = decode(frame)
    except FrameError as exc:
        return _undecodable(direction, frame, str(exc))
    name = _name(decoded.payload_type)
    head: dict[str, Any] = {"payloadType": decoded.payload_type, "name": name, "direction": direction}
    if decoded.client_msg_id is not None:
        head["clientMsgId"] = decoded.client_msg_id
    if decoded.message is None:
        head["note"] = f"unknown payloadType {decoded.payload_type}: payload kept as hex"
        head["hex"] = decoded.payload.hex()
        return FrameText(_json(head), name)
    message = head["message"] = readable(decoded.message)
    if decoded.unknowns:
        head["unknowns"] = [str(unknown) for unknown in decoded.unknowns]
    if decoded.missing_required:
        head["missingRequired"] = list(decoded.missing_required)
    cl_ord_id, order_id = order_ids(message)
    return FrameText(_json(head), name, cl_ord_id, order_id)


def order_ids(message: dict[str, Any]) -> tuple[str | None, str | None]:
    """clientOrderId and orderId of a message as `readable` gives it (or a record's stored "message"): its
    own, else those of the order (else the deal) inside it, as the ClOrdID and OrderID columns hold them for
    FIX. An orderId of 0 (sent for no order) is none; a list of orders (a reconcile) names none."""
    cl_ord_id = _first(message, "clientOrderId", ("order",))
    order_id = _first(message, "orderId", ("order", "deal"))
    return (
        str(cl_ord_id) if cl_ord_id not in (None, "", 0) else None,
        str(order_id) if order_id not in (None, "", 0, "0") else None,
    )


def _first(message: dict[str, Any], name: str, inside: tuple[str, ...]) -> Any:
    if name in message:
        return message[name]
    for holder in inside:
        child = message.get(holder)
        if isinstance(child, dict) and name in child:
            return child[name]
    return None


def _undecodable(direction: str, frame: bytes, reason: str) -> FrameText:
    """Hex with the reason, except a frame whose payload type carries secrets (read from the wrapper, or from
    the first bytes of a frame cut short): that is withheld, its length kept."""
    wrapper = ProtoMessage()
    try:
        wrapper.ParseFromString(frame)
    except DecodeError:
        wrapper.Clear()
    payload_type = wrapper.payloadType if wrapper.HasField("payloadType") else peek_payload_type(frame)
    if payload_type is None:
        garbage = {"payloadType": None, "direction": direction, "note": reason, "hex": frame.hex()}
        return FrameText(_json(garbage), UNREADABLE)
    cls = message_class(payload_type)
    name = _name(payload_type)
    head: dict[str, Any] = {"payloadType": payload_type, "name": name, "direction": direction}
    if wrapper.HasField("clientMsgId"):
        head["clientMsgId"] = wrapper.clientMsgId
    if cls is not None and carries_secrets(cls.DESCRIPTOR):
        head["note"] = f"{reason}; the frame's {len(frame)} bytes withheld: a {name} may hold a secret"
    else:
        head["note"] = f"{reason}: frame kept as hex"
        head["hex"] = frame.hex()
    return FrameText(_json(head), name)


def _name(payload_type: int) -> str:
    cls = message_class(payload_type)
    return cls.__name__ if cls is not None else UNKNOWN_TYPE


def _json(data: dict[str, Any]) -> str:
    """One line; non-ASCII text kept readable unless it is not valid Unicode (then escaped)."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    try:
        text.encode()
    except UnicodeEncodeError:
        return json.dumps(data, separators=(",", ":"))
    return text


def peek_payload_type(frame: bytes) -> int | None:
    """The payloadType of a frame from its first bytes, without decoding it (the capture's hot path skips
    market data with it): payloadType is field 1, serialized first; None when it is not there in 1-2 bytes."""
    if len(frame) < 3 or frame[0] != _PAYLOAD_TYPE_KEY:
        return None
    first, second = frame[1], frame[2]
    if first < 0x80:
        return first
    if second < 0x80:
        return (first & 0x7F) | (second << 7)
    return None


def frame_record(moment: float, session: str, direction: str, frame: bytes) -> FixRecord:
    """The FixRecord of a captured frame: no sequence number (Open API has none), no OrigClOrdID (an amend
    names the order by orderId)."""
    text = frame_text(direction, frame)
    return FixRecord.model_construct(
        time=datetime.fromtimestamp(moment, UTC),
        session=session,
        direction=Direction(direction),
        msg_type=text.msg_type[:MSG_TYPE_LENGTH],
        seq_num=None,
        cl_ord_id=text.cl_ord_id,
        orig_cl_ord_id=None,
        order_id=text.order_id,
        raw=text.raw,
    )


def record_from_text(moment: datetime, session: str, raw: str) -> FixRecord:
    """The record of a line of our Open API log file (`<time> : <record text>`), as it was stored: the
    direction and indexed columns come from the text itself. A credential that is somehow in clear (a file
    written by something else) is masked by key, as frame_text masks by field. ValueError if `raw` is not a
    record openapi_frames wrote."""
    data = json.loads(raw)
    if not isinstance(data, dict) or "payloadType" not in data or "direction" not in data:
        raise ValueError("not an Open API record (a JSON object with payloadType and direction)")
    if _mask_keys(data):
        raw = _json(data)
    message = data.get("message")
    cl_ord_id, order_id = order_ids(message) if isinstance(message, dict) else (None, None)
    return FixRecord(
        time=moment,
        session=session,
        direction=Direction(data["direction"]),
        msg_type=str(data.get("name") or UNREADABLE)[:MSG_TYPE_LENGTH],
        cl_ord_id=cl_ord_id,
        order_id=order_id,
        raw=raw,
    )


def _mask_keys(data: Any) -> bool:
    """Mask every value whose key names a secret, at any depth; whether anything was masked."""
    changed = False
    if isinstance(data, dict):
        for key, value in data.items():
            if key.lower().endswith(SECRET_SUFFIXES):
                if value != MASK:
                    data[key], changed = MASK, True
            elif _mask_keys(value):
                changed = True
    elif isinstance(data, list):
        for item in data:
            changed = _mask_keys(item) or changed
    return changed
