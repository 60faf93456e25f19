"""Strategy commands -> each account's order engine; the commands about one order in the order queued.

Commands are read by one reader and handed to their account's lane: an account whose TRADE is down holds
its own commands (unacknowledged, up to LANE_SIZE) while the other accounts' lanes go on. A command names
its account (`account`, optional while one is configured); one naming no account of this daemon is refused.
Within an account, commands about different orders are handled side by side (up to IN_HAND at once), so
the orders of a burst reach the store together and share its commits; a command waits for the commands
before it about the same order, position or command id (engine/keyed_lanes.py).

A command is acknowledged only once it is handled: the order is persisted (and sent), or the command is
refused with a `command_rejected` event saying why. While TRADE is down or the store fails, the command
stays unacknowledged and is retried; a daemon killed at any point gets it back on restart, and the
ClOrdID (the command id when the strategy gives none) makes the second delivery return the first order.
A command that can never be taken (not JSON, too big or deep, wrong version, bad fields, or naming
another strategy than the one whose stream carried it) is refused on the sender's stream and
acknowledged, so it cannot block the queue. A command id used before for a different command is refused
(the same id with the same content is a redelivery and taken as before). A command whose handling raises
something unexpected makes the dispatcher fail (its supervisor restarts it, with a blocking alarm
meanwhile, and the command comes back); after MAX_ATTEMPTS such failures it is refused and acknowledged,
so one command cannot stop all.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections import deque
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from fixadapter.engine.keyed_lanes import KeyedLanes
from fixadapter.engine.tasks import cancelling
from fixadapter.errors import (
    CommandIdReused,
    FixAdapterError,
    OrderNotFound,
    RiskRejected,
    SessionNotReady,
    StoreError,
)
from fixadapter.model.requests import CancelOrder, CommandUse
from fixadapter.queue.schema import (
    AmendPositionProtectionCommand,
    AnyCommand,
    CancelCommand,
    ClosePositionCommand,
    CommandRejected,
    InvalidCommand,
    ReplaceCommand,
    SubmitCommand,
    decode_command,
    encode,
    values_text,
)
from fixadapter.queue.transport import CommandSource, Delivery, EventSink
from fixadapter.risk.open_orders import strategy_of

if TYPE_CHECKING:
    from fixadapter.api import Adapter
    from fixadapter.metrics import Metrics

log = logging.getLogger("fixadapter.queue")
RETRY_SECONDS = 1.0
MAX_ATTEMPTS = 3

LANE_SIZE = 1000  # commands an account holds taken and not yet handled; the reader waits beyond that
IN_HAND = 256  # commands of one account being handled at once (each about another order)
STOP_GRACE_SECONDS = 5.0  # at stop, for the commands in hand (a store that is down never finishes them)

Taken = tuple[AnyCommand, Delivery]


class _Lane:
    """One account's commands, taken and waiting their turn (in the order read)."""

    def __init__(self) -> None:
        self._items: deque[Taken] = deque()
        self._arrived = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._closed = False
        self.closed = asyncio.Event()  # set by close(): a server waiting for anything ends
        self._idle = False  # its server waits in take() for the next command
        # Set by the server: hands a command on at once, True when it did (a hop of the loop fewer).
        self.direct: Callable[[Taken], bool] | None = None
        # Set by the server: told when the lane closes, so a server waiting for room ends at once.
        self.on_close: Callable[[], None] | None = None

    async def put(self, item: Taken) -> bool:
        """False when the lane closed before there was room (the command stays queued at the source)."""
        idle = self._idle and not self._items and not self._closed
        if idle and self.direct is not None and self.direct(item):
            return True  # nothing of the account waited: what its server would have done, done now
        while len(self._items) >= LANE_SIZE and not self._closed:
            self._room.clear()
            await self._room.wait()
        if self._closed:
            return False
        self._items.append(item)
        self._arrived.set()
        return True

    async def take(self) -> Taken | None:
        """The next command, or None once closed."""
        while not self._items and not self._closed:
            self._arrived.clear()
            self._idle = True
            try:
                await self._arrived.wait()
            finally:
                self._idle = False
        if self._closed:
            return None
        item = self._items.popleft()
        self._room.set()
        return item

    def close(self) -> None:
        """Take and put no more (what is left stays unacknowledged: the next start gets it)."""
        self._closed = True
        self.closed.set()
        self._arrived.set()
        self._room.set()
        if self.on_close is not None:
            self.on_close()


class CommandDispatcher:
    def __init__(
        self, adapters: Mapping[str, Adapter], source: CommandSource, sink: EventSink, metrics: Metrics
    ) -> None:
        self._adapters = dict(adapters)
        self._source = source
        self._sink = sink
        self._metrics = metrics
        self._stopping = asyncio.Event()
        self._failures: dict[tuple[str, str], int] = {}  # unexpected failures per delivery still queued
        self._lanes: dict[str, _Lane] = {}
        self._reader: asyncio.Future[None] | None = None
        self._reading = False  # the reader is inside one delivery (cancelled only between deliveries)
        self._read_ends = False  # the reader takes no other delivery

    async def run(self, progress: Callable[[], None] = lambda: None) -> None:
        """Read and handle until stop_taking(). An unexpected failure in one lane stops the others after
        the command each has in hand, and is raised (the supervisor runs the dispatcher again, and the
        commands taken and not handled come back from the source)."""
        if self._stopping.is_set():
            return
        self._lanes = {name: _Lane() for name in self._adapters}
        self._read_ends = False
        lanes = [
            asyncio.ensure_future(self._serve(self._adapters[name], lane, progress))
            for name, lane in self._lanes.items()
        ]
        self._reader = reader = asyncio.ensure_future(self._read(progress))
        everything = [reader, *lanes]
        try:
            await asyncio.wait(everything, return_when=asyncio.FIRST_EXCEPTION)
            for lane in self._lanes.values():
                lane.close()
            self._end_reading()
            await asyncio.wait(everything)  # each finishes the command in hand, the reader its delivery
        finally:
            for task in everything:
                task.cancel()
            await asyncio.gather(*everything, return_exceptions=True)
        failed = [t for t in lanes if not t.cancelled() and t.exception() is not None]
        if not reader.cancelled() and reader.exception() is not None and not self._stopping.is_set():
            failed.insert(0, reader)
        if failed:
            raise failed[0].exception()  # type: ignore[misc]

    def stop_taking(self) -> None:
        """Finish the command in hand, take no other (they stay queued for the next start)."""
        self._stopping.set()
        for lane in self._lanes.values():
            lane.close()
        self._end_reading()

    def _end_reading(self) -> None:
        """The reader takes no other delivery: cancelled while it waits for one, else it ends once the one
        in hand is taken or refused (a refusal cut between its publish and its acknowledgement would be
        published again when the command comes back)."""
        self._read_ends = True
        if self._reader is not None and not self._reading:
            self._reader.cancel()

    async def _read(self, progress: Callable[[], None]) -> None:
        async with contextlib.aclosing(self._source.deliveries()) as deliveries:
            async for delivery in deliveries:
                if self._read_ends:
                    return  # not acknowledged: the next start takes it
                self._reading = True
                try:
                    taken = await self._take(delivery, progress)
                finally:
                    self._reading = False
                if not taken or self._read_ends:
                    return

    async def _take(self, delivery: Delivery, progress: Callable[[], None]) -> bool:
        """Refuse the delivery, or hand it to its account's lane; False when the lane closed first."""
        command = await self._decoded(delivery)
        if command is None:
            progress()
            return True
        account = await self._account_of(command, delivery)
        if account is None:
            progress()
            return True
        return await self._lanes[account].put((command, delivery))

    async def _serve(self, adapter: Adapter, lane: _Lane, progress: Callable[[], None]) -> None:
        """Hand the account's commands to keyed lanes until the lane closes or one fails unexpectedly;
        then each command being handled finishes (those waiting their turn stay unacknowledged: the
        source hands them out again) and the failure is raised."""
        failures: list[Exception] = []
        failed = asyncio.Event()

        async def handle(item: Taken) -> None:
            if failed.is_set():
                return  # its turn came after a failure: unacknowledged, it comes back
            try:
                await self._handle(adapter, *item)
            except Exception as error:
                failures.append(error)
                failed.set()
                lane.close()  # the reader's next put returns False: it stops taking
                return
            progress()

        commands = KeyedLanes[Taken](handle, lambda _waiting: None, limit=IN_HAND)

        def direct(item: Taken) -> bool:
            """The reader's shortcut while this server is idle: what the loop below would do with the
            item, without waking it, when the account trades and the item need not wait for room."""
            if failed.is_set() or self._stopping.is_set() or not adapter.engine.ready:
                return False
            return commands.add_now(command_lanes(item[0]), item)

        lane.direct, lane.on_close = direct, commands.stop_taking
        try:
            await self._hand_over(adapter, lane, commands, failed)
        except asyncio.CancelledError:
            lane.direct = lane.on_close = None
            await commands.close(grace=0)  # cancelled, not stopped: nothing finishes
            raise
        lane.direct = lane.on_close = None
        await commands.close(grace=STOP_GRACE_SECONDS)
        if failures:
            raise failures[0]

    async def _hand_over(
        self, adapter: Adapter, lane: _Lane, commands: KeyedLanes[Taken], failed: asyncio.Event
    ) -> None:
        """What the reader could not hand on itself: each command once the account trades and has room."""
        while not failed.is_set():
            item = await lane.take()
            if item is None or not await self._until_ready(adapter, lane):
                return
            if not await commands.add(command_lanes(item[0]), item):
                return  # the lane closed while the account had no room: the item stays queued

    async def _until_ready(self, adapter: Adapter, lane: _Lane) -> bool:
        """Wait until the account trades again (True), or the dispatcher stops or the lane closes (False:
        another lane's failure must not wait for this account to trade again)."""
        if adapter.engine.ready:
            return not self._stopping.is_set() and not lane.closed.is_set()
        waits = {
            asyncio.ensure_future(adapter.engine.until_ready()),
            asyncio.ensure_future(self._stopping.wait()),
            asyncio.ensure_future(lane.closed.wait()),
        }
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
        return not self._stopping.is_set() and not lane.closed.is_set()

    async def _account_of(self, command: AnyCommand, delivery: Delivery) -> str | None:
        """The account the command is for; None once it is refused (no such account) and acknowledged."""
        if command.account in self._adapters:
            return command.account
        if command.account is None and len(self._adapters) == 1:
            return next(iter(self._adapters))
        names = ", ".join(self._adapters)
        if command.account is None:
            reason = (
                f"command {command.id} names no account, and this daemon trades several ({names}): add one"
            )
        else:
            reason = (
                f"command {command.id} is for account {command.account}, which this daemon does not trade "
                f"({names})"
            )
        refusal = CommandRejected(
            command_id=command.id,
            command_type=command.type,
            cl_ord_id=command.cl_ord_id,
            account=command.account,
            reason=reason,
        )
        await self._refuse_unread(delivery, command.type, refusal)
        return None

    async def _handle(self, adapter: Adapter, command: AnyCommand, delivery: Delivery) -> None:
        try:
            outcome = await self._until_handled(adapter, command, delivery)
        except Exception as error:
            if cancelling():
                raise asyncio.CancelledError from error
            if not await self._gave_up(adapter, command, delivery, error):
                raise
            return
        self._failures.pop((delivery.strategy, delivery.entry_id), None)
        if outcome is None:
            return  # stopping before it could be handled: stays queued
        self._metrics.queue_commands.labels(command.type, outcome).inc()
        await self._source.ack(delivery)

    async def _decoded(self, delivery: Delivery) -> AnyCommand | None:
        """The command, or None once it is refused and acknowledged; never raises for any input."""
        try:
            command = decode_command(delivery.data)
        except InvalidCommand as bad:
            refusal = CommandRejected(
                command_id=bad.id, command_type=bad.type, reason=f"invalid command: {bad.reason}"
            )
            await self._refuse_unread(delivery, bad.known_type, refusal)
            return None
        except Exception as error:  # no input may stop the dispatcher; the cause is for the log
            log.exception("command %s from %s could not be read", delivery.entry_id, delivery.strategy)
            reason = f"invalid command: unreadable ({type(error).__name__}); fix the command's JSON"
            await self._refuse_unread(delivery, "unknown", CommandRejected(reason=reason))
            return None
        if command.strategy != delivery.strategy:
            reason = (
                f"command {command.id} names strategy {command.strategy} but was sent on the stream of "
                f"{delivery.strategy}: a strategy sends only as itself, on its own stream"
            )
            refusal = CommandRejected(
                command_id=command.id, command_type=command.type, cl_ord_id=command.cl_ord_id, reason=reason
            )
            await self._refuse_unread(delivery, command.type, refusal)
            return None
        return command

    async def _refuse_unread(self, delivery: Delivery, label: str, refusal: CommandRejected) -> None:
        """Refuse a command before it is taken, to the stream of whoever sent it, and acknowledge it."""
        self._metrics.queue_commands.labels(label, "invalid").inc()
        log.warning("command %s from %s refused: %s", delivery.entry_id, delivery.strategy, refusal.reason)
        await self._sink.publish(delivery.strategy, encode(refusal), None)
        await self._source.ack(delivery)

    async def _gave_up(
        self, adapter: Adapter, command: AnyCommand, delivery: Delivery, error: Exception
    ) -> bool:
        """Count an unexpected failure; after MAX_ATTEMPTS, refuse and acknowledge the command (True)."""
        key = (delivery.strategy, delivery.entry_id)
        attempts = self._failures[key] = self._failures.get(key, 0) + 1
        self._metrics.queue_commands.labels(command.type, "failed").inc()
        if attempts < MAX_ATTEMPTS:
            return False  # the dispatcher fails; restarted, it gets this command again
        log.error("command %s dropped after %d failures", command.id, attempts, exc_info=error)
        reason = (
            f"the adapter failed handling this command {attempts} times ({type(error).__name__}); it is "
            f"dropped: check order {command.cl_ord_id}'s events before sending it again, and report the "
            "daemon log's traceback"
        )
        await self._refuse(adapter, command, reason)
        await self._source.ack(delivery)
        self._failures.pop(key, None)
        return True

    async def _until_handled(self, adapter: Adapter, command: AnyCommand, delivery: Delivery) -> str | None:
        while True:
            try:
                # A submit's command id is recorded with its order, in the order's transaction (one
                # store round trip and one commit, not two); a reuse raises CommandIdReused.
                if not isinstance(command, SubmitCommand) and not await self._first_use(adapter, command):
                    return "rejected"
                await self._execute(adapter, command)
                return "done"
            except CommandIdReused:
                await self._refuse_reused(adapter, command)
                return "rejected"
            except RiskRejected as refused:
                await self._refuse(
                    adapter, command, refused.detail, refused.rule, values_text(refused.values)
                )
                return "rejected"
            except (SessionNotReady, StoreError) as exc:
                # Nothing was stored for it (or the store failed): keep it queued and try again.
                self._metrics.queue_commands.labels(command.type, "retried").inc()
                log.warning("command %s (%s) waits: %s", command.id, delivery.entry_id, exc)
                if await self._stopped_within(RETRY_SECONDS):
                    return None
            except FixAdapterError as exc:
                await self._refuse(adapter, command, str(exc))
                return "rejected"

    async def _first_use(self, adapter: Adapter, command: AnyCommand) -> bool:
        """True for a new command id or a redelivery (same content); a reused id is refused (False)."""
        use = _use_of(command)
        if await adapter.engine.first_use_of_command(use.strategy, use.command_id, use.digest):
            return True
        await self._refuse_reused(adapter, command)
        return False

    async def _refuse_reused(self, adapter: Adapter, command: AnyCommand) -> None:
        reason = str(CommandIdReused(command.id))
        log.info("%s %s from %s refused: %s", command.type, command.id, command.strategy, reason)
        refusal = CommandRejected(
            command_id=command.id, command_type=command.type, account=adapter.account, reason=reason
        )
        await self._sink.publish(command.strategy, encode(refusal), None)

    async def _stopped_within(self, seconds: float) -> bool:
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except TimeoutError:
            return False
        return True

    async def _execute(self, adapter: Adapter, command: AnyCommand) -> None:
        if isinstance(command, SubmitCommand):
            # Refuses another strategy's ClOrdID itself; records the command id with the order.
            await adapter.submit(command.new_order(), _use_of(command))
            return
        if isinstance(command, ClosePositionCommand):
            existing = await adapter.order(command.cl_ord_id)
            if existing is not None and strategy_of(existing) != command.strategy:
                raise OrderNotFound(f"ClOrdID {command.cl_ord_id} is taken by another strategy's order")
            await adapter.close_position(command.close_position())
            return
        if isinstance(command, AmendPositionProtectionCommand):
            await adapter.amend_position_protection(command.amend_position_protection())
            return
        await self._owned(adapter, command)
        if isinstance(command, CancelCommand):
            await adapter.cancel(CancelOrder(cl_ord_id=command.cl_ord_id, request_id=command.request_id))
        else:
            await adapter.replace(command.replace_order())

    async def _owned(self, adapter: Adapter, command: CancelCommand | ReplaceCommand) -> None:
        order = await adapter.order(command.cl_ord_id)
        if order is None or strategy_of(order) != command.strategy:
            raise OrderNotFound(f"strategy {command.strategy} has no order {command.cl_ord_id}")

    async def _refuse(
        self,
        adapter: Adapter,
        command: AnyCommand,
        reason: str,
        rule: str | None = None,
        values: dict[str, str] | None = None,
    ) -> None:
        log.info("%s %s from %s refused: %s", command.type, command.id, command.strategy, reason)
        refusal = CommandRejected(
            account=adapter.account,
            command_id=command.id,
            command_type=command.type,
            cl_ord_id=command.cl_ord_id,
            reason=reason,
            rule=rule,
            values=values or {},
        )
        await self._sink.publish(command.strategy, encode(refusal), None)


def _use_of(command: AnyCommand) -> CommandUse:
    """The command's id and the digest of its content (what a redelivery repeats and a reuse does not)."""
    content = command.model_dump_json(exclude={"sent_at"}).encode()
    return CommandUse(command.strategy, command.id, hashlib.sha256(content).hexdigest())


def command_lanes(command: AnyCommand) -> tuple[str, ...]:
    """What a command must wait for: the commands before it with the same id (a redelivery is compared
    with the first) and about the same order or position (its ClOrdID, a request id that becomes one)."""
    lanes = [f"command {command.strategy} {command.id}"]
    if command.cl_ord_id is not None:
        lanes.append(f"order {command.cl_ord_id}")
    request_id = getattr(command, "request_id", None)  # a cancel's or replace's, which becomes a ClOrdID
    if request_id and not isinstance(command, ClosePositionCommand):  # a close's is its cl_ord_id
        lanes.append(f"order {request_id}")
    if isinstance(command, (ClosePositionCommand, AmendPositionProtectionCommand)):
        lanes.append(f"position {command.position_id}")
    return tuple(lanes)
