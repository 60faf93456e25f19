"""The raw QuickFIX floor and the durable floor: NewOrderSingle -> ExecutionReport without fixadapter code.

    python -m bench.baseline [--orders 2000] [--burst 5000] [--warmup 200] [--no-floor]

A minimal initiator (this process) and acceptor (a child process running this module with --acceptor, so
the two do not share a GIL) talk FIX.4.4 on loopback with cTrader-like session settings: TargetCompID
CSERVER, SenderSubID/TargetSubID TRADE stamped in toAdmin/toApp, Username/Password on the Logon,
ResetOnLogon=Y, MemoryStore, no log, ThreadedSocketInitiator/Acceptor as the adapter and the simulator
use, and UseDataDictionary=Y with spec/FIX44-CTRADER.xml on both sides (everything sent validates: the
dictionary makes ExecID 17 optional, as cTrader never sends it). Fields are read and written by int tag
only (`message.getField(11)`, `message.setField(11, value)`), the cheapest access the binding offers.

1. Ping-pong: send one D, wait (blocked on a lock the ER callback releases) for its ER (150=0/39=0),
   send the next. A round trip runs from before the D is built to the waiting thread waking up.
2. Burst: send N D as fast as sendToTarget allows with at most BURST_IN_FLIGHT unanswered; orders/s from
   the first send to the last ER received (for the floor: committed). The cap is there because an
   unbounded flood stalled this loopback (Linux 6.18) in 2 runs of 3: the acceptor's one thread blocks
   sending ERs while its receive buffer is full of Ds, the kernel drops segments beyond the window
   (TcpExtBeyondWindow) and TCP backs off for tens of seconds. 250 in flight never stalled in 90 bursts
   and was as fast as unbounded.

Both run twice on one session: raw (baseline.*), then as the durable floor (floor.*, compared with
baseline.*): the same plus one fsynced sqlite3 commit per order before its send and one per report before
the waiting thread hears of it; then the burst once more with those commits grouped
(floor.group_commit.burst.throughput). See bench/floor.py.

`run_baseline()` returns figures in the bench format (see bench/market_load.py); `main()` prints them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import queue
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import quickfix as fix

from bench.figures import Figure, compared, figure, latency_figures, print_table
from bench.floor import SETUP as FLOOR_SETUP
from bench.floor import GroupJournal, Journal
from fixadapter.sim.tls_port import TlsPort, server_context
from fixadapter.tls.certs import ServerFiles

REPO = Path(__file__).resolve().parents[1]
DICTIONARY = REPO / "spec" / "FIX44-CTRADER.xml"
SETUP = (
    "UseDataDictionary=Y on both sides (spec/FIX44-CTRADER.xml); FIX.4.4 on 127.0.0.1; "
    "ThreadedSocketInitiator/Acceptor, MemoryStore, no log; int-tag field access; "
    "burst keeps at most {in_flight} orders in flight"
)
CLIENT_COMP_ID = "demo.bench.1"
SERVER_COMP_ID = "CSERVER"
SUB_ID = "TRADE"
LOGON_TIMEOUT = 10.0
REPLY_TIMEOUT = 5.0
START_ATTEMPTS = 3
BURST_IN_FLIGHT = 250
TlsArgs = tuple[int, Path, Path]  # TLS port, certificate chain, key
GROUP_COMMIT = "floor.group_commit.burst.throughput"
T = TypeVar("T")

# Shared by both sides; the initiator's validation flags are sessions.cfg's, the acceptor's the simulator's.
COMMON = f"""BeginString=FIX.4.4
StartTime=00:00:00
EndTime=00:00:00
HeartBtInt=30
ResetOnLogon=Y
ResetOnLogout=Y
ResetOnDisconnect=Y
PersistMessages=N
UseDataDictionary=Y
DataDictionary={DICTIONARY}
ValidateFieldsOutOfOrder=N
CheckLatency=N
SocketNodelay=Y
TimestampPrecision=3
"""


def initiator_settings(port: int) -> fix.SessionSettings:
    settings = fix.SessionSettings()
    settings.setFromString(
        f"""[DEFAULT]
ConnectionType=initiator
{COMMON}AllowUnknownMsgFields=Y
ValidateUserDefinedFields=N
ReconnectInterval=1
LogonTimeout=10
LogoutTimeout=2
[SESSION]
SenderCompID={CLIENT_COMP_ID}
TargetCompID={SERVER_COMP_ID}
SocketConnectHost=127.0.0.1
SocketConnectPort={port}
"""
    )
    return settings


def acceptor_settings(port: int) -> fix.SessionSettings:
    settings = fix.SessionSettings()
    settings.setFromString(
        f"""[DEFAULT]
ConnectionType=acceptor
{COMMON}AllowUnknownMsgFields=N
ValidateUserDefinedFields=Y
SocketReuseAddress=Y
LogoutTimeout=2
[SESSION]
SenderCompID={SERVER_COMP_ID}
TargetCompID={CLIENT_COMP_ID}
SocketAcceptHost=127.0.0.1
SocketAcceptPort={port}
"""
    )
    return settings


class _App(fix.Application):  # type: ignore[misc]
    """Callbacks never raise into QuickFIX (that would end the process): they record here instead."""

    def __init__(self, sub_id: str = SUB_ID) -> None:
        fix.Application.__init__(self)
        self.sub_id = sub_id
        self.errors: list[str] = []
        self.rejects: list[str] = []

    def failed(self, where: str, exc: BaseException) -> None:
        if len(self.errors) < 20:
            self.errors.append(f"{where}: {exc!r}")

    def problems(self) -> str:
        return f"callback errors {self.errors or 'none'}; rejects received {self.rejects or 'none'}"

    def onCreate(self, sessionID: fix.SessionID) -> None:  # noqa: N802, N803
        pass

    def onLogon(self, sessionID: fix.SessionID) -> None:  # noqa: N802, N803
        pass

    def onLogout(self, sessionID: fix.SessionID) -> None:  # noqa: N802, N803
        pass

    def toAdmin(self, message: fix.Message, sessionID: fix.SessionID) -> None:  # noqa: N802, N803
        try:
            _stamp(message, self.sub_id)
        except Exception as exc:
            self.failed("toAdmin", exc)

    def fromAdmin(self, message: fix.Message, sessionID: fix.SessionID) -> None:  # noqa: N802, N803
        try:
            _note_reject(self, message)
        except Exception as exc:
            self.failed("fromAdmin", exc)

    def toApp(self, message: fix.Message, sessionID: fix.SessionID) -> None:  # noqa: N802, N803
        try:
            _stamp(message, self.sub_id)
        except Exception as exc:
            self.failed("toApp", exc)


def _stamp(message: fix.Message, sub_id: str) -> None:
    header = message.getHeader()
    header.setField(50, sub_id)
    header.setField(57, sub_id)


def _note_reject(recorder: _App, message: fix.Message) -> None:
    msg_type = message.getHeader().getField(35)
    if msg_type in ("3", "j") and len(recorder.rejects) < 20:
        recorder.rejects.append(message.toString().replace("\x01", "|"))


# -- acceptor (child process) ------------------------------------------------------------------------


class AcceptorApp(_App):
    """Answers every NewOrderSingle with one ExecutionReport New (150=0, 39=0) shaped as cTrader's.

    It also answers, as cTrader does for an account with nothing open, what fixadapter asks after a logon
    (SecurityList x with one symbol, mass status AF, positions AN, status H), so the adapter's bench runs
    against this very acceptor; the baseline never sends those and the NewOrderSingle path is the same.
    """

    def __init__(self, sub_id: str = SUB_ID) -> None:
        super().__init__(sub_id)
        self.order_id = 0
        self.answers = {"D": self._new_order, "x": self._security_list, "AF": self._mass_status}
        self.answers |= {"AN": self._positions, "H": self._status}

    def fromApp(self, message: fix.Message, sessionID: fix.SessionID) -> None:  # noqa: N802, N803
        try:
            answer = self.answers.get(message.getHeader().getField(35))
            if answer is None:
                _note_reject(self, message)
                return
            fix.Session.sendToTarget(answer(message), sessionID)
        except Exception as exc:
            self.failed("fromApp", exc)

    def _new_order(self, message: fix.Message) -> fix.Message:
        self.order_id += 1
        quantity = message.getField(38)
        order_type = message.getField(40)
        report = _reply("8")
        report.setField(11, message.getField(11))
        report.setField(14, "0")
        report.setField(37, str(self.order_id))
        report.setField(38, quantity)
        report.setField(39, "0")
        report.setField(40, order_type)
        report.setField(54, message.getField(54))
        report.setField(55, message.getField(55))
        report.setField(59, "3" if order_type == "1" else "1")
        report.setField(fix.UtcTimeStampField(60, 3))
        report.setField(150, "0")
        report.setField(151, quantity)
        if message.isSetField(44):
            report.setField(44, message.getField(44))
        return report

    @staticmethod
    def _security_list(message: fix.Message) -> fix.Message:
        request_id = message.getField(320)
        reply = _reply("y")
        reply.setField(320, request_id)
        reply.setField(322, f"responce:{request_id}")
        reply.setField(560, "0")
        symbol = fix.Group(146, 55)
        for tag, value in ((55, "1"), (1007, "EURUSD"), (1008, "5")):
            symbol.setField(tag, value)
        reply.addGroup(symbol)
        return reply

    @staticmethod
    def _mass_status(message: fix.Message) -> fix.Message:
        return _not_found(message.getField(584), "ORDER_NOT_FOUND:No working orders")

    @staticmethod
    def _status(message: fix.Message) -> fix.Message:
        return _not_found(message.getField(11), "ORDER_NOT_FOUND:Order not found")

    @staticmethod
    def _positions(message: fix.Message) -> fix.Message:
        reply = _reply("AP")
        reply.setField(710, message.getField(710))
        reply.setField(727, "0")
        reply.setField(728, "2")
        return reply


def _reply(msg_type: str) -> fix.Message:
    message = fix.Message()
    message.getHeader().setField(35, msg_type)
    return message


def _not_found(ref_id: str, text: str) -> fix.Message:
    reject = _reply("j")
    reject.setField(379, ref_id)
    reject.setField(380, "0")
    reject.setField(58, text)
    return reject


def serve(port: int, sub_id: str = SUB_ID, tls: TlsArgs | None = None) -> int:
    """The acceptor: 'ready' on stdout once listening, runs until stdin closes, then its counts as JSON.

    With `tls` (port, cert, key) it also serves TLS there, terminated in this process like the simulator."""
    app = AcceptorApp(sub_id)
    acceptor = fix.ThreadedSocketAcceptor(app, fix.MemoryStoreFactory(), acceptor_settings(port))
    acceptor.start()
    tls_port = None
    if tls is not None:
        tls_port = TlsPort(sub_id, "127.0.0.1", tls[0], port, server_context(tls[1], tls[2]))
        tls_port.start()
    try:
        print("ready", flush=True)
        sys.stdin.read()  # EOF when the parent closes the pipe or dies
    finally:
        if tls_port is not None:
            tls_port.stop()
        acceptor.stop()
        print(json.dumps({"orders": app.order_id, "errors": app.errors, "rejects": app.rejects}), flush=True)
    return 0


# -- initiator (this process) ------------------------------------------------------------------------


class InitiatorApp(_App):
    def __init__(self) -> None:
        super().__init__()
        self.session_id: fix.SessionID | None = None
        self.logged_on = threading.Event()
        self.reply = threading.Lock()  # held by the sender; the ER callback releases it in ping-pong
        self.reply.acquire()
        self.ping = False
        self.received = 0
        self.target = 0
        self.all_back = threading.Event()
        self.room = threading.Semaphore(BURST_IN_FLIGHT)  # the burst's in-flight cap; each ER frees one
        self.last: tuple[str, str, str, float] = ("", "", "", 0.0)
        self.journal: Journal | None = None  # the durable floor's (bench/floor.py)

    def send(self, session_id: fix.SessionID, cl_ord_id: str) -> None:
        """One D; with a journal, once its ClOrdID is committed."""
        if self.journal is None:
            fix.Session.sendToTarget(new_order(cl_ord_id), session_id)
        else:
            self.journal.order(cl_ord_id, lambda: fix.Session.sendToTarget(new_order(cl_ord_id), session_id))

    def answered(self, cl_ord_id: str, exec_type: str, status: str) -> None:
        """An ER is in (with a journal: committed): the waiting thread may hear of it."""
        self.last = (cl_ord_id, exec_type, status, time.perf_counter())
        self.received += 1
        if self.received == self.target:
            self.all_back.set()
        if self.ping:
            self.reply.release()
        else:
            self.room.release()

    def problems(self) -> str:
        failure = self.journal and self.journal.failure
        return super().problems() + (f"; journal failed: {failure!r}" if failure else "")

    def onCreate(self, sessionID: fix.SessionID) -> None:  # noqa: N802, N803
        self.session_id = sessionID

    def onLogon(self, sessionID: fix.SessionID) -> None:  # noqa: N802, N803
        self.logged_on.set()

    def onLogout(self, sessionID: fix.SessionID) -> None:  # noqa: N802, N803
        self.logged_on.clear()

    def toAdmin(self, message: fix.Message, sessionID: fix.SessionID) -> None:  # noqa: N802, N803
        try:
            _stamp(message, self.sub_id)
            if message.getHeader().getField(35) == "A":
                message.setField(553, "bench")
                message.setField(554, "bench")
        except Exception as exc:
            self.failed("toAdmin", exc)

    def fromApp(self, message: fix.Message, sessionID: fix.SessionID) -> None:  # noqa: N802, N803
        try:
            if message.getHeader().getField(35) != "8":
                _note_reject(self, message)
                return
            cl_ord_id, exec_type, status = message.getField(11), message.getField(150), message.getField(39)
            if self.journal is None:
                self.answered(cl_ord_id, exec_type, status)
            else:  # written here, in the callback, before anyone waiting on it is woken
                fields = (cl_ord_id, message.getField(37), exec_type, status)
                self.journal.report(fields, lambda: self.answered(cl_ord_id, exec_type, status))
        except Exception as exc:
            self.failed("fromApp", exc)


def new_order(cl_ord_id: str) -> fix.Message:
    message = fix.Message()
    message.getHeader().setField(35, "D")
    message.setField(11, cl_ord_id)
    message.setField(55, "1")
    message.setField(54, "1")
    message.setField(38, "10000")
    message.setField(40, "1")
    message.setField(fix.UtcTimeStampField(60, 3))
    return message


def ping_pong(app: InitiatorApp, session_id: fix.SessionID, count: int, prefix: str) -> list[float]:
    """One order at a time; each round trip in microseconds."""
    latencies: list[float] = []
    app.ping = True
    try:
        for i in range(count):
            cl_ord_id = f"{prefix}{i}"
            started = time.perf_counter()
            app.send(session_id, cl_ord_id)
            if not app.reply.acquire(timeout=REPLY_TIMEOUT):
                raise RuntimeError(
                    f"no ExecutionReport for {cl_ord_id} within {REPLY_TIMEOUT:g} s; {app.problems()}"
                )
            latencies.append((time.perf_counter() - started) * 1e6)
            answered, exec_type, status, _ = app.last
            if (answered, exec_type, status) != (cl_ord_id, "0", "0"):
                raise RuntimeError(
                    f"expected New for {cl_ord_id}, got 11={answered} 150={exec_type} 39={status}"
                )
    finally:
        app.ping = False
    return latencies


def run_burst(app: InitiatorApp, session_id: fix.SessionID, count: int, prefix: str = "B") -> float:
    """`count` orders sent back to back (BURST_IN_FLIGHT at most unanswered); orders/s until the last ER."""
    app.all_back.clear()
    app.room = threading.Semaphore(BURST_IN_FLIGHT)
    app.target = app.received + count
    started = time.perf_counter()
    for i in range(count):
        if not app.room.acquire(timeout=REPLY_TIMEOUT):
            raise RuntimeError(
                f"burst: no ExecutionReport for {REPLY_TIMEOUT:g} s after {i} of {count} sent, "
                f"{app.received - app.target + count} back; {app.problems()}"
            )
        app.send(session_id, f"{prefix}{i}")
    if not app.all_back.wait(max(10.0, count / 500)):
        missing = app.target - app.received
        raise RuntimeError(f"burst: {missing} of {count} ExecutionReports missing; {app.problems()}")
    return count / (app.last[3] - started)


# -- the acceptor process ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Counterparty:
    """The acceptor child process: started listening on a free port, always stopped (terminate, then kill)."""

    def __init__(self, sub_id: str = SUB_ID, tls: ServerFiles | None = None) -> None:
        """With `tls`, the child also serves TLS (with that certificate) on `tls_port`."""
        self.sub_id = sub_id
        self.tls = tls
        self.tls_port = 0
        self.process: subprocess.Popen[str] | None = None
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.port = 0
        self.last_stderr = ""
        self._reader: threading.Thread | None = None

    def start(self) -> int:
        for _ in range(START_ATTEMPTS):  # a free port can be taken before the child binds it
            self.port = free_port()
            command = [
                *(sys.executable, "-m", "bench.baseline", "--acceptor"),
                *("--port", str(self.port), "--sub-id", self.sub_id),
            ]
            if self.tls is not None:
                self.tls_port = free_port()
                command += ["--tls-port", str(self.tls_port), "--tls-cert", str(self.tls.cert_file)]
                command += ["--tls-key", str(self.tls.key_file)]
            self.process = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                cwd=REPO,
            )
            self.lines = queue.Queue()
            self._reader = threading.Thread(target=self._read, args=(self.process, self.lines), daemon=True)
            self._reader.start()
            try:
                if self.lines.get(timeout=LOGON_TIMEOUT) == "ready":
                    return self.port
            except queue.Empty:
                pass
            self.stop()
        raise RuntimeError(f"the acceptor did not start ({START_ATTEMPTS} attempts): {self.stderr()}")

    @staticmethod
    def _read(process: subprocess.Popen[str], lines: queue.Queue[str | None]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line.strip())
        lines.put(None)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stderr(self) -> str:
        """What an exited acceptor wrote to stderr (its last 2000 characters)."""
        process = self.process
        if process is None or self.alive() or process.stderr is None or process.stderr.closed:
            return self.last_stderr
        self.last_stderr = process.stderr.read().strip()[-2000:]
        return self.last_stderr

    def stop(self) -> dict[str, Any]:
        """Close its stdin (it logs out and reports its counts), then terminate, then kill."""
        process = self.process
        report: dict[str, Any] = {}
        if process is None:
            return report
        try:
            if process.stdin is not None and not process.stdin.closed:
                process.stdin.close()
            process.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            process.terminate()
            try:
                process.wait(timeout=2)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        while True:
            try:
                line = self.lines.get(timeout=1)
            except queue.Empty:
                break
            if line is None:
                break
            if line.startswith("{"):
                report = json.loads(line)
        self._close_pipes(process)
        return report

    def _close_pipes(self, process: subprocess.Popen[str]) -> None:
        """After the child exited: keep its stderr, then close both pipes (the reader has seen EOF)."""
        self.stderr()
        if self._reader is not None:
            self._reader.join(timeout=2)
        for pipe in (process.stdout, process.stderr):
            if pipe is not None and not pipe.closed:
                pipe.close()


# -- the run -----------------------------------------------------------------------------------------


def _measure(app: InitiatorApp, runs: tuple[int, int, int], name: str, ids: str = "") -> list[Figure]:
    """Warm-up, ping-pong, burst; ClOrdIDs start with `ids` (W, P, B after it)."""
    orders, burst_size, warmup = runs
    assert app.session_id is not None
    ping_pong(app, app.session_id, warmup, f"{ids}W")
    latencies = ping_pong(app, app.session_id, orders, f"{ids}P")
    throughput = run_burst(app, app.session_id, burst_size, f"{ids}B")
    return [
        *latency_figures(f"{name}.order_round_trip", latencies, "us"),
        figure(f"{name}.burst.throughput", throughput, "orders/s"),
    ]


def _measure_floor(app: InitiatorApp, runs: tuple[int, int, int], raw: list[Figure]) -> list[Figure]:
    """The same with a Journal, then the burst with a GroupJournal, each its own file in a temporary
    directory (where the adapter bench keeps its store); compared with the raw figures."""
    assert app.session_id is not None
    session_id, burst_size = app.session_id, runs[1]
    with tempfile.TemporaryDirectory() as tmp:
        journal = Journal(Path(tmp) / "floor.db")
        figures = _journaled(app, journal, sum(runs), lambda: _measure(app, runs, "floor", "F"))
        group = GroupJournal(Path(tmp) / "group.db")
        throughput = _journaled(app, group, burst_size, lambda: run_burst(app, session_id, burst_size, "G"))
        print(f"{GROUP_COMMIT}: {2 * burst_size} rows in {group.commits} commits", file=sys.stderr)
    figures.append(figure(GROUP_COMMIT, throughput, "orders/s"))

    def raw_of(name: str) -> str:
        return "baseline.burst.throughput" if name == GROUP_COMMIT else name.replace("floor.", "baseline.", 1)

    return compared(figures, {f["name"]: f for f in raw}, raw_of)


def _journaled(app: InitiatorApp, journal: Journal, sent: int, measure: Callable[[], T]) -> T:
    """`measure()` (which sends `sent` orders) with `journal` on `app`; each order and each report must be in
    it, once."""
    with journal:
        app.journal = journal
        try:
            result = measure()
        finally:
            app.journal = None
        if journal.counts() != (sent, sent):
            raise RuntimeError(f"{journal.path.name}: {sent} sent, (orders, reports) {journal.counts()}")
    return result


@contextlib.contextmanager
def logged_on() -> Iterator[InitiatorApp]:
    """An initiator logged on to a fresh acceptor process; on leaving, both stopped and checked for errors."""
    counterparty = Counterparty()
    initiator = None
    try:
        port = counterparty.start()
        app = InitiatorApp()
        initiator = fix.ThreadedSocketInitiator(app, fix.MemoryStoreFactory(), initiator_settings(port))
        initiator.start()
        if not app.logged_on.wait(LOGON_TIMEOUT):
            raise RuntimeError(
                f"no logon within {LOGON_TIMEOUT:g} s to the acceptor on 127.0.0.1:{port} "
                f"(acceptor {'running' if counterparty.alive() else 'exited: ' + counterparty.stderr()}); "
                f"{app.problems()}"
            )
        yield app
        if app.errors or app.rejects:
            raise RuntimeError(f"initiator: {app.problems()}")
    finally:
        try:
            if initiator is not None:
                initiator.stop()
        finally:
            report = counterparty.stop()
    if report.get("errors") or report.get("rejects"):
        raise RuntimeError(f"acceptor: errors {report.get('errors')}; rejects {report.get('rejects')}")


def run_baseline(
    orders: int = 2000, burst: int = 5000, warmup: int = 200, floor: bool = True
) -> list[Figure]:
    """Ping-pong round trips (after `warmup` unrecorded ones), then one burst, raw and then (with `floor`)
    as the durable floor on the same session; figures in the bench format."""
    runs = (orders, burst, warmup)
    with logged_on() as app:
        figures = _measure(app, runs, "baseline")
        if floor:
            figures += _measure_floor(app, runs, figures)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=2000, help="recorded ping-pong round trips")
    parser.add_argument("--burst", type=int, default=5000, help="orders in the burst")
    parser.add_argument("--warmup", type=int, default=200, help="unrecorded round trips first")
    parser.add_argument("--no-floor", action="store_true", help="the raw baseline only")
    parser.add_argument("--acceptor", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--sub-id", default=SUB_ID, help=argparse.SUPPRESS)
    parser.add_argument("--tls-port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--tls-cert", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--tls-key", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.acceptor:
        tls = (args.tls_port, args.tls_cert, args.tls_key) if args.tls_port else None
        return serve(args.port, args.sub_id, tls)
    figures = run_baseline(args.orders, args.burst, args.warmup, floor=not args.no_floor)
    print(SETUP.format(in_flight=BURST_IN_FLIGHT))
    if not args.no_floor:
        print(FLOOR_SETUP.format(directory=tempfile.gettempdir()))
    print_table(figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
