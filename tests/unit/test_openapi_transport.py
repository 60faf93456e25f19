"""The Open API transport over real loopback TLS: a tiny server in each test (port 0, a certificate made
by a CA made here) records every frame the transport sends and answers, or does not, as the test says.

What it specifies: an answer is matched to its request by clientMsgId; a refusal is a typed error with the
server's code; a request never vanishes (answered, refused, timed out naming its payload type, or failed
with the connection's reason); frames split across reads or packed in one read come out whole; an
oversized length prefix or garbage closes the connection with the reason, while an unreadable frame is
only counted; a heartbeat goes out when the line is idle; a silent peer is declared dead; an order jumps
queries waiting for the rate budget; no secret reaches a log line or an error text.

Timing: every wait is for something to happen, with a generous deadline (the machine is a shared 2-core
box); short intervals are configured only where the test is about them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import struct
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from google.protobuf.message import Message

from fixadapter.connectors.openapi.counting import Direction, MetricsFrameCounter
from fixadapter.connectors.openapi.errors import (
    ConnectionLost,
    DuplicateClientMsgId,
    ErrorResponse,
    NotConnected,
    RequestTimeout,
)
from fixadapter.connectors.openapi.transport import OpenApiTransport, TransportSettings, client_context
from fixadapter.metrics import Metrics
from fixadapter.protocols.openapi.framing import FrameDecoder, encode_frame
from fixadapter.protocols.openapi.generated import OpenApiModelMessages_pb2 as model
from fixadapter.protocols.openapi.generated.OpenApiCommonMessages_pb2 import (
    ProtoErrorRes,
    ProtoHeartbeatEvent,
    ProtoMessage,
)
from fixadapter.protocols.openapi.generated.OpenApiMessages_pb2 import (
    ProtoOAAccountAuthReq,
    ProtoOAApplicationAuthReq,
    ProtoOAErrorRes,
    ProtoOAGetTrendbarsReq,
    ProtoOANewOrderReq,
    ProtoOASpotEvent,
    ProtoOAVersionReq,
    ProtoOAVersionRes,
)
from fixadapter.protocols.openapi.messages import Decoded, decode, encode, payload_type_of
from fixadapter.tls.certs import issue_server, make_ca

DEADLINE = 30.0  # seconds to wait for anything that should happen: only ever reached on failure
HEARTBEAT = payload_type_of(ProtoHeartbeatEvent)
VERSION_REQ = payload_type_of(ProtoOAVersionReq)
NEW_ORDER_REQ = payload_type_of(ProtoOANewOrderReq)

Answer = Callable[[Decoded], list[bytes]]


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(ca_file, cert_file, key_file): a CA and a certificate it signs for 127.0.0.1 and localhost."""
    directory = tmp_path_factory.mktemp("openapi-certs")
    ca = make_ca("openapi transport test CA")
    ca_file = directory / "ca.pem"
    ca_file.write_bytes(ca.cert_pem)
    cert_file, key_file = directory / "server.pem", directory / "server-key.pem"
    issue_server(ca, ["127.0.0.1", "localhost"]).write(cert_file, key_file)
    return ca_file, cert_file, key_file


def frame_of(message: Message, client_msg_id: str | None = None) -> bytes:
    return encode_frame(encode(message, client_msg_id))


def version_answer(request: Decoded) -> list[bytes]:
    """Answers every request (not heartbeats) with a ProtoOAVersionRes carrying its clientMsgId."""
    if request.payload_type == HEARTBEAT:
        return []
    return [frame_of(ProtoOAVersionRes(version="91"), request.client_msg_id)]


def no_answer(request: Decoded) -> list[bytes]:
    return []


class Server:
    """An Open API server for one test: records what it receives, answers with `answer`."""

    def __init__(self, certificates: tuple[Path, Path, Path], answer: Answer = version_answer) -> None:
        _, cert_file, key_file = certificates
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.minimum_version = ssl.TLSVersion.TLSv1_2
        self.context.load_cert_chain(cert_file, key_file)
        self.answer = answer
        self.received: list[Decoded] = []
        self.connections: list[asyncio.StreamWriter] = []
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> Server:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=self.context)
        return self

    async def __aexit__(self, *exc: object) -> None:
        for writer in self.connections:
            writer.transport.abort()
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()
        if self._handlers:  # aborted connections end their handlers: no cancel (asyncio logs those)
            await asyncio.wait(self._handlers, timeout=DEADLINE)

    @property
    def port(self) -> int:
        assert self._server is not None
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    def payload_types(self) -> list[int]:
        return [decoded.payload_type for decoded in self.received]

    def requests(self) -> list[Decoded]:
        return [decoded for decoded in self.received if decoded.payload_type != HEARTBEAT]

    async def send(self, data: bytes) -> None:
        """Raw bytes to the latest connection."""
        writer = self.connections[-1]
        writer.write(data)
        await writer.drain()

    async def hang_up(self) -> None:
        """Close the latest connection (TLS close_notify, then FIN)."""
        writer = self.connections[-1]
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):
            await asyncio.wait_for(writer.wait_closed(), DEADLINE)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self.connections.append(writer)
        decoder = FrameDecoder()
        try:
            while data := await reader.read(65536):
                for frame in decoder.feed(data):
                    decoded = decode(frame)
                    self.received.append(decoded)
                    for answer in self.answer(decoded):
                        writer.write(answer)
                    await writer.drain()
        except (OSError, ssl.SSLError):
            pass
        finally:
            self._handlers.discard(task)
            writer.transport.abort()


class Recorder:
    """The transport's collaborators: events it delivers, frames it counts."""

    def __init__(self) -> None:
        self.events: list[Decoded] = []
        self.frames: list[tuple[Direction, int]] = []
        self.unreadable: list[str] = []

    def on_event(self, decoded: Decoded) -> None:
        self.events.append(decoded)

    def frame(self, direction: Direction, payload_type: int) -> None:
        self.frames.append((direction, payload_type))

    def unreadable_frame(self, reason: str) -> None:
        self.unreadable.append(reason)


class Counter:
    def __init__(self, recorder: Recorder) -> None:
        self._recorder = recorder

    def frame(self, direction: Direction, payload_type: int) -> None:
        self._recorder.frame(direction, payload_type)

    def unreadable(self, reason: str) -> None:
        self._recorder.unreadable_frame(reason)


async def eventually(condition: Callable[[], bool], what: str, deadline: float = DEADLINE) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    while not condition():
        if loop.time() > end:
            raise AssertionError(f"not within {deadline} s: {what}")
        await asyncio.sleep(0.01)


async def connected(
    server: Server,
    certificates: tuple[Path, Path, Path],
    recorder: Recorder,
    **settings: float,
) -> OpenApiTransport:
    transport = OpenApiTransport(
        "127.0.0.1",
        server.port,
        client_context(certificates[0]),
        on_event=recorder.on_event,
        settings=TransportSettings(**settings),  # type: ignore[arg-type]
        counter=Counter(recorder),
    )
    await transport.connect()
    await eventually(lambda: bool(server.connections), "the server accepted the connection")
    return transport


def run(
    certificates: tuple[Path, Path, Path],
    scenario: Callable[[Server, Recorder], Awaitable[None]],
    answer: Answer = version_answer,
) -> Recorder:
    recorder = Recorder()

    async def main() -> None:
        async with Server(certificates, answer) as server:
            await scenario(server, recorder)

    asyncio.run(main())
    return recorder


def new_order() -> ProtoOANewOrderReq:
    return ProtoOANewOrderReq(
        ctidTraderAccountId=1, symbolId=1, orderType=model.MARKET, tradeSide=model.BUY, volume=100_000
    )


# --- answers


def test_a_request_returns_the_answer_carrying_its_client_msg_id(
    certificates: tuple[Path, Path, Path],
) -> None:
    async def scenario(server: Server, recorder: Recorder) -> None:
        transport = await connected(server, certificates, recorder)
        answer = await transport.request(ProtoOAVersionReq(), timeout=DEADLINE)
        assert isinstance(answer, ProtoOAVersionRes)
        assert answer.version == "91"
        own = await transport.request(ProtoOAVersionReq(), timeout=DEADLINE, client_msg_id="mine")
        assert isinstance(own, ProtoOAVersionRes)
        await transport.close("test over")
        ids = [decoded.client_msg_id for decoded in server.requests()]
        assert len(ids) == 2
        assert ids[1] == "mine"
        assert ids[0] is not None
        assert ids[0] != ids[1]

    recorder = run(certificates, scenario)
    assert recorder.events == []  # answers go to their requests, not to on_event
    assert (Direction.OUT, VERSION_REQ) in recorder.frames
    assert (Direction.IN, payload_type_of(ProtoOAVersionRes)) in recorder.frames


def test_a_refusal_is_a_typed_error_carrying_the_servers_code_and_retry_after(
    certificates: tuple[Path, Path, Path],
) -> None:
    def refuse(request: Decoded) -> list[bytes]:
        if request.payload_type == HEARTBEAT:
            return []
        error = ProtoOAErrorRes(
            ctidTraderAccountId=7,
            errorCode="BLOCKED_PAYLOAD_TYPE",
            description="Blocked for a while",
            retryAfter=3,
        )
        return [frame_of(error, request.client_msg_id)]

    async def scenario(server: Server, recorder: Recorder) -> None:
        transport = await connected(server, certificates, recorder)
        with pytest.raises(ErrorResponse) as caught:
            await transport.request(ProtoOAVersionReq(), timeout=DEADLINE, client_msg_id="r1")
        error = caught.value
        assert error.error_code == "BLOCKED_PAYLOAD_TYPE"
        assert error.description == "Blocked for a while"
        assert error.retry_after == 3
        assert error.ctid_trader_account_id == 7
        assert error.maintenance_end is None
        assert error.answer_payload_type == payload_type_of(ProtoOAErrorRes)
        assert str(error) == (
            "ProtoOAVersionReq (2104) clientMsgId=r1 refused: BLOCKED_PAYLOAD_TYPE (Blocked for a while); "
            "retry after 3 s"
        )
        assert transport.is_open  # a refusal is an answer: the connection goes on
        await transport.close("test over")

    run(certificates, scenario, refuse)


def test_a_common_error_res_is_a_typed_error_too_with_the_maintenance_end(
    certificates: tuple[Path, Path, Path],
) -> None:
    def maintenance(request: Decoded) -> list[bytes]:
        if request.payload_type == HEARTBEAT:
            return []
        error = ProtoErrorRes(
            errorCode="SERVER_IS_UNDER_MAINTENANCE", maintenanceEndTimestamp=1_700_000_000_000
        )
        return [frame_of(error, request.client_msg_id)]

    async def scenario(server: Server, recorder: Recorder) -> None:
        transport = await connected(server, certificates, recorder)
        with pytest.raises(ErrorResponse) as caught:
            await transport.request(ProtoOAVersionReq(), timeout=DEADLINE)
        assert caught.value.error_code == "SERVER_IS_UNDER_MAINTENANCE"
        assert caught.value.maintenance_end == 1_700_000_000_000
        assert caught.value.retry_after is None
        await transport.close("test over")

    run(certificates, scenario, maintenance)


def test_a_request_never_answered_times_out_naming_its_payload_type_and_the_wait(
    certificates: tuple[Path, Path, Path],
) -> None:
    async def scenario(server: Server, recorder: Recorder) -> None:
        transport = await connected(server, certificates, recorder)
        with pytest.raises(RequestTimeout) as caught:
            await transport.request(ProtoOAVersionReq(), timeout=0.5, client_msg_id="t1")
        assert (
            str(caught.value)
            == "ProtoOAVersionReq (2104) clientMsgId=t1: no answer within 0.5 s; it was sent"
        )
        assert caught.value.sent
        assert isinstance(caught.value, TimeoutError)
        # A late answer belongs to no request any more: it is an event, not lost and not raised.
        await server.send(frame_of(ProtoOAVersionRes(version="late"), "t1"))
        await eventually(lambda: bool(recorder.events), "the late answer delivered as an event")
        assert recorder.events[0].client_msg_id == "t1"
        # The id is free again.
        with pytest.raises(RequestTimeout):
            await transport.request(ProtoOAVersionReq(), timeout=0.2, client_msg_id="t1")
        await transport.close("test over")

    run(certificates, scenario, no_answer)


def test_requests_pending_when_the_connection_is_lost_each_fail_with_the_reason(
    certificates: tuple[Path, Path, Path],
) -> None:
    async def scenario(server: Server, recorder: Recorder) -> None:
        transport = await connected(server, certificates, recorder)
        pending = [
            asyncio.create_task(
                transport.request(ProtoOAVersionReq(), timeout=DEADLINE, client_msg_id=f"p{n}")
            )
            for n in range(3)
        ]
        await eventually(lambda: len(server.requests()) == 3, "the server got the three requests")
        await server.hang_up()
        results = await asyncio.gather(*pending, return_exceptions=True)
        for number, result in enumerate(results):
            assert isinstance(result, ConnectionLost)
            assert result.reason == "connection closed by the server"
            assert result.sent
            assert str(result) == (
                f"ProtoOAVersionReq (2104) clientMsgId=p{number}: connection closed before its answer "
                "(connection closed by the server); it was sent"
            )
        assert await asyncio.wait_for(transport.wait_closed(), DEADLINE) == "connection closed by the server"
        assert transport.closed.is_set()
        with pytest.raises(NotConnected, match="connection closed by the server"):
            await transport.request(ProtoOAVersionReq())
        await transport.close("test over")

    run(certificates, scenario, no_answer)


def test_close_fails_waiting_requests_with_the_reason_given(certificates: tuple[Path, Path, Path]) -> None:
    async def scenario(server: Server, recorder: Recorder) -> None:
        transport = await connected(server, certificates, recorder)
        waiting = asyncio.create_task(transport.request(ProtoOAVersionReq(), timeout=DEADLINE))
        await eventually(lambda: len(server.requests()) == 1, "the request reached the server")
        await transport.close("reconnecting: account token refreshed")
        with pytest.raises(ConnectionLost, match=r"reconnecting: account token refreshed"):
            await waiting
        assert transport.close_reason == "reconnecting: account token refreshed"
        await transport.close("again")  # idempotent: the first reason stays
        assert transport.close_reason == "reconnecting: account token refreshed"

    run(certificates, scenario, no_answer)


def test_a_made_up_client_msg_id_never_takes_one_a_caller_chose(
    certificates: tuple[Path, Path, Path],
) -> None:
    async def scenario(server: Server, recorder: Recorder) -> None:
        transport = await connected(server, certificates, recorder)
        chosen = asyncio.create_task(
            transport.request(ProtoOAVersionReq(), timeout=DEADLINE, client_msg_id="c1")
        )
        await eventually(lambda: len(server.requests()) == 1, "the chosen id went")
        made = asyncio.create_task(transport.request(ProtoOAVersionReq(), timeout=DEADLINE))
        await eventually(lambda: len(server.requests()) == 2, "the made-up id went")
        assert server.requests()[1].client_msg_id not in {None, "c1"}
        await transport.close("test over")
        await asyncio.gather(chosen, made, return_exceptions=True)

    run(certificates, scenario, no_answer)


def test_later_frames_with_an_answered_client_msg_id_are_events(
    certificates: tuple[Path, Path, Path],
) -> None:
    def accepted_then_filled(request: Decoded) -> list[bytes]:
        if request.payload_type == HEARTBEAT:
            return []
        return [
            frame_of(ProtoOAVersionRes(version="accepted"), request.client_msg_id),
            frame_of(ProtoOAVersionRes(version="filled"), request.client_msg_id),
        ]

    async def scenario(server: Server, recorder: Recorder) -> None:
        transport = await connected(server, certificates, recorder)
        answer = await transport.request(new_order(), timeout=DEADLINE, client_msg_id="o1")
        assert isinstance(answer, ProtoOAVersionRes)
        assert answer.version == "accepted"
        await eventually(lambda: bool(recorder.events), "the second frame delivered as an event")
        await transport.close("test over")

    recorder = run(certificates, scenario, accepted_then_filled)
    assert [e.client_msg_id for e in recorder.events] == ["o1"]
    assert isinstance(recorder.events[0].message, ProtoOAVersionRes)
    assert recorder.events[0].message.version == "filled"


def test_a_client_msg_id_already_waiting_is_refused(certificates: tuple[Path, Path, Path]) -> None:
    async def scenario(server: Server, recorder: Recorder) -> None:
        transport = await connected(server, certificates, recorder)
        first = asyncio.create_task(
            transport.request(ProtoOAVersionReq(), timeout=DEADLINE, client_msg_id="x")
        )
        await eventually(lambda: len(server.requests()) == 1, "the first request reached the server")
        with pytest.raises(DuplicateClientMsgId, match="clientMsgId x is already waiting"):
            await transport.request(ProtoOAVersionReq(), client_msg_id="x")
        await server.send(frame_of(ProtoOAVersionRes(version="91"), "x"))
        assert isinstance(await first, ProtoOAVersionRes)  # the first still gets its answer
        await transport.close("test over")
        assert len(server.requests()) == 1  # the refused one was never sent

    run(certificates, scenario, no_answer)


# --- frames from the server


def spot(symbol_id: int) -> ProtoOASpotEvent:
    return ProtoOASpotEvent(ctidTraderAccountId=1, symbolId=symbol_id, bid=110_000, ask=110_010)


def test_a_frame_split_across_reads_is_delivered_once_whole(certificates: tuple[Path, Path, Path]) -> None:
    async def scenario(server: Server, recorder: Recorder) -> None:
        transport = await connected(server, certificates, recorder)
        data = frame_of(spot(5))
        for piece in (data[:2], data[2:7], data[7:]):  # the length prefix itself split
            await server.send(piece)
            await asyncio.sleep(0.05)  # separate TLS records, so separate reads (correct either way)
        await eventually(lambda: bool(recorder.events), "the spot event delivered")
        await transport.close("test over")

    recorder = run(certificates, scenario)
    assert len(recorder.events) == 1
    assert isinstance(recorder.events[0].message, ProtoOASpotEvent)
    assert recorder.events[0].message.symbolId == 5


def test_several_frames_in_one_read_are_each_delivered_in_order(
    certificates: tuple[Path, Path, Path],
) -> None:
    async def scenario(server: Server, recorder: Recorder) -> None:
        transport = await connected(server, certificates, recorder)
        await server.send(b"".join(frame_of(spot(n)) for n in (1, 2, 3)) + frame_of(ProtoHeartbeatEvent()))
        await eventually(lambda: len(recorder.events) == 4, "four events delivered")
        await transport.close("test over")

    recorder = run(certificates, scenario)
    spots = [e.message.symbolId for e in recorder.events[:3] if isinstance(e.message, ProtoOASpotEvent)]
    assert spots == [1, 2, 3]
    assert recorder.events[3].payload_type == HEARTBEAT  # the server's heartbeats are events too


def test_an_oversized_length_prefix_closes_the_connection_with_the_reason(
    certificates: tuple[Path, Path, Path],
) -> None:
    async def scenario(server: Server, recorder: Recorder) -> None:
        transport = await connected(server, certificates, recorder, max_frame=1024)
        waiting = asyncio.create_task(transport.request(ProtoOAVersionReq(), timeout=DEADLINE))
        await eventually(lambda: len(server.requests()) == 1, "the request reached the server")
        await server.send(struct.pack("!I", 5000) + b"\x00" * 100)
        reason = await asyncio.wait_for(transport.wait_closed(), DEADLINE)
        assert reason.startswith("unreadable stream: length prefix 5000")
        assert "maximum frame size of 1024 bytes" in reason
        with pytest.raises(ConnectionLost) as caught:
            await waiting
        assert caught.value.reason == reason
        await transport.close("test over")

    recorder = run(certificates, scenario, no_answer)
    assert recorder.unreadable == ["oversized_frame"]


def test_garbage_bytes_close_the_connection_with_the_reason(certificates: tuple[Path, Path, Path]) -> None:
    async def scenario(server: Server, recorder: Recorder) -> None:
        transport = await connected(server, certificates, recorder)
        await server.send(b"GET / HTTP/1.1\r\nHost: example\r\n\r\n")
        reason = await asyncio.wait_for(transport.wait_closed(), DEADLINE)
        assert "length prefix 1195725856 (bytes 0x47455420)" in reason
        assert "garbage or not an Open API stream" in reason
        await transport.close("test over")

    run(certificates, scenario)


def test_an_unreadable_frame_is_counted_and_skipped_and_the_connection_goes_on(
    certificates: tuple[Path, Path, Path],
) -> None:
    async def scenario(server: Server, recorder: Recorder) -> None:
        transport = await connected(server, certificates, recorder)
        unknown_type = ProtoMessage(payloadType=2999, payload=b"", clientMsgId="u").SerializeToString()
        new_field = ProtoOAVersionRes(version="1").SerializeToString() + b"\x48\x01"  # field 9, varint
        await server.send(
            encode_frame(b"\xff\xff\xff")  # well framed, not protobuf
            + encode_frame(unknown_type)
            + encode_frame(ProtoMessage(payloadType=2105, payload=new_field).SerializeToString())
        )
        answer = await transport.request(ProtoOAVersionReq(), timeout=DEADLINE)
        assert isinstance(answer, ProtoOAVersionRes)
        await eventually(lambda: len(recorder.events) == 2, "the two readable frames delivered")
        assert transport.is_open
        await transport.close("test over")

    recorder = run(certificates, scenario)
    assert recorder.unreadable == ["not_protobuf", "unknown_payload_type", "unknown_field"]
    unknown, with_new_field = recorder.events
    assert unknown.payload_type == 2999
    assert unknown.message is None  # delivered undecoded, flagged, never guessed
    assert isinstance(with_new_field.message, ProtoOAVersionRes)


def test_an_event_handler_that_raises_is_logged_and_the_connection_goes_on(
    certificates: tuple[Path, Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario(server: Server, recorder: Recorder) -> None:
        def explode(decoded: Decoded) -> None:
            raise RuntimeError("handler bug")

        transport = OpenApiTransport(
            "127.0.0.1", server.port, client_context(certificates[0]), on_event=explode
        )
        await transport.connect()
        await eventually(lambda: bool(server.connections), "connected")
        await server.send(frame_of(spot(1)))
        answer = await transport.request(ProtoOAVersionReq(), timeout=DEADLINE)
        assert isinstance(answer, ProtoOAVersionRes)
        await transport.close("test over")

    with caplog.at_level(logging.ERROR, logger="fixadapter.openapi"):
        run(certificates, scenario)
    assert "event handler failed on ProtoOASpotEvent" in caplog.text


# --- liveness


def test_a_heartbeat_is_sent_when_nothing_was_sent_for_the_interval(
    certificates: tuple[Path, Path, Path],
) -> None:
    async def scenario(server: Server, recorder: Recorder) -> None:
        transport = await connected(server, certificates, recorder, heartbeat_interval=0.2)
        await eventually(lambda: HEARTBEAT in server.payload_types(), "a heartbeat reached the server")
        assert transport.is_open
        await transport.close("test over")
        heartbeat = next(d for d in server.received if d.payload_type == HEARTBEAT)
        assert heartbeat.client_msg_id is None
        assert isinstance(heartbeat.message, ProtoHeartbeatEvent)

    recorder = run(certificates, scenario)
    assert (Direction.OUT, HEARTBEAT) in recorder.frames


def test_no_heartbeat_while_requests_keep_the_line_busy(certificates: tuple[Path, Path, Path]) -> None:
    async def scenario(server: Server, recorder: Recorder) -> None:
        transport = await connected(server, certificates, recorder, heartbeat_interval=DEADLINE)
        for _ in range(5):
            await transport.request(ProtoOAVersionReq(), timeout=DEADLINE)
        await transport.close("test over")
        assert HEARTBEAT not in server.payload_types()

    run(certificates, scenario)


def test_a_peer_silent_for_dead_after_is_declared_dead_and_waiting_requests_fail(
    certificates: tuple[Path, Path, Path],
) -> None:
    async def scenario(server: Server, recorder: Recorder) -> None:
        transport = await connected(server, certificates, recorder, heartbeat_interval=0.1, dead_after=0.5)
        waiting = asyncio.create_task(transport.request(ProtoOAVersionReq(), timeout=DEADLINE))
        reason = await asyncio.wait_for(transport.wait_closed(), DEADLINE)
        assert reason == "nothing received for 0.5 s: peer presumed dead"
        with pytest.raises(ConnectionLost, match="peer presumed dead"):
            await waiting
        await transport.close("test over")
        assert HEARTBEAT in server.payload_types()  # our heartbeats went out; the server never answered

    run(certificates, scenario, no_answer)


def test_frames_from_the_peer_keep_it_alive(certificates: tuple[Path, Path, Path]) -> None:
    async def scenario(server: Server, recorder: Recorder) -> None:
        transport = await connected(server, certificates, recorder, dead_after=DEADLINE)
        for _ in range(3):
            await server.send(frame_of(ProtoHeartbeatEvent()))
        await eventually(lambda: len(recorder.events) == 3, "three heartbeats received")
        assert transport.is_open
        await transport.close("test over")

    run(certificates, scenario)


# --- priority and rate shaping


def trendbars() -> ProtoOAGetTrendbarsReq:
    return ProtoOAGetTrendbarsReq(ctidTraderAccountId=1, symbolId=1, period=model.M1)


def test_an_order_jumps_ahead_of_queries_waiting_for_the_rate_budget(
    certificates: tuple[Path, Path, Path],
) -> None:
    async def scenario(server: Server, recorder: Recorder) -> None:
        # One request per 2 s: the first query goes at once, the next two wait for the budget.
        transport = await connected(server, certificates, recorder, overall_rate=1, rate_window=2.0)
        queries = [
            asyncio.create_task(transport.request(ProtoOAVersionReq(), timeout=DEADLINE)) for _ in range(3)
        ]
        await eventually(lambda: len(server.requests()) == 1, "the first query went")
        order = await transport.request(new_order(), timeout=DEADLINE)
        assert isinstance(order, ProtoOAVersionRes)
        assert [d.payload_type for d in server.requests()[:2]] == [VERSION_REQ, NEW_ORDER_REQ]
        await transport.close("test over")
        await asyncio.gather(*queries, return_exceptions=True)

    run(certificates, scenario)


def test_a_request_that_times_out_in_the_queue_says_it_was_never_sent(
    certificates: tuple[Path, Path, Path],
) -> None:
    async def scenario(server: Server, recorder: Recorder) -> None:
        transport = await connected(server, certificates, recorder, overall_rate=1, rate_window=DEADLINE * 4)
        await transport.request(ProtoOAVersionReq(), timeout=DEADLINE)
        with pytest.raises(RequestTimeout) as caught:
            await transport.request(trendbars(), timeout=0.3, client_msg_id="q")
        assert not caught.value.sent
        assert str(caught.value) == (
            "ProtoOAGetTrendbarsReq (2137) clientMsgId=q: no answer within 0.3 s; it was never sent "
            "(0 requests queued ahead of it: rate limit or backlog)"
        )
        assert transport.budget().overall_used == 1
        await transport.close("test over")
        assert len(server.requests()) == 1

    run(certificates, scenario)


# --- TLS, secrets, metrics


def test_a_certificate_for_another_host_name_is_refused(certificates: tuple[Path, Path, Path]) -> None:
    async def scenario(server: Server, recorder: Recorder) -> None:
        transport = OpenApiTransport(
            "127.0.0.1",
            server.port,
            client_context(certificates[0]),
            on_event=recorder.on_event,
            server_hostname="demo.ctraderapi.com",
        )
        with pytest.raises(ssl.SSLCertVerificationError):
            await transport.connect()
        assert transport.close_reason is not None
        assert "SSLCertVerificationError" in transport.close_reason
        with pytest.raises(NotConnected):
            await transport.request(ProtoOAVersionReq())

    run(certificates, scenario)


def test_the_default_context_verifies_certificate_and_host_name() -> None:
    context = client_context()
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2


def test_no_secret_reaches_a_log_line_or_an_error_text(
    certificates: tuple[Path, Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    secret, token = "CLIENT-SECRET-0123", "ACCESS-TOKEN-4567"
    texts: list[str] = []

    def refuse_app_auth(request: Decoded) -> list[bytes]:
        if request.payload_type == payload_type_of(ProtoOAApplicationAuthReq):
            return [frame_of(ProtoOAErrorRes(errorCode="CH_CLIENT_AUTH_FAILURE"), request.client_msg_id)]
        return []

    async def scenario(server: Server, recorder: Recorder) -> None:
        transport = await connected(server, certificates, recorder)
        with pytest.raises(ErrorResponse) as refused:
            await transport.request(ProtoOAApplicationAuthReq(clientId="app", clientSecret=secret))
        texts.append(str(refused.value))
        with pytest.raises(RequestTimeout) as timed_out:
            await transport.request(
                ProtoOAAccountAuthReq(ctidTraderAccountId=1, accessToken=token), timeout=0.3
            )
        texts.append(str(timed_out.value))
        lost = asyncio.create_task(
            transport.request(
                ProtoOAAccountAuthReq(ctidTraderAccountId=2, accessToken=token), timeout=DEADLINE
            )
        )
        await eventually(lambda: len(server.requests()) == 3, "the third request reached the server")
        await transport.close("test over")
        with pytest.raises(ConnectionLost) as closed:
            await lost
        texts.append(str(closed.value))

    with caplog.at_level(logging.DEBUG, logger="fixadapter.openapi"):
        run(certificates, scenario, refuse_app_auth)
    everything = caplog.text + "\n".join(texts)
    assert "ProtoOAApplicationAuthReq" in everything
    assert "ProtoOAAccountAuthReq" in everything
    assert secret not in everything
    assert token not in everything


def test_frames_are_counted_in_the_metrics_with_account_and_connector_labels(
    certificates: tuple[Path, Path, Path],
) -> None:
    metrics = Metrics(account="acc1", connector="openapi")
    counter = MetricsFrameCounter(metrics)

    async def scenario(server: Server, recorder: Recorder) -> None:
        transport = OpenApiTransport(
            "127.0.0.1",
            server.port,
            client_context(certificates[0]),
            on_event=recorder.on_event,
            counter=counter,
        )
        counter.track_budget(transport.budget)
        await transport.connect()
        await transport.request(ProtoOAVersionReq(), timeout=DEADLINE)
        assert metrics.value("fixadapter_openapi_rate_budget_in_use", {"budget": "overall"}) == 1
        await server.send(encode_frame(b"\xff"))
        await eventually(
            lambda: (
                metrics.value("fixadapter_openapi_unreadable_frames_total", {"reason": "not_protobuf"}) == 1
            ),
            "the unreadable frame counted",
        )
        await transport.close("test over")

    run(certificates, scenario)
    out = {"direction": "out", "payload_type": "ProtoOAVersionReq"}
    received = {"direction": "in", "payload_type": "ProtoOAVersionRes"}
    assert metrics.value("fixadapter_openapi_frames_total", out) == 1
    assert metrics.value("fixadapter_openapi_frames_total", received) == 1
    assert (
        metrics.registry.get_sample_value(
            "fixadapter_openapi_frames_total", {"account": "acc1", "connector": "openapi", **out}
        )
        == 1
    )
