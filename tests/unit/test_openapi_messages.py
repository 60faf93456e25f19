"""cTrader Open API messages (issue 15, item 1).

Our own proto2 files (fixadapter/protocols/openapi/proto) say exactly what the protocol reference's tables
say: every message, field number, label, type and default, every payloadType, every enum value. The tables are
read from tests/unit/data/openapi_tables.json, which scripts/extract_openapi_tables.py extracts from the
reference (shared/reference/ctrader-openapi.md, outside the repository). Frames round-trip through the
ProtoMessage wrapper, and whatever the server sends that we do not know is reported, never guessed. Last, the
hazards of hand-written .proto files (reference, Appendix B), one by one.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import descriptor_pb2
from google.protobuf import runtime_version as protobuf_runtime
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import EncodeError, Message
from packaging.requirements import Requirement
from packaging.version import Version

from fixadapter.protocols.openapi import messages
from fixadapter.protocols.openapi.generated import OpenApiCommonMessages_pb2 as common
from fixadapter.protocols.openapi.generated import OpenApiCommonModelMessages_pb2 as common_model
from fixadapter.protocols.openapi.generated import OpenApiMessages_pb2 as oa
from fixadapter.protocols.openapi.generated import OpenApiModelMessages_pb2 as model
from fixadapter.protocols.openapi.messages import (
    PAYLOAD_TYPES,
    FrameError,
    Unknown,
    UnknownKind,
    decode,
    encode,
    payload_type_of,
)

ROOT = Path(__file__).resolve().parents[2]
PROTO_DIR = ROOT / "fixadapter" / "protocols" / "openapi" / "proto"
GENERATED_DIR = ROOT / "fixadapter" / "protocols" / "openapi" / "generated"
TABLES = json.loads((Path(__file__).parent / "data" / "openapi_tables.json").read_text(encoding="utf-8"))
MESSAGES: dict[str, dict[str, Any]] = {n: m for n, m in TABLES["messages"].items() if not m["removed"]}
REMOVED: dict[str, dict[str, Any]] = {n: m for n, m in TABLES["messages"].items() if m["removed"]}
SENT_ON_THEIR_OWN = sorted(name for name, m in MESSAGES.items() if m["payload_type"] is not None)

SCALAR_TYPES = {
    FieldDescriptor.TYPE_DOUBLE: "double",
    FieldDescriptor.TYPE_FLOAT: "float",
    FieldDescriptor.TYPE_INT64: "int64",
    FieldDescriptor.TYPE_UINT64: "uint64",
    FieldDescriptor.TYPE_INT32: "int32",
    FieldDescriptor.TYPE_UINT32: "uint32",
    FieldDescriptor.TYPE_FIXED64: "fixed64",
    FieldDescriptor.TYPE_FIXED32: "fixed32",
    FieldDescriptor.TYPE_SFIXED64: "sfixed64",
    FieldDescriptor.TYPE_SFIXED32: "sfixed32",
    FieldDescriptor.TYPE_SINT64: "sint64",
    FieldDescriptor.TYPE_SINT32: "sint32",
    FieldDescriptor.TYPE_BOOL: "bool",
    FieldDescriptor.TYPE_STRING: "string",
    FieldDescriptor.TYPE_BYTES: "bytes",
}


def all_messages() -> dict[str, Any]:
    return {
        name: descriptor
        for module in messages.GENERATED_MODULES
        for name, descriptor in module.DESCRIPTOR.message_types_by_name.items()
    }


def all_enums() -> dict[str, Any]:
    return {
        name: descriptor
        for module in messages.GENERATED_MODULES
        for name, descriptor in module.DESCRIPTOR.enum_types_by_name.items()
    }


def message_class(name: str) -> type[Message]:
    for module in messages.GENERATED_MODULES:
        if name in module.DESCRIPTOR.message_types_by_name:
            cls: type[Message] = getattr(module, name)
            return cls
    raise KeyError(name)


def type_name(field: FieldDescriptor) -> str:
    if field.message_type is not None:
        return str(field.message_type.name)
    if field.enum_type is not None:
        return str(field.enum_type.name)
    return SCALAR_TYPES[field.type]


def label(field: FieldDescriptor) -> str:
    return "repeated" if field.is_repeated else "required" if field.is_required else "optional"


def declared_default(field: FieldDescriptor) -> Any:
    """The default the .proto declares (None if none): an enum's by value name."""
    if not field.has_default_value:
        return None
    if field.enum_type is not None:
        return field.enum_type.values_by_number[field.default_value].name
    return field.default_value


# --- raw protobuf, to build what a server could send and our classes cannot


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def raw_varint(number: int, value: int) -> bytes:
    return varint(number << 3 | 0) + varint(value)


def raw_bytes(number: int, data: bytes) -> bytes:
    return varint(number << 3 | 2) + varint(len(data)) + data


def frame(payload_type: int, payload: bytes, client_msg_id: str | None = None) -> bytes:
    wrapper = common.ProtoMessage(payloadType=payload_type, payload=payload)
    if client_msg_id is not None:
        wrapper.clientMsgId = client_msg_id
    return wrapper.SerializeToString()


def trade_data() -> model.ProtoOATradeData:
    return model.ProtoOATradeData(symbolId=1, volume=10_000_000, tradeSide=model.BUY)


def order(order_id: int = 7) -> model.ProtoOAOrder:
    return model.ProtoOAOrder(
        orderId=order_id,
        tradeData=trade_data(),
        orderType=model.MARKET,
        orderStatus=model.ORDER_STATUS_ACCEPTED,
    )


# --- (a) the .proto files say what the reference's tables say


def test_every_message_of_the_tables_is_defined_and_no_other() -> None:
    assert set(all_messages()) == set(MESSAGES)


@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_each_message_has_the_fields_of_its_table(name: str) -> None:
    descriptor: Descriptor = all_messages()[name]
    table = MESSAGES[name]
    ours = {f.number: (f.name, label(f), type_name(f)) for f in descriptor.fields}
    theirs = {f["number"]: (f["name"], f["label"], f["type"]) for f in table["fields"]}
    assert ours == theirs
    for entry in table["fields"]:
        field = descriptor.fields_by_number[entry["number"]]
        assert declared_default(field) == entry.get("default"), entry["name"]
        assert field.is_packed == entry.get("packed", False), entry["name"]
        assert field.GetOptions().deprecated == entry.get("deprecated", False), entry["name"]
    assert descriptor.file.name == table["file"]


@pytest.mark.parametrize("name", SENT_ON_THEIR_OWN)
def test_each_message_knows_its_own_payload_type(name: str) -> None:
    """`Message().payloadType` is the message's type id: an optional field whose default is that id."""
    table = MESSAGES[name]
    cls = message_class(name)
    assert cls().payloadType == table["payload_type"]  # type: ignore[attr-defined]
    assert not cls().HasField("payloadType")
    field = cls.DESCRIPTOR.fields_by_name["payloadType"]
    assert field.number == 1
    assert label(field) == "optional"
    assert PAYLOAD_TYPES[table["payload_type"]] is cls
    assert payload_type_of(cls) == table["payload_type"]


def test_the_payload_type_table_has_every_message_and_nothing_else() -> None:
    """Built from the descriptors: one class per payloadType of the enums, none for the wrapper's own (5)."""
    oa_values = {value for _, value in TABLES["enums"]["ProtoOAPayloadType"]["values"]}
    common_values = {value for _, value in TABLES["enums"]["ProtoPayloadType"]["values"]}
    assert set(PAYLOAD_TYPES) == oa_values | (common_values - {common_model.PROTO_MESSAGE})
    assert {cls.__name__ for cls in PAYLOAD_TYPES.values()} == set(SENT_ON_THEIR_OWN)


@pytest.mark.parametrize("name", sorted(TABLES["enums"]))
def test_each_enum_has_every_value_of_its_table_in_order(name: str) -> None:
    """Complete, and in the reference's order: an unset proto2 enum field reads as the first value."""
    descriptor = all_enums()[name]
    assert [[value.name, value.number] for value in descriptor.values] == TABLES["enums"][name]["values"]
    assert descriptor.file.name == TABLES["enums"][name]["file"]


def test_no_enum_beyond_the_tables() -> None:
    assert set(all_enums()) == set(TABLES["enums"])


def test_the_pnl_messages_removed_upstream_are_not_defined() -> None:
    """2189-2193 (ProtoOAv1PnLChange*) were removed from ProtoOAPayloadType upstream: neither the messages nor
    the payload types exist here, and such a frame is an unknown payloadType."""
    assert sorted(m["payload_type"] for m in REMOVED.values()) == [2189, 2190, 2191, 2192, 2193]
    assert not set(REMOVED) & set(all_messages())
    assert not {2189, 2190, 2191, 2192, 2193} & set(model.ProtoOAPayloadType.values())
    decoded = decode(frame(2189, b""))
    assert decoded.message is None
    assert [u.kind for u in decoded.unknowns] == [UnknownKind.PAYLOAD_TYPE]


def test_the_generated_modules_are_those_of_the_proto_files() -> None:
    """The committed *_pb2.py were made from the committed .proto files (scripts/gen_openapi_protos.sh)."""
    pytest.importorskip("grpc_tools")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"--proto_path={PROTO_DIR}",
            "--descriptor_set_out=/dev/stdout",
            *sorted(str(path) for path in PROTO_DIR.glob("*.proto")),
        ],
        capture_output=True,
        check=True,
    )
    compiled = descriptor_pb2.FileDescriptorSet.FromString(result.stdout)
    for file in compiled.file:  # protoc leaves json_name out of the descriptors it embeds in *_pb2.py
        for message_type in file.message_type:
            for field in message_type.field:
                field.ClearField("json_name")
    committed = {
        module.DESCRIPTOR.name: descriptor_pb2.FileDescriptorProto.FromString(module.DESCRIPTOR.serialized_pb)
        for module in messages.GENERATED_MODULES
    }
    assert {file.name: file for file in compiled.file} == committed


def test_the_protobuf_runtime_is_one_the_generated_code_accepts() -> None:
    """protoc writes its version into each module (checked at import); pyproject pins a runtime range that
    starts at or above it and stays within its major version."""
    stamped = {
        Version(re.search(r"# Protobuf Python Version: (\S+)", path.read_text(encoding="utf-8")).group(1))  # type: ignore[union-attr]
        for path in GENERATED_DIR.glob("*_pb2.py")
    }
    assert len(stamped) == 1
    (gencode,) = stamped
    runtime = Version(f"{protobuf_runtime.MAJOR}.{protobuf_runtime.MINOR}.{protobuf_runtime.PATCH}")
    assert runtime >= gencode
    assert runtime.major == gencode.major
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    (pin,) = [Requirement(r) for r in project["dependencies"] if Requirement(r).name == "protobuf"]
    lower_bounds = [Version(spec.version) for spec in pin.specifier if spec.operator in (">=", "==", "~=")]
    assert lower_bounds, "the protobuf pin needs a lower bound"
    assert all(bound >= gencode for bound in lower_bounds)
    assert runtime in pin.specifier
    assert Version(f"{gencode.major + 1}.0.0") not in pin.specifier


# --- (b) round trips through the wrapper


def test_a_frame_is_the_wrapper_with_payload_type_payload_and_client_msg_id() -> None:
    """ProtoMessage fields 1, 2, 3; the inner payloadType is left unset (the wrapper's routes the message)."""
    assert encode(oa.ProtoOAVersionReq(), client_msg_id="a") == bytes.fromhex("08b810") + b"\x12\x00\x1a\x01a"
    assert encode(common.ProtoHeartbeatEvent()) == b"\x08\x33\x12\x00"


def test_a_new_order_round_trips_through_the_wrapper() -> None:
    request = oa.ProtoOANewOrderReq(
        ctidTraderAccountId=42,
        symbolId=1,
        orderType=model.LIMIT,
        tradeSide=model.SELL,
        volume=10_000_000,
        limitPrice=1.08512,
        timeInForce=model.GOOD_TILL_DATE,
        expirationTimestamp=1_700_000_000_000,
        clientOrderId="ord-1",
        relativeStopLoss=5000,
    )
    decoded = decode(encode(request, client_msg_id="cm-1"))
    assert decoded.payload_type == model.PROTO_OA_NEW_ORDER_REQ == 2106
    assert decoded.client_msg_id == "cm-1"
    assert decoded.message == request
    assert decoded.unknowns == ()
    assert decoded.missing_required == ()


def sample(field: FieldDescriptor) -> Any:
    """A value for a scalar or enum field; for an enum its last value, not the default: it must travel."""
    if field.enum_type is not None:
        return field.enum_type.values[-1].number
    if field.type == FieldDescriptor.TYPE_STRING:
        return f"{field.name}-text"
    if field.type == FieldDescriptor.TYPE_BYTES:
        return b"\x01\x02"
    if field.type == FieldDescriptor.TYPE_BOOL:
        return True
    if field.type in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return 1.5
    return field.number + 1000


def fill(message: Message) -> None:
    """Set every field of `message` (one element in each repeated field), recursively."""
    for field in message.DESCRIPTOR.fields:
        if field.name == "payloadType":
            continue
        if field.message_type is not None:
            child = getattr(message, field.name).add() if field.is_repeated else getattr(message, field.name)
            child.SetInParent()
            fill(child)
        elif field.is_repeated:
            getattr(message, field.name).append(sample(field))
        else:
            setattr(message, field.name, sample(field))


@pytest.mark.parametrize("name", SENT_ON_THEIR_OWN)
def test_every_message_round_trips_with_every_field_set(name: str) -> None:
    original = message_class(name)()
    fill(original)
    decoded = decode(encode(original, client_msg_id=f"id-{name}"))
    assert decoded.message == original
    assert type(decoded.message) is type(original)
    assert decoded.client_msg_id == f"id-{name}"
    assert decoded.unknowns == ()
    assert decoded.missing_required == ()


def test_a_message_missing_a_required_field_is_not_sent() -> None:
    with pytest.raises(EncodeError):
        encode(oa.ProtoOACancelOrderReq(ctidTraderAccountId=42))


def test_a_model_message_has_no_payload_type() -> None:
    with pytest.raises(ValueError, match="ProtoOAOrder has no payloadType"):
        encode(order())


def test_a_frame_without_client_msg_id_decodes_with_none() -> None:
    decoded = decode(encode(common.ProtoHeartbeatEvent()))
    assert decoded.client_msg_id is None
    assert isinstance(decoded.message, common.ProtoHeartbeatEvent)


def test_bytes_that_are_not_a_frame_raise_frame_error() -> None:
    with pytest.raises(FrameError):
        decode(b"\xff\xff\xff")
    with pytest.raises(FrameError, match="without payloadType"):
        decode(common.ProtoMessage(payload=b"").SerializePartialToString())
    with pytest.raises(FrameError, match="is not a ProtoOASpotEvent"):
        decode(frame(model.PROTO_OA_SPOT_EVENT, b"\x0a\x05ab"))  # a length-delimited field cut short


# --- (c) what we do not know is reported, never guessed


def test_an_unknown_field_an_unknown_enum_value_and_an_unknown_payload_type_are_each_reported() -> None:
    # An execution event whose order carries an order status our enum lacks (99), and a top-level field 99.
    order_bytes = order().SerializeToString()
    order_bytes = order_bytes.replace(raw_varint(4, model.ORDER_STATUS_ACCEPTED), raw_varint(4, 99))
    event = oa.ProtoOAExecutionEvent(ctidTraderAccountId=42, executionType=model.ORDER_ACCEPTED)
    payload = event.SerializeToString() + raw_bytes(5, order_bytes) + raw_varint(99, 1)
    decoded = decode(frame(model.PROTO_OA_EXECUTION_EVENT, payload, client_msg_id="cm-7"))

    assert isinstance(decoded.message, oa.ProtoOAExecutionEvent)
    assert decoded.message.order.orderId == 7  # what we know is decoded
    assert set(decoded.unknowns) == {
        Unknown(UnknownKind.ENUM_VALUE, "ProtoOAExecutionEvent.order", 4, 0, 99, "orderStatus"),
        Unknown(UnknownKind.FIELD, "ProtoOAExecutionEvent", 99, 0),
    }
    # The unknown status is not guessed: the field is unset (it would read as the first value), so the order
    # lacks a required field, and that is reported too.
    assert not decoded.message.order.HasField("orderStatus")
    assert decoded.missing_required == ("ProtoOAExecutionEvent.order.orderStatus",)
    assert sorted(str(u) for u in decoded.unknowns) == [
        "unknown enum value 99 in ProtoOAExecutionEvent.order.orderStatus (field 4)",
        "unknown field 99 (wire type 0) in ProtoOAExecutionEvent",
    ]

    unknown_type = decode(frame(9999, b"\x08\x01", client_msg_id="cm-8"))
    assert unknown_type.message is None
    assert unknown_type.payload == b"\x08\x01"  # kept, for the log and the capture
    assert unknown_type.client_msg_id == "cm-8"
    assert unknown_type.unknowns == (
        Unknown(UnknownKind.PAYLOAD_TYPE, "ProtoMessage", 1, value=9999, field_name="payloadType"),
    )
    assert str(unknown_type.unknowns[0]) == "unknown payloadType 9999"


def test_unknowns_inside_repeated_messages_name_the_element() -> None:
    second = order(8).SerializeToString() + raw_bytes(40, b"new")
    payload = oa.ProtoOAReconcileRes(ctidTraderAccountId=42, order=[order(7)]).SerializeToString()
    decoded = decode(frame(model.PROTO_OA_RECONCILE_RES, payload + raw_bytes(4, second)))
    assert decoded.unknowns == (Unknown(UnknownKind.FIELD, "ProtoOAReconcileRes.order[1]", 40, 2),)


def test_an_unknown_field_of_the_wrapper_is_reported() -> None:
    data = encode(oa.ProtoOAVersionReq()) + raw_varint(4, 1)
    assert decode(data).unknowns == (Unknown(UnknownKind.FIELD, "ProtoMessage", 4, 0),)


def test_a_known_field_with_the_wrong_wire_type_is_reported() -> None:
    payload = raw_bytes(2, b"42") + raw_varint(3, 0)  # ctidTraderAccountId as bytes
    decoded = decode(frame(model.PROTO_OA_RECONCILE_RES, payload))
    assert isinstance(decoded.message, oa.ProtoOAReconcileRes)
    kinds = {(u.kind, u.field_number, u.field_name) for u in decoded.unknowns}
    assert (UnknownKind.WIRE_TYPE, 2, "ctidTraderAccountId") in kinds
    assert (UnknownKind.WIRE_TYPE, 3, "position") in kinds
    assert decoded.missing_required == ("ProtoOAReconcileRes.ctidTraderAccountId",)


def test_an_inner_payload_type_other_than_the_wrapper_is_reported() -> None:
    inner = oa.ProtoOAVersionReq(payloadType=model.PROTO_OA_VERSION_RES).SerializeToString()
    decoded = decode(frame(model.PROTO_OA_VERSION_REQ, inner))
    assert isinstance(decoded.message, oa.ProtoOAVersionReq)
    assert decoded.unknowns == (
        Unknown(
            UnknownKind.PAYLOAD_TYPE_MISMATCH, "ProtoOAVersionReq", 1, value=2105, field_name="payloadType"
        ),
    )


def test_a_server_message_missing_a_required_field_decodes_and_says_so() -> None:
    """Parsing does not raise (protobuf only refuses to serialize it): the gap is reported."""
    payload = oa.ProtoOAExecutionEvent(ctidTraderAccountId=42).SerializePartialToString()
    decoded = decode(frame(model.PROTO_OA_EXECUTION_EVENT, payload))
    assert isinstance(decoded.message, oa.ProtoOAExecutionEvent)
    assert decoded.unknowns == ()
    assert decoded.missing_required == ("ProtoOAExecutionEvent.executionType",)


# --- (d) the hazards of hand-written .proto files (reference, Appendix B)


def test_hazard_an_unknown_value_of_a_required_enum_reads_as_the_first_value_and_is_caught() -> None:
    """A value our enum lacks parses without error and reads as the enum's first value (BALANCE_DEPOSIT),
    the message is no longer initialized and re-serialising it raises: so every enum is complete (tests
    above), and `decode` reports the value and the required field it left unset."""
    deposit = model.ProtoOADepositWithdraw(
        operationType=model.BALANCE_WITHDRAW,
        balanceHistoryId=1,
        balance=2,
        delta=-3,
        changeBalanceTimestamp=4,
    ).SerializeToString()
    corrupt = deposit.replace(raw_varint(1, model.BALANCE_WITHDRAW), raw_varint(1, 40))  # 40: not in our enum
    parsed = model.ProtoOADepositWithdraw.FromString(corrupt)
    assert parsed.operationType == model.BALANCE_DEPOSIT == 0
    assert not parsed.HasField("operationType")
    assert not parsed.IsInitialized()
    with pytest.raises(EncodeError):
        parsed.SerializeToString()
    cash_flow = oa.ProtoOACashFlowHistoryListRes(ctidTraderAccountId=42).SerializeToString() + raw_bytes(
        3, corrupt
    )
    decoded = decode(frame(model.PROTO_OA_CASH_FLOW_HISTORY_LIST_RES, cash_flow))
    assert decoded.unknowns == (
        Unknown(
            UnknownKind.ENUM_VALUE,
            "ProtoOACashFlowHistoryListRes.depositWithdraw[0]",
            1,
            0,
            40,
            "operationType",
        ),
    )
    assert decoded.missing_required == ("ProtoOACashFlowHistoryListRes.depositWithdraw[0].operationType",)


def test_hazard_every_file_is_proto2_so_presence_is_kept() -> None:
    """proto2: `moneyDigits` absent is not `moneyDigits` 0, and a required enum at its first value (period M1,
    type BID) is still sent (a proto3-style encoder would drop it)."""
    for module in messages.GENERATED_MODULES:
        assert descriptor_pb2.FileDescriptorProto.FromString(module.DESCRIPTOR.serialized_pb).syntax in (
            "",
            "proto2",
        )
    absent = model.ProtoOAPosition()
    zero = model.ProtoOAPosition(moneyDigits=0)
    assert not model.ProtoOAPosition.FromString(absent.SerializePartialToString()).HasField("moneyDigits")
    assert model.ProtoOAPosition.FromString(zero.SerializePartialToString()).HasField("moneyDigits")
    ticks = oa.ProtoOAGetTickDataReq(ctidTraderAccountId=42, symbolId=1, type=model.BID)
    assert raw_varint(4, model.BID) in ticks.SerializeToString()
    bars = oa.ProtoOASubscribeLiveTrendbarReq(ctidTraderAccountId=42, period=model.M1, symbolId=1)
    assert raw_varint(3, model.M1) in bars.SerializeToString()


def test_hazard_error_res_payload_type_is_optional_with_a_default_never_required() -> None:
    field = common.ProtoErrorRes.DESCRIPTOR.fields_by_name["payloadType"]
    assert label(field) == "optional"
    assert common.ProtoErrorRes().payloadType == common_model.ERROR_RES == 50
    decoded = decode(
        frame(
            common_model.ERROR_RES, common.ProtoErrorRes(errorCode="BLOCKED_PAYLOAD_TYPE").SerializeToString()
        )
    )
    assert isinstance(decoded.message, common.ProtoErrorRes)
    assert decoded.missing_required == ()


@pytest.mark.parametrize(
    ("name", "unused"),
    [
        ("ProtoOAOrder", {5}),
        ("ProtoOAAmendPositionSLTPReq", {6}),
        ("ProtoOAOrderErrorEvent", {4}),
        ("ProtoOATrendbar", {1, 2}),
        ("ProtoOAInterval", {1, 2}),
        ("ProtoOADepthQuote", {2}),
    ],
)
def test_hazard_unused_field_numbers_stay_unused(name: str, unused: set[int]) -> None:
    """Never invent a field number: the gaps upstream left are gaps here too."""
    assert not unused & set(all_messages()[name].fields_by_number)


def test_hazard_order_error_event_account_id_is_field_5() -> None:
    assert oa.ProtoOAOrderErrorEvent.DESCRIPTOR.fields_by_name["ctidTraderAccountId"].number == 5


def test_hazard_no_package_so_the_names_are_the_official_top_level_ones() -> None:
    for module in messages.GENERATED_MODULES:
        assert module.DESCRIPTOR.package == ""
    for name, descriptor in {**all_messages(), **all_enums()}.items():
        assert descriptor.full_name == name


def test_hazard_margin_call_list_res_is_routed_by_client_msg_id() -> None:
    """ProtoOAMarginCallListRes has no ctidTraderAccountId: the wrapper's clientMsgId is what routes it."""
    assert "ctidTraderAccountId" not in oa.ProtoOAMarginCallListRes.DESCRIPTOR.fields_by_name
    call = model.ProtoOAMarginCall(marginCallType=model.MARGIN_LEVEL_THRESHOLD_1, marginLevelThreshold=80.0)
    decoded = decode(encode(oa.ProtoOAMarginCallListRes(marginCall=[call]), client_msg_id="margin-calls-42"))
    assert decoded.client_msg_id == "margin-calls-42"


def test_hazard_order_error_event_ids_may_be_zero_and_the_client_msg_id_comes_through() -> None:
    """orderId/positionId are optional and may come as 0 (POSITION_NOT_FOUND, TRADING_BAD_STOPS): 0 decodes
    as a present 0, not as a missing field, and the request's clientMsgId is what correlates the error."""
    event = oa.ProtoOAOrderErrorEvent(
        ctidTraderAccountId=42,
        errorCode="POSITION_NOT_FOUND",
        orderId=0,
        positionId=0,
        description="Position 9",
    )
    decoded = decode(encode(event, client_msg_id="close-9"))
    assert isinstance(decoded.message, oa.ProtoOAOrderErrorEvent)
    assert decoded.message.HasField("orderId")
    assert decoded.message.orderId == 0
    assert decoded.missing_required == ()
    assert decoded.client_msg_id == "close-9"


def test_hazard_tick_data_deltas_are_signed() -> None:
    """Tick data comes newest first, each element after the first a delta from the previous one (timestamp
    and, per two clients, price): the deltas are negative, and the fields (int64) carry them."""
    newest_first = [(1_700_000_060_000, 108_512), (-1_500, -3), (-2_000, 7)]
    response = oa.ProtoOAGetTickDataRes(
        ctidTraderAccountId=42,
        hasMore=False,
        tickData=[model.ProtoOATickData(timestamp=t, tick=p) for t, p in newest_first],
    )
    decoded = decode(encode(response))
    assert isinstance(decoded.message, oa.ProtoOAGetTickDataRes)
    assert [(t.timestamp, t.tick) for t in decoded.message.tickData] == newest_first
