"""FIXADAPTER_CRASH_AT: parsed into crash points that kill on the count-th hit, or refused saying how."""

from __future__ import annotations

import threading

import pytest

from fixadapter.crash_points import (
    NO_CRASH,
    VARIABLE,
    ArmedCrashPoints,
    CrashPoint,
    crash_points_from,
    parse_crash_points,
)
from fixadapter.errors import ConfigError


def test_unset_or_empty_arms_nothing():
    assert crash_points_from({}) is NO_CRASH
    assert crash_points_from({VARIABLE: "  "}) is NO_CRASH
    for point in CrashPoint:
        NO_CRASH.hit(point)  # nothing happens


def test_a_point_kills_the_count_th_time_it_is_reached_and_says_so(capfd: pytest.CaptureFixture[str]):
    kills: list[int] = []
    points = parse_crash_points("order_stored_before_send:3", kill=lambda: kills.append(1))
    assert isinstance(points, ArmedCrashPoints)
    assert points.armed == {CrashPoint.ORDER_STORED_BEFORE_SEND: 3}
    points.hit(CrashPoint.BATCH_BEFORE_COMMIT)  # not armed
    points.hit(CrashPoint.ORDER_STORED_BEFORE_SEND)
    points.hit(CrashPoint.ORDER_STORED_BEFORE_SEND)
    assert kills == []
    points.hit(CrashPoint.ORDER_STORED_BEFORE_SEND)
    assert kills == [1]
    assert "crash point order_stored_before_send reached 3 time(s): SIGKILL" in capfd.readouterr().err
    points.hit(CrashPoint.ORDER_STORED_BEFORE_SEND)
    assert kills == [1]


def test_several_points_each_with_its_count():
    points = parse_crash_points(" batch_before_commit:2 , report_received_before_store:1", kill=lambda: None)
    assert isinstance(points, ArmedCrashPoints)
    assert points.armed == {CrashPoint.BATCH_BEFORE_COMMIT: 2, CrashPoint.REPORT_RECEIVED_BEFORE_STORE: 1}


def test_hits_from_several_threads_kill_exactly_once():
    kills: list[int] = []
    points = parse_crash_points("batch_committed_before_answer:500", kill=lambda: kills.append(1))

    def hit() -> None:
        for _ in range(100):
            points.hit(CrashPoint.BATCH_COMMITTED_BEFORE_ANSWER)

    threads = [threading.Thread(target=hit) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert kills == [1]


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ("order_stored_before_send", "'order_stored_before_send' is not name:count"),
        ("order_sent:5", "no crash point 'order_sent'"),
        ("order_stored_before_send:0", "must be a whole number from 1, not '0'"),
        ("order_stored_before_send:-2", "must be a whole number from 1, not '-2'"),
        ("order_stored_before_send:five", "must be a whole number from 1, not 'five'"),
        ("batch_before_commit:1,batch_before_commit:2", "batch_before_commit is given twice"),
        ("batch_before_commit:1,", "'' is not name:count"),
    ],
)
def test_a_bad_spec_is_refused_naming_the_variable_and_the_known_points(spec: str, problem: str):
    with pytest.raises(ConfigError) as refused:
        crash_points_from({VARIABLE: spec})
    text = str(refused.value)
    assert text.startswith(f"FIXADAPTER_CRASH_AT={spec!r}: ")
    assert problem in text
    assert all(point.value in text for point in CrashPoint)
