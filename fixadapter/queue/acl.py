"""Redis ACL users that make a strategy's identity hold on the Redis queue: one user per strategy in
`daemon.queue.strategies`, which may only add to its own command stream and read its own event stream
and the positions stream (Redis 7 key selectors: `%W~` write only, `%R~` read only).

    fixadapter queue acl --config config.yaml            # print the rules
    fixadapter queue acl --config config.yaml --apply    # create or update the users, print their URLs

The daemon takes a command's sender from the stream it came on, so with these users a strategy cannot
send as another, nor read another's events. A user's password comes from the environment
(FIXADAPTER_QUEUE_PASSWORD_<STRATEGY>, the name upper-cased, `.` and `-` as `_`) or is generated; a
generated one is printed once, in the strategy's URL, on stdout and nowhere else (Redis gets only its
SHA-256). Applying again replaces the rules and the generated passwords.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

import redis

from fixadapter.config import QueueConfig
from fixadapter.errors import ConfigError
from fixadapter.queue.redis_streams import command_stream, events_stream, mask_url, positions_stream

PASSWORD_ENV = "FIXADAPTER_QUEUE_PASSWORD_"  # noqa: S105 - the name of a variable, no password
# What a StrategyClient sends: XADD, XREAD (blocking), XINFO STREAM (where "$" starts), and what
# redis-py may send on connecting (PING, HELLO, CLIENT SETNAME, SELECT for a db in the URL). CLIENT
# SETINFO (Redis 7.2) stays refused: redis-py goes on without it, and Redis 7.0 would not know the rule.
COMMANDS = (
    "+xadd",
    "+xread",
    "+xinfo|stream",
    "+ping",
    "+hello",
    "+client|setname",
    "+select",
)


@dataclass(frozen=True)
class StrategyUser:
    strategy: str
    name: str
    rules: tuple[str, ...]

    @property
    def password_env(self) -> str:
        return PASSWORD_ENV + re.sub(r"[^A-Z0-9]", "_", self.strategy.upper())


def strategy_users(config: QueueConfig) -> list[StrategyUser]:
    """One user per configured strategy, named `<prefix>.<strategy>`, with its rules (no password)."""
    if config.kind != "redis":
        raise ConfigError(
            "daemon.queue.kind is memory: strategies run inside the daemon and need no Redis users; "
            "set daemon.queue.kind: redis and daemon.queue.strategies to use Redis"
        )
    prefix = config.prefix
    return [
        StrategyUser(
            strategy=name,
            name=f"{prefix}.{name}",
            rules=(
                "reset",
                "on",
                f"%W~{command_stream(prefix, name)}",
                f"%R~{events_stream(prefix, name)}",
                f"%R~{positions_stream(prefix)}",
                *COMMANDS,
            ),
        )
        for name in config.strategies
    ]


def rules_text(config: QueueConfig) -> str:
    """The ACL SETUSER lines, without passwords (a user without one cannot log in)."""
    lines = [
        f"# Redis ACL users for the strategy queue {config.prefix!r}, one per strategy (Redis 7 or newer).",
        "# `fixadapter queue acl --apply` creates them with a password each. The daemon itself connects with",
        f"# daemon.queue.redis_url: a user with every key under {config.prefix}:* and the stream commands.",
    ]
    lines += [f"ACL SETUSER {user.name} {' '.join(user.rules)}" for user in strategy_users(config)]
    return "\n".join(lines)


def strategy_url(admin_url: str, user: str, password: str | None) -> str:
    """The daemon's Redis URL with the strategy's user (and password) in place of the daemon's."""
    parts = urlsplit(admin_url)
    hostport = parts.netloc.rpartition("@")[2]
    secret = "" if password is None else f":{quote(password, safe='')}"
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k not in ("password", "username")])
    return parts._replace(netloc=f"{quote(user, safe='')}{secret}@{hostport}", query=query).geturl()


def apply(
    config: QueueConfig, environ: Mapping[str, str], say: Callable[[str], None], warn: Callable[[str], None]
) -> None:
    """Create or update every strategy's user on the daemon's Redis; `say` gets each strategy's URL."""
    admin_url = config.redis_url.get_secret_value()
    client = redis.Redis.from_url(admin_url, socket_connect_timeout=5)
    try:
        say(f"# Redis ACL users on {mask_url(admin_url)}; give each strategy its URL (shown only now)")
        for user in strategy_users(config):
            given = environ.get(user.password_env)
            password = given or secrets.token_urlsafe(32)
            digest = hashlib.sha256(password.encode()).hexdigest()
            client.execute_command(  # type: ignore[no-untyped-call]  # redis types not this method
                "ACL", "SETUSER", user.name, *user.rules[:2], f"#{digest}", *user.rules[2:]
            )
            if given:
                url = strategy_url(admin_url, user.name, None)
                say(f"{user.strategy}: {url}  (password: ${user.password_env})")
            else:
                say(f"{user.strategy}: {strategy_url(admin_url, user.name, password)}")
        _persist(client, warn)
    except redis.RedisError as exc:
        secret = urlsplit(admin_url).password
        why = str(exc).replace(secret, "******") if secret else str(exc)
        raise ConfigError(
            f"cannot set Redis ACL users at {mask_url(admin_url)}: {why}; check that Redis answers there and "
            "that daemon.queue.redis_url's user may run ACL SETUSER (the default user, or one with +acl)"
        ) from None
    finally:
        client.close()


def _persist(client: redis.Redis, warn: Callable[[str], None]) -> None:
    try:
        client.execute_command("ACL", "SAVE")  # type: ignore[no-untyped-call]
    except redis.ResponseError as exc:
        warn(
            f"the users are in Redis's memory only ({exc}): configure an aclfile (then ACL SAVE) or run "
            "CONFIG REWRITE to keep them over a Redis restart"
        )
