"""The fault proxy's injection skips a line the server has closed meanwhile: a venue killed between two
injections is a fault being played, not an error of the proxy."""

from __future__ import annotations

import socket

from fixadapter.sim.faults import FaultProxy


def test_injecting_after_the_server_closed_the_line_reaches_no_one_and_raises_nothing():
    with socket.create_server(("127.0.0.1", 0)) as server:
        proxy = FaultProxy(server.getsockname()[1]).start()
        try:
            with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as client:
                upstream, _ = server.accept()
                upstream.close()  # the venue goes away
                assert client.recv(1) == b"", "the proxy should close the client's side too"
                assert proxy.inject_to_client(b"8=FIX.4.4\x019=5\x0135=0\x0110=000\x01") == 0
        finally:
            proxy.stop()
