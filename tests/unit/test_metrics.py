"""Metrics: full-word names, account and connector labels bound once, several accounts on one registry."""

from __future__ import annotations

import re
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from fixadapter.metrics import Metrics

README = Path(__file__).resolve().parents[2] / "README.md"
# Words a metric or label name must not use: abbreviations (full words only) and a connector's name (the
# connector is a label, so a dashboard works for every connector).
ABBREVIATIONS = {"md", "db", "msg", "msgs", "er", "rx", "tx", "req", "reqs", "ord", "qty", "px", "num", "cnt"}
ABBREVIATIONS |= {"conn", "conns", "resync", "resyncs", "dedupe", "ids", "id", "sec", "secs", "ms", "fix"}
NAME = re.compile(r"^fixadapter(_[a-z]+)+$")


def scrape(registry: CollectorRegistry) -> list[Sample]:
    """What GET /metrics serves (daemon/http.py answers generate_latest of the adapter's registry)."""
    text = generate_latest(registry).decode()
    return [sample for family in text_string_to_metric_families(text) for sample in family.samples]


def family_names(registry: CollectorRegistry) -> set[str]:
    """Every family as a scrape names it (a counter's samples end in _total)."""
    return {f.name + "_total" if f.type == "counter" else f.name for f in registry.collect()}


def test_two_accounts_share_one_registry_and_one_scrape_shows_each_series_under_its_account() -> None:
    registry = CollectorRegistry()
    first = Metrics(registry, account="alpha", connector="fix")
    second = Metrics(registry, account="beta", connector="fix")  # no duplicate-registration error

    first.orders_submitted.inc()
    second.orders_submitted.inc(2)
    second.logons.labels("TRADE").inc()
    first.kill_switch_engaged.set(1)

    samples = scrape(registry)
    submitted = {
        s.labels["account"]: s.value for s in samples if s.name == "fixadapter_orders_submitted_total"
    }
    assert submitted == {"alpha": 1.0, "beta": 2.0}
    logons = [s for s in samples if s.name == "fixadapter_logons_total"]
    assert [(s.labels, s.value) for s in logons] == [
        ({"account": "beta", "connector": "fix", "session": "TRADE"}, 1.0)
    ]
    engaged = {s.labels["account"]: s.value for s in samples if s.name == "fixadapter_kill_switch_engaged"}
    assert engaged == {"alpha": 1.0, "beta": 0.0}


def test_a_second_connector_of_an_account_has_its_own_series_but_the_accounts_alarms() -> None:
    registry = CollectorRegistry()
    fix = Metrics(registry, account="alpha", connector="fix")
    openapi = Metrics(registry, account="alpha", connector="openapi")
    other = Metrics(registry, account="beta")

    fix.messages_received.labels("TRADE", "8").inc()
    openapi.messages_received.labels("TRADE", "8").inc(3)
    openapi.alarms.raise_alarm("unknown_order", "ORD-1", "no answer from the venue")

    assert fix.value("fixadapter_messages_received_total", {"session": "TRADE", "message_type": "8"}) == 1
    assert openapi.value("fixadapter_messages_received_total", {"session": "TRADE", "message_type": "8"}) == 3
    assert fix.alarms is openapi.alarms
    assert [a.key for a in fix.alarms.active()] == ["ORD-1"]
    assert other.alarms.active() == []
    active = {s.labels["account"]: s.value for s in scrape(registry) if s.name == "fixadapter_alarms_active"}
    assert active == {"alpha": 1.0}


def test_labeled_families_take_only_their_own_labels_positionally_or_by_name() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry, account="alpha", connector="fix")

    metrics.tls_failures.labels("TRADE", "unknown_ca").inc()
    metrics.tls_failures.labels(session="TRADE", reason="unknown_ca").inc()
    metrics.kill_switch_cancels.labels("sent").inc()

    labels = {"account": "alpha", "connector": "fix", "session": "TRADE", "reason": "unknown_ca"}
    assert registry.get_sample_value("fixadapter_tls_failures_total", labels) == 2
    cancels = {"account": "alpha", "outcome": "sent"}
    assert registry.get_sample_value("fixadapter_kill_switch_cancels_total", cancels) == 1


def test_session_message_order_market_data_tls_and_error_metrics_carry_account_and_connector() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry, account="alpha", connector="fix")
    metrics.messages_received.labels("TRADE", "8").inc()
    metrics.messages_sent.labels("TRADE", "D").inc()
    metrics.malformed_messages.labels("TRADE", "garbled").inc()
    metrics.unknown_tags.labels("TRADE", "8").inc()
    metrics.session_rejects.labels("TRADE").inc()
    metrics.callback_errors.labels("engine").inc()
    metrics.logons.labels("TRADE").inc()
    metrics.logon_failures.labels("TRADE").inc()
    metrics.session_up.labels("TRADE").set(1)
    metrics.order_rejects.labels("risk", "max_quantity").inc()
    metrics.impossible_fills.labels("overfill").inc()
    metrics.unmatched_reports.labels("execution_report").inc()
    metrics.reconciliations.labels("done").inc()
    metrics.round_trip.observe(0.01)
    metrics.md_updates.labels("snapshot").inc()
    metrics.md_book_updates.labels("EURUSD").inc()
    metrics.md_unsolicited.labels("W").inc()
    metrics.md_rejects.labels("0").inc()
    metrics.tls_connections.labels("TRADE").inc()
    metrics.tls_connected.labels("TRADE").set(1)
    metrics.tls_handshake_seconds.labels("TRADE").observe(0.01)
    metrics.tls_certificate_expiry.labels("TRADE").set(1)
    # Process-wide: one store, one HTTP server, one queue for every account.
    metrics.queue_depth.set(3)
    metrics.store_seconds.labels("open_orders").observe(0.001)

    routed = {"account": "alpha", "connector": "fix"}
    labelled: dict[str, set[tuple[str, str]]] = {}
    for sample in scrape(registry):
        family = re.sub(r"(_total|_count|_sum|_bucket|_created)$", "", sample.name)
        bound = {(k, v) for k, v in sample.labels.items() if k in routed}
        labelled.setdefault(family, set()).update(bound)
    per_route = [
        "messages_received",
        "messages_sent",
        "malformed_messages",
        "unknown_fields",
        "session_rejects",
        "callback_errors",
        "logons",
        "logon_failures",
        "session_logged_on",
        "order_rejects",
        "impossible_fills",
        "unmatched_reports",
        "reconciliations",
        "order_round_trip_seconds",
        "orders_submitted",
        "duplicate_execution_reports",
        "order_status_queries",
        "market_data_messages_applied",
        "market_data_book_updates",
        "market_data_unsolicited_messages",
        "market_data_rejects",
        "market_data_queue_depth",
        "tls_connections",
        "tls_connected",
        "tls_handshake_seconds",
        "tls_certificate_expiry_timestamp_seconds",
    ]
    for name in per_route:
        assert labelled[f"fixadapter_{name}"] == set(routed.items()), name
    assert labelled["fixadapter_queue_depth"] == set()
    assert labelled["fixadapter_store_seconds"] == set()


def test_metrics_without_labels_at_the_call_site_start_at_zero_under_the_bound_labels() -> None:
    metrics = Metrics(account="alpha", connector="fix")

    assert metrics.value("fixadapter_orders_submitted_total") == 0
    assert metrics.value("fixadapter_order_status_queries_waiting") == 0
    assert metrics.registry.get_sample_value("fixadapter_orders_submitted_total") is None  # never unlabeled
    assert metrics.value("fixadapter_queue_depth") == 0  # a process-wide family: no account, no connector
    assert metrics.value("fixadapter_logons_total", {"session": "TRADE"}) is None  # not counted yet


def test_every_metric_and_label_name_is_in_full_words_and_names_no_connector() -> None:
    registry = CollectorRegistry()
    Metrics(registry)

    names = family_names(registry)
    assert len(names) > 50
    for name in names:
        assert NAME.match(name), name
        words = set(name.split("_")[1:])
        assert not words & ABBREVIATIONS, f"{name}: {sorted(words & ABBREVIATIONS)}"
    for family in registry.collect():
        for sample in family.samples:
            for label in sample.labels:
                assert not set(label.split("_")) & ABBREVIATIONS, f"{family.name}: label {label}"


def _readme_section(title: str) -> str:
    text = README.read_text()
    start = text.index(title)
    end = text.find("\n#", start + len(title))
    return text[start : end if end != -1 else len(text)]


def test_the_readme_lists_every_metric_and_every_rename() -> None:
    registry = CollectorRegistry()
    Metrics(registry)
    names = family_names(registry)
    table = _readme_section("### Metrics")
    renames = _readme_section("### Metric renames")

    assert set(re.findall(r"^\| `(fixadapter_[a-z_]+)`", table, re.MULTILINE)) == names
    pairs = re.findall(r"^- `(fixadapter_[a-z_]+)` -> `(fixadapter_[a-z_]+)`", renames, re.MULTILINE)
    assert len(pairs) >= 20
    for old, new in pairs:
        assert new in names, new
        assert old not in names, old
