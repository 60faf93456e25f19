"""One TLS connection to the cTrader Open API: frames in and out, answers matched to their requests.

What the official SDK gets wrong and this must not (issue 15): a request never vanishes (it is answered,
refused, times out or fails with the connection, each with a typed error that says why and whether it
was sent); there is exactly one writer (concurrent writes corrupt the framing, reference 1.9), shaped by
the rate limiter, with orders ahead of queries; a silent peer is detected instead of waited on for days.

Lifetime: `connect()`, then `request()` as often as needed, until `close(reason)` or the connection ends
by itself: the peer closes, a read fails, garbage or an oversized frame arrives, or no byte is received
for `dead_after` seconds (reference 1.5: "no bytes received for N x 10 s"). Either way `closed` is set,
`close_reason` says why, and every request still waiting fails with that reason. A transport is used
once: the connector reconnects by building a new one (and redoes app auth, account auth and
subscriptions, which are per connection, reference 1.9).

Frames that answer no waiting request (events, heartbeats, late answers) go to `on_event`. A frame we
cannot read is counted and logged, never raised at the caller. Logs and error texts name payload types and
clientMsgIds only: requests carry access tokens and the client secret.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from google.protobuf.message import Message

from fixadapter.connectors.openapi.counting import (
    Direction,
    FrameCounter,
    NullFrameCounter,
    payload_type_name,
)
from fixadapter.connectors.openapi.errors import (
    ConnectionLost,
    DuplicateClientMsgId,
    ErrorResponse,
    NotConnected,
    RequestTimeout,
    UnreadableAnswer,
)
from fixadapter.connectors.openapi.outgoing import OutgoingQueue, Priority, priority_of
from fixadapter.connectors.openapi.rate_limit import (
    DEFAULT_WINDOW,
    HISTORICAL_LIMIT,
    OVERALL_LIMIT,
    Budget,
    RateLimiter,
    is_historical,
)
from fixadapter.protocols.openapi.framing import DEFAULT_MAX_FRAME, FrameDecoder, FramingError, encode_frame
from fixadapter.protocols.openapi.generated.OpenApiCommonMessages_pb2 import (
    ProtoErrorRes,
    ProtoHeartbeatEvent,
)
from fixadapter.protocols.openapi.generated.OpenApiMessages_pb2 import ProtoOAErrorRes
from fixadapter.protocols.openapi.messages import (
    Decoded,
    FrameError,
    UnknownKind,
    decode,
    encode,
    payload_type_of,
)

__all__ = ["OpenApiTransport", "Tap", "TransportSettings", "client_context"]

# (direction, the ProtoMessage bytes without the length prefix, the message when decoded/known)
Tap = Callable[[Direction, bytes, Message | None], None]
FRAME_PREFIX = 4

log = logging.getLogger("fixadapter.openapi.transport")

READ_SIZE = 64 * 1024
CLOSE_WAIT_SECONDS = 2.0
HEARTBEAT = payload_type_of(ProtoHeartbeatEvent)

# Reasons of fixadapter_openapi_unreadable_frames_total.
UNREADABLE_REASONS = {
    UnknownKind.FIELD: "unknown_field",
    UnknownKind.ENUM_VALUE: "unknown_enum_value",
    UnknownKind.WIRE_TYPE: "wrong_wire_type",
    UnknownKind.PAYLOAD_TYPE: "unknown_payload_type",
    UnknownKind.PAYLOAD_TYPE_MISMATCH: "payload_type_mismatch",
}
NOT_PROTOBUF = "not_protobuf"
MISSING_REQUIRED = "missing_required"


def client_context(ca_file: Path | None = None) -> ssl.SSLContext:
    """Certificate and host name verified, TLS 1.2+: against the system trust store (the real hosts), or
    only the CAs in `ca_file` (the simulator's, a test's)."""
    context = ssl.create_default_context(cafile=str(ca_file) if ca_file is not None else None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    return context


@dataclass(frozen=True, slots=True)
class TransportSettings:
    """Times in seconds. The defaults follow the reference: a heartbeat when nothing was sent for 10 s
    (1.5, the strictest official figure), 50 and 5 historical requests/s (1.7), frames up to ~16 MB (1.6).
    The server's idle timeout and heartbeat interval are undocumented, so a peer is declared dead only
    after several heartbeat intervals without a frame."""

    heartbeat_interval: float = 10.0
    dead_after: float = 45.0
    request_timeout: float = 30.0
    connect_timeout: float = 15.0
    max_frame: int = DEFAULT_MAX_FRAME
    overall_rate: int = OVERALL_LIMIT
    historical_rate: int = HISTORICAL_LIMIT
    rate_window: float = DEFAULT_WINDOW


@dataclass(eq=False, slots=True)
class _Request:
    """One request from `request()` until its answer, refusal, timeout or the connection's end."""

    client_msg_id: str
    payload_type: int
    frame: bytes
    message: Message
    priority: Priority
    historical: bool
    future: asyncio.Future[Message]
    sent: bool = field(default=False)
    also_event: bool = field(default=False)
    on_sent: Callable[[], None] | None = field(default=None)

    @property
    def name(self) -> str:
        return f"{payload_type_name(self.payload_type)} ({self.payload_type})"


class OpenApiTransport:
    """One connection to host:port over TLS; see the module docstring for its lifetime."""

    def __init__(
        self,
        host: str,
        port: int,
        context: ssl.SSLContext,
        *,
        on_event: Callable[[Decoded], None],
        settings: TransportSettings | None = None,
        counter: FrameCounter | None = None,
        tap: Tap | None = None,
        server_hostname: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        limiter: RateLimiter | None = None,
    ) -> None:
        """`limiter`: the budget this connection spends, shared with the connections before it (and other
        links of the application) so that a reconnect does not start a fresh one; its own otherwise."""
        self.host = host
        self.port = port
        self._context = context
        self._server_hostname = server_hostname or host
        self._on_event = on_event
        self.settings = settings or TransportSettings()
        self._counter: FrameCounter = counter or NullFrameCounter()
        self._tap = tap
        self._clock = clock
        self._limiter = limiter or RateLimiter(
            self.settings.overall_rate, self.settings.historical_rate, self.settings.rate_window, clock
        )
        self._queue: OutgoingQueue[_Request] = OutgoingQueue()
        self._waiting: dict[str, _Request] = {}  # by clientMsgId: queued or sent, not yet answered
        self._ids = itertools.count(1)
        self._heartbeat_frame = encode_frame(encode(ProtoHeartbeatEvent()), self.settings.max_frame)
        self._writer: asyncio.StreamWriter | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._last_sent = 0.0
        self.closed = asyncio.Event()
        self.close_reason: str | None = None

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def is_open(self) -> bool:
        return self._writer is not None and self.close_reason is None

    def budget(self) -> Budget:
        """The rate budget in use on this connection (for the metric)."""
        return self._limiter.budget()

    async def connect(self) -> None:
        """Open the TLS connection and start the reader and the writer; OSError (ssl.SSLError,
        TimeoutError...) if it cannot, and the transport is then closed with that reason."""
        if self._writer is not None or self.close_reason is not None:
            raise NotConnected(f"{self.where}: a transport connects once; build a new one to reconnect")
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(
                    self.host,
                    self.port,
                    ssl=self._context,
                    server_hostname=self._server_hostname,
                    limit=READ_SIZE,
                ),
                self.settings.connect_timeout,
            )
        except TimeoutError:
            self._shutdown(f"connect to {self.where} timed out after {self.settings.connect_timeout:g} s")
            raise
        except OSError as error:
            self._shutdown(f"connect to {self.where} failed: {type(error).__name__}: {error}")
            raise
        self._writer = writer
        self._last_sent = self._clock()
        log.info("Open API connected to %s", self.where)
        self._tasks = [
            asyncio.create_task(self._read_loop(reader), name=f"openapi-read {self.where}"),
            asyncio.create_task(self._write_loop(writer), name=f"openapi-write {self.where}"),
        ]

    async def request(
        self,
        message: Message,
        *,
        timeout: float | None = None,
        priority: Priority | None = None,
        client_msg_id: str | None = None,
        also_event: bool = False,
        on_sent: Callable[[], None] | None = None,
    ) -> Message:
        """Send `message` and return the answer carrying its clientMsgId (one is made if not given).

        Raises ErrorResponse (the server refused it), RequestTimeout (no answer within `timeout`, default
        settings.request_timeout, counted from now, queueing included), ConnectionLost (the connection
        ended first), DuplicateClientMsgId, NotConnected, or FramingError (the message is over the maximum
        frame size). A request that times out or is cancelled while still queued is never sent.

        The answer is the first frame carrying the clientMsgId, whatever its type (an order's may be a
        ProtoOAExecutionEvent or a ProtoOAOrderErrorEvent); later frames with the same id (a fill after
        the acceptance) and answers that come after a timeout go to `on_event`.

        `also_event`: the answer goes to `on_event` too, before this returns, so a caller that treats
        answers as events sees them in arrival order (an order's acceptance before its fill).
        `on_sent` is called once the frame is written (the request is then out of our hands).
        """
        if not self.is_open:
            raise NotConnected(f"{self.where}: not connected ({self.close_reason or 'connect() not called'})")
        msg_id = client_msg_id if client_msg_id is not None else self._new_id()
        if msg_id in self._waiting:
            raise DuplicateClientMsgId(f"clientMsgId {msg_id} is already waiting for its answer")
        payload_type = payload_type_of(message)
        frame = encode_frame(encode(message, msg_id), self.settings.max_frame)
        pending = _Request(
            msg_id,
            payload_type,
            frame,
            message,
            priority if priority is not None else priority_of(payload_type),
            is_historical(payload_type),
            asyncio.get_running_loop().create_future(),
            also_event=also_event,
            on_sent=on_sent,
        )
        self._waiting[msg_id] = pending
        self._queue.put(pending)
        limit = self.settings.request_timeout if timeout is None else timeout
        try:
            await asyncio.wait({pending.future}, timeout=limit)
            if pending.future.done():
                return pending.future.result()
            ahead = self._queue.ahead_of(pending)
            log.warning("Open API %s clientMsgId=%s: no answer within %g s", pending.name, msg_id, limit)
            raise RequestTimeout(pending.name, msg_id, limit, pending.sent, ahead)
        finally:
            self._forget(pending)

    async def close(self, reason: str, *, expected: bool = False) -> None:
        """Close the connection (idempotent); waiting requests fail with `reason`. `expected`: our own
        close at the end of the work (said as information, not as a warning)."""
        self._shutdown(reason, expected=expected)
        current = asyncio.current_task()
        tasks = [task for task in self._tasks if task is not current]
        if tasks:
            await asyncio.wait(tasks, timeout=CLOSE_WAIT_SECONDS)
        writer = self._writer
        if writer is not None:
            try:
                await asyncio.wait_for(writer.wait_closed(), CLOSE_WAIT_SECONDS)
            except (TimeoutError, OSError):
                writer.transport.abort()

    async def wait_closed(self) -> str:
        """The reason the connection closed, once it has."""
        await self.closed.wait()
        return self.close_reason or ""

    # --- internals

    def _new_id(self) -> str:
        """A clientMsgId not waiting now (a caller may have chosen one of ours)."""
        while (msg_id := f"c{next(self._ids)}") in self._waiting:
            pass
        return msg_id

    def _forget(self, pending: _Request) -> None:
        self._queue.remove(pending)
        if self._waiting.get(pending.client_msg_id) is pending:
            del self._waiting[pending.client_msg_id]
        future = pending.future
        if future.done() and not future.cancelled():
            future.exception()  # retrieved: a caller cancelled at that moment leaves no asyncio warning

    def _shutdown(self, reason: str, *, expected: bool = False) -> None:
        """Synchronous, so the reader and writer tasks can call it on themselves."""
        if self.close_reason is not None:
            return
        self.close_reason = reason
        if self._writer is not None:
            level = logging.INFO if expected else logging.WARNING
            log.log(level, "Open API connection to %s closed: %s", self.where, reason)
        current = asyncio.current_task()
        for task in self._tasks:
            if task is not current:
                task.cancel()
        waiting = list(self._waiting.values())
        self._waiting.clear()
        self._queue.drain()
        for pending in waiting:
            if not pending.future.done():
                pending.future.set_exception(
                    ConnectionLost(pending.name, pending.client_msg_id, reason, pending.sent)
                )
        if self._writer is not None:
            self._writer.close()
        self.closed.set()

    async def _write_loop(self, writer: asyncio.StreamWriter) -> None:
        queue = self._queue
        interval = self.settings.heartbeat_interval
        try:
            while True:
                queue.changed.clear()
                pending, wait = queue.pick(self._limiter)
                if pending is not None:
                    self._limiter.record(pending.historical)
                    pending.sent = True
                    await self._write(writer, pending.frame, pending.payload_type)
                    self._tapped(Direction.OUT, pending.frame[FRAME_PREFIX:], pending.message)
                    if pending.on_sent is not None:
                        try:
                            pending.on_sent()
                        except Exception:
                            log.exception("Open API on_sent callback of %s failed", pending.name)
                    log.debug("Open API sent %s clientMsgId=%s", pending.name, pending.client_msg_id)
                    continue
                idle_left = self._last_sent + interval - self._clock()
                if idle_left <= 0:
                    await self._write(writer, self._heartbeat_frame, HEARTBEAT)
                    self._tapped(Direction.OUT, self._heartbeat_frame[FRAME_PREFIX:], None)
                    continue
                sleep = idle_left if wait is None else min(wait, idle_left)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(queue.changed.wait(), sleep)
        except OSError as error:
            self._shutdown(f"write failed: {type(error).__name__}: {error}")

    async def _write(self, writer: asyncio.StreamWriter, frame: bytes, payload_type: int) -> None:
        writer.write(frame)
        await writer.drain()
        self._last_sent = self._clock()
        self._counter.frame(Direction.OUT, payload_type)

    async def _read_loop(self, reader: asyncio.StreamReader) -> None:
        decoder = FrameDecoder(self.settings.max_frame)
        dead_after = self.settings.dead_after
        last_heard = self._clock()
        while True:
            left = last_heard + dead_after - self._clock()
            if left <= 0:
                self._shutdown(f"nothing received for {dead_after:g} s: peer presumed dead")
                return
            try:
                data = await asyncio.wait_for(reader.read(READ_SIZE), left)
            except TimeoutError:
                continue
            except OSError as error:
                self._shutdown(f"read failed: {type(error).__name__}: {error}")
                return
            if not data:
                self._shutdown("connection closed by the server")
                return
            last_heard = self._clock()  # bytes, not whole frames: a 15 MB answer can take a while
            try:
                frames = decoder.feed(data)
            except FramingError as error:
                self._counter.unreadable("oversized_frame")
                self._shutdown(f"unreadable stream: {error}")
                return
            for frame in frames:
                self._received(frame)

    def _tapped(self, direction: Direction, frame: bytes, message: Message | None) -> None:
        """Every frame both ways to the compliance record's tap, which must be cheap and never raise."""
        if self._tap is None:
            return
        try:
            self._tap(direction, frame, message)
        except Exception:
            log.exception("Open API frame tap failed (the frame is not recorded)")

    def _received(self, frame: bytes) -> None:
        try:
            decoded = decode(frame)
        except FrameError as error:
            self._tapped(Direction.IN, frame, None)
            self._counter.unreadable(NOT_PROTOBUF)
            log.warning("Open API frame of %d bytes from %s unreadable: %s", len(frame), self.where, error)
            return
        self._counter.frame(Direction.IN, decoded.payload_type)
        self._tapped(Direction.IN, frame, decoded.message)
        self._report_unknowns(decoded)
        msg_id = decoded.client_msg_id
        pending = self._waiting.get(msg_id) if msg_id is not None else None
        if pending is None or not pending.sent:
            self._deliver(decoded)
            return
        del self._waiting[pending.client_msg_id]
        if pending.also_event:
            self._deliver(decoded)
        if not pending.future.done():
            self._resolve(pending, decoded)

    def _resolve(self, pending: _Request, decoded: Decoded) -> None:
        answer = decoded.message
        name, msg_id = pending.name, pending.client_msg_id
        if isinstance(answer, ProtoOAErrorRes | ProtoErrorRes):
            error = ErrorResponse.from_answer(name, msg_id, answer, decoded.payload_type)
            log.info("Open API %s clientMsgId=%s refused: %s", name, msg_id, error.error_code)
            pending.future.set_exception(error)
        elif answer is None:
            pending.future.set_exception(
                UnreadableAnswer(
                    f"{name} clientMsgId={msg_id}: answered with unknown payloadType {decoded.payload_type}"
                )
            )
        else:
            pending.future.set_result(answer)

    def _deliver(self, decoded: Decoded) -> None:
        try:
            self._on_event(decoded)
        except Exception:
            log.exception(
                "Open API event handler failed on %s (clientMsgId=%s)",
                payload_type_name(decoded.payload_type),
                decoded.client_msg_id,
            )

    def _report_unknowns(self, decoded: Decoded) -> None:
        name = f"{payload_type_name(decoded.payload_type)} ({decoded.payload_type})"
        for unknown in decoded.unknowns:
            self._counter.unreadable(UNREADABLE_REASONS[unknown.kind])
            log.warning("Open API %s from %s: %s", name, self.where, unknown)
        if decoded.missing_required:
            self._counter.unreadable(MISSING_REQUIRED)
            log.warning(
                "Open API %s from %s lacks required fields: %s",
                name,
                self.where,
                ", ".join(decoded.missing_required),
            )
