"""The Open API order path beside FIX, against the same simulated venue, in the same run.

One simulator serves both APIs on one venue; an adapter on its FIX ports and then one on its Open API port
send the same orders (EURUSD market orders, answered when the venue accepts them), one at a time and then
in a burst. The FIX figures are the baseline of the Open API ones, so the ratio is what the Open API path
costs against FIX on this venue and machine. The Open API allows 50 requests per second per connection
(reference 1.7) and the connector shapes its sending to that, so the burst is bounded by the server's rule,
not by the adapter: the table says so.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet

from bench.figures import Figure, compared
from bench.order_path import RISK, adapter_path
from fixadapter.config import AdapterConfig, build_config
from fixadapter.connectors.openapi.tokens import TOKEN_KEY_ENV
from fixadapter.sim.process import SimProcess

READY_TIMEOUT = 60.0
RATE_NOTE = "openapi: the burst is held to the Open API's 50 requests/s per connection (reference 1.7)"


def _config(store: Path, account: dict[str, Any], log_dir: Path) -> AdapterConfig:
    return build_config(
        {
            "accounts": [{"name": "bench", **account}],
            "store": {"url": f"sqlite:///{store}"},
            "compliance": {"directory": str(log_dir)},
            "risk": RISK,
        },
        environ={},
    )


def fix_config(sim: SimProcess, workdir: Path) -> AdapterConfig:
    return _config(workdir / "fix.db", {"fix": sim.adapter_settings()}, workdir / "fix-log")


def openapi_config(sim: SimProcess, workdir: Path) -> AdapterConfig:
    os.environ.setdefault(TOKEN_KEY_ENV, Fernet.generate_key().decode())  # a key of the run's own
    sim.store_openapi_grant(workdir / "tokens.fernet")
    account = {"openapi": sim.openapi_settings(workdir / "tokens.fernet")}
    return _config(workdir / "openapi.db", account, workdir / "openapi-log")


def run(orders: int, burst: int, warmup: int) -> tuple[list[Figure], list[str]]:
    """FIX then Open API against one simulator; the Open API figures compared with FIX's."""
    runs = (orders, burst, warmup)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        sim = SimProcess(
            state_path=workdir / "venue.sqlite",
            log_path=workdir / "sim.log",
            extra_args=("--balance", "1000000000"),  # every order of the run fits the margin
        ).start()
        try:
            paths: list[tuple[str, Callable[[], Awaitable[list[Figure]]]]] = [
                ("fix", lambda: adapter_path(fix_config(sim, workdir), "sim.fix", runs)),
                ("openapi", lambda: adapter_path(openapi_config(sim, workdir), "sim.openapi", runs)),
            ]
            figures: list[Figure] = []
            for name, measured in paths:
                print(f"== simulator venue over {name}", file=sys.stderr)
                figures += asyncio.run(measured())  # type: ignore[arg-type]
        finally:
            sim.stop()
    by_name = {f["name"]: f for f in figures}

    def baseline(name: str) -> str | None:
        return name.replace("sim.openapi.", "sim.fix.", 1) if name.startswith("sim.openapi.") else None

    return compared(figures, by_name, baseline), [RATE_NOTE]
