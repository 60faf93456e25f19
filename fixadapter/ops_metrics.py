"""What an operator expects of any Prometheus exporter, on the daemon's registry: the default process,
platform and garbage-collector collectors, a build-info series, and no `_created` series.

`prometheus_client` adds a `<name>_created` sample to every counter, histogram and summary unless told
not to (process-wide: `disable_created_metrics`); dashboards and alerts never use them and they double a
scrape, so importing the metrics turns them off. The build info is a gauge at 1 whose labels say what
runs: `fixadapter_build_info{version, python, quickfix}` (join it in a query to label a panel).
"""

from __future__ import annotations

import importlib.metadata
import platform

from prometheus_client import (
    Gauge,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)
from prometheus_client.registry import CollectorRegistry

from fixadapter import __version__

BUILD_INFO = "fixadapter_build_info"

disable_created_metrics()  # type: ignore[no-untyped-call]


def quickfix_version() -> str:
    """The quickfix distribution installed ("absent" when it is not: the Open API alone needs none)."""
    try:
        return importlib.metadata.version("quickfix")
    except importlib.metadata.PackageNotFoundError:
        return "absent"


def build_labels() -> dict[str, str]:
    return {"version": __version__, "python": platform.python_version(), "quickfix": quickfix_version()}


def register_build_info(registry: CollectorRegistry) -> Gauge:
    labels = build_labels()
    gauge = Gauge(
        BUILD_INFO,
        "1, labelled with the adapter's version, the Python version and the quickfix version",
        list(labels),
        registry=registry,
    )
    gauge.labels(**labels).set(1)
    return gauge


def register_process_collectors(registry: CollectorRegistry) -> None:
    """process_* (CPU, memory, file descriptors, start time), python_info and python_gc_*."""
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
