"""Specification of Open API frames as compliance records (compliance/openapi_frames.py): decoded, indexed by
clientOrderId/orderId, secrets masked by field wherever they sit, and what does not decode kept as hex."""

from __future__ import annotations

import json

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import Message

from fixadapter.compliance.openapi_frames import (
    MASK,
    UNKNOWN_TYPE,
    UNREADABLE,
    carries_secrets,
    frame_record,
    frame_text,
    is_secret,
    peek_payload_type,
    readable,
)
from fixadapter.compliance.records import Direction, is_openapi_record
from fixadapter.protocols.openapi.generated import OpenApiMessages_pb2 as oa
from fixadapter.protocols.openapi.generated import OpenApiModelMessages_pb2 as model
from fixadapter.protocols.openapi.generated.OpenApiCommonMessages_pb2 import ProtoMessage
from fixadapter.protocols.openapi.messages import GENERATED_MODULES, PAYLOAD_TYPES, encode

SECRET = "s3cr3t-VALUE-never-shown"  # noqa: S105 - a test value


def new_order(cl_ord_id: str = "ord-1") -> oa.ProtoOANewOrderReq:
    return oa.ProtoOANewOrderReq(
        ctidTraderAccountId=5,
        symbolId=1,
        orderType=model.MARKET,
        tradeSide=model.BUY,
        volume=100_000,
        clientOrderId=cl_ord_id,
    )


def execution(cl_ord_id: str = "ord-1", order_id: int = 777) -> oa.ProtoOAExecutionEvent:
    order = model.ProtoOAOrder(
        orderId=order_id,
        tradeData=model.ProtoOATradeData(symbolId=1, volume=100_000, tradeSide=model.BUY),
        orderType=model.MARKET,
        orderStatus=model.ORDER_STATUS_ACCEPTED,
        clientOrderId=cl_ord_id,
    )
    return oa.ProtoOAExecutionEvent(ctidTraderAccountId=5, executionType=model.ORDER_ACCEPTED, order=order)


def secret_messages() -> list[Message]:
    """Every message our .proto files give a credential, the secret in each credential field."""
    account = model.ProtoOACtidTraderAccount(ctidTraderAccountId=5, isLive=False)
    return [
        oa.ProtoOAApplicationAuthReq(clientId="app-id", clientSecret=SECRET),
        oa.ProtoOAAccountAuthReq(ctidTraderAccountId=5, accessToken=SECRET),
        oa.ProtoOARefreshTokenReq(refreshToken=SECRET),
        oa.ProtoOARefreshTokenRes(
            accessToken=SECRET, tokenType="bearer", expiresIn=3600, refreshToken=SECRET
        ),
        oa.ProtoOAGetAccountListByAccessTokenReq(accessToken=SECRET),
        oa.ProtoOAGetAccountListByAccessTokenRes(accessToken=SECRET, ctidTraderAccount=[account, account]),
        oa.ProtoOAGetCtidProfileByTokenReq(accessToken=SECRET),
    ]


def secret_fields() -> set[str]:
    found = set()
    for module in GENERATED_MODULES:
        for descriptor in module.DESCRIPTOR.message_types_by_name.values():
            found |= {f"{descriptor.name}.{f.name}" for f in descriptor.fields if is_secret(f)}
    return found


def test_every_credential_field_of_the_proto_files_is_taken_for_a_secret_and_nothing_else() -> None:
    assert secret_fields() == {
        "ProtoOAApplicationAuthReq.clientSecret",
        "ProtoOAAccountAuthReq.accessToken",
        "ProtoOARefreshTokenReq.refreshToken",
        "ProtoOARefreshTokenRes.accessToken",
        "ProtoOARefreshTokenRes.refreshToken",
        "ProtoOAGetAccountListByAccessTokenReq.accessToken",
        "ProtoOAGetAccountListByAccessTokenRes.accessToken",
        "ProtoOAGetCtidProfileByTokenReq.accessToken",
    }


def test_a_new_order_is_recorded_decoded_in_field_number_order_with_its_client_order_id_indexed() -> None:
    text = frame_text("out", encode(new_order("ord-1"), "m-1"))

    assert text.msg_type == "ProtoOANewOrderReq"
    assert (text.cl_ord_id, text.order_id) == ("ord-1", None)
    data = json.loads(text.raw)
    assert list(data)[:4] == ["payloadType", "name", "direction", "clientMsgId"]
    assert (data["payloadType"], data["direction"], data["clientMsgId"]) == (2106, "out", "m-1")
    assert data["message"] == {
        "ctidTraderAccountId": 5,
        "symbolId": 1,
        "orderType": "MARKET",
        "tradeSide": "BUY",
        "volume": 100000,
        "clientOrderId": "ord-1",
    }
    assert list(data["message"]) == [  # field numbers 2, 3, 4, 5, 6, 18
        "ctidTraderAccountId",
        "symbolId",
        "orderType",
        "tradeSide",
        "volume",
        "clientOrderId",
    ]
    assert "\n" not in text.raw and is_openapi_record(text.raw)


def test_the_same_frame_always_gives_the_same_text() -> None:
    frame = encode(execution(), "m-2")

    assert frame_text("in", frame) == frame_text("in", frame)


def test_an_execution_event_is_indexed_by_the_client_order_id_and_order_id_of_its_order() -> None:
    text = frame_text("in", encode(execution("ord-9", 4242)))

    assert (text.msg_type, text.cl_ord_id, text.order_id) == ("ProtoOAExecutionEvent", "ord-9", "4242")
    order = json.loads(text.raw)["message"]["order"]
    assert order["orderId"] == 4242 and order["tradeData"]["tradeSide"] == "BUY"


def test_an_order_id_of_zero_names_no_order() -> None:
    event = oa.ProtoOAOrderErrorEvent(ctidTraderAccountId=5, errorCode="X", orderId=0)

    assert frame_text("in", encode(event)).order_id is None


@pytest.mark.parametrize("message", secret_messages(), ids=lambda m: type(m).__name__)
def test_a_credential_never_reaches_the_record_and_reads_as_the_mask(message: Message) -> None:
    text = frame_text("out", encode(message, "auth-1"))

    assert SECRET not in text.raw
    assert f'"{MASK}"' in text.raw
    assert carries_secrets(message.DESCRIPTOR)


def test_the_account_list_keeps_its_accounts_readable_around_the_masked_token() -> None:
    message = secret_messages()[5]

    data = json.loads(frame_text("in", encode(message)).raw)["message"]

    assert data["accessToken"] == MASK
    assert data["ctidTraderAccount"] == [{"ctidTraderAccountId": 5, "isLive": False}] * 2


def nested_secret_classes() -> tuple[type[Message], type[Message]]:
    """Outer{repeated Inner inner = 1; optional Inner one = 2} Inner{optional string sessionToken = 1;
    optional string note = 2}: a secret two levels down, in a repeated and in a single message."""
    proto = descriptor_pb2.FileDescriptorProto(name="nested_secret.proto", package="t", syntax="proto2")
    inner = proto.message_type.add(name="Inner")
    inner.field.add(name="sessionToken", number=1, type=9, label=1)
    inner.field.add(name="note", number=2, type=9, label=1)
    outer = proto.message_type.add(name="Outer")
    outer.field.add(name="inner", number=1, type=11, label=3, type_name=".t.Inner")
    outer.field.add(name="one", number=2, type=11, label=1, type_name=".t.Inner")
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return (
        message_factory.GetMessageClass(pool.FindMessageTypeByName("t.Outer")),
        message_factory.GetMessageClass(pool.FindMessageTypeByName("t.Inner")),
    )


def test_masking_walks_nested_and_repeated_messages_by_their_descriptors() -> None:
    outer_class, inner_class = nested_secret_classes()
    outer = outer_class(
        inner=[inner_class(sessionToken=SECRET, note="a"), inner_class(sessionToken=SECRET, note="b")],
        one=inner_class(sessionToken=SECRET, note="c"),
    )

    shown = readable(outer)

    assert SECRET not in json.dumps(shown)
    assert shown == {
        "inner": [{"sessionToken": MASK, "note": "a"}, {"sessionToken": MASK, "note": "b"}],
        "one": {"sessionToken": MASK, "note": "c"},
    }
    assert carries_secrets(outer.DESCRIPTOR)


def test_a_frame_that_is_not_protobuf_is_kept_as_hex_with_a_note() -> None:
    garbage = b"\xff\xfe garbage \x00\x01"

    text = frame_text("in", garbage)

    data = json.loads(text.raw)
    assert text.msg_type == UNREADABLE and data["payloadType"] is None
    assert data["hex"] == garbage.hex() and data["note"]
    assert is_openapi_record(text.raw)


def test_an_unknown_payload_type_is_kept_as_hex_of_its_payload() -> None:
    frame = ProtoMessage(payloadType=9999, payload=b"\x08\x01", clientMsgId="x").SerializeToString()

    text = frame_text("in", frame)

    data = json.loads(text.raw)
    assert text.msg_type == UNKNOWN_TYPE
    assert (data["payloadType"], data["clientMsgId"], data["hex"]) == (9999, "x", "0801")


def test_a_broken_payload_of_a_message_that_carries_secrets_is_withheld_not_hexed() -> None:
    good = oa.ProtoOAApplicationAuthReq(clientId="app", clientSecret=SECRET).SerializeToString()
    frame = ProtoMessage(payloadType=2100, payload=good + b"\x1a\x7f").SerializeToString()  # cut off

    text = frame_text("out", frame)

    assert SECRET not in text.raw and SECRET.encode().hex() not in text.raw
    data = json.loads(text.raw)
    assert text.msg_type == "ProtoOAApplicationAuthReq" and "hex" not in data
    assert "withheld" in data["note"]


@pytest.mark.parametrize("message", secret_messages(), ids=lambda m: type(m).__name__)
def test_a_frame_cut_short_whose_payload_type_carries_secrets_is_withheld(message: Message) -> None:
    whole = encode(message)
    cut = whole[: whole.index(SECRET.encode()) + len(SECRET) - 1]  # all of the secret but its last byte
    almost = SECRET[:-1]

    text = frame_text("in", cut)

    assert almost not in text.raw and almost.encode().hex() not in text.raw
    assert text.msg_type == type(message).__name__ and "withheld" in json.loads(text.raw)["note"]


def test_a_broken_payload_of_a_message_without_secrets_is_kept_as_hex() -> None:
    frame = ProtoMessage(payloadType=2106, payload=b"\x10\x01\x1a\x7f").SerializeToString()

    data = json.loads(frame_text("out", frame).raw)

    assert data["hex"] == frame.hex() and data["name"] == "ProtoOANewOrderReq"


def test_unknown_fields_are_named_by_number_and_never_printed() -> None:
    payload = oa.ProtoOAAccountAuthRes(ctidTraderAccountId=5).SerializeToString() + b"\x4a\x03abc"
    frame = ProtoMessage(payloadType=2103, payload=payload).SerializeToString()

    data = json.loads(frame_text("in", frame).raw)

    assert data["unknowns"] == ["unknown field 9 (wire type 2) in ProtoOAAccountAuthRes"]
    assert "abc" not in json.dumps(data)


def test_the_record_of_a_frame_has_no_sequence_number_and_a_utc_time() -> None:
    record = frame_record(1_700_000_000.5, "OPENAPI", "out", encode(new_order("ord-2")))

    assert record.direction is Direction.OUTBOUND and record.seq_num is None
    assert record.time.isoformat() == "2023-11-14T22:13:20.500000+00:00"
    assert (record.session, record.cl_ord_id, record.msg_type) == ("OPENAPI", "ord-2", "ProtoOANewOrderReq")


def test_a_direction_other_than_in_or_out_is_refused() -> None:
    with pytest.raises(ValueError, match="sideways"):
        frame_text("sideways", encode(new_order()))


@pytest.mark.parametrize("payload_type", [2106, 2126, 2131, 2155, 51, 100])
def test_the_payload_type_is_read_from_the_first_bytes_without_decoding(payload_type: int) -> None:
    frame = ProtoMessage(payloadType=payload_type, payload=b"").SerializeToString()

    assert peek_payload_type(frame) == payload_type


def test_every_payload_type_name_fits_the_msg_type_column() -> None:
    from fixadapter.compliance.table import MSG_TYPE_LENGTH

    assert max(len(cls.__name__) for cls in PAYLOAD_TYPES.values()) <= MSG_TYPE_LENGTH
