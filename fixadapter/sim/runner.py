"""`fixadapter simulate`: the TRADE port, the accounts' venues, the Open API port (TLS) with its OAuth
endpoint and the control port in this process; the QUOTE port in a child process that exits with it and
gets every venue quote change over the pipe.
"""

from __future__ import annotations

import contextlib
import json
import logging
import multiprocessing
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from fixadapter.sim.client_config import write_client_config
from fixadapter.sim.commission import CommissionRule
from fixadapter.sim.config import SimConfig
from fixadapter.sim.control import ControlServer
from fixadapter.sim.oauth_server import OAuthTestServer
from fixadapter.sim.openapi.server import OpenApiServer
from fixadapter.sim.openapi.tokens import TokenRegistry
from fixadapter.sim.prices import DEFAULT_SYMBOLS, RandomWalk
from fixadapter.sim.quote_link import QuoteLink, QuoteLinkError
from fixadapter.sim.quote_server import run_quote_process
from fixadapter.sim.records import IdCounters
from fixadapter.sim.tls_port import server_context
from fixadapter.sim.trade_server import TradeServer
from fixadapter.sim.venue import Venue
from fixadapter.tls.certs import ensure_server_files

log = logging.getLogger("fixadapter.sim")
READY_LINE = "fixadapter simulator ready"
ACCOUNTS_MARK = " accounts="  # then the accounts served as JSON (no password), just before PORTS_MARK
PORTS_MARK = " ports="  # then the bound ports as JSON, the last thing on the ready line
CHILD_START_SECONDS = 30
SIGNAL_POLL_SECONDS = 0.2


def account_summaries(config: SimConfig) -> list[dict[str, object]]:
    """Each account served as the ready line names it: name, SenderCompID, login, its Open API id and
    whether it is live, never its password."""
    return [
        {
            "name": account.name,
            "sender_comp_id": account.sender_comp_id,
            "username": account.username,
            "ctid_trader_account_id": account.ctid_trader_account_id,
            "is_live": account.is_live,
        }
        for account in config.served_accounts
    ]


def with_certificate(config: SimConfig) -> SimConfig:
    """A config without a given certificate gets one made in tls_dir, signed by the CA kept there: the
    Open API port is TLS only, so there is always one, whether the FIX ports serve TLS or not."""
    if config.tls_cert is not None:
        return config
    files = ensure_server_files(config.tls_dir, config.tls_names)
    log.info("TLS certificate for %s made; clients pin %s", ", ".join(config.tls_names), files.ca_file)
    return config.model_copy(update={"tls_cert": files.cert_file, "tls_key": files.key_file})


def start_openapi(config: SimConfig, trade: TradeServer) -> tuple[OpenApiServer, OAuthTestServer]:
    """The Open API port over the trade server's venues and the OAuth endpoint beside it, on one loop and
    sharing one token registry (a pair refreshed over HTTP is dead on the Open API too)."""
    if config.tls_cert is None or config.tls_key is None:
        raise RuntimeError("the Open API port needs a certificate (with_certificate makes one)")
    registry = TokenRegistry({config.openapi_client_id: config.openapi_client_secret.get_secret_value()})
    openapi = OpenApiServer(config, trade, registry, server_context(config.tls_cert, config.tls_key))
    openapi.start()
    oauth = OAuthTestServer(host=config.host, port=config.oauth_port, registry=registry)
    openapi.call(oauth.start())
    return openapi, oauth


def _quote_ready(quote: multiprocessing.process.BaseProcess, parent_end: Any) -> tuple[int, int | None]:
    """The QUOTE child's bound ports, or why it did not start (its traceback is on our stderr)."""
    message: object = None
    try:
        if parent_end.poll(CHILD_START_SECONDS):
            message = parent_end.recv()
    except (EOFError, OSError):
        message = None
    if isinstance(message, tuple) and len(message) == 3 and message[0] == "ready":
        return int(message[1]), message[2]
    quote.join(1)
    if quote.exitcode is None:
        quote.kill()
        quote.join(5)
        raise RuntimeError(f"the QUOTE port process did not start within {CHILD_START_SECONDS}s (killed)")
    raise RuntimeError(
        f"the QUOTE port process exited with code {quote.exitcode} before it was ready "
        "(its error is logged above: a port in use, a bad certificate?)"
    )


def run_simulator(
    config: SimConfig, stop: threading.Event | None = None, write_config: Path | None = None
) -> None:
    """Serve until SIGTERM/SIGINT (or `stop`); prints READY_LINE with the ports once listening, after
    writing an adapter config for the served accounts at those ports to `write_config` when given."""
    stop = stop or threading.Event()
    config = with_certificate(config)
    prices = RandomWalk(DEFAULT_SYMBOLS, seed=config.seed)
    ids = IdCounters()
    commission = CommissionRule(config.commission_per_million, prices)
    venues = [
        Venue(
            prices,
            config.account_state_path(index),
            config.partial_fill_parts,
            shared_ids=ids,
            commission=commission,
        )
        for index in range(len(config.served_accounts))
    ]
    context = multiprocessing.get_context("spawn")
    parent_end, child_end = context.Pipe()
    quote = context.Process(target=run_quote_process, args=(config, child_end), name="sim-quote", daemon=True)
    quote.start()
    quote_port, quote_tls_port = _quote_ready(quote, parent_end)
    link = QuoteLink(parent_end)
    trade = TradeServer(config, venues)
    trade.on_quotes = link.send_quotes
    # The venue's quotes now, so the depth books start where the venue fills (it may not start at the mids).
    link.send_quotes([prices.quote(spec.symbol_id) for spec in prices.symbols()])
    trade.start()
    openapi, oauth = start_openapi(config, trade)
    control = ControlServer(config.host, config.control_port, trade, link, openapi)
    control.start()

    def on_signal(signum: int, _frame: Any) -> None:
        log.info("signal %d: stopping the simulator", signum)
        stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
    ports = {
        "quote": quote_port,
        "trade": trade.port,
        "control": control.port,
        "quote_tls": quote_tls_port,
        "trade_tls": trade.tls.port if trade.tls is not None else None,
        "openapi": openapi.port,
        "oauth": oauth.port,
    }
    if write_config is not None:
        write_client_config(write_config, config, ports)
        log.info("adapter config for the served accounts written to %s", write_config)
    tls = ""
    if config.tls:
        tls = f" TLS: QUOTE {ports['quote_tls']} TRADE {ports['trade_tls']} cert {config.tls_cert}"
    print(
        f"{READY_LINE}: QUOTE {config.host}:{quote_port} TRADE {config.host}:{trade.port} "
        f"control http://{config.host}:{control.port} Open API {config.host}:{openapi.port} (TLS) "
        f"OAuth {oauth.base_url}{tls}"
        f"{ACCOUNTS_MARK}{json.dumps(account_summaries(config))}{PORTS_MARK}{json.dumps(ports)}",
        flush=True,
    )
    try:
        # Never an untimed wait: SIGTERM may land on a QuickFIX or relay thread, and Python runs its handler
        # only when the main thread next runs, which an untimed Event.wait() would put off for ever.
        while not stop.wait(SIGNAL_POLL_SECONDS):
            pass
    finally:
        control.stop()
        openapi.call(oauth.close())
        openapi.stop()
        trade.stop()
        with contextlib.suppress(QuoteLinkError):
            link.stop()
        quote.join(5)
        if quote.is_alive():
            quote.kill()
        sys.stdout.flush()
