"""Socket numbers QuickFIX closes itself are held (never clobbering one someone else opened) until the
thread that may still poll them has ended, then closed: nothing this process opens meanwhile gets them."""

from __future__ import annotations

import fcntl
import os
import select
import socket
import sys
import threading
import time

import pytest

from fixadapter.connectors.fix.freed_numbers import FreedNumbers

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux descriptors (/proc)")


def connection() -> tuple[socket.socket, socket.socket]:
    """A connected pair: the first stands for QuickFIX's socket, the second for the venue."""
    return socket.socketpair()


def noted_connection(freed: FreedNumbers) -> tuple[int, socket.socket, socket.socket]:
    """A connection of the host, noted as at its connect: its number, its socket and the venue's end."""
    ours, venue = connection()
    freed.note({ours.fileno()})
    return ours.fileno(), ours, venue


def reads_end_of_stream(number: int) -> bool:
    """What the engine's poll sees: readable at once, and recv reads nothing (the stream ended)."""
    readable, _, _ = select.select([number], [], [], 5.0)
    probe = socket.socket(fileno=os.dup(number))
    try:
        return bool(readable) and probe.recv(16) == b""
    finally:
        probe.close()


def on_a_thread(work: object) -> None:
    """Run `work` on a thread, and return once the OS has ended that thread too (after join() its task
    may linger a moment)."""
    thread = threading.Thread(target=work)  # type: ignore[arg-type]
    thread.start()
    thread.join()
    deadline = time.monotonic() + 10
    while os.path.exists(f"/proc/self/task/{thread.native_id}") and time.monotonic() < deadline:
        time.sleep(0.001)


def test_a_number_closed_under_a_connection_is_held_at_end_of_stream_and_the_next_socket_gets_another() -> (
    None
):
    freed = FreedNumbers()
    number, ours, venue = noted_connection(freed)
    ours.close()  # what ThreadedSocketConnection::disconnect does
    assert freed.hold_freed() == 1
    assert reads_end_of_stream(number)  # the engine thread's next poll ends it
    lowest_from_it = fcntl.fcntl(venue.fileno(), fcntl.F_DUPFD, number)
    assert lowest_from_it != number  # taken: nothing opened now gets it
    os.close(lowest_from_it)
    venue.close()
    freed.close(threads_ended=True)
    with pytest.raises(OSError):
        os.fstat(number)


def test_a_number_someone_opened_again_before_the_hold_is_left_to_them() -> None:
    freed = FreedNumbers()
    number, ours, venue = noted_connection(freed)
    theirs = socket.socket()  # made while ours is open: another number
    ours.close()
    os.dup2(theirs.fileno(), number)  # someone got the number first
    assert freed.hold_freed() == 0
    freed.close(threads_ended=True)
    assert os.fstat(number).st_ino == os.fstat(theirs.fileno()).st_ino  # still theirs, still open
    os.close(number)
    theirs.close()
    venue.close()


def test_a_hold_is_closed_once_its_thread_has_ended_and_not_before() -> None:
    freed = FreedNumbers()
    number, ours, venue = noted_connection(freed)
    ours.close()
    on_a_thread(freed.hold_freed)  # the connection thread, which then ends
    assert freed.held() == {number}
    assert freed.release_ended() == 0
    with pytest.raises(OSError):
        os.fstat(number)
    here, held_here, venue_here = noted_connection(freed)
    held_here.close()
    assert freed.hold_freed() == 1  # this thread runs on: held
    assert freed.release_ended() == 1 and freed.held() == {here}
    freed.close(threads_ended=True)
    venue.close()
    venue_here.close()


def test_at_the_end_a_held_number_closed_and_reused_meanwhile_is_not_closed_again() -> None:
    freed = FreedNumbers()
    number, ours, venue = noted_connection(freed)
    theirs = socket.socket()  # made while ours is open: another number
    ours.close()
    freed.hold_freed()
    os.close(number)  # what initiator.stop() does to a socket it still lists
    os.dup2(theirs.fileno(), number)  # opened again by someone
    freed.close(threads_ended=True)
    assert os.fstat(number).st_ino == os.fstat(theirs.fileno()).st_ino  # not closed: theirs
    os.close(number)
    theirs.close()
    venue.close()
