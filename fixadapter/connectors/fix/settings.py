"""sessions.cfg plus the accounts' config -> QuickFIX SessionSettings text for one initiator."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from fixadapter.config import AdapterConfig
from fixadapter.connectors.fix.kinds import SessionKind
from fixadapter.data import DICTIONARY, SESSIONS_TEMPLATE, packaged
from fixadapter.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parents[3]

Section = tuple[str, dict[str, str]]
FAILOVER_KEY = re.compile(r"^SocketConnect(Host|Port)\d+$")


def parse_settings(text: str) -> list[Section]:
    """QuickFIX's INI dialect: repeated [SESSION] sections, key=value, # comments."""
    sections: list[Section] = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("[") and stripped.endswith("]"):
            sections.append((stripped[1:-1].strip().upper(), {}))
            continue
        key, eq, value = stripped.partition("=")
        if not eq or not sections:
            raise ConfigError(f"sessions file line {number}: expected key=value inside a section: {line!r}")
        sections[-1][1][key.strip()] = value.strip()
    return sections


def resolve_path(path: Path) -> Path:
    """A relative path is looked up in the working directory, then in the project checkout."""
    if path.exists():
        return path.resolve()
    if path.is_absolute():
        raise ConfigError(f"file not found: {path}")
    fallback = PROJECT_ROOT / path
    if fallback.exists():
        return fallback
    shipped = packaged(path.name) if path.name in (DICTIONARY, SESSIONS_TEMPLATE) else None
    if shipped is not None:  # installed from a wheel, outside a checkout: the package's own copy
        return shipped
    raise ConfigError(f"file not found: {path} (looked in {Path.cwd()} and {PROJECT_ROOT})")


Endpoints = Mapping[SessionKind, tuple[str, int]]


def render_settings(
    config: AdapterConfig,
    connect: Mapping[str, Endpoints] | None = None,
    names: Sequence[str] | None = None,
) -> str:
    """The QUOTE and TRADE sessions of every account in `names` (default: all configured), each pair told
    apart by its CompIDs; `connect[account]` replaces a session's host and port: a TLS session connects to
    its loopback forwarder."""
    template = parse_settings(resolve_path(config.sessions_file).read_text(encoding="utf-8"))
    defaults = [values for name, values in template if name == "DEFAULT"]
    sessions = [values for name, values in template if name == "SESSION"]
    others = sorted({name for name, _ in template} - {"DEFAULT", "SESSION"})
    if others:
        raise ConfigError(f"sessions file: unknown sections {', '.join(others)} (DEFAULT and SESSION only)")
    for values in [*defaults, *sessions]:
        failover = sorted(key for key in values if FAILOVER_KEY.match(key))
        if failover:
            # QuickFIX would reconnect to these itself, around the TLS forwarder: plain text to the broker.
            raise ConfigError(
                f"sessions file: {', '.join(failover)} not supported; host and ports come from the config"
            )
    qualifiers = sorted(values.get("SessionQualifier", "") for values in sessions)
    if any(q not in ("QUOTE", "TRADE") for q in qualifiers):
        wrong = next(q for q in qualifiers if q not in ("QUOTE", "TRADE"))
        raise ConfigError(f"sessions file: SessionQualifier must be QUOTE or TRADE, not {wrong!r}")
    if qualifiers != ["QUOTE", "TRADE"]:
        raise ConfigError(f"sessions file must define one QUOTE and one TRADE session, found {qualifiers}")
    lines: list[str] = []
    for given in defaults:
        values = dict(given)
        values["DataDictionary"] = str(resolve_path(Path(values.get("DataDictionary", config.dictionary))))
        lines += ["[DEFAULT]", *(f"{key}={value}" for key, value in values.items())]
    for name in names if names is not None else config.account_names:
        account = config.fix_settings(name)
        endpoints = {kind: (account.host, account.port(kind)) for kind in SessionKind}
        endpoints.update((connect or {}).get(name, {}))
        for given in sessions:
            values = dict(given)
            host, port = endpoints[SessionKind(values["SessionQualifier"])]
            values.update(
                SenderCompID=account.sender_comp_id,
                TargetCompID=account.target_comp_id,
                HeartBtInt=str(account.heartbeat_seconds),
                ReconnectInterval=str(account.reconnect_seconds),
                SocketConnectHost=host,
                SocketConnectPort=str(port),
            )
            lines += ["[SESSION]", *(f"{key}={value}" for key, value in values.items())]
    return "\n".join(lines) + "\n"
