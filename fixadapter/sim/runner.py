"""`fixadapter simulate`: the TRADE port, the venue and the control port in this process; the QUOTE
port in a child process that exits with it and gets every venue quote change over the pipe.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import signal
import sys
import threading
from typing import Any

from fixadapter.sim.config import SimConfig
from fixadapter.sim.control import ControlServer
from fixadapter.sim.prices import DEFAULT_SYMBOLS, RandomWalk
from fixadapter.sim.quote_link import QuoteLink, QuoteLinkError
from fixadapter.sim.quote_server import run_quote_process
from fixadapter.sim.trade_server import TradeServer
from fixadapter.sim.venue import Venue
from fixadapter.tls.certs import ensure_server_files

log = logging.getLogger("fixadapter.sim")
READY_LINE = "fixadapter simulator ready"
CHILD_START_SECONDS = 30


def with_certificate(config: SimConfig) -> SimConfig:
    """A TLS config without a given certificate gets one made in tls_dir, signed by the CA kept there."""
    if not config.tls or config.tls_cert is not None:
        return config
    files = ensure_server_files(config.tls_dir, config.tls_names)
    log.info("TLS certificate for %s made; clients pin %s", ", ".join(config.tls_names), files.ca_file)
    return config.model_copy(update={"tls_cert": files.cert_file, "tls_key": files.key_file})


def run_simulator(config: SimConfig, stop: threading.Event | None = None) -> None:
    """Serve until SIGTERM/SIGINT (or `stop`); prints READY_LINE with the ports once listening."""
    stop = stop or threading.Event()
    config = with_certificate(config)
    venue = Venue(RandomWalk(DEFAULT_SYMBOLS, seed=config.seed), config.state_path, config.partial_fill_parts)
    context = multiprocessing.get_context("spawn")
    parent_end, child_end = context.Pipe()
    quote = context.Process(target=run_quote_process, args=(config, child_end), name="sim-quote", daemon=True)
    quote.start()
    if not parent_end.poll(CHILD_START_SECONDS) or parent_end.recv() != "ready":
        quote.kill()
        raise RuntimeError("the QUOTE port process did not start; is its port free?")
    link = QuoteLink(parent_end)
    trade = TradeServer(config, venue)
    trade.on_quotes = link.send_quotes
    # The venue's quotes now, so the depth books start where the venue fills (it may not start at the mids).
    link.send_quotes([venue.quote(spec.symbol_id) for spec in venue.symbols()])
    trade.start()
    control = ControlServer(config.host, config.control_port, trade, link)
    control.start()

    def on_signal(signum: int, _frame: Any) -> None:
        log.info("signal %d: stopping the simulator", signum)
        stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
    tls = ""
    if config.tls:
        tls = f" TLS: QUOTE {config.quote_tls_port} TRADE {config.trade_tls_port} cert {config.tls_cert}"
    print(
        f"{READY_LINE}: QUOTE {config.host}:{config.quote_port} TRADE {config.host}:{config.trade_port} "
        f"control http://{config.host}:{control.port}{tls}",
        flush=True,
    )
    try:
        stop.wait()
    finally:
        control.stop()
        trade.stop()
        with contextlib.suppress(QuoteLinkError):
            link.stop()
        quote.join(5)
        if quote.is_alive():
            quote.kill()
        sys.stdout.flush()
