"""What an operator expects of the daemon's /metrics: the default process collectors, a build-info series,
no `_created` series, and every session gauge at 0 from the start (so an alert on 0 fires before any
logon)."""

from __future__ import annotations

import platform
from pathlib import Path

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from fixadapter import __version__
from fixadapter.config import build_config
from fixadapter.ops_metrics import quickfix_version
from fixadapter.wiring import build_desk


def scrape_desk(tmp_path: Path) -> dict[str, list[tuple[dict[str, str], float]]]:
    config = build_config(
        {
            "account": {
                "host": "127.0.0.1",
                "sender_comp_id": "demo.icmarkets.1",
                "username": "1",
                "password": "pw",
                "quote_port": 1,
                "trade_port": 2,
            },
            "store": {"url": f"sqlite:///{tmp_path / 'adapter.db'}"},
        },
        environ={},
    )
    desk = build_desk(config)
    text = generate_latest(desk.metrics.registry).decode()
    return {
        family.name: [(s.labels, s.value) for s in family.samples]
        for family in text_string_to_metric_families(text)
    }


def test_the_daemon_registry_has_process_collectors_build_info_and_no_created_series(tmp_path: Path) -> None:
    families = scrape_desk(tmp_path)

    assert "process_resident_memory_bytes" in families
    assert "process_start_time_seconds" in families
    assert "python_info" in families
    build = {"version": __version__, "python": platform.python_version(), "quickfix": quickfix_version()}
    assert families["fixadapter_build_info"] == [(build, 1.0)]
    assert quickfix_version() not in ("", "absent")
    created = [name for name in families if name.endswith("_created")]
    samples = [s for values in families.values() for s in values]
    assert created == [] and samples


def test_session_gauges_have_a_series_at_zero_before_any_logon(tmp_path: Path) -> None:
    families = scrape_desk(tmp_path)

    logged_on = {labels["session"]: value for labels, value in families["fixadapter_session_logged_on"]}
    assert logged_on == {"QUOTE": 0.0, "TRADE": 0.0}
    assert families["fixadapter_ready"] == [({"account": "default", "connector": "fix"}, 0.0)]
