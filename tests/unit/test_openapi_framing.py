"""Open API TCP framing (reference 1.3): a 4-byte big-endian length, then the ProtoMessage bytes.

A read can end inside a frame or hold several; a length beyond the maximum frame size means the stream is
garbage and is refused with what was seen; we never send a frame the limit would refuse.
"""

from __future__ import annotations

import struct

import pytest

from fixadapter.protocols.openapi.framing import DEFAULT_MAX_FRAME, FrameDecoder, FramingError, encode_frame
from fixadapter.protocols.openapi.generated.OpenApiCommonMessages_pb2 import ProtoHeartbeatEvent
from fixadapter.protocols.openapi.generated.OpenApiMessages_pb2 import ProtoOAVersionReq
from fixadapter.protocols.openapi.messages import decode, encode


def test_a_frame_is_the_big_endian_length_then_the_payload() -> None:
    assert encode_frame(b"abc") == b"\x00\x00\x00\x03abc"
    assert encode_frame(b"") == b"\x00\x00\x00\x00"


def test_a_whole_frame_in_one_read_gives_the_message_back() -> None:
    payload = encode(ProtoOAVersionReq(), "c1")
    frames = FrameDecoder().feed(encode_frame(payload))
    assert frames == [payload]
    assert decode(frames[0]).client_msg_id == "c1"


def test_a_frame_split_across_reads_comes_out_once_whole() -> None:
    payload = encode(ProtoOAVersionReq(), "split")
    data = encode_frame(payload)
    decoder = FrameDecoder()
    out: list[bytes] = []
    for index in range(len(data)):  # one byte per read, the length prefix split too
        out += decoder.feed(data[index : index + 1])
        if index < len(data) - 1:
            assert out == []
    assert out == [payload]
    assert decoder.buffered == 0


def test_several_frames_in_one_read_come_out_in_order() -> None:
    payloads = [encode(ProtoHeartbeatEvent()), encode(ProtoOAVersionReq(), "a"), b"", b"xyz"]
    data = b"".join(encode_frame(p) for p in payloads)
    assert FrameDecoder().feed(data) == payloads


def test_a_read_ending_inside_the_second_frame_keeps_the_rest_for_the_next_read() -> None:
    first, second = encode_frame(b"one"), encode_frame(b"second frame")
    decoder = FrameDecoder()
    assert decoder.feed(first + second[:5]) == [b"one"]
    assert decoder.buffered == 5
    assert decoder.feed(second[5:]) == [b"second frame"]
    assert decoder.buffered == 0


def test_the_default_maximum_accepts_the_15_mb_frames_the_official_sdk_accepts() -> None:
    assert DEFAULT_MAX_FRAME >= 15_000_000


def test_a_frame_of_exactly_the_maximum_is_accepted() -> None:
    decoder = FrameDecoder(max_frame=8)
    assert decoder.feed(encode_frame(b"12345678", max_frame=8)) == [b"12345678"]


def test_an_oversized_length_prefix_is_refused_with_what_was_seen() -> None:
    decoder = FrameDecoder(max_frame=1024)
    with pytest.raises(FramingError) as caught:
        decoder.feed(struct.pack("!I", 1025) + b"x" * 10)
    text = str(caught.value)
    assert "1025" in text
    assert "1024" in text
    assert "0x00000401" in text


def test_garbage_reads_as_an_absurd_length_and_is_refused() -> None:
    with pytest.raises(FramingError, match=r"length prefix 1195725856 .*0x47455420"):
        FrameDecoder().feed(b"GET / HTTP/1.1\r\n\r\n")


def test_the_prefix_is_refused_as_soon_as_its_four_bytes_are_in() -> None:
    decoder = FrameDecoder(max_frame=16)
    assert decoder.feed(b"\xff\xff") == []
    assert decoder.feed(b"\xff") == []  # three bytes: not a length yet
    with pytest.raises(FramingError):
        decoder.feed(b"\xff")


def test_after_a_framing_error_the_decoder_stays_broken() -> None:
    decoder = FrameDecoder(max_frame=16)
    with pytest.raises(FramingError):
        decoder.feed(struct.pack("!I", 17))
    with pytest.raises(FramingError):
        decoder.feed(encode_frame(b"fine"))  # the stream lost its framing: nothing after is trusted


def test_an_oversized_payload_is_refused_before_it_is_sent() -> None:
    with pytest.raises(FramingError, match=r"frame of 9 bytes refused: the maximum frame size is 8 bytes"):
        encode_frame(b"123456789", max_frame=8)


def test_a_maximum_below_one_byte_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="max_frame"):
        FrameDecoder(max_frame=0)
