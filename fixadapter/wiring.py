"""The composition root: every configured account's Adapter, and what they share.

The accounts share one metrics registry (their series told apart by the `account` label), one compliance
record (each account's sessions under their own names in it) and one QuickFIX initiator holding every
account's QUOTE and TRADE sessions; each has its own engine over the one store (its rows carry its name).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry

from fixadapter.api import Adapter
from fixadapter.compliance.capture import MessageRecorder, build_recorder
from fixadapter.config import AdapterConfig
from fixadapter.connectors.base import TradeConnector
from fixadapter.errors import ConfigError
from fixadapter.metrics import Metrics

if TYPE_CHECKING:
    from fixadapter.connectors.fix.host import FixHost

log = logging.getLogger("fixadapter")


class Desk:
    """Every account's Adapter, started and stopped together, and what they share."""

    def __init__(
        self, adapters: Mapping[str, Adapter], metrics: Metrics, recorder: MessageRecorder | None = None
    ) -> None:
        """`metrics`: process-wide series (queue, HTTP) go through it, on the registry the accounts share;
        `recorder`: the compliance record the Desk starts before the accounts and closes after them."""
        if not adapters:
            raise ConfigError("a desk needs at least one account")
        self.adapters = dict(adapters)
        self.metrics = metrics
        self.registry = metrics.registry
        self.recorder = recorder

    @classmethod
    def of(cls, adapter: Adapter) -> Desk:
        """One Adapter built and run elsewhere (its owner starts and stops it)."""
        return cls({adapter.account: adapter}, adapter.metrics)

    def __getitem__(self, name: str) -> Adapter:
        adapter = self.adapters.get(name)
        if adapter is None:
            raise ConfigError(f"no account named {name!r}; configured: {', '.join(self.adapters)}")
        return adapter

    def only(self) -> Adapter | None:
        """The Adapter when one account is configured, else None."""
        return next(iter(self.adapters.values())) if len(self.adapters) == 1 else None

    def __iter__(self) -> Iterator[Adapter]:
        return iter(self.adapters.values())

    async def start(self) -> None:
        """The record first (the Logons are its first messages), then each account; a failed start stops
        what had started."""
        started: list[Adapter] = []
        try:
            if self.recorder is not None:
                await asyncio.to_thread(self.recorder.start)
            for adapter in self.adapters.values():
                await adapter.start()
                started.append(adapter)
        except BaseException:
            for adapter in reversed(started):
                try:
                    await adapter.stop()
                except Exception:
                    log.exception("stopping account %s after a failed start (continuing)", adapter.account)
            if self.recorder is not None:
                await asyncio.to_thread(self.recorder.close, 5.0)
            raise

    async def stop(self) -> None:
        """Each account logs out and applies what arrived; then the record is flushed and closed."""
        for adapter in self.adapters.values():
            try:
                await adapter.stop()
            except Exception:
                log.exception("stopping account %s failed (continuing with the others)", adapter.account)
        if self.recorder is not None:  # after every logout: the Logouts are in the record
            await asyncio.to_thread(self.recorder.close)


def build_desk(config: AdapterConfig, connectors: Mapping[str, TradeConnector] | None = None) -> Desk:
    """Every configured account on one registry, one compliance record and one FIX initiator.

    `connectors`: a connector by account name for accounts not traded over FIX (tests, simulators);
    every other account gets a FIX connector on the shared initiator."""
    given = dict(connectors or {})
    unknown = sorted(set(given) - set(config.account_names))
    if unknown:
        raise ConfigError(f"connectors given for accounts not configured: {', '.join(unknown)}")
    registry = CollectorRegistry()
    metrics = {name: Metrics(registry, account=name) for name in config.account_names}
    shared = metrics[config.account_names[0]]  # process-wide series are the same on every account's
    fix_accounts = [name for name in config.account_names if name not in given]
    captures = bool(fix_accounts) or any(c.capabilities.message_capture for c in given.values())
    recorder = build_recorder(config, shared) if captures else None
    host = _fix_host(config, fix_accounts)
    adapters = {
        name: Adapter(
            config, given.get(name), account=name, metrics=metrics[name], recorder=recorder, fix_host=host
        )
        for name in config.account_names
    }
    return Desk(adapters, shared, recorder)


def _fix_host(config: AdapterConfig, accounts: list[str]) -> FixHost | None:
    if not accounts:
        return None
    from fixadapter.connectors.fix.host import FixHost  # quickfix loads only when used

    return FixHost(config, accounts)
