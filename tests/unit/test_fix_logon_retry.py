"""Refused logons: each holds the next attempt back longer; a few in a row stop the session (issue 13)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fixadapter.connectors.fix.kinds import SessionKind
from fixadapter.connectors.fix.logon_retry import ALARM_KIND, LogonRetry, RefusalPolicy
from fixadapter.metrics import Metrics

TRADE = SessionKind.TRADE
QUOTE = SessionKind.QUOTE
# Waits long enough that no timer fires while a test runs: only the decisions are observed.
POLICY = RefusalPolicy(first_wait=600, max_wait=3000, max_refusals=4)


@pytest.fixture
def switched() -> list[tuple[SessionKind, bool]]:
    return []


@pytest.fixture
def retry(switched: list[tuple[SessionKind, bool]]) -> Iterator[LogonRetry]:
    made = LogonRetry(POLICY, Metrics(), lambda kind, enabled: switched.append((kind, enabled)))
    yield made
    made.close()


def test_the_wait_after_a_refusal_doubles_from_the_reconnect_interval_up_to_the_cap():
    policy = RefusalPolicy(first_wait=5, max_wait=60, max_refusals=10)
    assert [policy.wait_after(n) for n in range(1, 6)] == [10, 20, 40, 60, 60]


def test_after_the_last_allowed_refusal_there_is_no_next_attempt():
    policy = RefusalPolicy(first_wait=5, max_wait=60, max_refusals=3)
    assert policy.wait_after(2) == 20
    assert policy.wait_after(3) is None


def test_a_refusal_disables_the_session_until_its_wait_is_over(retry, switched):
    retry.refused(TRADE, "InternalError: RET_INVALID_DATA")
    assert switched == [(TRADE, False)]
    assert retry.refusals(TRADE) == 1
    assert not retry.given_up(TRADE)


def test_the_last_allowed_refusal_stops_the_session_with_a_blocking_alarm_naming_the_reason():
    metrics = Metrics()
    switched: list[tuple[SessionKind, bool]] = []
    retry = LogonRetry(POLICY, metrics, lambda kind, enabled: switched.append((kind, enabled)))
    try:
        for _ in range(POLICY.max_refusals):
            retry.refused(TRADE, "RET_NO_SUCH_LOGIN")
    finally:
        retry.close()
    assert retry.given_up(TRADE)
    assert switched == [(TRADE, False)] * POLICY.max_refusals
    (alarm,) = metrics.alarms.active(ALARM_KIND)
    assert alarm.key == "TRADE" and alarm.blocking
    assert "RET_NO_SUCH_LOGIN" in alarm.text and "restart" in alarm.text
    assert metrics.alarms.blocking() == [alarm]


def test_a_successful_logon_resets_the_count(retry):
    retry.refused(TRADE, "InternalError: RET_INVALID_DATA")
    retry.refused(TRADE, "InternalError: RET_INVALID_DATA")
    retry.logged_on(TRADE)
    assert retry.refusals(TRADE) == 0
    retry.refused(TRADE, "InternalError: RET_INVALID_DATA")
    assert retry.refusals(TRADE) == 1


def test_sessions_are_counted_apart(retry):
    retry.refused(TRADE, "InternalError: RET_INVALID_DATA")
    retry.refused(QUOTE, "InternalError: RET_INVALID_DATA")
    retry.refused(QUOTE, "InternalError: RET_INVALID_DATA")
    assert (retry.refusals(TRADE), retry.refusals(QUOTE)) == (1, 2)


def test_a_password_in_the_server_text_never_reaches_the_alarm():
    metrics = Metrics()
    retry = LogonRetry(RefusalPolicy(1, 1, 1), metrics, lambda kind, enabled: None)
    retry.refused(TRADE, "bad logon 554=hunter2")
    retry.close()
    (alarm,) = metrics.alarms.active(ALARM_KIND)
    assert "hunter2" not in alarm.text


def test_after_close_a_refusal_enables_nothing_and_schedules_nothing(retry, switched):
    retry.close()
    retry.refused(TRADE, "InternalError: RET_INVALID_DATA")
    assert switched == []
