"""The composition root: every object of an account, and of several accounts, built here and nowhere else.

An account is a connector (FIX unless one is given), its engine over the one store (its rows carry its
name), pre-trade risk, market data and depth storage where the connector offers them, and its read path.
Several accounts share one metrics registry (their series told apart by the `account` label), one
compliance record (each account's sessions under their own names in it) and one QuickFIX initiator
holding every account's QUOTE and TRADE sessions. api.py puts a facade on what is built here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from prometheus_client import CollectorRegistry

from fixadapter.compliance.capture import MessageRecorder, build_recorder
from fixadapter.config import AdapterConfig
from fixadapter.connectors.base import MarketDataConnector, MessageCaptureConnector, TradeConnector
from fixadapter.crash_points import CrashPoints, crash_points_from
from fixadapter.engine.claims import CommandIds
from fixadapter.engine.instruments import Catalog
from fixadapter.engine.market_data import MarketData
from fixadapter.engine.orders import OrderEngine
from fixadapter.engine.pre_trade import PreTrade, QuoteSource
from fixadapter.errors import ConfigError, UnknownSymbol
from fixadapter.metrics import Metrics
from fixadapter.model.market import Book, Quote
from fixadapter.ops_metrics import register_process_collectors
from fixadapter.store.depth import DepthRecorder
from fixadapter.store.journal import Journal
from fixadapter.store.reads import StoreReader
from fixadapter.store.repository import OrderStore

if TYPE_CHECKING:
    from fixadapter.connectors.fix.host import FixHost
    from fixadapter.connectors.openapi.account_config import OpenApiAccountConfig
    from fixadapter.connectors.openapi.link import LinkKey, OpenApiLink
    from fixadapter.connectors.openapi.tokens import TokenStore


@dataclass(frozen=True)
class AccountParts:
    """One account's objects, wired."""

    account: str
    config: AdapterConfig
    metrics: Metrics
    connector: TradeConnector
    engine: OrderEngine
    reads: StoreReader
    pre_trade: PreTrade
    recorder: MessageRecorder | None
    owns_recorder: bool  # built for this account alone: it starts and closes it
    market: MarketData | None
    depth_recorder: DepthRecorder | None
    crash_points: CrashPoints  # where a crash test kills the process (none unless FIXADAPTER_CRASH_AT)


@dataclass(frozen=True)
class DeskParts:
    """Every configured account, and what they share."""

    accounts: dict[str, AccountParts]
    metrics: Metrics  # process-wide series (queue, HTTP), on the registry every account shares
    recorder: MessageRecorder | None  # the one compliance record, started before the accounts


def build_account(
    config: AdapterConfig,
    connector: TradeConnector | None = None,
    *,
    account: str | None = None,
    metrics: Metrics | None = None,
    recorder: MessageRecorder | None = None,
    fix_host: FixHost | None = None,
    openapi_links: dict[LinkKey, OpenApiLink] | None = None,
    crash_points: CrashPoints | None = None,
    command_ids: CommandIds | None = None,
) -> AccountParts:
    """`account`: which configured account (None: the only one). Alone, an account gets metrics of its
    own, a compliance record of its own (when its connector captures messages), a FIX initiator or an
    Open API connection of its own and the crash points FIXADAPTER_CRASH_AT arms; build_desk passes the
    shared ones."""
    if crash_points is None:
        crash_points = crash_points_from(os.environ)
    entry = config.account(account)
    name = entry.name
    metrics = metrics or Metrics(account=name, connector=entry.connector)
    if connector is None and entry.fix is not None:
        from fixadapter.connectors.fix.connector import FixConnector  # quickfix loads only when used

        connector = FixConnector(config, metrics, account=name, host=fix_host)
    elif connector is None:
        connector = _openapi_connector(config, name, metrics, {} if openapi_links is None else openapi_links)
    captures = connector.capabilities.message_capture
    owns_recorder = recorder is None
    if recorder is None and captures:
        recorder = build_recorder(config, metrics)
    if recorder is not None and captures:
        cast(MessageCaptureConnector, connector).set_message_recorder(recorder)
    store = OrderStore(config.store.url, config.store.echo, account=name)
    catalog = Catalog()
    market: MarketData | None = None
    depth_recorder: DepthRecorder | None = None
    if connector.capabilities.market_data:  # declared: it is a MarketDataConnector too
        market_data = config.market_data_for(name)
        if market_data.storage.enabled:
            depth_recorder = DepthRecorder(store.engine, market_data.storage, metrics)
        market = MarketData(
            cast(MarketDataConnector, connector),
            catalog,
            market_data,
            metrics,
            depth_recorder,
            route=connector.capabilities.market_data_route,
        )
    pre_trade = PreTrade(config.risk_for(name), catalog, metrics, quotes=_last_quote(market))
    engine = OrderEngine(
        store,
        connector,
        metrics,
        config.orders,
        pre_trade=pre_trade,
        catalog=catalog,
        crash_points=crash_points,
        journal=_journal(config, name),
        command_ids=command_ids,
    )
    # People's reads (HTTP, `orders()`) on a thread and connection of their own, never the engine's.
    reads = StoreReader(config.store.url, shared=(engine.store, engine.store_thread))
    return AccountParts(
        account=name,
        config=config,
        metrics=metrics,
        connector=connector,
        engine=engine,
        reads=reads,
        pre_trade=pre_trade,
        recorder=recorder if captures else None,
        owns_recorder=owns_recorder,
        market=market,
        depth_recorder=depth_recorder,
        crash_points=crash_points,
    )


def _journal(config: AdapterConfig, account: str) -> Journal | None:
    directory = config.store.journal.directory_for(config.store.url)
    if directory is None:
        return None
    return Journal(directory / account, fsync=config.store.journal.fsync)


def build_desk(config: AdapterConfig, connectors: Mapping[str, TradeConnector] | None = None) -> DeskParts:
    """Every configured account on one registry, one compliance record and one FIX initiator.

    `connectors`: a connector by account name for accounts not traded over FIX (tests, simulators);
    every other account gets a FIX connector on the shared initiator."""
    given = dict(connectors or {})
    unknown = sorted(set(given) - set(config.account_names))
    if unknown:
        raise ConfigError(f"connectors given for accounts not configured: {', '.join(unknown)}")
    crash_points = crash_points_from(os.environ)  # one for the process: its counts span the accounts
    registry = CollectorRegistry()
    register_process_collectors(registry)
    metrics = {
        entry.name: Metrics(registry, account=entry.name, connector=entry.connector)
        for entry in config.accounts
    }
    shared = metrics[config.account_names[0]]  # process-wide series are the same on every account's
    fix_accounts = [name for name in config.fix_account_names if name not in given]
    openapi_accounts = [e.name for e in config.accounts if e.openapi is not None and e.name not in given]
    captures = (
        bool(fix_accounts)
        or bool(openapi_accounts)
        or any(c.capabilities.message_capture for c in given.values())
    )
    recorder = build_recorder(config, shared) if captures else None
    host = _fix_host(config, fix_accounts)
    links: dict[LinkKey, OpenApiLink] = {}
    command_ids = CommandIds()  # a strategy's command ids span the accounts
    accounts = {
        name: build_account(
            config,
            given.get(name),
            account=name,
            metrics=metrics[name],
            recorder=recorder,
            fix_host=host,
            openapi_links=links,
            crash_points=crash_points,
            command_ids=command_ids,
        )
        for name in config.account_names
    }
    return DeskParts(accounts, shared, recorder)


def _last_quote(market: MarketData | None) -> QuoteSource:
    """The collar's reference: the depth book's top if subscribed, else the spot quote."""

    def last(symbol: str) -> Book | Quote | None:
        if market is None:
            return None
        try:
            return market.book(symbol) or market.quote(symbol)
        except UnknownSymbol:
            return None

    return last


def _openapi_connector(
    config: AdapterConfig, name: str, metrics: Metrics, links: dict[LinkKey, OpenApiLink]
) -> TradeConnector:
    """Accounts of one application on one server share a connection (connectors/openapi/link.py)."""
    from fixadapter.connectors.openapi.connector import OpenApiConnector
    from fixadapter.connectors.openapi.counting import MetricsFrameCounter
    from fixadapter.connectors.openapi.link import LinkKey, OpenApiLink

    settings = config.account(name).openapi
    if settings is None:
        raise ConfigError(f"account {name} has no `openapi` section")
    key = LinkKey(settings.server, settings.port, settings.client_id)
    link = links.get(key)
    if link is None:
        alarms = metrics.alarms

        def token_alarm(grant: str, text: str | None) -> None:
            if text is None:
                alarms.clear("openapi_token", grant)
            else:
                alarms.raise_alarm("openapi_token", grant, text)

        same_app = (link.limiter for link in links.values() if link.key.client_id == settings.client_id)
        link = links[key] = OpenApiLink(
            settings,
            _token_store(settings),
            counter=MetricsFrameCounter(metrics),
            on_token_alarm=token_alarm,
            limiter=next(same_app, None),  # one budget per application (reference 1.7, the strict reading)
        )
    return OpenApiConnector(name, settings, link, metrics)


def _token_store(settings: OpenApiAccountConfig) -> TokenStore:
    from fixadapter.connectors.openapi.token_redis import RedisTokenStore
    from fixadapter.connectors.openapi.tokens import FileTokenStore

    if settings.token_store_url is not None:
        return RedisTokenStore(settings.token_store_url)
    return FileTokenStore(settings.token_file)


def _fix_host(config: AdapterConfig, accounts: list[str]) -> FixHost | None:
    if not accounts:
        return None
    from fixadapter.connectors.fix.host import FixHost  # quickfix loads only when used

    return FixHost(config, accounts)
