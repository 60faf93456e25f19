"""Strategy commands -> the order engine, one at a time, in the order they were queued.

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
from collections.abc import Callable
from typing import TYPE_CHECKING

from fixadapter.errors import FixAdapterError, OrderNotFound, RiskRejected, SessionNotReady, StoreError
from fixadapter.model.requests import CancelOrder
from fixadapter.queue.schema import (
    CancelCommand,
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
from fixadapter.store.command_ids import CommandIds

if TYPE_CHECKING:
    from fixadapter.api import Adapter

log = logging.getLogger("fixadapter.queue")
RETRY_SECONDS = 1.0
MAX_ATTEMPTS = 3

AnyCommand = SubmitCommand | CancelCommand | ReplaceCommand


class CommandDispatcher:
    def __init__(self, adapter: Adapter, source: CommandSource, sink: EventSink) -> None:
        self._adapter = adapter
        self._source = source
        self._sink = sink
        self._metrics = adapter.metrics
        self._stopping = asyncio.Event()
        self._failures: dict[tuple[str, str], int] = {}  # unexpected failures per delivery still queued
        self._ids = CommandIds(adapter.engine.store.engine)

    async def prepare(self) -> None:
        """Create the table of used command ids (before the first command)."""
        await asyncio.to_thread(self._ids.create)

    async def run(self, progress: Callable[[], None] = lambda: None) -> None:
        async with contextlib.aclosing(self._source.deliveries()) as deliveries:
            async for delivery in deliveries:
                if self._stopping.is_set():
                    return  # not acknowledged: the next start takes it
                await self._handle(delivery)
                progress()
                if self._stopping.is_set():
                    return

    def stop_taking(self) -> None:
        """Finish the command in hand, take no other (they stay queued for the next start)."""
        self._stopping.set()

    async def _handle(self, delivery: Delivery) -> None:
        command = await self._decoded(delivery)
        if command is None:
            return
        try:
            outcome = await self._until_handled(command, delivery)
        except Exception as error:
            if not await self._gave_up(command, delivery, error):
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

    async def _gave_up(self, command: AnyCommand, delivery: Delivery, error: Exception) -> bool:
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
        await self._refuse(command, reason)
        await self._source.ack(delivery)
        self._failures.pop(key, None)
        return True

    async def _until_handled(self, command: AnyCommand, delivery: Delivery) -> str | None:
        while True:
            try:
                if not await self._first_use(command):
                    return "rejected"
                await self._execute(command)
                return "done"
            except RiskRejected as refused:
                await self._refuse(command, refused.detail, refused.rule, values_text(refused.values))
                return "rejected"
            except (SessionNotReady, StoreError) as exc:
                # Nothing was stored for it (or the store failed): keep it queued and try again.
                self._metrics.queue_commands.labels(command.type, "retried").inc()
                log.warning("command %s (%s) waits: %s", command.id, delivery.entry_id, exc)
                if await self._stopped_within(RETRY_SECONDS):
                    return None
            except FixAdapterError as exc:
                await self._refuse(command, str(exc))
                return "rejected"

    async def _first_use(self, command: AnyCommand) -> bool:
        """True for a new command id or a redelivery (same content); a reused id is refused (False)."""
        content = command.model_dump_json(exclude={"sent_at"}).encode()
        digest = hashlib.sha256(content).hexdigest()
        if await asyncio.to_thread(self._ids.same_or_new, command.strategy, command.id, digest):
            return True
        reason = (
            f"command id {command.id} was used before for a different command; give every command a new id "
            "(the same id is only for sending the same command again)"
        )
        log.info("%s %s from %s refused: %s", command.type, command.id, command.strategy, reason)
        refusal = CommandRejected(command_id=command.id, command_type=command.type, reason=reason)
        await self._sink.publish(command.strategy, encode(refusal), None)
        return False

    async def _stopped_within(self, seconds: float) -> bool:
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except TimeoutError:
            return False
        return True

    async def _execute(self, command: AnyCommand) -> None:
        adapter = self._adapter
        if isinstance(command, SubmitCommand):
            existing = await adapter.order(command.cl_ord_id)
            if existing is not None and strategy_of(existing) != command.strategy:
                raise OrderNotFound(f"ClOrdID {command.cl_ord_id} is taken by another strategy's order")
            await adapter.submit(command.new_order())
            return
        await self._owned(command)
        if isinstance(command, CancelCommand):
            await adapter.cancel(CancelOrder(cl_ord_id=command.cl_ord_id, request_id=command.request_id))
        else:
            await adapter.replace(command.replace_order())

    async def _owned(self, command: CancelCommand | ReplaceCommand) -> None:
        order = await self._adapter.order(command.cl_ord_id)
        if order is None or strategy_of(order) != command.strategy:
            raise OrderNotFound(f"strategy {command.strategy} has no order {command.cl_ord_id}")

    async def _refuse(
        self, command: AnyCommand, reason: str, rule: str | None = None, values: dict[str, str] | None = None
    ) -> None:
        log.info("%s %s from %s refused: %s", command.type, command.id, command.strategy, reason)
        refusal = CommandRejected(
            command_id=command.id,
            command_type=command.type,
            cl_ord_id=command.cl_ord_id,
            reason=reason,
            rule=rule,
            values=values or {},
        )
        await self._sink.publish(command.strategy, encode(refusal), None)
