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
from bench.order_path import ANSWERED, RISK, Answers, measure, order
from fixadapter.api import Adapter
from fixadapter.config import AdapterConfig, build_config
from fixadapter.connectors.openapi.tokens import TOKEN_KEY_ENV, FileTokenStore, TokenPair, grant_key
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
    from datetime import UTC, datetime

    os.environ.setdefault(TOKEN_KEY_ENV, Fernet.generate_key().decode())  # a key of the run's own
    client_id, secret = sim.openapi_client()
    granted = sim.openapi_grant()
    token_file = workdir / "tokens.fernet"
    pair = TokenPair.issued(
        granted["accessToken"],
        granted["refreshToken"],
        float(granted["expiresIn"]),
        "bearer",
        datetime.now(UTC),
    )
    FileTokenStore(token_file).save(grant_key(client_id), pair)
    account = {
        "openapi": {
            "ctid_trader_account_id": sim.account().ctid_trader_account_id,
            "host": "127.0.0.1",
            "port": sim.openapi_port,
            "ca_file": str(sim.ca_file),
            "client_id": client_id,
            "client_secret": secret,
            "token_file": str(token_file),
        }
    }
    return _config(workdir / "openapi.db", account, workdir / "openapi-log")


async def one_path(config: AdapterConfig, path: str, runs: tuple[int, int, int]) -> list[Figure]:
    async with Adapter(config) as adapter:
        await adapter.wait_ready(READY_TIMEOUT)
        answers = Answers()
        queue = adapter.engine.subscribe()

        async def consume() -> None:
            while True:
                event = await queue.get()
                if event.order.status in ANSWERED or event.order.is_done:
                    await answers.note(event.order.cl_ord_id, event.order.reason)

        async def submit() -> str:
            return (await adapter.submit(order())).cl_ord_id

        consumer = asyncio.create_task(consume())
        try:
            return await measure(path, submit, answers, runs, concurrent=True)
        finally:
            consumer.cancel()
            adapter.engine.unsubscribe(queue)


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
                ("fix", lambda: one_path(fix_config(sim, workdir), "sim.fix", runs)),
                ("openapi", lambda: one_path(openapi_config(sim, workdir), "sim.openapi", runs)),
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
