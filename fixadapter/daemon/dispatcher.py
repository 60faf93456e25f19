"""Strategy commands -> the order engine, one at a time, in the order they were queued.

A command is acknowledged only once it is handled: the order is persisted (and sent), or the command is
refused with a `command_rejected` event saying why. While TRADE is down or the store fails, the command
stays unacknowledged and is retried; a daemon killed at any point gets it back on restart, and the
ClOrdID (the command id when the strategy gives none) makes the second delivery return the first order.
A command that can never be taken (not JSON, wrong version, bad fields) is refused and acknowledged, so
it cannot block the queue.
"""

from __future__ import annotations

import asyncio
import logging
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

if TYPE_CHECKING:
    from fixadapter.api import Adapter

log = logging.getLogger("fixadapter.queue")
INVALID_STREAM = "_invalid"  # refused commands that name no readable strategy
RETRY_SECONDS = 1.0

AnyCommand = SubmitCommand | CancelCommand | ReplaceCommand


class CommandDispatcher:
    def __init__(self, adapter: Adapter, source: CommandSource, sink: EventSink) -> None:
        self._adapter = adapter
        self._source = source
        self._sink = sink
        self._metrics = adapter.metrics
        self._stopping = asyncio.Event()

    async def run(self) -> None:
        async for delivery in self._source.deliveries():
            if self._stopping.is_set():
                return  # not acknowledged: the next start takes it
            await self._handle(delivery)
            if self._stopping.is_set():
                return

    def stop_taking(self) -> None:
        """Finish the command in hand, take no other (they stay queued for the next start)."""
        self._stopping.set()

    async def _handle(self, delivery: Delivery) -> None:
        try:
            command = decode_command(delivery.data)
        except InvalidCommand as bad:
            self._metrics.queue_commands.labels(bad.type or "unknown", "invalid").inc()
            log.warning("command %s refused: %s", delivery.entry_id, bad.reason)
            refusal = CommandRejected(
                command_id=bad.id, command_type=bad.type, reason=f"invalid command: {bad.reason}"
            )
            await self._sink.publish(bad.strategy or INVALID_STREAM, encode(refusal), None)
            await self._source.ack(delivery)
            return
        outcome = await self._until_handled(command, delivery)
        if outcome is None:
            return  # stopping before it could be handled: stays queued
        self._metrics.queue_commands.labels(command.type, outcome).inc()
        await self._source.ack(delivery)

    async def _until_handled(self, command: AnyCommand, delivery: Delivery) -> str | None:
        while True:
            try:
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
