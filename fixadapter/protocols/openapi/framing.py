"""TCP framing of the cTrader Open API: a 4-byte big-endian length, then that many bytes of ProtoMessage.

No I/O: the connector feeds what it reads and writes what `encode_frame` returns. A TCP read may end in
the middle of a frame or hold several, so `FrameDecoder` keeps the bytes between reads.

The server's own limit is not documented (reference 1.6: only `FRAME_TOO_LONG` exists); the official
Python SDK accepts frames up to 15,000,000 bytes because whole symbol lists and deal lists run to several
MB. The default here is a little above that. A length prefix beyond the limit means the stream is not what
we think it is (garbage, or a peer that is not the Open API): the decoder refuses it with what it saw,
and the connection has to go, since nothing after it can be trusted to start a frame.
"""

from __future__ import annotations

import struct

__all__ = ["DEFAULT_MAX_FRAME", "HEADER_SIZE", "FrameDecoder", "FramingError", "encode_frame"]

HEADER = struct.Struct("!I")
HEADER_SIZE = HEADER.size
DEFAULT_MAX_FRAME = 16 * 1024 * 1024  # above the official SDK's 15,000,000 (reference 1.6)


class FramingError(ValueError):
    """A length prefix (received) or payload (to send) above the maximum frame size."""


def _check_max(max_frame: int) -> int:
    if max_frame < 1:
        raise ValueError(f"max_frame must be at least 1 byte, not {max_frame}")
    return max_frame


def encode_frame(payload: bytes, max_frame: int = DEFAULT_MAX_FRAME) -> bytes:
    """The length prefix and `payload` (a serialized ProtoMessage); FramingError if it is over `max_frame`,
    refused here rather than by the server, which would drop the connection."""
    size = len(payload)
    if size > _check_max(max_frame):
        raise FramingError(f"frame of {size} bytes refused: the maximum frame size is {max_frame} bytes")
    return HEADER.pack(size) + payload


class FrameDecoder:
    """Bytes in, whole frames out, whatever the reads' boundaries.

    After a FramingError the decoder stays broken (every later `feed` raises again): the stream has lost
    its framing and only a new connection can recover.
    """

    __slots__ = ("_buffer", "_error", "_max_frame")

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        self._max_frame = _check_max(max_frame)
        self._buffer = bytearray()
        self._error: FramingError | None = None

    @property
    def max_frame(self) -> int:
        return self._max_frame

    @property
    def buffered(self) -> int:
        """Bytes received and not yet part of a whole frame."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[bytes]:
        """The frames (ProtoMessage bytes, prefix removed) completed by `data`, in order."""
        if self._error is not None:
            raise self._error
        self._buffer += data
        frames: list[bytes] = []
        buffer = self._buffer
        start = 0
        while len(buffer) - start >= HEADER_SIZE:
            (size,) = HEADER.unpack_from(buffer, start)
            if size > self._max_frame:
                head = bytes(buffer[start : start + HEADER_SIZE]).hex()
                self._error = FramingError(
                    f"length prefix {size} (bytes 0x{head}) is over the maximum frame size of "
                    f"{self._max_frame} bytes: garbage or not an Open API stream"
                )
                del buffer[:]
                raise self._error
            end = start + HEADER_SIZE + size
            if end > len(buffer):
                break
            frames.append(bytes(buffer[start + HEADER_SIZE : end]))
            start = end
        if start:
            del buffer[:start]
        return frames
