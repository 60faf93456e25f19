"""`fixadapter run`: the daemon until SIGTERM or SIGINT, then a clean stop (see service.Daemon)."""

from __future__ import annotations

import asyncio
import logging
import signal

from fixadapter.config import AdapterConfig
from fixadapter.connectors.fix.kinds import SessionKind

log = logging.getLogger("fixadapter.daemon")


async def run_daemon(config: AdapterConfig) -> int:
    from fixadapter.daemon.service import Daemon  # imports quickfix, which resets SIGINT: handlers come after

    daemon = Daemon(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await daemon.start()
    for entry in config.accounts:
        account = entry.fix
        if account is None:
            log.info("account %s: Open API %s", entry.name, entry.openapi.endpoint if entry.openapi else "?")
            continue
        log.info(
            "account %s: %s, TRADE %s, QUOTE %s",
            entry.name,
            account.sender_comp_id,
            account.endpoint(SessionKind.TRADE),
            account.endpoint(SessionKind.QUOTE),
        )
    log.info(
        "fixadapter running for %d account%s (queue %s%s); SIGTERM stops it",
        len(config.accounts),
        "" if len(config.accounts) == 1 else "s",
        config.daemon.queue.kind,
        f", HTTP on {config.daemon.http.host}:{daemon.http_port}" if daemon.http_port else "",
    )
    await stop.wait()
    log.info("stopping: no new commands, logging out, publishing and flushing what is buffered")
    await daemon.stop()
    log.info("stopped cleanly")
    return 0
