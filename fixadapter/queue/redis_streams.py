"""The strategy queue over Redis Streams: the daemon's command source and event sink, and the client side.

Keys (all under `prefix`; strategy names hold no ":", so no name reaches another namespace):
`<prefix>:commands:<strategy>` (one stream per configured strategy, read by one consumer group; an entry
stays until it is handled, then XACK and XDEL in one step, so a command is never lost between being
taken and being handled and none stays after), `<prefix>:events:<strategy>` and `<prefix>:positions`
(trimmed to about `event_maxlen`), and `<prefix>:internal:published_seq` (the last order-event seq
published, set in the same MULTI/EXEC as the event). A strategy may only write its own command stream
and read its own events (see queue.acl for the Redis ACL users that enforce it).

The daemon's side never gives up on a lost connection: it logs once per outage (URL password masked),
counts every failed attempt in `fixadapter_queue_errors_total`, and retries with a backoff capped at
5 s until Redis is back, the transport is closed or its task is cancelled (redis-py may reword a
cancellation arriving mid-call as its own ConnectionError or TimeoutError: that is raised as the
cancellation it is, never counted or retried). A call can also answer as if the cancellation had not
come (Python 3.11's asyncio.wait_for, under redis-py's send and in the backoff here, returns the inner
result when the cancellation meets a call that has just finished, CPython gh-86296): after each such
call in a loop the cancellation is raised all the same (engine.tasks.raise_if_cancelled), on both sides,
so no loop goes on with nothing left to stop it. The client side raises: a strategy decides itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from typing import Any, TypeVar, cast
from urllib.parse import unquote, urlsplit

from prometheus_client import Counter
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.typing import KeyT, StreamIdT

from fixadapter.config import QueueConfig
from fixadapter.engine.tasks import cancelling, raise_if_cancelled
from fixadapter.metrics import Metrics
from fixadapter.model.requests import DEFAULT_ACCOUNT
from fixadapter.queue.transport import ORDERS, POSITIONS, Delivery, EventRecord, Published

log = logging.getLogger("fixadapter.queue.redis")

T = TypeVar("T")

DATA = b"data"
FIRST_BACKOFF_SECONDS = 0.1
MAX_BACKOFF_SECONDS = 5.0
MAX_BLOCK_MS = 1000  # the longest a command read waits, so the claim check keeps its rhythm
CONNECT_TIMEOUT_SECONDS = 5.0
# A blocked read answers within MAX_BLOCK_MS; no answer for this long is a dead connection.
SOCKET_TIMEOUT_SECONDS = 10.0
LAG_COUNT_LIMIT = 1000  # when Redis cannot tell a group's lag (entries deleted), count at most this many
CLIENT_READ_COUNT = 1000  # entries per stream one read_events returns at most
# Connection lost, refused, timed out, Redis loading, authentication refused, a replica answering after a
# failover: wait and try again.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    RedisConnectionError,
    RedisTimeoutError,
    ReadOnlyError,
    OSError,
)
MASK = "******"


class _NotCarried(Exception):
    """The event transaction that took an acknowledgement along did not land: its caller sends it."""


CarriedAck = tuple[Delivery, "asyncio.Future[None]"]


def command_stream(prefix: str, strategy: str) -> str:
    return f"{prefix}:commands:{strategy}"


def events_stream(prefix: str, strategy: str) -> str:
    return f"{prefix}:events:{strategy}"


def positions_stream(prefix: str) -> str:
    return f"{prefix}:positions"


def published_seq_key(prefix: str, account: str = DEFAULT_ACCOUNT) -> str:
    """One marker per account (each account's events are relayed on their own); the default account's
    is the key of the single-account versions, so an upgrade replays nothing twice."""
    own = "" if account == DEFAULT_ACCOUNT else f":{account}"
    return f"{prefix}:internal:published_seq{own}"


# Before `internal:`, the marker lived beside the event streams, where a strategy named published_seq
# collided with it. Moved once at start, keeping the higher value if both exist.
# The published-seq marker only moves forward: a replay or retry never takes it back.
_ADVANCE_MARKER = """
local current = redis.call('GET', KEYS[1])
if not current or tonumber(ARGV[1]) > tonumber(current) then redis.call('SET', KEYS[1], ARGV[1]) end
return 1
"""

_MOVE_OLD_MARKER = """
if redis.call('TYPE', KEYS[1])['ok'] ~= 'string' then return false end
local old = redis.call('GET', KEYS[1])
local new = redis.call('GET', KEYS[2])
if not new or tonumber(old) > tonumber(new) then redis.call('SET', KEYS[2], old) end
redis.call('DEL', KEYS[1])
return old
"""


def mask_url(url: str) -> str:
    """The URL as it can be logged: a password in the user part or in the query replaced by ******."""
    netloc = urlsplit(url).netloc
    userinfo, at, hostport = netloc.rpartition("@")
    if at and ":" in userinfo:
        url = url.replace(f"//{netloc}", f"//{userinfo.split(':', 1)[0]}:{MASK}@{hostport}", 1)
    return re.sub(r"(?i)([?&]password=)[^&#]*", rf"\g<1>{MASK}", url)


def _redact(text: str, url: str) -> str:
    """`text` (an error message) with the URL's password masked, wherever it appears."""
    password = urlsplit(url).password or ""
    for secret in sorted({password, unquote(password)} - {""}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def _connect(url: str, socket_timeout: float | None) -> Redis:
    """A client with redis-py's own retries off: the retry policy (and its counting) is ours."""
    return Redis.from_url(
        url,
        socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
        socket_timeout=socket_timeout,
        retry=Retry(NoBackoff(), 0),
    )


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _by_stream(reply: Any) -> list[tuple[bytes | str, list[Any]]]:
    """XREAD/XREADGROUP's reply, RESP2 ([[key, entries], ...]) or RESP3 ({key: [entries]}), as
    (key, entries) pairs."""
    if not reply:
        return []
    if isinstance(reply, dict):
        return [(key, [entry for batch in batches for entry in batch]) for key, batches in reply.items()]
    return [(key, entries) for key, entries in reply]


def _entries(reply: Any) -> list[tuple[bytes | str, str, dict[bytes, bytes]]]:
    """(stream key, entry id, fields) of every entry in a read's reply; fields {} when the entry has
    none left (deleted while pending)."""
    return [
        (key, _text(entry_id), fields or {})
        for key, entries in _by_stream(reply)
        for entry_id, fields in entries
        if entry_id is not None
    ]


def _id_order(entry_id: str) -> tuple[int, int]:
    millis, _, sequence = entry_id.partition("-")
    return int(millis), int(sequence or 0)


class _Outage:
    """One WARNING per outage, one counted error per failed attempt, and the growing wait between them."""

    def __init__(self, url: str, where: str, errors: Counter, closed: asyncio.Event) -> None:
        self._url = url
        self._where = where
        self._errors = errors
        self._closed = closed
        self._delay = FIRST_BACKOFF_SECONDS
        self._down = False

    def count(self, error: BaseException) -> None:
        """Count a failed attempt. When the caller's task is being cancelled, `error` is redis-py's
        rewording of that cancellation (a call cancelled mid-way can end so): it is raised as the
        cancellation instead, so the retry loops here (reading commands, ack, publish) stop rather than
        retry forever (a daemon stop waited on them), and start() does not go on as if Redis were down."""
        if cancelling():
            raise asyncio.CancelledError from error
        self._errors.inc()
        if not self._down:
            self._down = True
            log.warning(
                "queue (%s): Redis at %s unreachable (%s); retrying with backoff",
                self._where,
                mask_url(self._url),
                _redact(f"{type(error).__name__}: {error}", self._url),
            )

    async def wait(self, error: BaseException) -> None:
        """Count `error` (a cancellation's rewording is raised as the cancellation), then sleep the
        backoff (cut short by close). A close and a cancellation arriving together (a stop) can leave
        wait_for returning as if not cancelled: the cancellation is raised then too, so the caller does
        not retry once more or return as if done."""
        self.count(error)
        delay, self._delay = self._delay, min(self._delay * 2, MAX_BACKOFF_SECONDS)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closed.wait(), delay)
        raise_if_cancelled()

    def over(self) -> None:
        self._delay = FIRST_BACKOFF_SECONDS
        if self._down:
            self._down = False
            log.info("queue (%s): Redis at %s reachable again", self._where, mask_url(self._url))


def _lost_group(error: ResponseError) -> bool:
    """The stream or its group is gone (deleted, or a Redis restarted without persistence)."""
    return str(error).startswith(("NOGROUP", "UNBLOCKED"))


class RedisCommandSource:
    """Commands from each configured strategy's `<prefix>:commands:<strategy>` through consumer group
    `group`, as consumer `consumer`; a delivery's `strategy` is the stream it came on.

    Order of deliveries: this consumer's own unacknowledged entries first (a restart's leftovers, or what
    an abandoned iteration had taken), then entries other consumers took and left idle for
    `claim_idle_seconds` (a dead daemon's), checked again every half of that, then new ones. All but the
    new ones come with `redelivered=True`. After an outage the own pending entries are read again (a lost
    answer leaves entries taken but unseen); those still in the daemon's hands are not handed out twice.
    An acknowledged entry is deleted from its stream in the same MULTI/EXEC: a stream holds only what is
    waiting or being handled.
    """

    def __init__(self, config: QueueConfig, metrics: Metrics) -> None:
        self._config = config
        self._url = config.redis_url.get_secret_value()
        self._streams = {command_stream(config.prefix, name): name for name in config.strategies}
        self._redis = _connect(self._url, SOCKET_TIMEOUT_SECONDS)
        self._closed = asyncio.Event()
        self._errors = metrics.queue_errors.labels("commands")
        self._outage = _Outage(self._url, "commands", self._errors, self._closed)
        self._group_ready = False
        self._pending_after: dict[str, str] = {}  # streams whose own pending entries are still to read
        self._next_claim = 0.0
        self._claim_cursors = dict.fromkeys(self._streams, "0-0")
        # Yielded and not yet acknowledged: XAUTOCLAIM and the pending re-read after an outage also find
        # this consumer's own entries, and one still in the daemon's hands must not be handed out twice.
        self._in_hand: set[tuple[str, str]] = set()
        # Acknowledgements asked for while one is on the wire: the next MULTI/EXEC carries them all.
        self._acks: list[CarriedAck] = []
        self._acking = False

    async def start(self) -> None:
        """Create the groups (from the streams' start) if missing; an unreachable Redis is retried by
        deliveries(), not fatal here."""
        try:
            await self._ensure_groups()
        except TRANSIENT_ERRORS as exc:
            self._outage.count(exc)

    async def _ensure_groups(self) -> None:
        for stream in self._streams:
            try:
                await self._redis.xgroup_create(stream, self._config.group, id="0", mkstream=True)
            except ResponseError as exc:
                if not str(exc).startswith("BUSYGROUP"):
                    raise
            # Answered although cancelled: stop here, not read on (a group made stays made).
            raise_if_cancelled()
        self._group_ready = True

    async def deliveries(self) -> AsyncGenerator[Delivery, None]:
        # A new iteration: what an abandoned one had taken (a dispatcher that failed and was restarted)
        # is read again from the pending entries.
        self._in_hand.clear()
        self._pending_after = dict.fromkeys(self._streams, "0")
        while not self._closed.is_set():
            for delivery in await self._next_batch():
                if self._closed.is_set():
                    return  # the rest stay pending: the next start takes them
                self._in_hand.add((delivery.strategy, delivery.entry_id))
                yield delivery

    async def _next_batch(self) -> list[Delivery]:
        """One read; an outage or a lost group gives an empty batch after the wait or repair."""
        try:
            if not self._group_ready:
                await self._ensure_groups()
            batch = await self._fetch()
        except TRANSIENT_ERRORS as exc:
            # A read whose answer was lost left its entries pending for this consumer, unseen: read this
            # consumer's pending entries again once Redis answers.
            self._pending_after = dict.fromkeys(self._streams, "0")
            await self._outage.wait(exc)
            return []
        except ResponseError as exc:
            if not _lost_group(exc):
                raise
            log.warning("queue: group %s of a command stream is gone; creating it again", self._config.group)
            self._group_ready = False
            return []
        self._outage.over()
        return batch

    async def _fetch(self) -> list[Delivery]:
        if self._pending_after:
            entries = await self._read(self._pending_after, block_ms=None)
            self._pending_after = {stream: entry_id for stream, entry_id, _ in entries}
            return [self._delivery(*entry, redelivered=True) for entry in entries if not self._held(entry)]
        loop = asyncio.get_running_loop()
        if loop.time() >= self._next_claim:
            batch = await self._claim()
            if all(cursor == "0-0" for cursor in self._claim_cursors.values()):
                self._next_claim = loop.time() + self._config.claim_idle_seconds / 2
            if batch:
                return batch
        wait_ms = int((self._next_claim - loop.time()) * 1000)
        entries = await self._read(
            dict.fromkeys(self._streams, ">"), block_ms=min(max(wait_ms, 1), MAX_BLOCK_MS)
        )
        return [self._delivery(*entry, redelivered=False) for entry in entries]

    def _held(self, entry: tuple[str, str, dict[bytes, bytes]]) -> bool:
        return (self._streams[entry[0]], entry[1]) in self._in_hand

    async def _read(
        self, after: dict[str, str], block_ms: int | None
    ) -> list[tuple[str, str, dict[bytes, bytes]]]:
        reply = await self._unless_closed(
            self._redis.xreadgroup(
                self._config.group,
                self._config.consumer,
                cast("dict[KeyT, StreamIdT]", after),  # redis declares a dict of its key and id types
                count=self._config.batch_size,
                block=block_ms,
            )
        )
        return [(_text(stream), entry_id, fields) for stream, entry_id, fields in _entries(reply)]

    async def _claim(self) -> list[Delivery]:
        """One XAUTOCLAIM step per stream from where the previous one stopped (entries deleted meanwhile
        are dropped from the group by Redis)."""
        batch = []
        for stream, cursor in self._claim_cursors.items():
            reply = await self._redis.xautoclaim(
                stream,
                self._config.group,
                self._config.consumer,
                min_idle_time=int(self._config.claim_idle_seconds * 1000),
                start_id=cursor,
                count=self._config.batch_size,
            )
            # Answered although cancelled: what was claimed is not handed out. It stays pending for this
            # consumer, as after a crash: the next start reads it first (or another consumer claims it
            # once idle).
            raise_if_cancelled()
            self._claim_cursors[stream] = _text(reply[0])
            entries = [(stream, _text(entry_id), fields or {}) for entry_id, fields in reply[1] if entry_id]
            batch += [self._delivery(*entry, redelivered=True) for entry in entries if not self._held(entry)]
        return batch

    def _delivery(
        self, stream: str, entry_id: str, fields: dict[bytes, bytes], redelivered: bool
    ) -> Delivery:
        # No `data` field (a foreign writer, a deleted entry): b"" for the daemon to refuse and ack.
        return Delivery(
            entry_id=entry_id,
            data=fields.get(DATA, b""),
            strategy=self._streams[stream],
            redelivered=redelivered,
        )

    async def _unless_closed(self, call: Awaitable[T]) -> T | None:
        """`call`'s result, or None as soon as close() is called (the blocked read is cancelled)."""
        task = asyncio.ensure_future(call)
        closing = asyncio.ensure_future(self._closed.wait())
        try:
            await asyncio.wait({task, closing}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            closing.cancel()
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, *TRANSIENT_ERRORS):
                    await task
        return None if task.cancelled() else task.result()

    async def ack(self, delivery: Delivery) -> None:
        """XACK and XDEL, retried through an outage (an unacknowledged command would come back on the
        next start); after close() one attempt only. The acknowledgements asked for in one loop turn, or
        while one is on the wire, go in one MULTI/EXEC: the first caller sends them all (a burst's
        commands cost one round trip, not one each), unless an event sink's transaction of the same
        turn takes them along (take_acks: a command's acknowledgement rides with the event it caused).
        Cancelled while sending, it leaves every one of them unacknowledged (they come back, and their
        command ids make them harmless)."""
        loop = asyncio.get_running_loop()
        while True:
            answered: asyncio.Future[None] = loop.create_future()
            self._acks.append((delivery, answered))
            if not self._acking:
                await self._send_acks(answered)
            try:
                await answered
            except _NotCarried:
                continue  # the event transaction that took it along did not land: sent again
            return

    def take_acks(self) -> list[CarriedAck]:
        """The acknowledgements waiting to be sent, for an event transaction to the same Redis about to
        go (RedisEventSink): they go in it, saving the round trip of their own. Each is then answered
        through carried(): acknowledged, or handed back to be sent again."""
        if self._closed.is_set():
            return []
        taken, self._acks = self._acks, []
        return taken

    def queue_acks(self, transaction: Pipeline, deliveries: Sequence[Delivery]) -> None:
        """Add the XACK and XDEL of `deliveries` to `transaction` (a MULTI/EXEC of the caller's)."""
        for delivery in deliveries:
            stream = command_stream(self._config.prefix, delivery.strategy)
            transaction.xack(stream, self._config.group, delivery.entry_id)
            transaction.xdel(stream, delivery.entry_id)

    def carried(self, taken: Sequence[CarriedAck], landed: bool) -> None:
        """The transaction that took `taken` along was answered (`landed`), or failed, was cancelled or
        closed: then each caller sends its acknowledgement again (XACK and XDEL twice are harmless)."""
        for delivery, answered in taken:
            if landed:
                self._in_hand.discard((delivery.strategy, delivery.entry_id))
            if answered.done():
                continue  # its caller gave up waiting
            if landed:
                answered.set_result(None)
            else:
                answered.set_exception(_NotCarried())

    async def _send_acks(self, own: asyncio.Future[None]) -> None:
        self._acking = True
        batch: list[tuple[Delivery, asyncio.Future[None]]] = []
        try:
            await asyncio.sleep(0)  # the acknowledgements of this loop turn join
            while self._acks:
                batch, self._acks = self._acks, []
                await self._ack_all([delivery for delivery, _ in batch])
                for _, answered in batch:
                    if not answered.done():
                        answered.set_result(None)
                # The batch was answered although this task is being cancelled: those acknowledged are
                # told so, the ones waiting for the next batch are not sent (they come back).
                raise_if_cancelled()
        except BaseException as error:  # the others hear of it too (a cancellation as one)
            for _, answered in [*batch, *self._acks]:
                if answered.done() or answered is own:
                    continue
                if isinstance(error, Exception):
                    answered.set_exception(error)
                else:
                    answered.cancel()
            own.cancel()
            self._acks = []
            raise
        finally:
            self._acking = False

    async def _ack_all(self, deliveries: list[Delivery]) -> None:
        while True:
            try:
                async with self._redis.pipeline(transaction=True) as transaction:
                    self.queue_acks(transaction, deliveries)
                    await transaction.execute()
            except TRANSIENT_ERRORS as exc:
                if self._closed.is_set():
                    self._outage.count(exc)
                    return
                await self._outage.wait(exc)
                continue
            for delivery in deliveries:
                self._in_hand.discard((delivery.strategy, delivery.entry_id))
            self._outage.over()
            return

    async def backlog(self) -> int:
        """Entries the group has not delivered yet (its lag) plus delivered and unacknowledged ones, over
        every command stream. A transport error is counted and raised (the caller keeps its last figure)."""
        try:
            return sum([await self._backlog(stream) for stream in self._streams])
        except TRANSIENT_ERRORS as exc:
            self._outage.count(exc)
            raise

    async def _backlog(self, stream: str) -> int:
        try:
            groups = await self._redis.xinfo_groups(stream)
        except ResponseError as exc:
            if "no such key" in str(exc).lower():
                return 0
            raise
        for group in groups:
            if _text(group["name"]) != self._config.group:
                continue
            lag = group.get("lag")
            if lag is None:  # Redis cannot tell after deletions: count what follows the last delivered
                after = f"({_text(group['last-delivered-id'])}"
                lag = len(await self._redis.xrange(stream, after, "+", count=LAG_COUNT_LIMIT))
            return int(lag) + int(group["pending"])
        return 0

    async def close(self) -> None:
        self._closed.set()
        await self._redis.aclose()


class RedisEventSink:
    """Order events to `<prefix>:events:<strategy>`, positions to `<prefix>:positions`; a publish
    waits through an outage rather than lose the event."""

    def __init__(
        self,
        config: QueueConfig,
        metrics: Metrics,
        account: str = DEFAULT_ACCOUNT,
        acks: RedisCommandSource | None = None,
    ) -> None:
        """`account`: whose published-seq marker this sink keeps (one sink per account's relay). `acks`:
        the command source whose waiting acknowledgements each order-event transaction takes along."""
        self._acks = acks
        self._url = config.redis_url.get_secret_value()
        self._prefix = config.prefix
        self._maxlen = config.event_maxlen
        self._seq_key = published_seq_key(config.prefix, account)
        self._moves_old_marker = account == DEFAULT_ACCOUNT  # older versions traded the default account only
        self._old_seq_key = events_stream(config.prefix, "published_seq")
        self._redis = _connect(self._url, SOCKET_TIMEOUT_SECONDS)
        self._closed = asyncio.Event()
        self._outage = _Outage(self._url, "events", metrics.queue_errors.labels("events"), self._closed)

    async def start(self) -> None:
        """Move a marker an older version kept beside the event streams (waits for Redis)."""
        if not self._moves_old_marker:
            return
        moved = await self._retrying(
            lambda: cast(
                "Awaitable[str]", self._redis.eval(_MOVE_OLD_MARKER, 2, self._old_seq_key, self._seq_key)
            )
        )
        if moved is not None:
            log.warning("queue: moved the published seq marker %s to %s", self._old_seq_key, self._seq_key)

    async def published_seq(self) -> int | None:
        value = await self._retrying(lambda: self._redis.get(self._seq_key))
        return None if value is None else int(value)

    async def start_tracking(self, seq: int) -> None:
        """First start against this Redis: mark the store's current end as published (only if no mark)."""
        await self._retrying(lambda: self._redis.set(self._seq_key, seq, nx=True))

    async def publish(self, strategy: str, data: bytes, seq: int | None) -> None:
        await self.publish_many([(strategy, data, seq)])

    async def publish_many(self, events: Sequence[Published]) -> None:
        """One MULTI/EXEC for all of them, the last sequence number set in it: a burst's events cost one
        round trip, and a retry after a lost answer finds them published (or not) as a whole. The command
        acknowledgements waiting at that moment go in the same transaction (they are answered once it
        lands, or sent again by their callers if it does not)."""
        last = max((seq for _, _, seq in events if seq is not None), default=None)
        acks = self._acks.take_acks() if self._acks is not None else []
        attempts = 0
        landed = False

        async def attempt() -> None:
            nonlocal attempts, landed
            attempts += 1
            if last is not None and attempts > 1 and await self._already_published(last):
                landed = True  # the EXEC went through and only its answer was lost: do not publish twice
                return
            async with self._redis.pipeline(transaction=True) as transaction:
                for strategy, data, _ in events:
                    key = events_stream(self._prefix, strategy)
                    transaction.xadd(key, {DATA: data}, maxlen=self._maxlen, approximate=True)
                if last is not None:
                    transaction.eval(_ADVANCE_MARKER, 1, self._seq_key, last)
                if acks and self._acks is not None:
                    self._acks.queue_acks(transaction, [delivery for delivery, _ in acks])
                await transaction.execute()
            landed = True

        try:
            await self._retrying(attempt)
        finally:
            if acks and self._acks is not None:
                self._acks.carried(acks, landed)

    async def _already_published(self, seq: int) -> bool:
        value = await self._redis.get(self._seq_key)
        return value is not None and int(value) >= seq

    async def publish_positions(self, data: bytes) -> None:
        key = positions_stream(self._prefix)
        await self._retrying(
            lambda: self._redis.xadd(key, {DATA: data}, maxlen=self._maxlen, approximate=True)
        )

    async def _retrying(self, call: Callable[[], Awaitable[T]]) -> T | None:
        """`call()` until it succeeds; None without it when the sink is closed meanwhile."""
        while not self._closed.is_set():
            try:
                result = await call()
            except TRANSIENT_ERRORS as exc:
                await self._outage.wait(exc)
                continue
            self._outage.over()
            # Answered although cancelled: raised as a cancellation while the answer was on its way
            # would be (a publish may then have gone through; the published-seq marker says so), so
            # the caller's loop (the relay's) stops instead of taking the next event.
            raise_if_cancelled()
            return result
        return None

    async def close(self) -> None:
        self._closed.set()
        await self._redis.aclose()


class RedisClientTransport:
    """The strategy side: commands to the strategy's `<prefix>:commands:<strategy>`, events read from
    its `<prefix>:events:<strategy>` and `<prefix>:positions`. Errors are raised to the caller (NOPERM
    when the URL's ACL user is another strategy's)."""

    def __init__(self, url: str, prefix: str = "fixadapter") -> None:
        self._prefix = prefix
        self._redis = _connect(url, None)  # read_events blocks as long as its caller asks

    async def send_command(self, strategy: str, data: bytes) -> None:
        """Cancelled, it raises CancelledError even when Redis took the command (its id makes a second
        send harmless), so a strategy's sending loop stops."""
        await self._redis.xadd(command_stream(self._prefix, strategy), {DATA: data})
        raise_if_cancelled()

    async def read_events(self, strategy: str, cursor: dict[str, str], timeout: float) -> list[EventRecord]:
        """A "$" (or a stream missing from `cursor`) becomes that stream's last id on this call and is
        written back, so what is published before the next call is not skipped. Cancelled, it raises
        CancelledError even when Redis answered (the cursor is not moved past what was read: nothing is
        skipped), so a reading loop (events(), final_state() under a timeout) stops."""
        keys = {ORDERS: events_stream(self._prefix, strategy), POSITIONS: positions_stream(self._prefix)}
        for stream, key in keys.items():
            if cursor.get(stream, "$") == "$":
                last = await self._last_id(key)
                raise_if_cancelled()
                cursor[stream] = last
        block = max(int(timeout * 1000), 1) if timeout > 0 else None
        reply = await self._redis.xread(
            {key: cursor[stream] for stream, key in keys.items()}, count=CLIENT_READ_COUNT, block=block
        )
        raise_if_cancelled()
        streams = {key: stream for stream, key in keys.items()}
        records = [
            EventRecord(stream=streams[_text(key)], entry_id=entry_id, data=fields.get(DATA, b""))
            for key, entry_id, fields in _entries(reply)
        ]
        records.sort(key=lambda record: _id_order(record.entry_id))  # stable: each stream keeps its order
        for record in records:
            cursor[record.stream] = record.entry_id
        return records

    async def _last_id(self, key: str) -> str:
        try:
            info = await self._redis.xinfo_stream(key)
        except ResponseError as exc:
            if "no such key" in str(exc).lower():
                return "0-0"
            raise
        return _text(info["last-generated-id"])

    async def close(self) -> None:
        await self._redis.aclose()
