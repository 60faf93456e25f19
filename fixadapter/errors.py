"""Every exception fixadapter raises derives from FixAdapterError.

FixAdapterError
├── ConfigError                 a bad config key or value (names it)
├── OrderRejected               refused before it reached the venue (reason says why and what to do)
│   ├── SessionNotReady         TRADE is not logged on and reconciled yet
│   ├── UnknownSymbol           not in the venue's instrument list (lists close matches)
│   ├── RiskRejected            a pre-trade risk rule refused it; carries `rule` and the values compared
│   └── ClientIdInUse           a ClOrdID or request id already used by another order or request
├── OrderNotFound               no order with that ClOrdID in the store
├── InvalidTransition           a report contradicts the order's state machine
├── StoreError                  the database failed (mapped from sqlalchemy.exc at the store boundary)
│   └── UnstorableData          the database can never take this value (too long, invalid, a constraint)
├── SchemaBehind                the database's schema is older than this fixadapter: names the upgrade command
├── SessionError                the FIX engine refused to start or send (mapped from quickfix errors)
└── MarketDataError             a subscription failed
    ├── SubscriptionRejected    the server refused it (35=Y); carries cTrader's reason
    └── SubscriptionTimeout     no snapshot arrived in time
"""

from __future__ import annotations

from typing import Any


class FixAdapterError(Exception):
    """Base of the tree above."""


class ConfigError(FixAdapterError):
    pass


class OrderRejected(FixAdapterError):
    pass


class SessionNotReady(OrderRejected):
    pass


class RequestStillQueued(SessionNotReady):
    """The order's own request waits here behind the venue's rate limit: the venue cannot know of it yet,
    so there is nothing to ask it (the in-flight watch asks again later, quietly)."""


class AnswerAwaited(SessionNotReady):
    """The order's request reached the venue and was never answered, and the venue does not list the
    order (yet): a slow venue may still execute it, so it is neither sent again nor closed. The in-flight
    watch asks again, and flags it unknown if it stays silent."""


class UnknownSymbol(OrderRejected):
    pass


class RiskRejected(OrderRejected):
    """`rule` is the machine-readable reason (e.g. max_quantity, kill_switch) metrics and events key on;
    `values` holds what was compared, so a reject can be explained without re-reading the config."""

    def __init__(self, rule: str, detail: str, values: dict[str, Any] | None = None) -> None:
        super().__init__(f"{rule}: {detail}")
        self.rule = rule
        self.detail = detail
        self.values: dict[str, Any] = dict(values or {})


class ClientIdInUse(OrderRejected):
    """Every ClOrdID and request id names one thing: a venue answer carries only the id, so an id used
    twice would let one order's answer move another."""

    @classmethod
    def of(cls, role: str, client_id: str, kind: str, cl_ord_id: str) -> ClientIdInUse:
        """`client_id` (a `role`: ClOrdID, request id) was used by order `cl_ord_id` or its `kind` request."""
        what = f"order {cl_ord_id}" if kind == "order" else f"the {kind} of order {cl_ord_id}"
        return cls(
            f"{role} {client_id} is already used by {what}; every ClOrdID and request id must be new "
            "(a venue answer names only the id): give another"
        )


class CommandIdReused(OrderRejected):
    """A strategy's command id used before for another command (a strategy's bug): refused, never taken
    as the other command or silently ignored."""

    def __init__(self, command_id: str) -> None:
        super().__init__(
            f"command id {command_id} was used before for a different command; give every command a new id "
            "(the same id is only for sending the same command again)"
        )
        self.command_id = command_id


class OrderNotFound(FixAdapterError):
    pass


class StoreError(FixAdapterError):
    pass


class UnstorableData(StoreError):
    """Not an outage: retrying the same write can never succeed, so it is set aside instead."""


class SchemaBehind(FixAdapterError):
    """Not an outage (nothing to retry): the store must be upgraded first, by the command the text names."""


class SessionError(FixAdapterError):
    pass


class VenueRefused(SessionError):
    """The venue refused a request outright (a session-level or business reject naming no order)."""


class MarketDataError(FixAdapterError):
    pass


class SubscriptionRejected(MarketDataError):
    def __init__(self, message: str, reason: int | None = None, text: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.text = text


class SubscriptionTimeout(MarketDataError):
    pass


class InvalidTransition(FixAdapterError):
    def __init__(self, cl_ord_id: str, current: Any, target: Any) -> None:
        super().__init__(f"order {cl_ord_id}: {current} -> {target} is not a legal transition")
        self.cl_ord_id = cl_ord_id
        self.current = current
        self.target = target
