"""Open API frames encoded and decoded per second: ours against protobuf alone, in the same run.

Ours is what the connector does per frame: `messages.encode` (wrapper with payloadType and clientMsgId)
plus the length prefix on the way out; the incremental FrameDecoder plus `messages.decode` (the payload
class from the descriptors, unknown fields, enum values and required fields checked) on the way in. The
baseline is the least any client must do: serialise the inner message and the wrapper, and parse both.
The ratio is what our checks cost over protobuf's own work.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable

from bench.figures import Figure, figure
from fixadapter.protocols.openapi.framing import FrameDecoder, encode_frame
from fixadapter.protocols.openapi.generated import OpenApiMessages_pb2 as oa
from fixadapter.protocols.openapi.generated import OpenApiModelMessages_pb2 as model
from fixadapter.protocols.openapi.generated.OpenApiCommonMessages_pb2 import ProtoMessage
from fixadapter.protocols.openapi.messages import decode, encode, payload_type_of

HEADER = struct.Struct("!I")


def new_order() -> oa.ProtoOANewOrderReq:
    return oa.ProtoOANewOrderReq(
        ctidTraderAccountId=20_000_001,
        symbolId=1,
        orderType=model.LIMIT,
        tradeSide=model.BUY,
        volume=1_000_000,
        limitPrice=1.08,
        clientOrderId="BENCH-000001",
        label="bench",
    )


def execution_event() -> oa.ProtoOAExecutionEvent:
    trade = model.ProtoOATradeData(
        symbolId=1, volume=1_000_000, tradeSide=model.BUY, openTimestamp=1, label="b"
    )
    return oa.ProtoOAExecutionEvent(
        ctidTraderAccountId=20_000_001,
        executionType=model.ORDER_FILLED,
        order=model.ProtoOAOrder(
            orderId=5_000_001,
            tradeData=trade,
            orderType=model.MARKET,
            orderStatus=model.ORDER_STATUS_FILLED,
            executionPrice=1.08351,
            executedVolume=1_000_000,
            clientOrderId="BENCH-000001",
            positionId=7_000_001,
            utcLastUpdateTimestamp=1_700_000_000_000,
        ),
        position=model.ProtoOAPosition(
            positionId=7_000_001,
            tradeData=trade,
            positionStatus=model.POSITION_STATUS_OPEN,
            swap=0,
            price=1.08351,
            moneyDigits=2,
        ),
        deal=model.ProtoOADeal(
            dealId=9_000_001,
            orderId=5_000_001,
            positionId=7_000_001,
            volume=1_000_000,
            filledVolume=1_000_000,
            symbolId=1,
            createTimestamp=1,
            executionTimestamp=1,
            tradeSide=model.BUY,
            dealStatus=model.FILLED,
            executionPrice=1.08351,
            commission=-35,
            moneyDigits=2,
        ),
    )


def _rate(count: int, work: Callable[[], object]) -> float:
    started = time.perf_counter()
    for _ in range(count):
        work()
    return count / (time.perf_counter() - started)


def run(count: int) -> list[Figure]:
    outgoing = new_order()
    incoming = execution_event()
    payload_type = payload_type_of(incoming)
    wire = encode(incoming, "c1")
    framed = encode_frame(wire)

    def raw_encode() -> bytes:
        inner = outgoing.SerializeToString()
        wrapper = ProtoMessage(payloadType=2106, payload=inner, clientMsgId="c1").SerializeToString()
        return HEADER.pack(len(wrapper)) + wrapper

    def our_encode() -> bytes:
        return encode_frame(encode(outgoing, "c1"))

    def raw_decode() -> object:
        wrapper = ProtoMessage.FromString(framed[4:])
        return (
            oa.ProtoOAExecutionEvent.FromString(wrapper.payload)
            if wrapper.payloadType == payload_type
            else None
        )

    decoder = FrameDecoder()

    def our_decode() -> object:
        (frame,) = decoder.feed(framed)
        return decode(frame)

    for work in (raw_encode, our_encode, raw_decode, our_decode):  # warm caches and descriptor pools
        _rate(max(1, count // 20), work)
    base_out = _rate(count, raw_encode)
    ours_out = _rate(count, our_encode)
    base_in = _rate(count, raw_decode)
    ours_in = _rate(count, our_decode)
    return [
        figure("frames.encode.protobuf", base_out, "frames/s"),
        figure("frames.encode", ours_out, "frames/s", "frames.encode.protobuf", base_out),
        figure("frames.decode.protobuf", base_in, "frames/s"),
        figure("frames.decode", ours_in, "frames/s", "frames.decode.protobuf", base_in),
    ]
