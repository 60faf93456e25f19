"""Parts of the config for tools that neither trade nor log on: the databases (`log`, `depth`) and the
daemon's HTTP address (`orders`, `positions`, `cancel`, `kill-switch`).

They read the same YAML and FIXADAPTER_* environment as `load_config`, but validate only the sections they
use: the accounts' credentials (the trading password above all) are neither needed nor checked, so a
compliance officer can read the message log with a config whose password only the daemon's host has.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from fixadapter.config import (
    AdapterConfig,
    ComplianceConfig,
    DepthStorageConfig,
    HttpConfig,
    MarketDataConfig,
    StoreConfig,
    _env_overrides,
    _merge,
    _read_yaml,
)
from fixadapter.errors import ConfigError

DEFAULT_DICTIONARY = Path("spec/FIX44-CTRADER.xml")
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class StoreParts:
    """Where the tables are: `store_url` (orders, depth), `compliance_url` (fix_messages), and what the
    log commands take from the config besides."""

    store_url: str
    compliance_url: str
    depth_storage: DepthStorageConfig
    dictionary: Path
    our_comp_id: str | None  # the SenderCompID when the config names exactly one FIX account


def _merged(path: Path, environ: Mapping[str, str] | None) -> dict[str, Any]:
    return _merge(_read_yaml(path), _env_overrides(os.environ if environ is None else environ))


def _section(data: Mapping[str, Any], where: tuple[str, ...], model: type[M]) -> M:
    """The section at `where` (absent: the defaults), validated alone; errors name the key in full."""
    section: Any = data
    for key in where:
        section = section.get(key, {}) if isinstance(section, Mapping) else {}
    try:
        return model.model_validate(section)
    except ValidationError as exc:
        lines = [f"  {'.'.join([*where, *map(str, e['loc'])])}: {e['msg']}" for e in exc.errors()]
        raise ConfigError("invalid configuration:\n" + "\n".join(lines)) from None


def load_store_parts(path: Path, environ: Mapping[str, str] | None = None) -> StoreParts:
    """store, compliance, market_data.storage and dictionary of the config at `path` (and the
    environment); the accounts are not validated."""
    data = _merged(path, environ)
    store = _section(data, ("store",), StoreConfig)
    compliance = _section(data, ("compliance",), ComplianceConfig)
    market_data = _section(data, ("market_data",), MarketDataConfig)
    # The one rule for where fix_messages live, without validating what this tool does not use.
    partial = AdapterConfig.model_construct(accounts=(), store=store, compliance=compliance)
    dictionary = data.get("dictionary")
    return StoreParts(
        store_url=store.url,
        compliance_url=partial.compliance_store_url,
        depth_storage=market_data.storage,
        dictionary=Path(dictionary) if isinstance(dictionary, str) and dictionary else DEFAULT_DICTIONARY,
        our_comp_id=_our_comp_id(data),
    )


def _our_comp_id(data: Mapping[str, Any]) -> str | None:
    single = data.get("account")
    if isinstance(single, Mapping):
        fix: Any = single
    else:
        listed = data.get("accounts")
        if not isinstance(listed, list) or len(listed) != 1 or not isinstance(listed[0], Mapping):
            return None
        fix = listed[0].get("fix")
    comp_id = fix.get("sender_comp_id") if isinstance(fix, Mapping) else None
    return comp_id if isinstance(comp_id, str) and comp_id else None


def load_http_config(path: Path, environ: Mapping[str, str] | None = None) -> HttpConfig:
    """daemon.http of the config at `path` (and the environment); the accounts are not validated."""
    return _section(_merged(path, environ), ("daemon", "http"), HttpConfig)


def http_url(config: HttpConfig) -> str:
    """Where a tool on this host reaches the daemon's HTTP API configured as `config`."""
    if not config.enabled:
        raise ConfigError("daemon.http.enabled is false in this config: the daemon serves no HTTP API")
    if config.port == 0:
        raise ConfigError(
            "daemon.http.port is 0 (the daemon picks a port and logs it): give that port with --url"
        )
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(config.host, config.host)  # noqa: S104
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{config.port}"
