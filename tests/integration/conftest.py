"""The simulator runs as its own process on loopback; the adapter runs in the test process.

FIXADAPTER_TEST_FIX_TLS=1 runs the suite over TLS: every simulator also serves TLS ports and every
adapter config made from it connects to them, pinning the simulator's CA.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from fixadapter.config import AdapterConfig, build_config
from fixadapter.connectors.fix.kinds import SessionKind
from fixadapter.metrics import Metrics
from fixadapter.sim.process import SimProcess
from fixadapter.tls.forwarder import TlsForwarders

SimFactory = Callable[..., SimProcess]
OVER_TLS = os.environ.get("FIXADAPTER_TEST_FIX_TLS") == "1"
ConfigFactory = Callable[..., AdapterConfig]


@pytest.fixture
def start_sim(tmp_path: Path) -> Iterator[SimFactory]:
    """Start simulators (stopped at teardown); each keeps its venue state in tmp_path."""
    started: list[SimProcess] = []

    def start(**options: Any) -> SimProcess:
        options.setdefault("state_path", tmp_path / f"venue-{len(started)}.sqlite")
        options.setdefault("log_path", tmp_path / f"sim-{len(started)}.log")
        options.setdefault("tls", OVER_TLS)
        sim = SimProcess(**options).start()
        started.append(sim)
        return sim

    yield start
    for sim in started:
        sim.stop()


@pytest.fixture
def sim(start_sim: SimFactory) -> SimProcess:
    return start_sim(extra_args=("--tick-ms", "100"))


@pytest.fixture
def make_config(tmp_path: Path) -> ConfigFactory:
    def make(sim: SimProcess, store_url: str | None = None, **account: Any) -> AdapterConfig:
        return build_config(
            {
                "account": {**sim.adapter_settings(), **account},
                "store": {"url": store_url or f"sqlite:///{tmp_path / 'adapter.db'}"},
                "orders": {
                    "inflight_timeout_seconds": 1.0,
                    "ready_timeout_seconds": 15,
                    "reconcile_timeout_seconds": 5,
                },
            },
            environ={},
        )

    return make


@contextlib.contextmanager
def raw_fix_port(sim: SimProcess, kind: SessionKind) -> Iterator[int]:
    """The loopback port a raw QuickFIX initiator connects to for `kind`: the simulator's plain port, or,
    when it serves TLS, a TLS forwarder's in front of its TLS port (the PyPI quickfix build has no SSL)."""
    if not sim.tls:
        yield sim.session_port(kind)
        return
    account = build_config({"account": sim.adapter_settings()}, environ={}).account().fix
    forwarders = TlsForwarders.for_account(account, Metrics(), report=lambda session, text: None)
    forwarders.start()
    try:
        yield forwarders.local_port(kind)
    finally:
        forwarders.stop()
