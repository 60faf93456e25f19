"""Red-team inputs on every entry point: invalid and hostile commands on the strategies' own streams,
and garbage on the daemon's HTTP port. Each input is counted by kind; what the daemon does about it is
judged by the invariants at the end (and an HTTP 5xx is a finding on the spot)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import string
from collections import Counter
from collections.abc import Callable
from uuid import uuid4

from fixadapter.queue.schema import ReplaceCommand, SubmitCommand, encode
from soak.desk import Trader

Findings = list[str]
HTTP_TIMEOUT = 10.0


def _word(rng: random.Random, length: int = 12) -> str:
    return "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(length))


def _command(strategy: str, kind: str, **fields: object) -> bytes:
    return json.dumps({"v": 1, "type": kind, "id": uuid4().hex[:24], "strategy": strategy, **fields}).encode()


class CommandAbuse:
    """Bad commands, each sent on a real strategy's own command stream (the one its client writes)."""

    def __init__(self, traders: list[Trader], rng: random.Random, huge_bytes: int) -> None:
        self.traders = traders
        self.rng = rng
        self.huge_bytes = huge_bytes
        self.sent = Counter[str]()

    async def _send(self, trader: Trader, kind: str, data: bytes) -> None:
        transport = trader.client._transport  # raw bytes: what no well-behaved client would send
        await trader.retrying(lambda: transport.send_command(trader.name, data))
        self.sent[kind] += 1

    def _malformed(self, trader: Trader) -> dict[str, Callable[[], bytes]]:
        name, rng = trader.name, self.rng
        order = {"symbol": "EURUSD", "side": "buy", "order_type": "market", "quantity": "1000"}
        return {
            "not_json": lambda: b"this is not json {",
            "deep_nesting": lambda: b"[" * 100_000,
            "binary": lambda: bytes(rng.randrange(256) for _ in range(64)),
            "empty": lambda: b"",
            "json_array": lambda: b"[1, 2, 3]",
            "unknown_version": lambda: json.dumps({"v": 99, "type": "submit", "strategy": name}).encode(),
            "random_type": lambda: _command(name, _word(rng)),
            "random_strategy": lambda: _command(_word(rng), "submit", order=order),
            "bad_fields": lambda: _command(name, "submit", order={**order, "quantity": "-5"}),
            "unknown_field": lambda: _command(name, "submit", order=order, admin=True),
        }

    async def malformed(self) -> None:
        """One of every malformed kind from a random strategy."""
        trader = self.rng.choice(self.traders)
        for kind, make in self._malformed(trader).items():
            await self._send(trader, kind, make())

    async def huge(self) -> None:
        trader = self.rng.choice(self.traders)
        padding = "x" * self.huge_bytes
        await self._send(trader, "huge", _command(trader.name, "submit", order={"label": padding}))

    async def flood(self, count: int) -> None:
        """`count` invalid commands with random type and strategy names (label and key growth)."""
        trader = self.rng.choice(self.traders)
        for _ in range(count):
            await self._send(trader, "flood", _command(_word(self.rng, 8), _word(self.rng, 8)))

    async def hostile(self) -> None:
        """Commands that are valid JSON but aim at another strategy's orders or reuse ids."""
        trader, other = self.rng.sample(self.traders, 2)
        own, theirs = trader.working_limits(), other.working_limits() or list(other.submitted)
        if theirs:
            victim = self.rng.choice(theirs)
            # Cancel another strategy's order from one's own stream, in one's own name and in theirs.
            await self._send(
                trader, "cancel_foreign_order", _command(trader.name, "cancel", cl_ord_id=victim)
            )
            await self._send(trader, "impersonation", _command(other.name, "cancel", cl_ord_id=victim))
            if own:
                # A request id equal to another strategy's live order id (issue 13, item 3).
                target = self.rng.choice(own)
                await self._send(
                    trader,
                    "request_id_collision",
                    _command(trader.name, "cancel", cl_ord_id=target, request_id=victim),
                )
                replace = ReplaceCommand(
                    id=uuid4().hex[:24],
                    strategy=trader.name,
                    cl_ord_id=target,
                    quantity=2000,
                    price=trader.client.orders[target].order.price,
                    request_id=victim,
                )
                await self._send(trader, "request_id_collision", encode(replace))
        await self._reuse_id(trader)

    async def _reuse_id(self, trader: Trader) -> None:
        """A ClOrdID used before, sent again with different terms: one order at most, never two."""
        if not trader.submitted:
            return
        cl_ord_id = self.rng.choice(list(trader.submitted))
        first = trader.submitted[cl_ord_id]
        again = first.model_copy(update={"quantity": first.quantity + 1000})
        command = SubmitCommand(id=uuid4().hex[:24], strategy=trader.name, order=again)
        await self._send(trader, "reused_id_new_terms", encode(command))


class HttpAbuse:
    """Garbage on the daemon's HTTP port: bad paths, bad Host, bad JSON, junk bytes, idle sockets."""

    def __init__(self, port: Callable[[], int | None], rng: random.Random) -> None:
        self._port = port
        self.rng = rng
        self.sent = Counter[str]()
        self.findings: Findings = []

    async def _exchange(self, kind: str, data: bytes) -> bytes:
        """Send raw bytes and read the answer to the end (empty when nothing answers)."""
        port = self._port()
        if port is None:
            return b""
        self.sent[kind] += 1
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), HTTP_TIMEOUT)
        except (OSError, TimeoutError):
            return b""
        try:
            writer.write(data)
            await writer.drain()
            answer = await asyncio.wait_for(reader.read(65536), HTTP_TIMEOUT)
        except (OSError, TimeoutError):
            answer = b""
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        status_line = answer.split(b"\r\n", 1)[0].decode(errors="replace")
        if status_line.startswith("HTTP/1.1 5") and not status_line.startswith("HTTP/1.1 503"):
            self.findings.append(f"HTTP {kind}: answered {status_line!r} to {data[:80]!r}")
        return answer

    @staticmethod
    def _request(
        method: str, path: str, host: str = "127.0.0.1", body: bytes = b"", headers: str = ""
    ) -> bytes:
        head = f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n{headers}"
        if body:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        return head.encode() + b"\r\n" + body

    async def garbage(self) -> None:
        """One of every kind of bad request."""
        paths = [
            "/../../etc/passwd",
            "/%00",
            "/orders?status=bogus",
            "/orders?limit=-1",
            "/orders?limit=99999999999999999999999",
            "/kill-switch/x",
            "/" + "a" * 5000,
        ]
        for path in paths:
            await self._exchange("bad_path", self._request("GET", path))
        await self._exchange("bad_method", self._request("DELETE", "/orders"))
        await self._exchange("bad_host", self._request("GET", "/readyz", host="evil.example"))
        await self._exchange("junk_bytes", b"\x16\x03\x01\x02\x00garbage\r\n\r\n")
        await self._exchange(
            "huge_header", self._request("GET", "/healthz", headers=f"X-Junk: {'j' * 20000}\r\n")
        )
        for body in (
            b"{",
            b"[]",
            b'{"action": "explode"}',
            b'{"action": 1, "by": []}',
            b"\xff\xfe",
            b'{"a": "' + b"x" * 1_000_000 + b'"}',
        ):
            await self._exchange("bad_json_kill_switch", self._request("POST", "/kill-switch", body=body))

    async def idle_sockets(self, count: int, hold_seconds: float, healthy: Callable[[], bool]) -> None:
        """Hold `count` silent or half-sent connections; /healthz must still answer meanwhile."""
        port = self._port()
        if port is None:
            return
        writers: list[asyncio.StreamWriter] = []
        try:
            for i in range(count):
                with contextlib.suppress(OSError):
                    _, writer = await asyncio.open_connection("127.0.0.1", port)
                    if i % 2:
                        writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127")  # never finished
                    writers.append(writer)
                    self.sent["idle_socket"] += 1
            if not await asyncio.to_thread(healthy):
                self.findings.append(f"/healthz did not answer while {len(writers)} idle sockets were open")
            await asyncio.sleep(hold_seconds)
        finally:
            for writer in writers:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
