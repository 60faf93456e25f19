"""Specification of the order state machine: `TRANSITIONS` is the only way a status changes."""

from __future__ import annotations

import pytest

from fixadapter.errors import InvalidTransition
from fixadapter.model.enums import DONE_STATUSES, OrderStatus
from fixadapter.model.orders import TRANSITIONS
from tests.unit.conftest import make_order

S = OrderStatus

ALLOWED = sorted((source, target) for source, targets in TRANSITIONS.items() for target in targets)

FORBIDDEN = [
    *((done, target) for done in sorted(DONE_STATUSES) for target in S if target is not done),
    (S.NEW, S.PENDING_NEW),
    (S.NEW, S.REJECTED),
    (S.PARTIALLY_FILLED, S.NEW),
    (S.PARTIALLY_FILLED, S.PENDING_NEW),
    (S.PARTIALLY_FILLED, S.REJECTED),
    (S.PENDING_NEW, S.PENDING_REPLACE),
    (S.PENDING_CANCEL, S.PENDING_REPLACE),
    (S.PENDING_REPLACE, S.PENDING_NEW),
    (S.PENDING_REPLACE, S.REJECTED),
]


def pair_id(pair: tuple[OrderStatus, OrderStatus]) -> str:
    return f"{pair[0]}->{pair[1]}"


def test_transitions_table_covers_every_status() -> None:
    assert set(TRANSITIONS) == set(S)


@pytest.mark.parametrize("pair", ALLOWED, ids=pair_id)
def test_moved_to_allowed_pair_changes_status(pair: tuple[OrderStatus, OrderStatus]) -> None:
    source, target = pair
    order = make_order(status=source)

    moved = order.moved_to(target)

    assert moved.status is target


@pytest.mark.parametrize("pair", FORBIDDEN, ids=pair_id)
def test_moved_to_forbidden_pair_raises_invalid_transition(pair: tuple[OrderStatus, OrderStatus]) -> None:
    source, target = pair
    order = make_order(status=source)

    with pytest.raises(InvalidTransition) as raised:
        order.moved_to(target)

    assert (raised.value.current, raised.value.target) == (source, target)
    assert order.cl_ord_id in str(raised.value)


@pytest.mark.parametrize("status", list(S))
def test_moved_to_same_status_is_allowed_and_keeps_previous_status(status: OrderStatus) -> None:
    order = make_order(status=status, previous_status=S.PENDING_NEW)

    moved = order.moved_to(status)

    assert moved.status is status
    assert moved.previous_status is S.PENDING_NEW


def test_moved_to_records_the_status_it_left_as_previous_status() -> None:
    order = make_order(status=S.NEW)

    moved = order.moved_to(S.PENDING_CANCEL, pending_request_id="cxl-1")

    assert moved.previous_status is S.NEW
    assert moved.pending_request_id == "cxl-1"


@pytest.mark.parametrize("pending", [S.PENDING_CANCEL, S.PENDING_REPLACE])
@pytest.mark.parametrize("working", [S.NEW, S.PARTIALLY_FILLED])
def test_moved_to_previous_status_rolls_back_a_refused_request(
    working: OrderStatus, pending: OrderStatus
) -> None:
    asked = make_order(status=working).moved_to(pending, pending_request_id="req-1")

    restored = asked.moved_to(asked.previous_status, pending_request_id=None)

    assert restored.status is working
    assert restored.pending_request_id is None


def test_moved_to_returns_a_copy_and_leaves_the_original_unchanged() -> None:
    order = make_order(status=S.NEW)

    order.moved_to(S.CANCELLED)

    assert order.status is S.NEW


def test_moved_to_refreshes_updated_at() -> None:
    order = make_order(status=S.NEW)

    moved = order.moved_to(S.PARTIALLY_FILLED)

    assert moved.updated_at > order.updated_at


@pytest.mark.parametrize("status", sorted(DONE_STATUSES))
def test_order_in_done_status_has_no_leaves_qty(status: OrderStatus) -> None:
    order = make_order(status=status)

    assert order.is_done
    assert not order.is_open
    assert order.leaves_qty == 0


def test_refused_cancel_of_an_unacknowledged_order_rolls_back_to_pending_new() -> None:
    chasing = make_order().moved_to(OrderStatus.PENDING_CANCEL, pending_request_id="c1")

    restored = chasing.moved_to(chasing.previous_status, pending_request_id=None)

    assert restored.status is OrderStatus.PENDING_NEW
