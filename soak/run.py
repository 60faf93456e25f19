"""One soak run: start the services, trade with several strategies through a seeded fault schedule and
red-team inputs, settle, check the invariants and print the figures."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from soak import faults
from soak.checks import (
    FINAL,
    Verdict,
    alarms,
    check_orders,
    log_errors,
    metric_series,
    secrets_in_files,
    stored_orders,
    task_failures,
    task_lines,
    violation_kinds,
)
from soak.desk import Quote, Trader
from soak.redteam import CommandAbuse, HttpAbuse
from soak.services import PREFIX, DaemonProcess, Database, RedisServer, ServiceError, Venue

READY_SECONDS = 120.0
WATCH_SECONDS = 1.0
PROGRESS_SECONDS = 10.0


@dataclass(frozen=True)
class Options:
    seconds: float
    seed: int
    quick: bool = False
    strategies: tuple[str, ...] = ("alpha", "beta", "gamma", "published_seq")
    pace_seconds: float = 0.4
    postgres_url: str | None = None
    max_rss_mib: int = 800
    settle_seconds: float = 120.0
    keep: bool = False

    @property
    def heavy_each(self) -> int:
        return 1 if self.quick else max(2, int(self.seconds // 60))

    @property
    def light_each(self) -> int:
        return 1 if self.quick else max(1, int(self.seconds // 60))

    @property
    def flood(self) -> int:
        return 300 if self.quick else 5000

    @property
    def huge_bytes(self) -> int:
        return 200_000 if self.quick else 10_000_000

    @property
    def idle_sockets(self) -> int:
        return 100 if self.quick else 300


@dataclass
class Figures:
    started_series: int = 0
    final_series: int = 0
    exits: list[int] = field(default_factory=list)
    alarms: list[dict[str, Any]] = field(default_factory=list)
    task_lines: list[str] = field(default_factory=list)
    tracebacks: int = 0
    log_errors: Counter[str] = field(default_factory=Counter)
    task_failures: Counter[str] = field(default_factory=Counter)


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


async def wait_for(condition: Any, seconds: float, every: float = 0.5) -> bool:
    """Poll `condition` (run in a thread: it asks a process) until true or `seconds` pass."""
    deadline = time.monotonic() + seconds
    while not await asyncio.to_thread(condition):
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(every)
    return True


class Soak:
    def __init__(self, options: Options, workdir: Path) -> None:
        self.options = options
        self.workdir = workdir
        self.rng = random.Random(options.seed)
        self.redis = RedisServer(workdir)
        self.database = Database(workdir, options.postgres_url)
        self.venue = Venue(workdir, options.seed)
        self.daemon = DaemonProcess(workdir, self.venue, self.redis, self.database, options.strategies)
        self.quote = Quote()
        self.traders = [
            Trader(name, self.redis.url, PREFIX, random.Random(f"{options.seed}:{name}"), self.quote)
            for name in options.strategies
        ]
        self.commands = CommandAbuse(self.traders, self.rng, options.huge_bytes)
        self.http = HttpAbuse(lambda: self.daemon.port, self.rng)
        self.daemon_lock = asyncio.Lock()
        self.findings: list[str] = []
        self.figures = Figures()
        self.stop = asyncio.Event()
        self.venue_up = asyncio.Event()
        self.venue_up.set()
        self.started = time.monotonic()
        self.runner = faults.Runner(self.started, {}, say)  # replaced when trading starts
        self.background: list[asyncio.Task[None]] = []

    # -- the schedule ------------------------------------------------------------------------------

    def plan(self) -> tuple[list[faults.Step], list[faults.Step]]:
        kinds = faults.HEAVY if self.database.cuttable else tuple(k for k in faults.HEAVY if k != "pg_cut")
        heavy, light = faults.schedule(
            self.rng, self.options.seconds, self.options.heavy_each, self.options.light_each, kinds
        )
        say(
            f"soak: seed {self.options.seed} (SOAK_SEED={self.options.seed} replays this schedule), "
            f"{self.options.seconds:g}s of trading, strategies {', '.join(self.options.strategies)}"
        )
        say(f"soak: {self.database.note}")
        for step in heavy + light:
            say(f"  scheduled {step}")
        return heavy, light

    def actions(self) -> dict[str, faults.Action]:
        control = self.venue.sim.control
        garbled = faults.garbled_messages(self.rng, self.venue.sim.sender_comp_id)

        async def control_post(path: str, body: dict[str, Any]) -> None:
            await self.venue_up.wait()  # a venue restarting answers nothing: this fault waits for it
            await asyncio.to_thread(control, path, body)

        async def garble(_step: faults.Step) -> None:
            for data in garbled:
                self.venue.proxy.inject_to_client(data)

        async def line_drop(_step: faults.Step) -> None:
            self.venue.proxy.drop()

        return {
            "daemon_kill": self.kill_daemon,
            "venue_kill": self.kill_venue,
            "redis_kill": self.kill_redis,
            "pg_cut": self.cut_postgres,
            "logout_trade": lambda _s: control_post("/logout", {"session": "TRADE", "reason": "soak"}),
            "logout_quote": lambda _s: control_post("/logout", {"session": "QUOTE", "reason": "soak"}),
            "garbled": garble,
            "line_drop": line_drop,
            "drop_reports": lambda _s: control_post("/scenario", {"drop_reports": 2}),
            "ignore_requests": lambda _s: control_post("/scenario", {"ignore_requests": 1}),
            "malformed": lambda _s: self.commands.malformed(),
            "hostile": lambda _s: self.commands.hostile(),
            "huge": lambda _s: self.commands.huge(),
            "flood": lambda _s: self.commands.flood(self.options.flood),
            "http_garbage": lambda _s: self.http.garbage(),
            "idle_sockets": self.idle_sockets,
        }

    async def idle_sockets(self, _step: faults.Step) -> None:
        """Hundreds of idle sockets while /healthz must answer: never while the daemon is being killed."""
        async with self.daemon_lock:
            hold = 2.0 if self.options.quick else 5.0
            await self.http.idle_sockets(self.options.idle_sockets, hold, self.healthy)

    def healthy(self) -> bool:
        return self.daemon.http("/healthz")[0] == 200

    async def kill_daemon(self, step: faults.Step) -> None:
        async with self.daemon_lock:
            self.daemon.kill()
            await asyncio.sleep(step.down)
            await asyncio.to_thread(self.daemon.start)

    async def kill_venue(self, step: faults.Step) -> None:
        self.venue_up.clear()
        self.venue.kill()
        await asyncio.sleep(step.down)
        await asyncio.to_thread(self.venue.restart)
        self.venue_up.set()

    async def kill_redis(self, step: faults.Step) -> None:
        self.redis.kill()
        await asyncio.sleep(step.down)
        await asyncio.to_thread(self.redis.start)

    async def cut_postgres(self, step: faults.Step) -> None:
        assert self.database.proxy is not None
        self.database.proxy.cut()
        try:
            await asyncio.sleep(step.down)
        finally:
            self.database.proxy.restore()

    # -- background -------------------------------------------------------------------------------

    async def watch(self) -> None:
        """The daemon exiting on its own is a finding (then it is started again); memory sampled;
        progress printed."""
        next_progress = time.monotonic() + PROGRESS_SECONDS
        while True:
            await asyncio.sleep(WATCH_SECONDS)
            async with self.daemon_lock:
                code = self.daemon.exited()
                if code is not None:
                    self.findings.append(f"the daemon exited on its own with code {code} (see daemon.log)")
                    say(f"        the daemon exited on its own with code {code}; starting it again")
                    await asyncio.to_thread(self.daemon.start)
                self.daemon.sample_rss()
            if time.monotonic() >= next_progress:
                next_progress += PROGRESS_SECONDS
                say(self.progress())

    def progress(self) -> str:
        sent = sum((t.sent for t in self.traders), Counter[str]())
        told = sum(len(t.client.orders) for t in self.traders)
        return (
            f"{time.monotonic() - self.started:6.1f}s progress: submits {sent['submit']}, cancels "
            f"{sent['cancel']}, replaces {sent['replace']}, orders heard of {told}, daemon RSS "
            f"{self.daemon.peak_rss_kib // 1024} MiB peak"
        )

    async def follow_price(self) -> None:
        """Keep the mid the strategies price limits around (the venue's own book)."""
        while True:
            with contextlib.suppress(Exception):  # the venue may be down: keep the last price
                book = await asyncio.to_thread(self.venue.sim.control, "/book?symbol_id=1")
                bid, ask = Decimal(book["bids"][0][0]), Decimal(book["asks"][0][0])
                self.quote.mid = (bid + ask) / 2
            await asyncio.sleep(5)

    # -- the run ----------------------------------------------------------------------------------

    async def start(self) -> None:
        say("soak: starting Redis, the venue and the daemon")
        await asyncio.to_thread(self.redis.start)
        await asyncio.to_thread(self.venue.start)
        await asyncio.to_thread(self.daemon.start)
        if not await wait_for(self.daemon.ready, READY_SECONDS):
            raise ServiceError(f"the daemon did not become ready; see {self.daemon.log}")
        self.figures.started_series = len(metric_series(self.daemon.http("/metrics")[1]))
        for trader in self.traders:
            await trader.start()

    async def trade(self) -> None:
        heavy, light = self.plan()
        self.started = time.monotonic()
        self.runner = runner = faults.Runner(self.started, self.actions(), say)
        self.background = [asyncio.create_task(self.watch()), asyncio.create_task(self.follow_price())]
        self.background += [asyncio.create_task(t.read_events()) for t in self.traders]
        trading = [asyncio.create_task(t.trade(self.stop, self.options.pace_seconds)) for t in self.traders]
        heavy_done = asyncio.create_task(runner.run(heavy, asyncio.Event()))
        light_done = asyncio.create_task(runner.run(light, self.stop))
        await asyncio.sleep(self.options.seconds)
        self.stop.set()
        await asyncio.gather(*trading, light_done)
        say(f"{time.monotonic() - self.started:6.1f}s trading stopped; waiting for the last heavy fault")
        await heavy_done

    async def settle(self) -> None:
        """Every service up, the daemon ready, every working order cancelled, every order final."""
        say("soak: settling (daemon ready, working orders cancelled, every order final)")
        if not await wait_for(self.daemon.ready, READY_SECONDS):
            self.findings.append(
                f"/readyz not 200 {READY_SECONDS:g}s after the faults ended: "
                f"{self.daemon.http('/readyz')[1][:500]!r}"
            )
        for trader in self.traders:
            await trader.cancel_working()
        deadline = time.monotonic() + self.options.settle_seconds
        cancelled: dict[str, float] = {}
        while not await asyncio.to_thread(self.settled):
            if time.monotonic() > deadline:
                say("soak: not everything settled in time; checking what there is")
                return
            await self.cancel_open(cancelled)
            await asyncio.sleep(1.0)

    async def cancel_open(self, cancelled: dict[str, float]) -> None:
        """Cancel what the store still has open (an order may be placed late: its command was queued
        through an outage), again every CANCEL_AGAIN_SECONDS while it stays open."""
        store = await asyncio.to_thread(stored_orders, self.database.direct_url)
        traders = {trader.name: trader for trader in self.traders}
        now = time.monotonic()
        for order in store.values():
            trader = traders.get(order.strategy or "")
            if trader is None or order.status in FINAL or now - cancelled.get(order.cl_ord_id, -1e9) < 10:
                continue
            cancelled[order.cl_ord_id] = now
            await trader.retrying(functools.partial(trader.client.cancel, order.cl_ord_id))

    def settled(self) -> bool:
        store = stored_orders(self.database.direct_url)
        if any(o.status not in FINAL for o in store.values()):
            return False
        told = {c: u.order.status.value for t in self.traders for c, u in t.client.orders.items()}
        return all(
            told.get(o.cl_ord_id) == o.status for o in store.values() if o.strategy in self.options.strategies
        )

    async def finish(self) -> Verdict:
        readyz = self.daemon.http("/readyz")[1]
        series = metric_series(self.daemon.http("/metrics")[1])
        self.daemon.sample_rss()
        async with self.daemon_lock:
            for task in self.background:
                task.cancel()
            code = await asyncio.to_thread(self.daemon.stop)
        if code != 0:
            self.findings.append(f"the daemon's SIGTERM exit code was {code}, not 0")
        self.figures.alarms = alarms(readyz)
        self.figures.final_series = len(series)
        self.figures.task_lines = task_lines(series)
        self.figures.exits = self.daemon.exits
        log = self.daemon.log.read_text(errors="replace")
        self.figures.tracebacks = log.count("Traceback")
        self.figures.log_errors = log_errors(log)
        self.figures.task_failures = task_failures(log)
        store = await asyncio.to_thread(stored_orders, self.database.direct_url)
        venue = await asyncio.to_thread(self.venue.sim.control, "/state")
        verdict = check_orders(self.traders, store, venue["orders"])
        for text in self.findings + self.http.findings + self.limits() + self.alarm_findings():
            verdict.add(text)
        for text in secrets_in_files(self.workdir, self.daemon.secrets()):
            verdict.add(text)
        return verdict

    def limits(self) -> list[str]:
        found = []
        if self.daemon.peak_rss_kib > self.options.max_rss_mib * 1024:
            found.append(
                f"daemon RSS peaked at {self.daemon.peak_rss_kib // 1024} MiB > "
                f"{self.options.max_rss_mib} MiB"
            )
        bound = 2 * self.figures.started_series + 200
        if self.figures.final_series > bound:
            found.append(
                f"/metrics grew from {self.figures.started_series} to {self.figures.final_series} "
                f"series (bound {bound}): a label takes free input"
            )
        return found

    def alarm_findings(self) -> list[str]:
        return [
            f"alarm after settling: {a.get('kind')} {a.get('key')}: {a.get('text')}"
            for a in self.figures.alarms
            if a.get("blocking") or "task" in str(a.get("kind"))
        ]

    async def close(self) -> None:
        for task in self.background:
            task.cancel()
        for trader in self.traders:
            with contextlib.suppress(Exception):
                await trader.close()
        await asyncio.to_thread(self._stop_services)

    def _stop_services(self) -> None:
        self.daemon.kill()
        self.venue.stop()
        self.redis.stop()
        if self.options.keep:
            say(f"soak: database kept: {self.database.direct_url}")
            if self.database.proxy is not None:
                self.database.proxy.stop()
        else:
            self.database.drop()


def report(soak: Soak, verdict: Verdict) -> None:
    runner = soak.runner
    sent = sum((t.sent for t in soak.traders), Counter[str]())
    inputs = sent + soak.commands.sent + soak.http.sent
    acknowledged = sum(len(t.submitted) for t in soak.traders)
    print(f"seed: {soak.options.seed}")
    print(f"faults injected: {_counts(runner.done)}")
    if runner.failed:
        print(f"faults that could not run: {_counts(runner.failed)}")
    print(f"inputs sent: {_counts(inputs)}")
    print(f"orders: {verdict.orders} in the store, {acknowledged} acknowledged submits")
    print(f"lost: {len(verdict.lost)}")
    print(f"doubled: {len(verdict.doubled)}")
    figures = soak.figures
    print(
        f"daemon: peak RSS {soak.daemon.peak_rss_kib // 1024} MiB (limit {soak.options.max_rss_mib}), "
        f"/metrics {figures.final_series} series ({figures.started_series} at start), "
        f"exits on its own {figures.exits or 0}, tracebacks in its log {figures.tracebacks}"
    )
    print(f"daemon log ERROR lines by logger: {_counts(figures.log_errors)}")
    print(f"task failures logged (all daemon runs): {_counts(figures.task_failures)}")
    print(f"task counters (last daemon run): {'; '.join(figures.task_lines) or 'none non-zero'}")
    print(f"alarms after settling: {[(a.get('kind'), a.get('key')) for a in figures.alarms] or 'none'}")
    print(f"violations: {len(verdict.violations)}")
    for kind, count in violation_kinds(verdict.violations).most_common(10):
        print(f"  {count} x {kind}")
    for text in verdict.violations[:100]:
        print(f"  - {text}")
    if len(verdict.violations) > 100:
        print(f"  ... and {len(verdict.violations) - 100} more")


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{kind} {count}" for kind, count in sorted(counter.items())) or "none"


async def soak_run(options: Options, workdir: Path) -> int:
    soak = Soak(options, workdir)
    try:
        await soak.start()
        await soak.trade()
        await soak.settle()
        verdict = await soak.finish()
    finally:
        await soak.close()
    report(soak, verdict)
    if verdict.violations:
        (workdir / "violations.txt").write_text("".join(f"{text}\n" for text in verdict.violations))
    return 1 if verdict.violations else 0


def main(options: Options) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="fixadapter-soak-"))
    workdir.chmod(0o700)
    code = 2
    try:
        code = asyncio.run(soak_run(options, workdir))
    except ServiceError as exc:
        say(f"soak: a service did not start: {exc}")
    finally:
        if code == 0 and not options.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            say(f"soak: logs, store and venue state kept in {workdir}")
    return code
