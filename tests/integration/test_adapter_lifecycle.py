"""Starting and stopping the Adapter: a start that fails leaves nothing running behind it."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from fixadapter.api import Adapter
from fixadapter.config import build_config
from fixadapter.errors import FixAdapterError

WORKER_THREADS = ("fixadapter-compliance-writer", "fixadapter-market-data", "fixadapter-depth-writer")


def running_workers() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name in WORKER_THREADS and t.is_alive()]


def test_a_failed_start_stops_its_threads_and_frees_the_compliance_directory(tmp_path: Path) -> None:
    config = build_config(
        {
            "account": {"host": "127.0.0.1", "sender_comp_id": "demo.x.1", "username": "1", "password": "p"},
            "store": {"url": f"sqlite:///{tmp_path / 'adapter.db'}"},
            "compliance": {"directory": str(tmp_path / "fixlog")},
            "sessions_file": str(tmp_path / "missing-sessions.cfg"),
        },
        environ={},
    )

    async def start_twice() -> None:
        for _ in range(2):  # the second start would fail on the directory lock if the first kept it
            with pytest.raises(FixAdapterError):
                await Adapter(config).start()
            assert running_workers() == []

    asyncio.run(start_twice())
