"""The TRADE front's framing and CompID rewriting (issue 13, item 20: several connections per account)."""

from __future__ import annotations

import pytest

from fixadapter.sim.trade_front import FrameError, Route, alias, rewrite, split_message

SOH = "\x01"


def frame(body: str) -> bytes:
    head = f"8=FIX.4.4{SOH}9={len(body)}{SOH}"
    return f"{head}{body}10={sum((head + body).encode()) % 256:03d}{SOH}".encode()


LOGON = frame(f"35=A{SOH}49=demo.sim.1{SOH}56=CSERVER{SOH}34=1{SOH}98=0{SOH}108=30{SOH}")


def test_a_message_is_taken_only_once_it_is_whole():
    buffer = bytearray(LOGON[:-3])
    assert split_message(buffer) is None
    buffer += LOGON[-3:] + b"8=FIX"
    assert split_message(buffer) == LOGON
    assert buffer == bytearray(b"8=FIX")


def test_bytes_that_are_not_fix_are_refused():
    with pytest.raises(FrameError):
        split_message(bytearray(b"GET / HTTP/1.1\r\n"))


def test_a_rewritten_message_has_its_length_and_checksum_recomputed():
    rewritten = rewrite(LOGON, b"56", "CSERVER", alias("CSERVER", 2))
    assert rewritten == frame(f"35=A{SOH}49=demo.sim.1{SOH}56=CSERVER~2{SOH}34=1{SOH}98=0{SOH}108=30{SOH}")


def test_a_second_connection_is_rewritten_both_ways_and_split_across_reads():
    route = Route(("demo.sim.1", "CSERVER"), slot=2)
    inbound = route.to_acceptor(LOGON[:10]) + route.to_acceptor(LOGON[10:])
    assert b"56=CSERVER~2\x01" in inbound
    answer = frame(f"35=A{SOH}49=CSERVER~2{SOH}56=demo.sim.1{SOH}34=1{SOH}")
    assert route.to_client(answer) == frame(f"35=A{SOH}49=CSERVER{SOH}56=demo.sim.1{SOH}34=1{SOH}")


def test_the_first_connection_passes_through_untouched():
    assert Route(("demo.sim.1", "CSERVER"), slot=1).to_acceptor(LOGON[:7]) == LOGON[:7]
