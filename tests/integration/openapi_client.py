"""A minimal raw cTrader Open API client for the simulator's tests: TLS, 4-byte framing, the project's codec.

Deliberately not the adapter's connector: these tests pin down the server's behaviour on the wire. Every
wait ends on a message (or the connection's end); the timeout only bounds a broken wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import ssl
from collections.abc import Callable
from types import TracebackType

from google.protobuf.message import Message

from fixadapter.protocols.openapi.framing import FrameDecoder, encode_frame
from fixadapter.protocols.openapi.generated import OpenApiCommonMessages_pb2 as common
from fixadapter.protocols.openapi.generated import OpenApiMessages_pb2 as messages
from fixadapter.protocols.openapi.messages import Decoded, decode, encode
from fixadapter.sim.process import SimProcess

WAIT_SECONDS = 30.0  # bounds a broken wait only (2 shared cores)
HEARTBEAT = common.ProtoHeartbeatEvent().payloadType


class ConnectionEnded(Exception):
    """The server closed the connection."""


class OpenApiClient:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, keepalive: bool) -> None:
        self.reader = reader
        self.writer = writer
        self.decoder = FrameDecoder()
        self.inbox: list[Decoded] = []
        self.heartbeats = 0  # server heartbeats received (kept out of the inbox)
        self.ids = itertools.count(1)
        self._keepalive = asyncio.create_task(self._beat()) if keepalive else None

    @classmethod
    async def connect(cls, sim: SimProcess, *, keepalive: bool = True) -> OpenApiClient:
        context = ssl.create_default_context(cafile=str(sim.ca_file))
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", sim.openapi_port, ssl=context, server_hostname="localhost"
        )
        return cls(reader, writer, keepalive)

    async def __aenter__(self) -> OpenApiClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._keepalive is not None:
            self._keepalive.cancel()
        self.writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError, OSError):
            await self.writer.wait_closed()

    async def _beat(self) -> None:
        """A heartbeat every second, so the server's idle timeout never drops this client."""
        while True:
            await asyncio.sleep(1)
            self.write_raw(encode_frame(encode(common.ProtoHeartbeatEvent())))

    def write_raw(self, data: bytes) -> None:
        self.writer.write(data)

    def send(self, message: Message, client_msg_id: str | None = None) -> str:
        client_msg_id = client_msg_id or f"m{next(self.ids)}"
        self.write_raw(encode_frame(encode(message, client_msg_id)))
        return client_msg_id

    async def _read_more(self) -> None:
        data = await self.reader.read(65536)
        if not data:
            raise ConnectionEnded
        for frame in self.decoder.feed(data):
            decoded = decode(frame)
            if decoded.payload_type == HEARTBEAT:
                self.heartbeats += 1
            else:
                self.inbox.append(decoded)

    async def wait_for(self, accept: Callable[[Decoded], bool]) -> Decoded:
        """The first received message `accept` takes (removed from the inbox); others stay."""
        async with asyncio.timeout(WAIT_SECONDS):
            while True:
                for index, decoded in enumerate(self.inbox):
                    if accept(decoded):
                        return self.inbox.pop(index)
                await self._read_more()

    async def answer(self, client_msg_id: str) -> Decoded:
        return await self.wait_for(lambda d: d.client_msg_id == client_msg_id)

    async def request(self, message: Message) -> Message:
        decoded = await self.answer(self.send(message))
        assert decoded.message is not None
        return decoded.message

    async def event(self, cls: type[Message], accept: Callable[[Message], bool] = lambda m: True) -> Message:
        decoded = await self.wait_for(lambda d: isinstance(d.message, cls) and accept(d.message))
        assert decoded.message is not None
        return decoded.message

    async def heartbeat(self) -> None:
        """Returns when the server has sent a heartbeat."""
        async with asyncio.timeout(WAIT_SECONDS):
            while not self.heartbeats:
                await self._read_more()

    async def ended(self) -> None:
        """Returns when the server closed the connection."""
        async with asyncio.timeout(WAIT_SECONDS):
            with contextlib.suppress(ConnectionEnded, ConnectionError, ssl.SSLError):
                while True:
                    await self._read_more()

    async def app_auth(self, sim: SimProcess) -> Message:
        client_id, secret = sim.openapi_client()
        return await self.request(messages.ProtoOAApplicationAuthReq(clientId=client_id, clientSecret=secret))

    async def account_auth(self, ctid: int, access_token: str) -> Message:
        return await self.request(
            messages.ProtoOAAccountAuthReq(ctidTraderAccountId=ctid, accessToken=access_token)
        )


async def authorised(
    sim: SimProcess, token: str | None = None, scope: str = "trading", *, keepalive: bool = True
) -> tuple[OpenApiClient, int, str]:
    """A client with the app and the first account authorised: (client, ctidTraderAccountId, access token)."""
    client = await OpenApiClient.connect(sim, keepalive=keepalive)
    await client.app_auth(sim)
    token = token or str(sim.openapi_grant(scope)["accessToken"])
    ctid = sim.account().ctid_trader_account_id
    assert ctid is not None
    answer = await client.account_auth(ctid, token)
    assert isinstance(answer, messages.ProtoOAAccountAuthRes), answer
    return client, ctid, token
