"""The TRADE port's front: several simultaneous connections of one account, as cTrader accepts them.

QuickFIX's acceptor keeps one connection per CompID pair (a second one with the same CompIDs waits 5 s
and is closed without a word), while cTrader accepts several and copies every report to each. So the
public TRADE port is this relay: the first connection of a CompID pair passes through byte for byte;
a second one gets a slot of its own, an alias of the server CompID (`CSERVER~2`) that the acceptor
serves as another session. Its messages are rewritten on the way (56 in, 49 out, BodyLength and
CheckSum recomputed), so the client only ever sees the CompID it used.

The acceptor has sessions for the configured accounts only, and QuickFIX closes a connection from any
other SenderCompID without a word; cTrader answers it with a Logout `RET_NO_SUCH_LOGIN`. So the front,
which reads each connection's Logon before the acceptor does, answers a Logon from a SenderCompID no
account has with that Logout itself (stamped as a refused logon is, see acceptor.py) and closes.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

from fixadapter.tls.loop_thread import LoopThread

log = logging.getLogger("fixadapter.sim.trade")
SOH = b"\x01"
SLOTS = 4  # connections per CompID pair; the acceptor serves an alias session for slots 2..SLOTS
ALIAS_MARK = "~"


NO_SUCH_LOGIN = "RET_NO_SUCH_LOGIN"


def frame(fields: list[tuple[int, str]]) -> bytes:
    """A FIX 4.4 message of `fields` (from 35 on) with its BodyLength and CheckSum."""
    body = b"".join(f"{tag}={value}".encode() + SOH for tag, value in fields)
    head = b"8=FIX.4.4" + SOH + b"9=" + str(len(body)).encode() + SOH
    return head + body + b"10=" + f"{sum(head + body) % 256:03d}".encode() + SOH


def no_such_login(logon: bytes) -> bytes:
    """The Logout refusing `logon` from a SenderCompID no account has: 49/56 swapped, 50 = the qualifier
    asked for (the client's 57) and 57 = the client's 50, as cTrader stamps a refused logon."""
    now = datetime.now(UTC).strftime("%Y%m%d-%H:%M:%S.%f")[:-3]
    header = [(35, "5"), (34, "1"), (49, field_value(logon, b"56") or ""), (52, now)]
    header += [(56, field_value(logon, b"49") or "")]
    asked, client = field_value(logon, b"57"), field_value(logon, b"50")
    sub_ids = [(50, asked or "TRADE")] + ([(57, client)] if client else [])
    return frame(header[:3] + sub_ids[:1] + header[3:] + sub_ids[1:] + [(58, NO_SUCH_LOGIN)])


def alias(comp_id: str, slot: int) -> str:
    return comp_id if slot == 1 else f"{comp_id}{ALIAS_MARK}{slot}"


class FrameError(ValueError):
    """Bytes that are not a FIX message: relayed as they are (the acceptor refuses them)."""


def split_message(buffer: bytearray) -> bytes | None:
    """Take the first whole message off `buffer` (None: not all there yet)."""
    if not buffer.startswith(b"8="):
        raise FrameError("a message must start with 8=")
    length_at = buffer.find(SOH + b"9=")
    if length_at < 0:
        return None
    length_end = buffer.find(SOH, length_at + 1)
    if length_end < 0:
        return None
    try:
        body_length = int(buffer[length_at + 3 : length_end])
    except ValueError as exc:
        raise FrameError("BodyLength is not a number") from exc
    end = length_end + 1 + body_length + len(b"10=000\x01")
    if len(buffer) < end:
        return None
    message = bytes(buffer[:end])
    del buffer[:end]
    return message


def field_value(message: bytes, tag: bytes) -> str | None:
    start = message.find(SOH + tag + b"=")
    if start < 0:
        return None
    start += len(tag) + 2
    return message[start : message.find(SOH, start)].decode(errors="replace")


def rewrite(message: bytes, tag: bytes, old: str, new: str) -> bytes:
    """`message` with tag's value `old` replaced by `new`, BodyLength and CheckSum recomputed."""
    needle = SOH + tag + b"=" + old.encode() + SOH
    if needle not in message:
        return message
    fields = message.replace(needle, SOH + tag + b"=" + new.encode() + SOH, 1).split(SOH)
    body = SOH.join(fields[2:-2]) + SOH  # from 35= to before 10=
    head = fields[0] + SOH + b"9=" + str(len(body)).encode() + SOH
    checksum = sum(head + body) % 256
    return head + body + b"10=" + f"{checksum:03d}".encode() + SOH


@dataclass
class Route:
    """One client connection: its slot and the rewriting it needs (none in slot 1)."""

    key: tuple[str, str]
    slot: int
    inbound: bytearray = field(default_factory=bytearray)
    outbound: bytearray = field(default_factory=bytearray)

    @property
    def rewrites(self) -> bool:
        return self.slot != 1

    def to_acceptor(self, data: bytes) -> bytes:
        return self._convert(self.inbound, data, b"56", self.key[1], alias(self.key[1], self.slot))

    def to_client(self, data: bytes) -> bytes:
        return self._convert(self.outbound, data, b"49", alias(self.key[1], self.slot), self.key[1])

    def _convert(self, buffer: bytearray, data: bytes, tag: bytes, old: str, new: str) -> bytes:
        if not self.rewrites:
            return data
        buffer += data
        out = bytearray()
        try:
            while (message := split_message(buffer)) is not None:
                out += rewrite(message, tag, old, new)
        except FrameError:
            out += buffer  # not FIX: let the acceptor (or the client) see what came
            buffer.clear()
        return bytes(out)


class Leg(asyncio.Protocol):
    """One side of a client <-> acceptor pair; `convert` adapts what it receives for the other side."""

    def __init__(self, connection: FrontConnection, from_client: bool) -> None:
        self._connection = connection
        self._from_client = from_client
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment] # a stream protocol gets a stream transport
        if self._from_client:
            self._connection.client_made(self)

    def data_received(self, data: bytes) -> None:
        self._connection.received(data, self._from_client)

    def connection_lost(self, exc: Exception | None) -> None:
        self._connection.lost()

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()


class FrontConnection:
    def __init__(self, front: TradeFront) -> None:
        self._front = front
        self.client: Leg | None = None
        self.acceptor: Leg | None = None
        self.route: Route | None = None
        self._first = bytearray()  # the client's bytes until its Logon is whole
        self._closed = False

    def client_made(self, leg: Leg) -> None:
        self.client = leg

    def received(self, data: bytes, from_client: bool) -> None:
        if not from_client:
            if self.client is not None and self.client.transport is not None and self.route is not None:
                self.client.transport.write(self.route.to_client(data))
            return
        if self.route is None:
            self._first += data
            self._route_first()
            return
        if self.acceptor is not None and self.acceptor.transport is not None:
            self.acceptor.transport.write(self.route.to_acceptor(data))

    def _route_first(self) -> None:
        try:
            message = split_message(bytearray(self._first))
        except FrameError:
            message = bytes(self._first)  # not FIX: relayed as it is, in slot 1 (the acceptor refuses it)
        if message is None:
            return
        key = (field_value(message, b"49") or "", field_value(message, b"56") or "")
        if not self._front.serves(key[0]) and field_value(message, b"35") == "A":
            log.warning("TRADE: logon of SenderCompID %r refused: %s", key[0], NO_SUCH_LOGIN)
            self._front.unknown_refused += 1
            if self.client is not None and self.client.transport is not None:
                self.client.transport.write(no_such_login(message))
            self.lost()  # the Logout is written before the close (asyncio flushes, then closes)
            return
        self.route = self._front.take_slot(key)
        if self.route is None:
            log.warning("TRADE: more than %d connections for %s, closing one", SLOTS, key)
            self.lost()
            return
        if self.client is not None and self.client.transport is not None:
            self.client.transport.pause_reading()
        self._front.connect(self, bytes(self._first))
        self._first.clear()

    def joined(self, leg: Leg, first: bytes) -> None:
        self.acceptor = leg
        if self._closed or leg.transport is None or self.route is None:
            self.lost()
            return
        leg.transport.write(self.route.to_acceptor(first))
        if self.client is not None and self.client.transport is not None:
            self.client.transport.resume_reading()

    def lost(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._front.forget(self)
        if self.route is not None:
            self._front.free_slot(self.route)
        for leg in (self.client, self.acceptor):
            if leg is not None:
                leg.close()


class TradeFront:
    """Listens on the public TRADE port and relays each connection to the acceptor's loopback port."""

    def __init__(self, host: str, port: int, comp_ids: frozenset[str] | None = None) -> None:
        """`comp_ids`: the SenderCompIDs of the accounts served (None: let the acceptor judge every one)."""
        self._address = (host, port)
        self._comp_ids = comp_ids
        self.unknown_refused = 0  # logons refused here: no account has their SenderCompID
        self._target_port = 0
        self._thread = LoopThread("sim-trade-front")
        self._server: asyncio.Server | None = None
        self._slots: dict[tuple[str, str], set[int]] = {}
        self._connections: set[FrontConnection] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        if self._server is None:
            return self._address[1]
        return int(self._server.sockets[0].getsockname()[1])

    def start(self, target_port: int) -> None:
        self._target_port = target_port
        self._thread.start()
        self._thread.call(self._serve())

    async def _serve(self) -> None:
        self._server = await asyncio.get_running_loop().create_server(
            self._accept, *self._address, reuse_address=True
        )

    def _accept(self) -> Leg:
        connection = FrontConnection(self)
        self._connections.add(connection)
        return Leg(connection, from_client=True)

    def serves(self, comp_id: str) -> bool:
        return self._comp_ids is None or comp_id in self._comp_ids

    def take_slot(self, key: tuple[str, str]) -> Route | None:
        used = self._slots.setdefault(key, set())
        free = [slot for slot in range(1, SLOTS + 1) if slot not in used]
        if not free:
            return None
        used.add(free[0])
        if free[0] > 1:
            log.info("TRADE: connection %d of %s (served as %s)", free[0], key, alias(key[1], free[0]))
        return Route(key, free[0])

    def forget(self, connection: FrontConnection) -> None:
        self._connections.discard(connection)
        self._tasks = {task for task in self._tasks if not task.done()}

    def free_slot(self, route: Route) -> None:
        self._slots.get(route.key, set()).discard(route.slot)

    def connect(self, connection: FrontConnection, first: bytes) -> None:
        async def open_leg() -> None:
            leg = Leg(connection, from_client=False)
            try:
                await asyncio.get_running_loop().create_connection(
                    lambda: leg, "127.0.0.1", self._target_port
                )
            except OSError as exc:
                log.warning("TRADE: acceptor port %d unreachable: %s", self._target_port, exc)
                connection.lost()
                return
            connection.joined(leg, first)

        self._tasks.add(asyncio.get_running_loop().create_task(open_leg()))

    def stop(self) -> None:
        if not self._thread.running:
            return
        self._thread.call(self._close())
        self._thread.stop()

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in self._tasks:
            task.cancel()
        for connection in list(self._connections):
            connection.lost()
        for _ in range(3):
            await asyncio.sleep(0)  # closed transports run their callbacks before the loop stops
