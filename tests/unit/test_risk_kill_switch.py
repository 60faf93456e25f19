"""Specification of the kill switch: engaged and released with who, why and when; every engage tells the
caller to cancel working orders; repeated calls keep the first engagement; safe from many threads."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import pytest

from fixadapter.risk import KillSwitch, KillSwitchAction
from tests.unit.conftest import T0

LATER = T0 + timedelta(minutes=5)


def test_a_new_kill_switch_is_released_and_asks_for_no_cancels() -> None:
    switch = KillSwitch()

    state = switch.state()
    assert not switch.engaged and not state.engaged and not state.cancel_working_orders
    assert state.as_dict() == {
        "engaged": False, "engaged_by": None, "reason": None, "since": None, "last_release": None,
    }  # fmt: skip


def test_engaging_records_who_why_when_and_asks_the_caller_to_cancel_working_orders() -> None:
    switch = KillSwitch()

    state = switch.engage(by="ops:alice", reason="runaway strategy", at=T0)

    assert switch.engaged
    assert (state.engaged, state.changed, state.cancel_working_orders) == (True, True, True)
    assert (state.engaged_by, state.reason, state.since) == ("ops:alice", "runaway strategy", T0)
    assert switch.state().as_dict()["since"] == "2024-05-06T09:30:00+00:00"


def test_engaging_again_keeps_the_first_engagement_but_still_asks_for_cancels() -> None:
    switch = KillSwitch()
    switch.engage(by="ops:alice", reason="first", at=T0)

    state = switch.engage(by="ops:bob", reason="second", at=LATER)

    assert (state.changed, state.cancel_working_orders) == (False, True)
    assert (state.engaged_by, state.reason, state.since) == ("ops:alice", "first", T0)
    assert [event.by for event in switch.history()] == ["ops:alice", "ops:bob"]


def test_releasing_records_who_why_when_and_clears_the_engagement() -> None:
    switch = KillSwitch()
    switch.engage(by="ops:alice", reason="runaway", at=T0)

    state = switch.release(by="ops:bob", reason="strategy fixed", at=LATER)

    assert not switch.engaged
    assert (state.engaged, state.changed, state.cancel_working_orders) == (False, True, False)
    assert state.last_release is not None
    assert (state.last_release.by, state.last_release.reason, state.last_release.at) == (
        "ops:bob", "strategy fixed", LATER,
    )  # fmt: skip
    assert state.as_dict()["last_release"] == {
        "action": "released", "by": "ops:bob", "reason": "strategy fixed", "at": "2024-05-06T09:35:00+00:00",
    }  # fmt: skip
    assert [event.action for event in switch.history()] == [
        KillSwitchAction.ENGAGED,
        KillSwitchAction.RELEASED,
    ]


def test_releasing_a_released_switch_changes_nothing() -> None:
    switch = KillSwitch()

    state = switch.release(by="ops", reason="just in case", at=T0)

    assert (state.engaged, state.changed) == (False, False)
    assert switch.history() == ()


def test_the_last_release_survives_a_new_engagement() -> None:
    switch = KillSwitch()
    switch.engage(by="a", reason="one", at=T0)
    switch.release(by="b", reason="two", at=LATER)

    state = switch.engage(by="c", reason="three", at=LATER)

    assert state.last_release is not None and state.last_release.by == "b"


@pytest.mark.parametrize(("by", "reason"), [("", "why"), ("   ", "why"), ("ops", ""), ("ops", " ")])
def test_the_switch_refuses_to_move_without_who_and_why(by: str, reason: str) -> None:
    switch = KillSwitch()

    with pytest.raises(ValueError, match="who \\(by\\) and why \\(reason\\)"):
        switch.engage(by=by, reason=reason, at=T0)
    assert not switch.engaged


def test_the_switch_refuses_a_naive_time() -> None:
    with pytest.raises(ValueError, match="timezone"):
        KillSwitch().engage(by="ops", reason="x", at=datetime(2024, 5, 6, 9, 30))


def test_concurrent_engages_change_the_state_exactly_once() -> None:
    switch = KillSwitch()
    start = threading.Barrier(8)
    changed: list[bool] = []

    def engage(number: int) -> None:
        start.wait()
        changed.append(switch.engage(by=f"thread-{number}", reason="race", at=T0).changed)

    threads = [threading.Thread(target=engage, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(changed) == [False] * 7 + [True]
    assert len(switch.history()) == 8
