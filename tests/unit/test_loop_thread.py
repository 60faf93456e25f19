"""A LoopThread never lets a connection outlive its loop: whatever its owner left open or half-closed at
stop is aborted, so no socket waits for the garbage collector (an "unclosed transport" warning at any later
moment of the process, blamed on whatever test runs then)."""

from __future__ import annotations

import asyncio
import gc
import socket
import warnings

from fixadapter.tls.loop_thread import LoopThread


def leaked_warnings() -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gc.collect()
    return [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]


def test_a_connection_left_open_at_stop_is_closed_with_the_loop():
    thread = LoopThread("test-loop")
    thread.start()
    ours, theirs = socket.socketpair()

    async def open_and_forget() -> None:
        await asyncio.get_running_loop().create_connection(asyncio.Protocol, sock=ours)

    thread.call(open_and_forget())
    thread.stop()
    try:
        assert leaked_warnings() == []
        assert theirs.recv(1) == b""  # our side was really closed: the peer reads end of stream
    finally:
        theirs.close()


def test_a_connection_closing_behind_a_full_buffer_is_aborted_at_stop():
    thread = LoopThread("test-loop")
    thread.start()
    ours, theirs = socket.socketpair()  # `theirs` never reads, so our writes stay buffered

    async def write_then_close() -> None:
        transport, _ = await asyncio.get_running_loop().create_connection(asyncio.Protocol, sock=ours)
        transport.write(b"x" * 8_000_000)
        transport.close()  # waits for the buffer to drain: forever, as nobody reads

    thread.call(write_then_close())
    thread.stop()
    try:
        assert leaked_warnings() == []
    finally:
        theirs.close()
