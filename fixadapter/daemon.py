"""`fixadapter run`: the adapter as a long-lived process until SIGTERM or SIGINT, then a clean logout."""

from __future__ import annotations

import asyncio
import logging
import signal

from fixadapter.api import Adapter
from fixadapter.config import AdapterConfig

log = logging.getLogger("fixadapter.daemon")


async def run_daemon(config: AdapterConfig) -> int:
    adapter = Adapter(config)  # imports quickfix, which resets SIGINT: handlers are installed after it
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await adapter.start()
    log.info(
        "fixadapter running for %s at %s (TRADE %d, QUOTE %d); SIGTERM stops it",
        config.account.sender_comp_id,
        config.account.host,
        config.account.trade_port,
        config.account.quote_port,
    )
    await stop.wait()
    log.info("stopping: logging out and flushing the store")
    await adapter.stop()
    return 0
