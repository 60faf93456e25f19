"""Alarms: raised once, counted, listed for /readyz, blocking ones make the adapter not ready."""

from __future__ import annotations

import logging

import pytest
from prometheus_client import CollectorRegistry

from fixadapter.alarms import MAX_PER_KIND, SHOWN, Alarms


def _value(registry: CollectorRegistry, name: str, kind: str) -> float:
    return registry.get_sample_value(name, {"account": "default", "kind": kind}) or 0.0


def test_an_alarm_is_logged_and_counted_once_however_often_it_is_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    registry = CollectorRegistry()
    alarms = Alarms(registry)
    with caplog.at_level(logging.ERROR, logger="fixadapter.alarms"):
        alarms.raise_alarm("unknown_order", "ORD-1", "no answer from the venue")
        alarms.raise_alarm("unknown_order", "ORD-1", "still no answer from the venue")
    assert [r.getMessage() for r in caplog.records] == ["ALARM unknown_order ORD-1: no answer from the venue"]
    assert _value(registry, "fixadapter_alarms_raised_total", "unknown_order") == 1
    assert _value(registry, "fixadapter_alarms_active", "unknown_order") == 1
    assert alarms.active()[0].text == "still no answer from the venue"


def test_a_cleared_alarm_is_no_longer_active_or_counted_as_active() -> None:
    registry = CollectorRegistry()
    alarms = Alarms(registry)
    alarms.raise_alarm("unknown_order", "ORD-1", "no answer")
    assert alarms.clear("unknown_order", "ORD-1") is True
    assert alarms.clear("unknown_order", "ORD-1") is False
    assert alarms.active() == []
    assert _value(registry, "fixadapter_alarms_active", "unknown_order") == 0


def test_only_blocking_alarms_are_listed_as_blocking_and_shown_first() -> None:
    alarms = Alarms(CollectorRegistry())
    alarms.raise_alarm("unknown_order", "ORD-1", "no answer")
    alarms.raise_alarm("task_failed", "event-relay", "keeps failing", blocking=True)
    assert [a.key for a in alarms.blocking()] == ["event-relay"]
    shown = alarms.describe()["shown"]
    assert isinstance(shown, list)
    assert [a["key"] for a in shown] == ["event-relay", "ORD-1"]


def test_the_readiness_list_is_bounded_and_says_how_many_there_are() -> None:
    alarms = Alarms(CollectorRegistry())
    for n in range(SHOWN + 5):
        alarms.raise_alarm("unknown_order", f"ORD-{n}", "no answer")
    described = alarms.describe()
    assert described["count"] == SHOWN + 5
    assert len(described["shown"]) == SHOWN  # type: ignore[arg-type]


def test_a_flood_of_alarms_of_one_kind_is_held_up_to_a_bound_and_the_rest_counted() -> None:
    registry = CollectorRegistry()
    alarms = Alarms(registry)
    for n in range(MAX_PER_KIND + 50):
        alarms.raise_alarm("dedupe_conflict", f"key-{n}", "same key, other content")
    alarms.raise_alarm("overfill", "ORD-1", "CumQty 50000 on 10000")
    assert len(alarms.active("dedupe_conflict")) == MAX_PER_KIND
    assert alarms.is_active("overfill", "ORD-1")
    assert alarms.describe()["not_kept"] == {"dedupe_conflict": 50}
    assert _value(registry, "fixadapter_alarms_raised_total", "dedupe_conflict") == MAX_PER_KIND + 50
    assert _value(registry, "fixadapter_alarms_active", "dedupe_conflict") == MAX_PER_KIND
