"""Configuration: YAML validated by pydantic, overridden by FIXADAPTER_* environment variables.

The accounts traded are listed under `accounts:`, each with a name and a `fix` section; the single
`account:` section of earlier versions is still taken, as one account named `default`. Credentials never
come from a committed file: a password is a SecretStr, normally set through
FIXADAPTER_ACCOUNTS__<NAME>__FIX__PASSWORD (FIXADAPTER_ACCOUNT__PASSWORD in the single-account form).
A bad key or value fails with a message naming it.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, Self

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from fixadapter.connectors.fix.kinds import SessionKind
from fixadapter.connectors.openapi.account_config import OpenApiAccountConfig
from fixadapter.errors import ConfigError
from fixadapter.model.requests import ACCOUNT_PATTERN, DEFAULT_ACCOUNT, STRATEGY_PATTERN
from fixadapter.private_files import sqlite_path
from fixadapter.risk.limits import RiskConfig

ENV_PREFIX = "FIXADAPTER_"
PASSWORD_ENV = "FIXADAPTER_ACCOUNT__PASSWORD"  # noqa: S105 - the variable's name, not a password
log = logging.getLogger("fixadapter.config")


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# cTrader's ports per session: plain text and TLS (the credentials form prints both).
PLAIN_PORTS = {SessionKind.QUOTE: 5201, SessionKind.TRADE: 5202}
TLS_PORTS = {SessionKind.QUOTE: 5211, SessionKind.TRADE: 5212}
Port = Annotated[int, Field(gt=0, lt=65536)]


def is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class AccountConfig(_Section):
    """One cTrader account, as printed on its FIX API credentials form."""

    host: Annotated[str, Field(min_length=1)]
    sender_comp_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9._\-]+$")]
    target_comp_id: str = "CSERVER"
    username: Annotated[str, Field(pattern=r"^[0-9]+$", description="the bare numeric trader login")]
    password: SecretStr
    quote_tls: bool | None = Field(None, description="unset: TLS unless host is loopback")
    trade_tls: bool | None = Field(None, description="unset: TLS unless host is loopback")
    quote_port: Port | None = Field(None, description="unset: 5211 with TLS, 5201 without")
    trade_port: Port | None = Field(None, description="unset: 5212 with TLS, 5202 without")
    tls_ca_file: Path | None = Field(
        None, description="PEM CA bundle trusted instead of the system store (pinning); unset: system store"
    )
    tls_timeout_seconds: Annotated[float, Field(gt=0, le=60, description="TCP connect, then handshake")] = 5.0
    tls_retry_max_seconds: Annotated[
        float, Field(ge=1, le=3600, description="longest wait between attempts")
    ] = 60.0
    heartbeat_seconds: Annotated[int, Field(ge=1, le=300)] = 30
    reconnect_seconds: Annotated[int, Field(ge=1, le=300)] = 5
    logon_retry_max_seconds: Annotated[
        float,
        Field(ge=1, le=3600, description="longest wait after a refused logon (doubling from reconnect)"),
    ] = 300.0
    logon_refusals_max: Annotated[
        int, Field(ge=1, le=100, description="consecutive refused logons before the session stops trying")
    ] = 5

    @field_validator("tls_ca_file")
    @classmethod
    def _ca_file_exists(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"no such file: {value}")
        return value

    def _configured_tls(self, kind: SessionKind) -> bool | None:
        return self.quote_tls if kind is SessionKind.QUOTE else self.trade_tls

    def tls(self, kind: SessionKind) -> bool:
        """TLS for this session: as configured, else on for every host but loopback."""
        chosen = self._configured_tls(kind)
        return not is_loopback(self.host) if chosen is None else chosen

    def tls_explicitly_off(self, kind: SessionKind) -> bool:
        return self._configured_tls(kind) is False

    def port(self, kind: SessionKind) -> int:
        chosen = self.quote_port if kind is SessionKind.QUOTE else self.trade_port
        if chosen is not None:
            return chosen
        return (TLS_PORTS if self.tls(kind) else PLAIN_PORTS)[kind]

    def endpoint(self, kind: SessionKind) -> str:
        """host:port, and whether TLS, for logs and messages."""
        return f"{self.host}:{self.port(kind)}{' (TLS)' if self.tls(kind) else ''}"


class JournalConfig(_Section):
    """The order journal (store/journal.py): new orders are durable in it before they are sent."""

    enabled: Annotated[
        bool,
        Field(
            description="journal new orders (off: every write waits for the store); off by default until "
            "it pays in a burst (README, Benchmarks)"
        ),
    ] = False
    directory: Annotated[
        str | None,
        Field(
            description="where the journal lives, a directory per account, on local disk; default: beside "
            "a SQLite store's file (<file>.journal); a store on a database server needs it set"
        ),
    ] = None
    fsync: Annotated[
        bool,
        Field(
            description="flush each record to the disk: it survives an OS crash too, not only the "
            "process's; costs the disk's flush time on every order"
        ),
    ] = False

    def directory_for(self, url: str) -> Path | None:
        """The journal's directory for a store at `url`, or None when the journal is off (also for an
        in-memory store, which keeps nothing across a restart, and a server with no directory set)."""
        if not self.enabled:
            return None
        if self.directory is not None:
            return Path(self.directory)
        database = sqlite_path(url)
        return None if database is None else database.with_name(database.name + ".journal")


class StoreConfig(_Section):
    url: str = "sqlite:///var/fixadapter.db"
    echo: bool = False
    journal: JournalConfig = JournalConfig()


class OrdersConfig(_Section):
    inflight_timeout_seconds: Annotated[float, Field(gt=0)] = 5.0
    ready_timeout_seconds: Annotated[float, Field(gt=0)] = 10.0
    reconcile_timeout_seconds: Annotated[float, Field(gt=0)] = 15.0
    resend_unreceived_within_seconds: Annotated[
        float,
        Field(
            ge=0,
            description="an order stored but never received by the venue (a crash between store and send) "
            "is sent after the next logon if younger than this, else rejected; 0 never resends",
        ),
    ] = 30.0
    positions_refresh_seconds: Annotated[
        float,
        Field(
            ge=0,
            description="positions are kept from fills and checked with the venue (a positions request) "
            "after each logon and every this many seconds; 0: after each logon only",
        ),
    ] = 300.0
    max_status_queries: Annotated[
        int,
        Field(ge=1, description="status queries in flight at once; the rest wait their turn"),
    ] = 20
    status_query_backoff_max_seconds: Annotated[
        float,
        Field(
            gt=0,
            description="an unanswered order is asked again after inflight_timeout_seconds, then after "
            "twice as long each time, up to this",
        ),
    ] = 60.0
    unknown_after_seconds: Annotated[
        float,
        Field(
            gt=0,
            description="an order the venue has not answered for this long (no report, no answer to "
            "status queries) is flagged unknown with an alarm; still queried, resolved by any answer",
        ),
    ] = 180.0


class Subscription(_Section):
    """A market-data stream opened at start and renewed after every QUOTE logon."""

    symbol: Annotated[str, Field(min_length=1)]
    depth: bool = False


class DepthStorageConfig(_Section):
    """Depth snapshots kept in the store's `market_depth` table, written in batches off the FIX threads."""

    enabled: bool = True
    sample_interval_ms: Annotated[int, Field(ge=0, description="per symbol; 0 stores every update")] = 100
    flush_interval_ms: Annotated[int, Field(ge=10)] = 500
    batch_size: Annotated[int, Field(ge=1)] = 1000
    buffer_size: Annotated[int, Field(ge=1)] = 100_000
    levels: Annotated[int, Field(ge=1, le=100, description="levels per side stored")] = 10
    retention_days: Annotated[float, Field(gt=0)] = 30.0


class MarketDataConfig(_Section):
    subscriptions: tuple[Subscription, ...] = ()
    stale_after_seconds: Annotated[float, Field(gt=0)] = 5.0
    imbalance_levels: Annotated[int, Field(ge=1, le=100)] = 5
    subscribe_timeout_seconds: Annotated[float, Field(gt=0)] = 10.0
    storage: DepthStorageConfig = DepthStorageConfig()


class LoggingConfig(_Section):
    level: Annotated[str, Field(pattern=r"^(DEBUG|INFO|WARNING|ERROR)$")] = "INFO"
    fix_messages: bool = False
    json_lines: bool = Field(
        False,
        alias="json",
        description="one JSON object per line (time, level, logger, message, extra fields), secrets masked",
    )


class ComplianceConfig(_Section):
    """Every FIX message of both sessions, masked, recorded twice: QuickFIX-format log files in `directory`
    and the hash-chained `fix_messages` table. Capture costs the FIX threads one buffer append per message;
    a writer thread does the rest, spilling to `directory/spill` while the database is slow or down."""

    enabled: bool = True
    directory: Path | None = Field(None, description="unset: fixlog/ beside a SQLite store, else var/fixlog")
    files: bool = True
    database: bool = True
    store_url: str | None = Field(
        None,
        description="fix_messages database; omitted: <store>-fix.db beside a SQLite store, else store.url",
    )
    record_market_data: bool = Field(
        True, description="QUOTE W/X and Open API spot/depth events too (the issue asks for every message)"
    )
    buffer_size: Annotated[int, Field(ge=1000)] = 500_000
    batch_size: Annotated[int, Field(ge=1)] = 5000
    flush_interval_ms: Annotated[int, Field(ge=10)] = 200
    spill_after_seconds: Annotated[float, Field(gt=0, description="a batch slower than this spills")] = 2.0
    database_timeout_seconds: Annotated[float, Field(gt=0)] = 10.0
    max_file_bytes: Annotated[int, Field(ge=1024, description="a day's file rolls to a new part")] = 1 << 30
    compress_after_days: Annotated[int, Field(ge=1)] = 2
    retention_days: Annotated[float, Field(gt=0, description="nothing younger is ever deleted")] = 2557.0


StrategyName = Annotated[str, Field(pattern=STRATEGY_PATTERN)]


class QueueConfig(_Section):
    """Where strategies send commands and read events: `memory` (strategies in this process) or `redis`
    (Redis Streams: each strategy in `strategies` sends on `<prefix>:commands:<strategy>`, read by consumer
    group `group`, and reads `<prefix>:events:<strategy>` and `<prefix>:positions`)."""

    kind: Literal["memory", "redis"] = "memory"
    strategies: tuple[StrategyName, ...] = Field(
        (),
        description="redis: the strategies whose command streams are read (required); a comma-separated "
        "string is taken too (from the environment)",
    )
    redis_url: SecretStr = Field(
        SecretStr("redis://127.0.0.1:6379/0"), description="may hold a password: set it from the environment"
    )
    prefix: Annotated[str, Field(pattern=r"^[A-Za-z0-9._:\-]{1,64}$")] = "fixadapter"
    group: Annotated[str, Field(pattern=r"^[A-Za-z0-9._\-]{1,64}$")] = "fixadapter"
    consumer: Annotated[str, Field(pattern=r"^[A-Za-z0-9._\-]{1,64}$")] = Field(
        default_factory=lambda: re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname())[:64] or "daemon"
    )
    claim_idle_seconds: Annotated[
        float,
        Field(
            gt=0, description="commands taken by another consumer and unacknowledged this long are claimed"
        ),
    ] = 30.0
    batch_size: Annotated[int, Field(ge=1, le=10_000)] = 100
    event_maxlen: Annotated[
        int, Field(ge=1000, description="approximate length each event stream is trimmed to")
    ] = 100_000

    @field_validator("strategies", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [name.strip() for name in value.split(",") if name.strip()]
        return value

    @model_validator(mode="after")
    def _strategies_for_redis(self) -> Self:
        if self.kind == "redis" and not self.strategies:
            raise ValueError(
                "kind redis needs the strategies allowed to send commands, each reading and writing only "
                "its own streams: `strategies: [momo, meanrev]` under daemon.queue "
                "(or FIXADAPTER_DAEMON__QUEUE__STRATEGIES=momo,meanrev)"
            )
        if len(set(self.strategies)) != len(self.strategies):
            raise ValueError(f"strategies lists a name twice: {list(self.strategies)}")
        return self


class HttpConfig(_Section):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, lt=65536, description="0 picks a free port (logged)")] = 8080
    token: SecretStr | None = Field(
        None,
        description="when set, every endpoint but /healthz, /readyz and /metrics needs "
        "`Authorization: Bearer <token>`; required when host is not loopback",
    )
    allowed_hosts: tuple[Annotated[str, Field(min_length=1, max_length=253)], ...] = Field(
        (), description="Host header names answered besides the bound host, localhost, 127.0.0.1 and ::1"
    )
    max_connections: Annotated[
        int, Field(ge=1, le=10_000, description="open connections; when full, the longest idle one is closed")
    ] = 100
    idle_timeout_seconds: Annotated[
        float,
        Field(
            gt=0,
            le=3600,
            description="a connection closes when it has not sent a whole request's headers this long after "
            "connecting or after its last answer",
        ),
    ] = 5.0

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [name.strip() for name in value.split(",") if name.strip()]
        return value

    @model_validator(mode="after")
    def _token_off_loopback(self) -> Self:
        if self.enabled and self.token is None and not is_loopback(self.host):
            raise ValueError(
                f"daemon.http.host {self.host} is reachable from other machines, so daemon.http.token is "
                "required (set FIXADAPTER_DAEMON__HTTP__TOKEN); or bind daemon.http.host: 127.0.0.1"
            )
        return self


class StrategyEntry(_Section):
    """A strategy run inside the daemon: `entry` is 'package.module:function', an async function that
    gets a StrategyClient on the in-process queue once TRADE is ready."""

    name: StrategyName
    entry: Annotated[str, Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")]


class DaemonConfig(_Section):
    queue: QueueConfig = QueueConfig()
    strategies: tuple[StrategyEntry, ...] = ()
    http: HttpConfig = HttpConfig()
    cancel_on_stop: bool = Field(False, description="cancel every working order before logging out")
    stop_timeout_seconds: Annotated[float, Field(gt=0)] = 10.0


AccountName = Annotated[str, Field(pattern=ACCOUNT_PATTERN)]


def password_env(account: str) -> str:
    """The environment variable that sets `account`'s FIX password (the name is lower-case in config)."""
    return f"{ENV_PREFIX}ACCOUNTS__{account.upper()}__FIX__PASSWORD"


class OpenApiApplication(_Section):
    """The Open API application every `openapi` account uses unless it names its own: what `fixadapter
    openapi login` reads too (FIXADAPTER_OPENAPI__CLIENT_ID, __CLIENT_SECRET, __TOKEN_FILE), so the
    secret is set once for the login and every account."""

    client_id: str | None = Field(None, description="the application's, from openapi.ctrader.com/apps")
    client_secret: SecretStr | None = Field(None, description="from FIXADAPTER_OPENAPI__CLIENT_SECRET only")
    token_file: Path | None = Field(None, description="the encrypted token file of `openapi login`")


SHARED_OPENAPI_KEYS = ("client_id", "client_secret", "token_file")


class AccountEntry(_Section):
    """One account the daemon trades: its name (in events, HTTP answers, metrics and the store's rows),
    how it is reached, and optionally limits and market data of its own."""

    name: AccountName
    fix: AccountConfig | None = Field(None, description="reached over FIX (cTrader's FIX API credentials)")
    openapi: OpenApiAccountConfig | None = Field(None, description="reached over the cTrader Open API")
    risk: RiskConfig | None = Field(None, description="this account's limits; unset: the top-level risk")
    market_data: MarketDataConfig | None = Field(
        None, description="this account's subscriptions; unset: the top-level market_data"
    )

    @model_validator(mode="after")
    def _one_connector(self) -> Self:
        if self.fix is None and self.openapi is None:
            raise ValueError(f"account {self.name}: give a `fix` or an `openapi` section (how it is reached)")
        if self.fix is not None and self.openapi is not None:
            raise ValueError(
                f"account {self.name}: give `fix` or `openapi`, not both (routing one account over both "
                "comes later; configure two accounts meanwhile)"
            )
        return self

    @property
    def connector(self) -> str:
        """ "fix" or "openapi": what reaches this account."""
        return "fix" if self.fix is not None else "openapi"


class AdapterConfig(_Section):
    accounts: Annotated[tuple[AccountEntry, ...], Field(min_length=1)]
    openapi: OpenApiApplication = Field(
        OpenApiApplication(), description="the Open API application's settings every openapi account shares"
    )
    store: StoreConfig = StoreConfig()
    orders: OrdersConfig = OrdersConfig()
    market_data: MarketDataConfig = MarketDataConfig()
    logging: LoggingConfig = LoggingConfig()
    risk: RiskConfig = Field(RiskConfig(), description="pre-trade limits; absent: none")
    compliance: ComplianceConfig = ComplianceConfig()
    daemon: DaemonConfig = DaemonConfig()
    sessions_file: Path = Path("sessions.cfg")
    dictionary: Path = Path("spec/FIX44-CTRADER.xml")

    @model_validator(mode="before")
    @classmethod
    def _single_account_form(cls, data: Any) -> Any:
        """`account: {...}` (one account, the form of earlier versions) is `accounts: [{name: default, fix:
        {...}}]`."""
        if isinstance(data, Mapping) and "account" in data:
            if "accounts" in data:
                raise ValueError(
                    "give either `account:` (one account) or `accounts:` (a list of accounts), not both"
                )
            fix = data["account"]
            data = {k: v for k, v in data.items() if k != "account"}
            data["accounts"] = [{"name": DEFAULT_ACCOUNT, "fix": fix}]
        return data

    @model_validator(mode="before")
    @classmethod
    def _shared_application(cls, data: Any) -> Any:
        """Each `openapi` account takes the application's client id, secret and token file from the
        top-level `openapi` section where it gives none of its own."""
        if not isinstance(data, Mapping) or not isinstance(data.get("openapi"), Mapping):
            return data
        shared = {k: v for k, v in data["openapi"].items() if k in SHARED_OPENAPI_KEYS and v is not None}
        accounts = data.get("accounts")
        if not shared or not isinstance(accounts, list | tuple):
            return data
        filled = []
        for entry in accounts:
            section = entry.get("openapi") if isinstance(entry, Mapping) else None
            filled.append(
                {**entry, "openapi": {**shared, **section}} if isinstance(section, Mapping) else entry
            )
        return {**data, "accounts": filled}

    @model_validator(mode="after")
    def _distinct_accounts(self) -> Self:
        names = [entry.name for entry in self.accounts]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(f"accounts: each name once; listed twice: {', '.join(twice)}")
        # One initiator holds every account's sessions: QuickFIX tells them apart by their CompIDs.
        seen: dict[tuple[str, str], str] = {}
        for entry in self.accounts:
            if entry.fix is None:
                continue
            key = (entry.fix.sender_comp_id, entry.fix.target_comp_id)
            if key in seen:
                raise ValueError(
                    f"accounts {seen[key]} and {entry.name} have the same sender_comp_id {key[0]} (and "
                    f"target_comp_id {key[1]}): every account has its own on its credentials form"
                )
            seen[key] = entry.name
        ctids: dict[tuple[str, int], str] = {}
        for entry in self.accounts:
            if entry.openapi is None:
                continue
            ctid = (entry.openapi.server, entry.openapi.ctid_trader_account_id)
            if ctid in ctids:
                raise ValueError(
                    f"accounts {ctids[ctid]} and {entry.name} are the same Open API account "
                    f"(ctid_trader_account_id {ctid[1]} on {ctid[0]})"
                )
            ctids[ctid] = entry.name
        return self

    @property
    def account_names(self) -> list[str]:
        return [entry.name for entry in self.accounts]

    def account(self, name: str | None = None) -> AccountEntry:
        """The account named `name`; None: the only one (ConfigError if several are configured)."""
        if name is None:
            if len(self.accounts) == 1:
                return self.accounts[0]
            raise ConfigError(
                f"{len(self.accounts)} accounts are configured ({', '.join(self.account_names)}): name one"
            )
        for entry in self.accounts:
            if entry.name == name:
                return entry
        raise ConfigError(f"no account named {name!r}; configured: {', '.join(self.account_names)}")

    def fix_settings(self, name: str | None = None) -> AccountConfig:
        """The FIX section of account `name` (None: the only one); ConfigError naming it when it has none."""
        entry = self.account(name)
        if entry.fix is None:
            raise ConfigError(f"account {entry.name} is reached over the Open API: it has no `fix` section")
        return entry.fix

    @property
    def fix_account_names(self) -> list[str]:
        return [entry.name for entry in self.accounts if entry.fix is not None]

    def risk_for(self, name: str) -> RiskConfig:
        return self.account(name).risk or self.risk

    def market_data_for(self, name: str) -> MarketDataConfig:
        return self.account(name).market_data or self.market_data

    @property
    def compliance_store_url(self) -> str:
        """The database of `fix_messages`: compliance.store_url; else, beside a SQLite store, a SQLite file
        of its own (`<store>-fix.db`), since one SQLite file takes one writer at a time and recorded market
        data would hold the order writes (ER p50 with depth streaming 39 -> 21 ms, p99 452 -> 53 ms on the
        bench machine); else store.url (PostgreSQL takes both)."""
        if self.compliance.store_url:
            return self.compliance.store_url
        url, query_mark, query = self.store.url.partition("?")
        if not url.startswith("sqlite:///") or url.startswith("sqlite:///:memory:"):
            return self.store.url
        path = Path(url.removeprefix("sqlite:///"))
        own = path.with_name(f"{path.stem}-fix{path.suffix or '.db'}")
        return f"sqlite:///{own}{query_mark}{query}"


def _env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    """FIXADAPTER_ACCOUNT__PASSWORD=x -> {"account": {"password": "x"}}."""
    tree: dict[str, Any] = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        path = name[len(ENV_PREFIX) :].lower().split("__")
        node = tree
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return tree


def _merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(dict(merged[key]), value)
        else:
            merged[key] = value
    return merged


def _env_sources(environ: Mapping[str, str]) -> dict[tuple[str, ...], str]:
    """Each setting's path (as _env_overrides reads it) -> the variable that set it."""
    return {
        tuple(name[len(ENV_PREFIX) :].lower().split("__")): name
        for name in environ
        if name.startswith(ENV_PREFIX) and "__" in name
    }


def _by_name(loc: tuple[Any, ...], merged: Mapping[str, Any]) -> tuple[str, ...]:
    """An error's location with a listed account's index as its name, as variables name it."""
    parts = [str(part) for part in loc]
    listed = merged.get("accounts")
    if len(loc) > 1 and loc[0] == "accounts" and isinstance(loc[1], int) and isinstance(listed, list | tuple):
        entry = listed[loc[1]] if loc[1] < len(listed) else None
        if isinstance(entry, Mapping) and isinstance(entry.get("name"), str):
            parts[1] = entry["name"].lower()
    return tuple(parts)


def _variable_for(path: tuple[str, ...]) -> str:
    return ENV_PREFIX + "__".join(part.upper() for part in path)


def _describe(
    error: ValidationError,
    single: bool,
    merged: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> str:
    """One line per problem, named by where it is; in the single-account form, as `account.<key>`. A
    setting that came from the environment names its variable; a missing password, the variable to set
    (said without a `password: value` shape, which the log masking would blank out)."""
    merged = merged or {}
    sources = _env_sources(environ or {})
    lines = []
    errors = error.errors(include_url=False)
    inside = any(len(item["loc"]) > 1 and item["loc"][0] == "accounts" for item in errors)
    for item in errors:
        loc = tuple(item["loc"])
        if inside and loc == ("accounts",) and item["type"] == "too_short":
            continue  # an account that failed leaves none: its own error says why
        if single and loc[:3] == ("accounts", 0, "fix"):
            loc = ("account", *loc[3:])
        if loc == ("accounts",) and item["type"] == "missing":
            lines.append(
                "  accounts: no account is configured: list them under `accounts:` (each with a name and a "
                "`fix` section, see config.example.yaml), or give the single `account:` section"
            )
            continue
        where = ".".join(str(part) for part in loc) or "(top level)"
        path = _by_name(loc, merged)
        if loc and loc[-1] == "password" and item["type"] == "missing":
            lines.append(
                f"  {where} is not set: set the environment variable {_variable_for(path)} (never the file)"
            )
            continue
        if loc and loc[-1] == "client_secret" and item["type"] == "missing":
            lines.append(
                f"  {where} is not set: set the environment variable FIXADAPTER_OPENAPI__CLIENT_SECRET (the "
                f"application's, for every Open API account) or {_variable_for(path)} (this account's), "
                "never the file"
            )
            continue
        message = str(item["msg"])
        variable = sources.get(tuple(part.lower() for part in path))
        lines.append(
            f"  {where}: {message}" + (f" (from the environment variable {variable})" if variable else "")
        )
    return "\n".join(lines)


def _setting_paths(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every key of a section as a path, its sub-sections opened (what a FIXADAPTER_ variable can set)."""
    paths = []
    for name, field in model.model_fields.items():
        inner = [
            arg
            for arg in (field.annotation, *getattr(field.annotation, "__args__", ()))
            if isinstance(arg, type) and issubclass(arg, BaseModel)
        ]
        paths.append((*prefix, name))
        if inner:
            paths.extend(_setting_paths(inner[0], (*prefix, name)))
    return paths


def _single_underscore_typos(data: Mapping[str, Any], environ: Mapping[str, str]) -> list[str]:
    """FIXADAPTER_ variables without `__` that spell a setting with `_` where `__` ends a section
    (FIXADAPTER_ACCOUNT_PASSWORD): never read, so said instead of silently ignored."""
    known: dict[str, list[str]] = {}
    listed = data.get("accounts")
    names = (
        [e["name"] for e in listed if isinstance(e, Mapping) and isinstance(e.get("name"), str)]
        if (isinstance(listed, list | tuple))
        else []
    )
    for path in _setting_paths(AdapterConfig):
        if path[0] != "accounts":
            known.setdefault("_".join(path), []).append(_variable_for(path))
    for path in _setting_paths(AccountConfig):
        single = ("account", *path)
        targets = [_variable_for(("accounts", name.lower(), "fix", *path)) for name in names]
        known.setdefault("_".join(single), []).extend(targets or [_variable_for(single)])
        for name in names:
            full = ("accounts", name.lower(), "fix", *path)
            known.setdefault("_".join(full), []).append(_variable_for(full))
    problems = []
    for variable in sorted(environ):
        if not variable.startswith(ENV_PREFIX) or "__" in variable:
            continue
        meant = known.get(variable[len(ENV_PREFIX) :].lower())
        if meant:
            problems.append(
                f"  {variable} is not read (a single `_` where `__` separates a section from its key): "
                f"did you mean {' or '.join(meant)}?"
            )
    return problems


def _merge_accounts(listed: Any, overrides: Mapping[str, Any]) -> Any:
    """FIXADAPTER_ACCOUNTS__<NAME>__<SECTION>__<KEY> into the listed account of that name."""
    if not isinstance(listed, list | tuple):
        return listed  # not a list: the validation error names it
    merged = [dict(entry) if isinstance(entry, Mapping) else entry for entry in listed]
    for name, override in overrides.items():
        entry = next((e for e in merged if isinstance(e, dict) and e.get("name") == name), None)
        if entry is None or not isinstance(override, Mapping):
            known = ", ".join(str(e.get("name")) for e in merged if isinstance(e, dict)) or "none"
            raise ConfigError(
                f"{ENV_PREFIX}ACCOUNTS__{name.upper()}__*: no account named {name!r} is listed under "
                f"`accounts:` (listed: {known})"
            )
        merged[merged.index(entry)] = _merge(entry, override)
    return merged


def build_config(data: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> AdapterConfig:
    environ = os.environ if environ is None else environ
    typos = _single_underscore_typos(data, environ)
    if typos:
        raise ConfigError("environment variables not read:\n" + "\n".join(typos))
    overrides = _env_overrides(environ)
    if "accounts" in data and "account" in overrides:
        listed = data["accounts"] if isinstance(data["accounts"], list) else []
        first = next((e.get("name") for e in listed if isinstance(e, Mapping)), None) or "<name>"
        raise ConfigError(
            f"{ENV_PREFIX}ACCOUNT__* variables set the single `account:` section, but this config lists "
            f"`accounts:`: name the account in the variable instead, as in {password_env(str(first))}"
        )
    for_accounts = overrides.pop("accounts", None)
    merged = _merge(dict(data), overrides)
    if isinstance(for_accounts, Mapping):
        merged["accounts"] = _merge_accounts(merged.get("accounts"), for_accounts)
    single = "account" in merged
    try:
        return AdapterConfig.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(f"invalid configuration:\n{_describe(exc, single, merged, environ)}") from None


def load_config(path: Path | None, environ: Mapping[str, str] | None = None) -> AdapterConfig:
    """Read YAML at `path` (optional: everything may come from the environment)."""
    data: Any = {}
    if path is not None:
        data = _read_yaml(path)
        _warn_password_in_file(path, data)
    return build_config(data, environ)


def load_queue_config(path: Path, environ: Mapping[str, str] | None = None) -> QueueConfig:
    """daemon.queue alone, for tools that need no account (`fixadapter queue acl`)."""
    merged = _merge(_read_yaml(path), _env_overrides(os.environ if environ is None else environ))
    section = merged.get("daemon", {}).get("queue", {}) if isinstance(merged.get("daemon"), Mapping) else {}
    try:
        return QueueConfig.model_validate(section)
    except ValidationError as exc:
        lines = [f"  {'.'.join(['daemon', 'queue', *map(str, e['loc'])])}: {e['msg']}" for e in exc.errors()]
        raise ConfigError("invalid configuration:\n" + "\n".join(lines)) from None


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        # Never echo the offending line: it may be the password's.
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "syntax error"
        raise ConfigError(f"config file {path} is not valid YAML{where}: {problem}") from None
    if not isinstance(data, Mapping):
        raise ConfigError(f"config file {path} must hold a mapping at the top level")
    return dict(data)


def _warn_password_in_file(path: Path, data: Mapping[str, Any]) -> None:
    """The password belongs in the environment: a file is copied, committed and backed up."""
    account = data.get("account")
    found: list[tuple[str, str]] = []
    if isinstance(account, Mapping) and account.get("password") not in (None, ""):
        found.append(("account.password", PASSWORD_ENV))
    listed = data.get("accounts")
    for entry in listed if isinstance(listed, list) else ():
        fix = entry.get("fix") if isinstance(entry, Mapping) else None
        if isinstance(fix, Mapping) and fix.get("password") not in (None, ""):
            name = str(entry.get("name"))
            found.append((f"the password of account {name}", password_env(name)))
        openapi = entry.get("openapi") if isinstance(entry, Mapping) else None
        if isinstance(openapi, Mapping) and openapi.get("client_secret") not in (None, ""):
            name = str(entry.get("name"))
            found.append(
                (
                    f"the Open API client secret of account {name}",
                    f"{ENV_PREFIX}ACCOUNTS__{name.upper()}__OPENAPI__CLIENT_SECRET",
                )
            )
    shared = data.get("openapi")
    if isinstance(shared, Mapping) and shared.get("client_secret") not in (None, ""):
        found.append(("the Open API client secret", f"{ENV_PREFIX}OPENAPI__CLIENT_SECRET"))
    for where, variable in found:
        log.warning(
            "config file %s holds %s in clear, for anyone who can read the file or a copy of it; remove "
            "it from the file and set %s in the daemon's environment instead",
            path,
            where,
            variable,
        )
