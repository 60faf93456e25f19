"""What a connector cannot send, found before anything is stored: the refusal names the field and the
connector, so a strategy learns at once that the account cannot do it (and not from a venue reject, or
worse, from a venue that silently dropped a stop loss).
"""

from __future__ import annotations

from fixadapter.connectors.base import Capabilities
from fixadapter.model.enums import OrderType
from fixadapter.model.requests import PROTECTION_FIELDS, NewOrder, default_time_in_force

ELSEWHERE = "use an account with the Open API"


def order_refusal(request: NewOrder, capabilities: Capabilities) -> str | None:
    """Why the account's connector cannot send `request`, or None when it can."""
    name = capabilities.name
    if request.order_type is OrderType.STOP_LIMIT and not capabilities.stop_limit:
        return f"order_type stop_limit: the {name} connector cannot send a stop-limit order; {ELSEWHERE}"
    protection = _protection_refusal(request, capabilities)
    if protection is not None:
        return protection
    if request.comment is not None and not capabilities.order_comment:
        return f"comment: the {name} connector cannot send a comment with an order; use label, or {ELSEWHERE}"
    asked = request.time_in_force
    if asked is not None and asked not in capabilities.time_in_force:
        default = default_time_in_force(request.order_type, request.expire_time)
        if asked is not default:
            return (
                f"time_in_force {asked}: the {name} connector cannot ask for it (the venue makes this order "
                f"{default}); leave time_in_force out, or {ELSEWHERE}"
            )
    return None


def _protection_refusal(request: NewOrder, capabilities: Capabilities) -> str | None:
    name = capabilities.name
    if not capabilities.order_protection:
        for field in (*PROTECTION_FIELDS, "trailing_stop_loss"):
            if getattr(request, field):
                return f"{field}: the {name} connector cannot set SL/TP on an order; {ELSEWHERE}"
    elif request.order_type is OrderType.MARKET and not capabilities.market_absolute_protection:
        for field in ("stop_loss", "take_profit"):
            if getattr(request, field) is not None:
                return (
                    f"{field}: the {name} connector cannot set an absolute {field} on a market order (the "
                    f"venue takes only distances there); give {field}_distance, or amend the position's "
                    "protection after the fill"
                )
    return None


def close_refusal(capabilities: Capabilities) -> str | None:
    if capabilities.close_position:
        return None
    return (
        f"close_position: the {capabilities.name} connector cannot close a position; send an opposite-side "
        f"order with the position_id, or {ELSEWHERE}"
    )


def protection_refusal(capabilities: Capabilities) -> str | None:
    if capabilities.position_protection:
        return None
    return (
        f"amend_position_protection: the {capabilities.name} connector cannot set SL/TP on a position; "
        f"{ELSEWHERE}"
    )
