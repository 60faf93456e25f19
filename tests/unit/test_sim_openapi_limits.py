"""Open API rate limits per connection (reference 1.7) and the control port's payload-type gates."""

from __future__ import annotations

from fixadapter.protocols.openapi.generated import OpenApiModelMessages_pb2 as model
from fixadapter.sim.openapi.limits import PayloadGates, RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_fifty_requests_pass_in_a_second_and_the_fifty_first_waits_for_the_window_to_slide():
    clock = Clock()
    limiter = RateLimiter(clock)
    assert all(limiter.admit(model.PROTO_OA_VERSION_REQ) for _ in range(50))
    assert not limiter.admit(model.PROTO_OA_VERSION_REQ)
    clock.now = 0.999
    assert not limiter.admit(model.PROTO_OA_VERSION_REQ)
    clock.now = 1.0
    assert limiter.admit(model.PROTO_OA_VERSION_REQ)


def test_only_five_historical_requests_pass_in_a_second():
    limiter = RateLimiter(Clock())
    assert all(limiter.admit(model.PROTO_OA_DEAL_LIST_REQ) for _ in range(5))
    assert not limiter.admit(model.PROTO_OA_DEAL_LIST_REQ)
    assert limiter.admit(model.PROTO_OA_RECONCILE_REQ)


def test_a_blocked_type_reports_the_seconds_left_until_it_is_unblocked():
    clock = Clock()
    gates = PayloadGates(clock)
    gates.block(model.PROTO_OA_NEW_ORDER_REQ, 10)
    clock.now = 4
    assert gates.blocked_for(model.PROTO_OA_NEW_ORDER_REQ) == 6
    assert gates.blocked_for(model.PROTO_OA_RECONCILE_REQ) is None
    clock.now = 10
    assert gates.blocked_for(model.PROTO_OA_NEW_ORDER_REQ) is None


def test_a_counted_mute_swallows_that_many_requests_and_an_open_one_until_unmuted():
    gates = PayloadGates(Clock())
    gates.mute(model.PROTO_OA_NEW_ORDER_REQ, 2)
    gates.mute(model.PROTO_OA_RECONCILE_REQ, None)
    assert [gates.swallow(model.PROTO_OA_NEW_ORDER_REQ) for _ in range(3)] == [True, True, False]
    assert gates.swallow(model.PROTO_OA_RECONCILE_REQ) and gates.swallow(model.PROTO_OA_RECONCILE_REQ)
    gates.unmute()
    assert not gates.swallow(model.PROTO_OA_RECONCILE_REQ)
