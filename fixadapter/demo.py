"""`fixadapter demo`: the CSERVER simulator in its own process, the daemon in this one, a sample strategy
trading over the daemon's in-process queue, and a live blotter of what comes back.

Everything runs on embedded defaults (SQLite in the work directory; no servers needed). The daemon's HTTP
API listens on a free port, printed at start. The blotter redraws on a terminal; anywhere else it prints
one line per event. It ends when the strategy has done its steps (about `--duration` seconds) or on
Ctrl-C, then the daemon stops cleanly: working orders cancelled, logged out, events published, flushed.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from fixadapter.blotter import Blotter
from fixadapter.config import AdapterConfig, build_config
from fixadapter.connectors.fix.kinds import SessionKind
from fixadapter.engine.tasks import cancel_and_wait
from fixadapter.errors import FixAdapterError, SessionNotReady
from fixadapter.private_files import open_private, private_dir
from fixadapter.sim.process import SimProcess
from fixadapter.strategies import sample

if TYPE_CHECKING:
    from fixadapter.daemon.service import Daemon

SYMBOLS = ("EURUSD", "GBPUSD")
READY_SECONDS = 30.0
DRAIN_SECONDS = 0.5  # for the blotter to read the events the stopping daemon published last
NOT_A_TERMINAL_WIDTH = 160
# Written in every work directory the demo makes: only a directory holding it is ever cleared by the demo.
MARKER = ".fixadapter-demo"


class WorkdirRefused(FixAdapterError):
    """The work directory holds files the demo did not make: it is left untouched."""


def prepare_workdir(workdir: Path) -> None:
    """A new or empty directory becomes the demo's (marked); one the demo made before (marked) is cleared
    for this run; anything else is refused, nothing in it deleted."""
    if workdir.exists() and not workdir.is_dir():
        raise WorkdirRefused(f"--workdir {workdir} is a file, not a directory; nothing was changed")
    if workdir.is_dir():
        entries = list(workdir.iterdir())
        if entries and not (workdir / MARKER).is_file():
            raise WorkdirRefused(
                f"--workdir {workdir} is not empty and was not made by the demo (it has no {MARKER} "
                "file): nothing in it was deleted; give a new or empty directory"
            )
        for entry in entries:
            if entry.name == MARKER:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    private_dir(workdir)  # the demo's store, record and logs: this user's only
    (workdir / MARKER).write_text(
        "made by `fixadapter demo`: the demo clears this directory at each run\n", encoding="utf-8"
    )


def demo_config(sim: SimProcess, workdir: Path) -> AdapterConfig:
    """The daemon's configuration: the simulator's account, a store in `workdir`, modest risk limits."""
    return build_config(
        {
            "account": sim.adapter_settings(),
            "store": {"url": f"sqlite:///{workdir / 'fixadapter.db'}"},
            "market_data": {
                "subscriptions": [{"symbol": "EURUSD", "depth": True}, {"symbol": "GBPUSD", "depth": False}]
            },
            "risk": {
                "max_open_orders": 20,
                "symbol_defaults": {"max_quantity": 5_000_000},
                "symbols": {
                    "EURUSD": {"max_quantity": 1_000_000, "collar_percent": 1},
                    "GBPUSD": {"max_quantity": 1_000_000, "collar_percent": 1},
                },
                "strategy_defaults": {
                    "allowed_symbols": list(SYMBOLS),
                    "max_open_orders": 5,
                    "max_orders_per_second": 10,
                },
            },
            "daemon": {
                "queue": {"kind": "memory"},
                "http": {"enabled": True, "host": "127.0.0.1", "port": 0},
                "cancel_on_stop": True,
                "stop_timeout_seconds": 5,
            },
        },
        environ={},  # the demo's own settings: a FIXADAPTER_ACCOUNT__PASSWORD in the shell must not apply
    )


@contextlib.contextmanager
def _logs_to(path: Path, redirect: bool) -> Iterator[None]:
    """While the blotter redraws, log lines go to a file (masked as ever) instead of across the screen."""
    handlers = [h for h in logging.getLogger().handlers if type(h) is logging.StreamHandler and redirect]
    if not handlers:
        yield
        return
    with io.TextIOWrapper(open_private(path), encoding="utf-8") as file:
        previous = [handler.setStream(file) for handler in handlers]
        try:
            yield
        finally:
            for handler, stream in zip(handlers, previous, strict=True):
                if stream is not None:
                    handler.setStream(stream)


def _console() -> Console:
    console = Console()
    if console.is_terminal:
        return console
    return Console(width=NOT_A_TERMINAL_WIDTH, highlight=False)


async def run_demo(workdir: Path, duration: float = 20.0) -> int:
    prepare_workdir(workdir)
    console = _console()
    console.print(f"starting the CSERVER simulator (state and logs in {workdir}) ...", soft_wrap=True)
    # Over TLS, as toward a real broker: the simulator makes its certificate, the daemon pins its CA.
    sim = SimProcess(
        state_path=workdir / "venue.sqlite",
        log_path=workdir / "simulator.log",
        tls=True,
        tls_dir=workdir / "sim-tls",
    ).start()
    try:
        config = demo_config(sim, workdir)
        if console.is_terminal:
            console.print(f"daemon log lines go to {workdir / 'demo.log'} while the blotter runs")
        with _logs_to(workdir / "demo.log", redirect=console.is_terminal):
            return await _run(config, console, duration)
    finally:
        sim.stop()


async def _run(config: AdapterConfig, console: Console, duration: float) -> int:
    from fixadapter.daemon.service import Daemon  # imports quickfix, which resets SIGINT: handlers come after

    started = time.monotonic()
    daemon = Daemon(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        try:
            await daemon.start()
        except BaseException:
            with contextlib.suppress(Exception):
                await daemon.stop()
            raise
        http = f"http://127.0.0.1:{daemon.http_port}" if daemon.http_port else None
        account = config.fix_settings()
        quote, trade = (account.endpoint(kind) for kind in (SessionKind.QUOTE, SessionKind.TRADE))
        pinned = account.tls_ca_file
        line = f"daemon up: QUOTE {quote}, TRADE {trade} (CA pinned: {pinned}), queue in process"
        if http:
            line += f"; HTTP API on {http} (try: curl {http}/metrics, {http}/orders, {http}/readyz)"
        console.print(line, highlight=False, soft_wrap=True)
        blotter = Blotter(daemon.adapter, SYMBOLS, console, duration, http)
        outcome = await _trade(daemon, blotter, stop, duration)
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
    blotter.print_final()
    console.print(f"done in {time.monotonic() - started:.1f}s; {outcome}", highlight=False, soft_wrap=True)
    return 0 if outcome.startswith(("finished", "stopped")) else 1


async def _trade(daemon: Daemon, blotter: Blotter, stop: asyncio.Event, duration: float) -> str:
    """Run the strategy under the blotter until it ends or `stop` is set; stop the daemon either way."""
    done = asyncio.Event()
    tasks: list[asyncio.Task[Any]] = []
    outcome = "stopped before the strategy started (Ctrl-C)"
    try:
        feed = daemon.client(sample.STRATEGY)
        tasks.append(asyncio.create_task(blotter.feed(feed), name="blotter-feed"))
        tasks.append(asyncio.create_task(blotter.show(done), name="blotter-show"))
        blotter.say("logging on and reconciling ...")
        if not await _first(daemon.adapter.wait_ready(READY_SECONDS), stop):
            return outcome
        blotter.say(f"ready: {len(daemon.adapter.instruments())} instruments; the strategy starts")
        outcome = await _strategy(daemon, blotter, stop, duration)
    except SessionNotReady as exc:
        outcome = f"failed: {exc}"
    finally:
        blotter.say("stopping the daemon: cancel working orders, log out, publish, flush")
        await daemon.stop()
        await asyncio.sleep(DRAIN_SECONDS)
        done.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return outcome


async def _strategy(daemon: Daemon, blotter: Blotter, stop: asyncio.Event, duration: float) -> str:
    async with daemon.client(sample.STRATEGY) as client:
        try:
            if await _first(sample.run(client, duration, blotter.say), stop):
                return "finished: the strategy did all its steps"
            return "stopped by Ctrl-C"
        except sample.StrategyFailed as exc:
            return f"failed: {exc}"


async def _first(work: Any, stop: asyncio.Event) -> bool:
    """Await `work` unless `stop` is set first (then cancel it): True when `work` finished."""
    task = asyncio.ensure_future(work)
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
    if task.done():
        task.result()  # raises what the work raised
        return True
    await cancel_and_wait(task)
    return False
