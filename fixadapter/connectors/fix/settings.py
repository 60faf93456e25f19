"""sessions.cfg plus the account's config -> QuickFIX SessionSettings text."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from fixadapter.config import AdapterConfig
from fixadapter.errors import ConfigError
from fixadapter.model.enums import SessionKind

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
    raise ConfigError(f"file not found: {path} (looked in {Path.cwd()} and {PROJECT_ROOT})")


def render_settings(
    config: AdapterConfig, connect: Mapping[SessionKind, tuple[str, int]] | None = None
) -> str:
    """`connect` replaces a session's host and port: a TLS session connects to its loopback forwarder."""
    account = config.account
    sections = parse_settings(resolve_path(config.sessions_file).read_text(encoding="utf-8"))
    endpoints = {kind.value: (account.host, account.port(kind)) for kind in SessionKind}
    endpoints.update({kind.value: endpoint for kind, endpoint in (connect or {}).items()})
    lines: list[str] = []
    qualifiers: list[str] = []
    for name, given in sections:
        values = dict(given)
        failover = sorted(key for key in values if FAILOVER_KEY.match(key))
        if failover:
            # QuickFIX would reconnect to these itself, around the TLS forwarder: plain text to the broker.
            raise ConfigError(
                f"sessions file: {', '.join(failover)} not supported; host and ports come from the config"
            )
        if name == "DEFAULT":
            values["DataDictionary"] = str(
                resolve_path(Path(values.get("DataDictionary", config.dictionary)))
            )
            values["TargetCompID"] = account.target_comp_id
            values["HeartBtInt"] = str(account.heartbeat_seconds)
            values["ReconnectInterval"] = str(account.reconnect_seconds)
        elif name == "SESSION":
            qualifier = values.get("SessionQualifier", "")
            if qualifier not in endpoints:
                raise ConfigError(
                    f"sessions file: SessionQualifier must be QUOTE or TRADE, not {qualifier!r}"
                )
            qualifiers.append(qualifier)
            values["SenderCompID"] = account.sender_comp_id
            host, port = endpoints[qualifier]
            values["SocketConnectHost"] = host
            values["SocketConnectPort"] = str(port)
        lines.append(f"[{name}]")
        lines.extend(f"{key}={value}" for key, value in values.items())
    if sorted(qualifiers) != ["QUOTE", "TRADE"]:
        raise ConfigError(f"sessions file must define one QUOTE and one TRADE session, found {qualifiers}")
    return "\n".join(lines) + "\n"
