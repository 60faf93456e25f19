"""Two connections joined byte for byte, with back-pressure both ways.

Used by the adapter's forwarder (plain loopback in, TLS out) and by the simulator's TLS ports (TLS in,
plain loopback out). Bytes are written to the other side from the callback that received them: no
queue and no task in between, so a message costs one read and one write on the relay's loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import cast


class Pipe(asyncio.Protocol):
    """One end of a joined pair: what it receives goes to its peer's transport."""

    def __init__(
        self,
        on_made: Callable[[Pipe], None] | None = None,
        on_lost: Callable[[Pipe, Exception | None], None] | None = None,
    ) -> None:
        self.peer: Pipe | None = None
        self.transport: asyncio.Transport | None = None
        self.lost = False
        self._early = bytearray()
        self._on_made = on_made
        self._on_lost = on_lost

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # a stream protocol gets a stream transport
        if self._on_made is not None:
            self._on_made(self)

    def data_received(self, data: bytes) -> None:
        peer = self.peer
        if peer is None or peer.transport is None:
            self._early += data  # arrived before the other side was connected (reading is paused then)
            return
        peer.transport.write(data)

    def eof_received(self) -> bool:
        return False  # FIX has no half-close: the transport closes and connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self.peer is not None:
            self.peer.close()  # after what is buffered for it has been written
        if self._on_lost is not None:
            self._on_lost(self, exc)

    def pause_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.resume_reading()

    @property
    def received_early(self) -> bool:
        """Bytes arrived before the peer was joined (held, not yet relayed)."""
        return bool(self._early)

    def close(self) -> None:
        """Close once: a second close() of asyncio's SSL transport drops its protocol, after which abort()
        can no longer end a TLS shutdown the peer never answers (the socket would outlive the loop)."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def flush_early(self) -> None:
        if self._early and self.peer is not None and self.peer.transport is not None:
            self.peer.transport.write(bytes(self._early))
            self._early.clear()


def join(accepted: Pipe, opened: Pipe) -> bool:
    """Start relaying: anything either side received before now goes first, then reading resumes.

    False (and both closed) when one side went away while the other was being opened."""
    if accepted.lost or opened.lost:
        accepted.close()
        opened.close()
        return False
    accepted.peer, opened.peer = opened, accepted
    for side in (accepted, opened):
        side.flush_early()
        if side.transport is not None:
            side.transport.resume_reading()
    return True
