"""Ending QuickFIX's connections from outside: sockets are shut down, never closed, and only those
connected to the sessions' addresses."""

from __future__ import annotations

import os
import socket

from fixadapter.connectors.fix.engine_sockets import connections_to, resolve_peers, shut_down_connections


def test_the_sessions_addresses_are_resolved_once_and_an_unknown_name_is_left_out() -> None:
    assert resolve_peers([("127.0.0.1", 5202), ("no-such-host.invalid", 5201)]) == {("127.0.0.1", 5202)}


def test_a_socket_connected_to_a_session_address_is_shut_down_and_keeps_its_number() -> None:
    with (
        socket.create_server(("127.0.0.1", 0)) as venue,
        socket.create_server(("127.0.0.1", 0)) as other,
        socket.create_connection(venue.getsockname()) as engine_side,
        socket.create_connection(other.getsockname()) as unrelated,
    ):
        venue_side, _ = venue.accept()
        other_side, _ = other.accept()
        with venue_side, other_side:
            peers = {("127.0.0.1", venue.getsockname()[1])}
            assert connections_to(peers) == {engine_side.getsockname()}
            assert shut_down_connections(peers, own=set()) == 0  # not this host's: left alone
            assert shut_down_connections(peers, own={engine_side.getsockname()}) == 1
            venue_side.settimeout(5)
            assert venue_side.recv(1) == b""  # the end of the stream reached the server
            engine_side.settimeout(5)
            assert engine_side.recv(1) == b""  # its reader wakes up to close it itself
            os.fstat(engine_side.fileno())  # not closed: the number stays its owner's
            unrelated.sendall(b"x")
            assert other_side.recv(1) == b"x"  # other sockets untouched
