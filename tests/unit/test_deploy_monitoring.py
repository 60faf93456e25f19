"""The Grafana dashboard and the Prometheus alert rules shipped in deploy/ name only metrics the daemon
exports (its registry as `fixadapter run` builds it), and Prometheus scrapes the daemon where it serves."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from fixadapter.config import HttpConfig, build_config
from fixadapter.wiring import build_desk

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
DASHBOARD = DEPLOY / "grafana" / "fixadapter.json"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
PROMETHEUS = DEPLOY / "prometheus" / "prometheus.yml"
# A metric name in PromQL: what our exporter and the default collectors are named.
METRIC = re.compile(r"\b((?:fixadapter|process|python)_[a-z_]+)\b")
FROM_PROMETHEUS = {"up"}  # made by Prometheus for every target


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """Every sample name the daemon's /metrics can serve (labelled families without a child included)."""
    store = tmp_path_factory.mktemp("store") / "adapter.db"
    config = build_config(
        {
            "account": {
                "host": "127.0.0.1",
                "sender_comp_id": "demo.icmarkets.1",
                "username": "1",
                "password": "pw",
            },
            "store": {"url": f"sqlite:///{store}"},
        },
        environ={},
    )
    names: set[str] = set()
    for family in build_desk(config).metrics.registry.collect():
        names.update(sample.name for sample in family.samples)
        if family.type == "counter":
            names.add(family.name + "_total")
        elif family.type == "histogram":
            names.update(family.name + end for end in ("_bucket", "_count", "_sum"))
        else:
            names.add(family.name)
    return names


def dashboard_expressions() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("expr", "definition") and isinstance(value, str):
                    found.append(value)
                elif key == "query" and isinstance(value, dict) and isinstance(value.get("query"), str):
                    found.append(value["query"])
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(dashboard)
    return found


def alert_rules() -> list[dict[str, Any]]:
    rules = yaml.safe_load(ALERTS.read_text())
    return [rule for group in rules["groups"] for rule in group["rules"]]


def test_every_metric_the_dashboard_queries_is_exported(exported: set[str]) -> None:
    expressions = dashboard_expressions()
    assert len(expressions) > 20
    used = {name for expr in expressions for name in METRIC.findall(expr)}
    assert {"fixadapter_session_logged_on", "fixadapter_ready", "process_resident_memory_bytes"} <= used
    assert sorted(used - exported) == []


def test_every_metric_an_alert_uses_is_exported_and_each_rule_says_what_to_do(
    exported: set[str],
) -> None:
    rules = alert_rules()
    alerts = {rule["alert"] for rule in rules}
    expected = {
        "FixadapterSessionDown",
        "FixadapterNotReady",
        "FixadapterAlarmsActive",
        "FixadapterOrderRejects",
        "FixadapterOpenApiAccountNotAuthorised",
        "FixadapterOpenApiTokenExpiring",
    }
    assert expected <= alerts
    for rule in rules:
        names = set(METRIC.findall(rule["expr"]))
        assert names or set(re.findall(r"\b(\w+)\{", rule["expr"])) <= FROM_PROMETHEUS, rule["alert"]
        assert sorted(names - exported) == [], rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]
        assert rule["labels"]["severity"] in {"critical", "warning"}


def test_the_session_alert_fires_on_the_gauge_that_is_zero_from_the_start() -> None:
    rules = {rule["alert"]: rule for rule in alert_rules()}
    assert rules["FixadapterSessionDown"]["expr"] == "fixadapter_session_logged_on == 0"


def test_prometheus_scrapes_the_daemons_metrics_route_on_its_default_port_and_loads_the_rules() -> None:
    config = yaml.safe_load(PROMETHEUS.read_text())
    (job,) = [job for job in config["scrape_configs"] if job["job_name"] == "fixadapter"]
    assert job["metrics_path"] == "/metrics"
    (target,) = job["static_configs"][0]["targets"]
    assert target == f"fixadapter:{HttpConfig().port}"
    assert config["rule_files"] == [f"/etc/prometheus/{ALERTS.name}"]
