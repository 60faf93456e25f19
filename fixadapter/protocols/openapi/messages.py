"""cTrader Open API messages: the class of each payloadType, the ProtoMessage wrapper, and what we did not
understand.

Every frame on the wire is one `ProtoMessage{payloadType, payload, clientMsgId}` whose `payload` is the inner
message serialized. `decode` turns the wrapper's bytes into the inner message, `encode` does the reverse. No
I/O here: the 4-byte length prefix and the socket belong to the connector.

The payloadType -> class table is read from the generated descriptors: a message has payloadType N when its
`payloadType` field is an enum whose declared default is N (each .proto message declares its own id so).
Nothing is typed in twice.

What the server sends that our .proto files do not describe is reported, never guessed (reference, Appendix
B): an unknown payloadType leaves the message undecoded; an unknown field, an enum value our enum lacks
(proto2 keeps it among the unknown fields and the field reads as the enum's first value, unset) and a field
sent with the wrong wire type are listed with their path, so the connector can count and log each one.
Required fields the server left out (or that held an unknown enum value) are listed too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType, ModuleType
from typing import Protocol

from google.protobuf.message import DecodeError, Message
from google.protobuf.unknown_fields import UnknownFieldSet

from fixadapter.protocols.openapi.generated import (
    OpenApiCommonMessages_pb2,
    OpenApiCommonModelMessages_pb2,
    OpenApiMessages_pb2,
    OpenApiModelMessages_pb2,
)
from fixadapter.protocols.openapi.generated.OpenApiCommonMessages_pb2 import ProtoMessage

__all__ = [
    "GENERATED_MODULES",
    "PAYLOAD_TYPES",
    "Decoded",
    "FrameError",
    "Unknown",
    "UnknownKind",
    "decode",
    "encode",
    "find_missing_required",
    "find_unknowns",
    "message_class",
    "payload_type_of",
    "wrap",
]

GENERATED_MODULES: tuple[ModuleType, ...] = (
    OpenApiCommonModelMessages_pb2,
    OpenApiCommonMessages_pb2,
    OpenApiModelMessages_pb2,
    OpenApiMessages_pb2,
)

WIRE_VARINT = 0
WRAPPER = "ProtoMessage"
WRAPPER_PAYLOAD_TYPE = 1  # ProtoMessage.payloadType's field number


class FrameError(ValueError):
    """The bytes are not a ProtoMessage, or its payload is not the message its payloadType names."""


class UnknownKind(StrEnum):
    FIELD = "field"  # a field number the message does not define
    ENUM_VALUE = "enum_value"  # an enum field of ours carrying a value our enum lacks
    WIRE_TYPE = "wire_type"  # a field number of ours sent with a wire type its type does not have
    PAYLOAD_TYPE = "payload_type"  # a wrapper payloadType no message of ours has
    PAYLOAD_TYPE_MISMATCH = "payload_type_mismatch"  # the inner payloadType differs from the wrapper's


@dataclass(frozen=True, slots=True)
class Unknown:
    """One thing the server sent that we do not understand.

    `path` names the message it was found in (`ProtoOAReconcileRes.order[1].tradeData`); `field_number` is the
    field's number there (ProtoMessage.payloadType's, 1, for PAYLOAD_TYPE); `value` is the number received for
    ENUM_VALUE, PAYLOAD_TYPE and PAYLOAD_TYPE_MISMATCH; `field_name` is set when the number is one of ours.
    """

    kind: UnknownKind
    path: str
    field_number: int
    wire_type: int | None = None
    value: int | None = None
    field_name: str | None = None

    def __str__(self) -> str:
        where = f"{self.path}.{self.field_name}" if self.field_name else self.path
        match self.kind:
            case UnknownKind.FIELD:
                return f"unknown field {self.field_number} (wire type {self.wire_type}) in {where}"
            case UnknownKind.ENUM_VALUE:
                return f"unknown enum value {self.value} in {where} (field {self.field_number})"
            case UnknownKind.WIRE_TYPE:
                return f"{where} (field {self.field_number}) sent with wire type {self.wire_type}"
            case UnknownKind.PAYLOAD_TYPE:
                return f"unknown payloadType {self.value}"
            case UnknownKind.PAYLOAD_TYPE_MISMATCH:
                return f"{where} is {self.value}, not the wrapper's payloadType"


@dataclass(frozen=True, slots=True)
class Decoded:
    """One ProtoMessage, decoded; `message` is None when the payloadType is not one of ours (see
    `unknowns`)."""

    payload_type: int
    client_msg_id: str | None
    message: Message | None
    payload: bytes
    unknowns: tuple[Unknown, ...] = ()
    missing_required: tuple[str, ...] = ()  # paths: "ProtoOAExecutionEvent.order.tradeData.volume"


class _Field(Protocol):
    """What this module reads of a field descriptor (the pure-Python and upb descriptors both have it)."""

    @property
    def name(self) -> str: ...
    @property
    def enum_type(self) -> object | None: ...


def _payload_types(modules: Iterable[ModuleType]) -> Mapping[int, type[Message]]:
    """payloadType -> message class, from each message's `payloadType` enum default."""
    found: dict[int, type[Message]] = {}
    for module in modules:
        for name, descriptor in module.DESCRIPTOR.message_types_by_name.items():
            field = descriptor.fields_by_name.get("payloadType")
            if field is None or field.enum_type is None or not field.has_default_value:
                continue  # the wrapper (a plain uint32) and the model messages
            number = int(field.default_value)
            if number in found:
                raise RuntimeError(f"payloadType {number}: both {found[number].__name__} and {name}")
            found[number] = getattr(module, name)
    return MappingProxyType(found)


PAYLOAD_TYPES: Mapping[int, type[Message]] = _payload_types(GENERATED_MODULES)
_PAYLOAD_TYPE_OF: Mapping[type[Message], int] = MappingProxyType({c: n for n, c in PAYLOAD_TYPES.items()})


def message_class(payload_type: int) -> type[Message] | None:
    """The message class of a payloadType, or None if no message of ours has it."""
    return PAYLOAD_TYPES.get(payload_type)


def payload_type_of(message: Message | type[Message]) -> int:
    """The payloadType of a message or message class; ValueError for a model message, which has none."""
    cls = message if isinstance(message, type) else type(message)
    try:
        return _PAYLOAD_TYPE_OF[cls]
    except KeyError:
        raise ValueError(f"{cls.__name__} has no payloadType: it is never sent on its own") from None


def wrap(message: Message, client_msg_id: str | None = None) -> ProtoMessage:
    """The ProtoMessage carrying `message`; protobuf's EncodeError if a required field of it is unset.

    The inner `payloadType` is left unset, as the official SDK sends it: the wrapper's routes the message.
    """
    wrapper = ProtoMessage(payloadType=payload_type_of(message), payload=message.SerializeToString())
    if client_msg_id is not None:
        wrapper.clientMsgId = client_msg_id
    return wrapper


def encode(message: Message, client_msg_id: str | None = None) -> bytes:
    """The serialized ProtoMessage carrying `message`, without the TCP framing's 4-byte length prefix."""
    return wrap(message, client_msg_id).SerializeToString()


def decode(data: bytes) -> Decoded:
    """Decode one serialized ProtoMessage. What we do not understand is reported in `unknowns`, never raised;
    FrameError if the bytes are not protobuf, or the wrapper has no payloadType."""
    wrapper = ProtoMessage()
    try:
        wrapper.ParseFromString(data)
    except DecodeError as error:
        raise FrameError(f"not a ProtoMessage: {error}") from error
    if not wrapper.HasField("payloadType"):
        raise FrameError("ProtoMessage without payloadType")
    payload_type = wrapper.payloadType
    client_msg_id = wrapper.clientMsgId if wrapper.HasField("clientMsgId") else None
    unknowns = find_unknowns(wrapper) if _has_unknowns(wrapper) else []
    cls = message_class(payload_type)
    if cls is None:
        unknowns.append(
            Unknown(
                UnknownKind.PAYLOAD_TYPE,
                WRAPPER,
                WRAPPER_PAYLOAD_TYPE,
                value=payload_type,
                field_name="payloadType",
            )
        )
        return Decoded(payload_type, client_msg_id, None, wrapper.payload, tuple(unknowns))
    message = cls()
    try:
        message.ParseFromString(wrapper.payload)
    except DecodeError as error:
        raise FrameError(f"payload of payloadType {payload_type} is not a {cls.__name__}: {error}") from error
    if _has_unknowns(message):
        unknowns.extend(find_unknowns(message))
    unknowns.extend(_inner_payload_type_mismatch(message, payload_type))
    missing = () if message.IsInitialized() else tuple(find_missing_required(message))
    return Decoded(payload_type, client_msg_id, message, wrapper.payload, tuple(unknowns), missing)


def _has_unknowns(message: Message) -> bool:
    """Whether anything in `message` is unknown, answered in C (a copy without unknown fields is smaller)
    so the walk in Python that says what and where runs only when something is. A message missing a
    required field (an unknown value of a required enum leaves it unset) always takes the walk."""
    if not message.IsInitialized():
        return True
    probe = type(message)()
    probe.CopyFrom(message)
    probe.DiscardUnknownFields()
    return probe.ByteSize() != message.ByteSize()


def find_unknowns(message: Message, path: str | None = None) -> list[Unknown]:
    """Everything in `message`, and in the messages inside it, that our .proto files do not describe."""
    path = path or message.DESCRIPTOR.name
    by_number = message.DESCRIPTOR.fields_by_number
    unknown_fields = UnknownFieldSet(message)
    found = []
    for index in range(len(unknown_fields)):
        item = unknown_fields[index]
        number, wire_type = int(item.field_number), int(item.wire_type)
        found.append(_classify(path, by_number.get(number), number, wire_type, item.data))
    for field, value in message.ListFields():
        if field.message_type is None:
            continue
        if field.is_repeated:
            for position, child in enumerate(value):
                found.extend(find_unknowns(child, f"{path}.{field.name}[{position}]"))
        else:
            found.extend(find_unknowns(value, f"{path}.{field.name}"))
    return found


def find_missing_required(message: Message, path: str | None = None) -> list[str]:
    """The required fields left unset in `message` and in the messages inside it, as paths."""
    path = path or message.DESCRIPTOR.name
    found = [
        f"{path}.{field.name}"
        for field in message.DESCRIPTOR.fields
        if field.is_required and not message.HasField(field.name)
    ]
    for field, value in message.ListFields():
        if field.message_type is None:
            continue
        if field.is_repeated:
            for position, child in enumerate(value):
                found.extend(find_missing_required(child, f"{path}.{field.name}[{position}]"))
        else:
            found.extend(find_missing_required(value, f"{path}.{field.name}"))
    return found


def _classify(path: str, field: _Field | None, number: int, wire_type: int, data: object) -> Unknown:
    if field is None:
        return Unknown(UnknownKind.FIELD, path, number, wire_type)
    if field.enum_type is not None and wire_type == WIRE_VARINT and isinstance(data, int):
        return Unknown(UnknownKind.ENUM_VALUE, path, number, wire_type, data, field.name)
    return Unknown(UnknownKind.WIRE_TYPE, path, number, wire_type, field_name=field.name)


def _inner_payload_type_mismatch(message: Message, payload_type: int) -> list[Unknown]:
    if not message.HasField("payloadType"):
        return []  # the usual case: senders leave the inner copy unset
    inner = int(getattr(message, "payloadType", 0))
    if inner == payload_type:
        return []
    number = message.DESCRIPTOR.fields_by_name["payloadType"].number
    name = message.DESCRIPTOR.name
    return [Unknown(UnknownKind.PAYLOAD_TYPE_MISMATCH, name, number, value=inner, field_name="payloadType")]
